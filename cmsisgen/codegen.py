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
from .mapper.buffers import IMAGE, BufferPlan, Placement
from .mapper.calls import Op, Program
from .ops.network_input import DEFINITION as INPUT_DEFINITION

GENERATED_FILES = ("nn.h", "nn.c", "parameters.h", "weights.h")
#: Every file a compile may write; ones a new compile does not write are removed, so a
#: folder never mixes two models (e.g. an old test_vectors.h beside new sources).
ALL_OUTPUT_FILES = GENERATED_FILES + ("test_vectors.h",)
#: Elements per line in emitted arrays.
ROW = 16


@dataclass(frozen=True)
class TestVectors:
    """Known-answer vectors for test_vectors.h."""

    __test__ = False  # not a pytest test class, despite the name
    inputs: np.ndarray  # uint8 (N, H, W, C)
    expected: np.ndarray  # int8 (N, K)
    labels: np.ndarray  # int (N,), -1 when unknown
    step_names: tuple[str, ...] = ()  # one per op, as NN_TRACE numbers them (empty: no step checks)
    step_checksums: Optional[np.ndarray] = None  # uint32 (N, steps)


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
                             keep_trailing_newline=True,
                             # Names from the model only ever appear in comments or
                             # identifiers; no emitted expression may open or close a comment
                             # (C text rendered from a kernel's snippets is already safe).
                             finalize=lambda value: value if isinstance(value, CCode) else
                             c_comment(value) if isinstance(value, str) else value)
    env.filters["c_array"] = c_array
    return env


class CCode(str):
    """C text rendered by this module (a kernel's snippet): the template prints it as is."""


def c_comment(text: str) -> str:
    """Text safe inside a C block comment: a layer named 'a*/b' must not end it."""
    return str(text).replace("*/", "* /").replace("/*", "/ *")


def _unique_names(bases: list[str], reserved: set[str]) -> list[str]:
    """Distinct C names: a clash gets ``_2``, ``_3``... avoiding every other base too.

    Names in the NN_ namespace (the generated API: NN_INPUT_SIZE, NN_OUTPUT_SIZE, ...)
    are moved out of it with an ``L_`` prefix, so a layer called 'nn_output' cannot
    redefine them.
    """
    bases = ["L_" + b if b.startswith("NN_") and b not in reserved else b for b in bases]
    wanted = set(bases)
    taken: set[str] = set()
    names = []
    for base in bases:
        name, n = base, 1
        while name in taken or (name != base and name in wanted):
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append(name)
    return names


def _layer_prefixes(ops: list[Op]) -> list[str]:
    bases = ["NN_INPUT" if not op.inputs else c_identifier(op.layer + ("_copy" if op.kind == "copy" else ""))
             for op in ops]
    return _unique_names(bases, reserved={"NN_INPUT"})


def _steps(env: jinja2.Environment, program: Program, prefixes: list[str], tensor_buf: dict[str, str]) -> list[dict]:
    """Every op's C, rendered from its kernel's snippets: parameters.h lines, weights.h arrays,
    and the statements of its step in run_nn()."""
    steps = []
    for prefix, op in zip(prefixes, program.ops):
        names = dict(op=op, prefix=prefix, f=op.formats, a=op.args, buf=tensor_buf, out=tensor_buf[op.output])
        text = {part: CCode(env.from_string(getattr(op.kernel, part)).render(**names)) if getattr(op.kernel, part)
                else "" for part in ("call", "parameters", "weights")}
        steps.append(dict(text, out=tensor_buf[op.output], size=program.tensors[op.output].size))
    return steps


def render(program: Program, plan: BufferPlan, model_name: str,
           vectors: Optional[TestVectors] = None) -> dict[str, str]:
    """All generated files as {file name: text}."""
    prefixes = _layer_prefixes(program.ops)
    rows, buffer_macros, tensor_buf, scratch = _buffer_plan(plan)
    c, h, w = program.input_shape
    context = {
        "version": __version__,
        "model": model_name,
        "program": program,
        "plan": plan,
        "ops": [(prefixes[i], op) for i, op in enumerate(program.ops)],
        "buffers": rows,
        "buffer_macros": buffer_macros,
        "buf": tensor_buf,
        "scratch": scratch,
        "input": {"c": c, "h": h, "w": w, "size": c * h * w},
        "output_size": program.tensors[program.output].size,
        "output_frac": program.tensors[program.output].frac,
        "uses_concat": any(op.kind == "concat" for op in program.ops),
        "vectors": vectors,
    }
    env = _environment()
    context["steps"] = _steps(env, program, prefixes, tensor_buf)
    context["input_definition"] = CCode(env.from_string(INPUT_DEFINITION).render(op=program.ops[0]))
    files = {name: env.get_template(name + ".j2").render(**context) for name in GENERATED_FILES}
    if vectors is not None:
        files["test_vectors.h"] = env.get_template("test_vectors.h.j2").render(**context)
    return files


