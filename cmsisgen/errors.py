"""The one exception type the CLI turns into a one-line message and exit status 2."""
from __future__ import annotations


class CmsisgenError(Exception):
    """A problem with the user's input (model, weights, data, options).

    The message is shown to the user as-is on one line, ``cmsisgen: error: <message>``, so
    it must start with where the problem is (a file, ``file:line:col``, ``file: layer 'x'
    (Type)`` or an option) and then say what is wrong; the CLI never prints a traceback
    for it (unless ``--debug``).
    """

    def at(self, where: str | None) -> "CmsisgenError":
        """This error located at ``where`` (usually the prototxt): a message that does not
        already start with ``where`` gets it in front. Layer checks that only know the
        layer (mapper rules, quantizer) are located this way by the pipeline."""
        message = str(self)
        if not where or message.startswith(f"{where}:") or message.startswith(f"{where} "):
            return self
        return CmsisgenError(f"{where}: {message}")


#: Where a setting's name goes in a :class:`SettingError` or :class:`SettingNote` template.
SETTING = "{setting}"


class SettingError(CmsisgenError):
    """An error about a setting the caller chose, or one a setting would fix.

    The library knows a setting by its keyword argument (``mean``, ``scale``,
    ``input_shape``); a front end knows it by its own name (the CLI's ``--mean``). The
    message is a template in which :data:`SETTING` stands for the name: ``str()`` gives the
    library's wording, :meth:`named` the front end's, so library messages never name CLI
    flags and the CLI's messages always do.
    """

    def __init__(self, setting: str, template: str):
        self.setting, self.template = setting, template
        super().__init__(template.replace(SETTING, setting))

    def named(self, name: str) -> CmsisgenError:
        return CmsisgenError(self.template.replace(SETTING, name))

    def at(self, where: str | None) -> "CmsisgenError":
        located = super().at(where)
        if located is self:
            return self
        return SettingError(self.setting, f"{where}: {self.template}")


class SettingNote(str):
    """A warning about a setting, worded like :class:`SettingError` (a ``str`` in the
    library's wording; :meth:`named` for a front end's)."""

    setting: str
    template: str

    def __new__(cls, setting: str, template: str) -> "SettingNote":
        note = super().__new__(cls, template.replace(SETTING, setting))
        note.setting, note.template = setting, template
        return note

    def named(self, name: str) -> str:
        return self.template.replace(SETTING, name)
