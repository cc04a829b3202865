"""The wheel ships every package: pyproject.toml lists them by hand (templates/ and firmware/
are mapped in), so a new subpackage left out of the list would be missing from an installed
cmsisgen while every test of a source checkout passes (cmsisgen.s8 was)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_every_package_is_listed():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "cmsisgen").rglob("__init__.py")}
    assert found - listed == set()