def stale_files(files: dict[str, str], out_dir: Path) -> list[str]:
    """Files of ``out_dir`` that differ from ``files`` (missing, changed, or left over from an
    earlier compile), sorted. Lets a CI job fail when committed generated code drifts from
    the model, without writing anything."""
    out_dir = Path(out_dir)
    stale = []
    for name, text in files.items():
        try:
            if (out_dir / name).read_text() != text:
                stale.append(name)
        except (OSError, UnicodeDecodeError):
            stale.append(name)
    stale.extend(name for name in set(ALL_OUTPUT_FILES) - set(files) if (out_dir / name).exists())
    return sorted(stale)


def _buffer_plan(plan: BufferPlan) -> tuple[list[dict], list[tuple[str, str]], dict[str, str], dict[int, str]]:
    """The plan as nn.c shows and uses it: comment-table rows, buffer macros with their C
    expressions, tensor -> macro and step -> scratch macro. One macro per in-place chain
    (its tensors share one offset) and one per scratch buffer."""
    placements = plan.placements()
    heads: dict[str, Placement] = {}
    for p in placements:
        heads.setdefault(p.root, p)
    macro = dict(zip(heads, _unique_names([_macro_base(p) for p in heads.values()], set())))
    buffer_macros = [(macro[root], _address(p)) for root, p in heads.items()]
    rows = [{"macro": macro[p.root], "region": p.region, "offset": p.offset, "bytes": p.bytes,
             "steps": str(p.first) if p.first == p.last else f"{p.first}-{p.last}",
             "name": p.name if p.scratch_of is None else p.name.replace("/scratch", " scratch")}
            for p in placements]
    tensor_buf = {name: macro[p.root] for name, p in plan.tensors.items()}
    scratch = {step: macro[p.root] for step, p in plan.scratch.items()}
    return rows, buffer_macros, tensor_buf, scratch


def _macro_base(placement: Placement) -> str:
    if placement.scratch_of is not None:
        return c_identifier(placement.name.rsplit("/", 1)[0]) + "_SCRATCH"
    return c_identifier(placement.root) + "_BUF"


def _address(placement: Placement) -> str:
    """C expression of a buffer's first byte inside run_nn() (``image`` is its argument)."""
    if placement.region == IMAGE:
        return "((q7_t *)image)"
    if placement.scratch_of is not None:
        return f"((q15_t *)(void *)(nn_arena + {placement.offset}))"
    return f"(nn_arena + {placement.offset})"


def write_output(files: dict[str, str], out_dir: Path) -> None:
    """Write all files or none: render into a temporary folder beside ``out_dir``, then move.

    A failing compile must never leave a half-written output folder that firmware CI
    would pick up: the previous generated files are moved aside first and put back if any
    step fails, so an existing ``out_dir`` is left exactly as it was. Files in ``out_dir``
    that cmsisgen does not write (a build folder, notes) are never touched.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    if out_dir.exists() and not out_dir.is_dir():
        raise CmsisgenError(f"{out_dir}: exists and is not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cmsisgen-", dir=parent))
    except OSError as exc:
        raise CmsisgenError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    backup = staging / ".previous"
    created = not out_dir.exists()
    moved_aside: list[str] = []
    placed: list[str] = []
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        backup.mkdir()
        out_dir.mkdir(exist_ok=True)
        for name in ALL_OUTPUT_FILES:
            if (out_dir / name).exists():
                os.replace(out_dir / name, backup / name)
                moved_aside.append(name)
        for name in files:
            os.replace(staging / name, out_dir / name)
            placed.append(name)
    except BaseException as exc:
        _roll_back(out_dir, backup, moved_aside, placed, created)
        if isinstance(exc, OSError):
            raise CmsisgenError(f"{out_dir}: cannot write the generated files ({exc.strerror})") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _roll_back(out_dir: Path, backup: Path, moved_aside: list[str], placed: list[str], created: bool) -> None:
    """Undo a partial :func:`write_output`: remove what was placed, restore what was moved aside."""
    for name in placed:
        (out_dir / name).unlink(missing_ok=True)
    for name in moved_aside:
        os.replace(backup / name, out_dir / name)
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
