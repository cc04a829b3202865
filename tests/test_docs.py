"""The README's command synopses list exactly the options each command takes (issue 11,
item 17), and the docs install cmsisgen the way it is distributed (from its repository)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cmsisgen.cli import main

ROOT = Path(__file__).resolve().parent.parent


def synopsis(command: str) -> str:
    """The README's indented block that starts ``cmsisgen COMMAND``, continuation lines included."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"    cmsisgen {command} "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("        "):
            break
        block.append(line)
    return "\n".join(block)


@pytest.mark.parametrize("command", ["compile", "evaluate", "inspect", "verify"])
def test_readme_synopsis_lists_the_options_of_help(command):
    written = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", synopsis(command)))
    options = [param.opts for param in main.commands[command].params if param.param_type_name == "option"]
    missing = [opts for opts in options if not written & set(opts) and "--help" not in opts]
    unknown = written - {name for opts in options for name in opts}
    assert (missing, unknown) == ([], set()), synopsis(command)


def test_the_ci_recipe_installs_from_the_repository():
    text = (ROOT / "docs" / "ci-recipe.md").read_text()
    assert not re.search(r"pip install cmsisgen\b", text)  # not on PyPI
    assert "python3 -m pip install ./tools/cmsisgen" in text


def test_trace_count_says_it_is_for_small_nets():
    makefile = (ROOT / "firmware" / "common" / "qemu_selftest.mk").read_text()  # qemu_m7's and qemu_m55's
    recipe = makefile[makefile.index("\ntrace-count:"):].split("\n\n")[0]
    assert "for small nets" in recipe and "14 minutes" in recipe
