"""The layout the architecture promises (docs/architecture.md): one layer kind, one place."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cmsisgen.ops import KINDS, supported_types

PACKAGE = Path(__file__).resolve().parents[1] / "cmsisgen"
#: The loader translates Caffe's messages (and their V1 enum names) into the IR: it may name types.
OUTSIDE_THE_RULE = ("loader", "proto")


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in OUTSIDE_THE_RULE]


@pytest.mark.parametrize("caffe_type", sorted(supported_types()))
def test_each_layer_type_is_named_in_one_module(caffe_type):
    """Outside the loader, a Caffe layer type's name is a string in exactly one module: its kind's."""
    pattern = re.compile(rf"[\"']{re.escape(caffe_type)}[\"']")
    naming = [str(p.relative_to(PACKAGE)) for p in _modules() if pattern.search(p.read_text())]
    assert len(naming) == 1, naming


def test_every_kind_is_registered_once():
    types = [t for kind in KINDS for t in kind.types]
    assert len(types) == len(set(types))


#: Longest function the code base allows (lines, decorators excluded).
LONGEST_FUNCTION = 60


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
