"""Code generator: a Program and its buffer plan -> C sources, through Jinja2 templates.

Output is a pure function of its inputs (no dates, no absolute paths, stable ordering),
so the same model gives byte-identical files and firmware CI sees no spurious diffs.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import jinja2
import numpy as np

from . import __version__
from .errors import CmsisgenError
from .mapper.buffers import BufferPlan
from .mapper.program import Op, Program

GENERATED_FILES = ("nn.h", "nn.c", "parameters.h", "weights.h")
#: Elements per line in emitted arrays.
ROW = 16


@dataclass(frozen=True)
class TestVectors:
    """Known-answer vectors for test_vectors.h."""

    __test__ = False  # not a pytest test class, despite the name
    inputs: np.ndarray  # uint8 (N, H, W, C)
    expected: np.ndarray  # int8 (N, K)
    labels: np.ndarray  # int (N,), -1 when unknown


def c_identifier(name: str) -> str:
    """Upper-case C identifier for a Caffe layer or blob name ('conv1@1' -> 'CONV1_1')."""
    ident = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper() or "T"
    return "L_" + ident if ident[0].isdigit() else ident


def c_array(values: np.ndarray, indent: str = "    ") -> str:
    """Comma-separated values, ROW per line; deterministic."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [indent + ", ".join(flat[i:i + ROW]) for i in range(0, len(flat), ROW)]
    return ",\n".join(lines)


def _environment() -> jinja2.Environment:
    templates = resources.files("cmsisgen.templates")
    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda name: templates.joinpath(name).read_text()),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["c_array"] = c_array
    return env


def _unique_prefixes(ops: list[Op]) -> dict[int, str]:
    taken: dict[str, int] = {}
    prefixes: dict[int, str] = {}
    for index, op in enumerate(ops):
        base = c_identifier(op.layer if op.kind != "copy" else op.layer + "_copy")
        if op.kind == "input":
            base = "NN_INPUT"
        count = taken.get(base, 0)
        taken[base] = count + 1
        prefixes[index] = base if count == 0 else f"{base}_{count}"
    return prefixes


def render(program: Program, plan: BufferPlan, model_name: str,
           vectors: Optional[TestVectors] = None) -> dict[str, str]:
    """All generated files as {file name: text}."""
    prefixes = _unique_prefixes(program.ops)
    buffers = sorted(plan.offsets, key=lambda n: (plan.offsets[n], n))
    buffer_macro = {name: c_identifier(name) + "_BUF" for name in buffers}
    tensor_buf = {name: buffer_macro[plan.storage.get(name, name)] for name in program.tensors
                  if plan.storage.get(name, name) in buffer_macro}
    c, h, w = program.input_shape
    context = {
        "version": __version__,
        "model": model_name,
        "program": program,
        "plan": plan,
        "ops": [(prefixes[i], op) for i, op in enumerate(program.ops)],
        "buffers": [(buffer_macro[n], n, plan.offsets[n], plan.sizes[n]) for n in buffers],
        "buf": tensor_buf,
        "input": {"c": c, "h": h, "w": w},
        "output_size": program.tensors[program.output].size,
        "output_frac": program.tensors[program.output].frac,
        "uses_concat": any(op.kind == "concat" for op in program.ops),
        "uses_memcpy": True,
        "vectors": vectors,
    }
    env = _environment()
    files = {name: env.get_template(name + ".j2").render(**context) for name in GENERATED_FILES}
    if vectors is not None:
        files["test_vectors.h"] = env.get_template("test_vectors.h.j2").render(**context)
    return files


def write_output(files: dict[str, str], out_dir: Path) -> None:
    """Write all files or none: render into a temporary folder beside ``out_dir``, then move.

    A failing compile must never leave a half-written output folder that firmware CI
    would pick up.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cmsisgen-", dir=parent))
    except OSError as exc:
        raise CmsisgenError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        if out_dir.exists() and not out_dir.is_dir():
            raise CmsisgenError(f"{out_dir}: exists and is not a folder")
        out_dir.mkdir(exist_ok=True)
        for name in files:
            os.replace(staging / name, out_dir / name)
    except OSError as exc:
        raise CmsisgenError(f"{out_dir}: cannot write the generated files ({exc.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
