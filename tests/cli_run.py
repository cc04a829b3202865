"""Running the CLI in a test: click's runner, arguments as strings (paths allowed)."""
from __future__ import annotations

from click.testing import CliRunner, Result

from cmsisgen.cli import main


def run(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])
