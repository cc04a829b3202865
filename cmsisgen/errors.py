"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class CmsisgenError(Exception):
    """A problem with the user's input (model, weights, data, options).

    The message is shown to the user as-is on one line, so it must name the file or
    layer at fault and say what was expected; the CLI never prints a traceback for it.
    """
