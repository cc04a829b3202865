"""The one exception type the CLI turns into a one-line message and exit status 2."""
from __future__ import annotations

from typing import Callable


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


#: Where a setting's name goes in a :class:`SettingError` or :class:`SettingNote` template
#: (other settings a message names go where ``{name}`` stands, e.g. ``{scale}``).
SETTING = "{setting}"


def _fill(template: str, settings: tuple[str, ...], name: Callable[[str], str]) -> str:
    text = template.replace(SETTING, name(settings[0]))
    for other in settings[1:]:
        text = text.replace("{" + other + "}", name(other))
    return text


class SettingError(CmsisgenError):
    """An error about a setting the caller chose, or one a setting would fix.

    The library knows a setting by its keyword argument (``mean``, ``scale``,
    ``input_shape``); a front end knows it by its own name (the CLI's ``--mean``). The
    message is a template in which :data:`SETTING` stands for the setting's name (and
    ``{other}`` for each of ``also``): ``str()`` gives the library's wording, :meth:`named`
    the front end's, so library messages never name CLI flags and the CLI's always do.
    """

    def __init__(self, setting: str, template: str, also: tuple[str, ...] = ()):
        self.setting, self.template, self.settings = setting, template, (setting, *also)
        super().__init__(_fill(template, self.settings, str))

    def named(self, name: Callable[[str], str]) -> CmsisgenError:
        """The message with each setting called ``name(setting)``."""
        return CmsisgenError(_fill(self.template, self.settings, name))

    def at(self, where: str | None) -> "CmsisgenError":
        located = super().at(where)
        if located is self:
            return self
        return SettingError(self.setting, f"{where}: {self.template}", self.settings[1:])


class SettingNote(str):
    """A warning about a setting, worded like :class:`SettingError` (a ``str`` in the
    library's wording; :meth:`named` for a front end's)."""

    setting: str
    template: str
    settings: tuple[str, ...]

    def __new__(cls, setting: str, template: str, also: tuple[str, ...] = ()) -> "SettingNote":
        settings = (setting, *also)
        note = super().__new__(cls, _fill(template, settings, str))
        note.setting, note.template, note.settings = setting, template, settings
        return note

    def named(self, name: Callable[[str], str]) -> str:
        return _fill(self.template, self.settings, name)
