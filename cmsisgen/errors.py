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
