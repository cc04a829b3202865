"""Code generator: a Program and its buffer plan -> C sources, through Jinja2 templates.

Output is a pure function of its inputs (no dates, no absolute paths, stable ordering),
so the same model gives byte-identical files and firmware CI sees no spurious diffs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Optional

import jinja2
import numpy as np

from . import __version__, own_kernels
from .c_names import c_comment, c_identifier, c_string, check_unique, unique_prefixes, unindented_lines
from .mapper.buffers import IMAGE, BufferPlan, Placement
from .mapper.calls import Op, Program
from .network_outputs import describe_outputs
from .ops.buffer_copy import COPY
from .ops.network_input import DEFINITION as INPUT_DEFINITION

GENERATED_FILES = ("nn.h", "nn.c", "parameters.h", "weights.h", "weights.c")
#: Every file a compile may write. OUT's manifest says which ones a compile wrote; this list
#: only recognises the files of an OUT written before the manifest (output.earlier_outputs).
ALL_OUTPUT_FILES = GENERATED_FILES + ("test_vectors.h",) + own_kernels.ALL_FILES
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


#: Values formatted at a time by :func:`c_array` (a multiple of ROW).
C_ARRAY_BLOCK = ROW * 4096


def c_array(values: np.ndarray, indent: str = "    ") -> str:
    """Comma-separated values, ROW per line; deterministic.

    A net's weights are tens of millions of values: small integers are formatted by table
    look-up, each value's text with the separator after it, and joined a block at a time
    (a Python string or join per value would cost gigabytes and minutes)."""
    flat = np.asarray(values).reshape(-1)
    if not (flat.size and flat.dtype.kind in "iub" and flat.dtype.itemsize <= 2):
        text = [str(int(v)) for v in flat.tolist()]
        return CCode(",\n".join(indent + ", ".join(text[i:i + ROW]) for i in range(0, len(text), ROW)))
    low = int(flat.min())
    words = [str(v) for v in range(low, int(flat.max()) + 1)]
    in_row = np.array([w + ", " for w in words], dtype=object)
    row_end = np.array([w + ",\n" + indent for w in words], dtype=object)
    ends = (np.arange(C_ARRAY_BLOCK) % ROW) == ROW - 1
    pieces = [indent]
    for start in range(0, flat.size, C_ARRAY_BLOCK):
        index = flat[start:start + C_ARRAY_BLOCK].astype(np.int64) - low
        tokens = np.where(ends[:len(index)], row_end[index], in_row[index])
        if start + C_ARRAY_BLOCK >= flat.size:
            tokens[-1] = words[index[-1]]
        pieces.append("".join(tokens.tolist()))
    return CCode("".join(pieces))  # numbers: nothing for the template to make comment-safe


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
    env.filters["c_string"] = c_string
    return env


class CCode(str):
    """C text rendered by this module (a kernel's snippet): the template prints it as is."""


def _layer_prefixes(ops: list[Op]) -> list[str]:
    """Each step's C prefix: its layer's name (a copy's with _COPY; the input conversion NN_INPUT)."""
    bases = ["NN_INPUT" if not op.inputs else c_identifier(op.layer + ("_copy" if op.kernel is COPY else ""))
             for op in ops]
    return unique_prefixes(bases, owned={"NN_INPUT"})


def _steps(env: jinja2.Environment, program: Program, prefixes: list[str], tensor_buf: dict[str, str]) -> list[dict]:
    """Every op's C, rendered from its kernel's snippets: parameters.h lines, weights.h arrays,
    and the statements of its step in run_nn()."""
    steps = []
    for prefix, op in zip(prefixes, program.ops):
        names = dict(op=op, prefix=prefix, f=op.formats, a=op.args, buf=tensor_buf, out=tensor_buf[op.output])
        text = {part: CCode(env.from_string(getattr(op.kernel, part)).render(**names)) if getattr(op.kernel, part)
                else "" for part in ("call", "parameters", "weights")}
        steps.append(dict(text, declarations=CCode(_declarations(text["weights"])), out=tensor_buf[op.output],
                          size=program.tensors[op.output].size, comments=op.comments))
    return steps


#: A weight array's definition in weights.c: type, name, size.
_ARRAY_DEFINITION = re.compile(r"^const (\w+) (\w+)\[(\w+)\] NN_WEIGHT_SECTION = \{$")


def _declarations(definitions: str) -> str:
    """weights.h's part of a step's weights: its comments and an extern declaration per array."""
    lines = []
    for line in unindented_lines(definitions):  # not the arrays' values
        array = _ARRAY_DEFINITION.match(line)
        if array:
            lines.append("extern const {} {}[{}];".format(*array.groups()))
        elif "NN_WEIGHT_SECTION" in line:
            raise AssertionError(f"a weight array's definition is not of the form weights.h declares: {line}")
        elif line.startswith("/*"):
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def render(program: Program, plan: BufferPlan, model_name: str,
           vectors: Optional[TestVectors] = None) -> dict[str, str]:
    """All generated files as {file name: text}."""
    prefixes = _layer_prefixes(program.ops)
    rows, tensor_buf, scratch = _buffer_plan(plan, program, prefixes)
    c, h, w = program.input_shape
    kernels = own_kernels.files_used(program.ops)
    context = {
        "version": __version__,
        "model": model_name,
        "program": program,
        "plan": plan,
        "ops": [(prefixes[i], op) for i, op in enumerate(program.ops)],
        "buffers": rows,
        "buf": tensor_buf,
        "scratch": scratch,
        "input": {"c": c, "h": h, "w": w, "size": c * h * w},
        "output_size": program.outputs[0].size,
        "output_frac": program.outputs[0].frac,
        "outputs": describe_outputs(program),
        "own_kernels_header": own_kernels.HEADER if kernels else None,
        "vectors": vectors,
        **C_TYPES[program.backend],
    }
    env = _environment()
    context["steps"] = _steps(env, program, prefixes, tensor_buf)
    context["input_definition"] = CCode(env.from_string(INPUT_DEFINITION).render(op=program.ops[0],
                                                                                 **C_TYPES[program.backend]))
    files = {name: env.get_template(_template(name, program.backend)).render(**context) for name in GENERATED_FILES}
    if vectors is not None:
        files["test_vectors.h"] = env.get_template("test_vectors.h.j2").render(**context)
    check_unique(files)
    files.update(own_kernels.kernel_files(kernels))
    return files


#: The files whose frame differs on the s8 backend (CMSIS-NN v4+ has no q7_t, q15_t or arm_status).
_S8_FRAMES = ("nn.h", "nn.c", "parameters.h")
#: Each backend's C names of an activation byte and of what a scratch pointer points to, the
#: byte's name in comments and the converted input's buffer: CMSIS-NN v4+ (s8) has no q7_t or
#: q15_t, and its int8 bytes are no Q7 fixed point.
C_TYPES = {"q7": {"byte_t": "q7_t", "scratch_t": "q15_t", "byte_name": "q7", "input_buffer": "NN_INPUT_Q7"},
           "s8": {"byte_t": "int8_t", "scratch_t": "void", "byte_name": "int8", "input_buffer": "NN_INPUT_S8"}}


def _template(name: str, backend: str) -> str:
    return f"{name}.s8.j2" if backend == "s8" and name in _S8_FRAMES else f"{name}.j2"


def _buffer_plan(plan: BufferPlan, program: Program, prefixes: list[str]) -> tuple[list[dict], dict[str, str],
                                                                                dict[int, str]]:
    """The plan as nn.c shows and uses it: one row (and macro) per buffer, named after what it
    holds -- the output of the step that writes it (``POOL1_OUT``, even where pool1 writes
    over conv1's bytes), a step's scratch (``CONV1_SCRATCH``), the converted image
    (``NN_INPUT_Q7``, ``NN_INPUT_S8``) -- then tensor -> macro and step -> scratch macro."""
    writer = {op.output: (prefix, op) for prefix, op in zip(prefixes, program.ops)}
    rows = []
    for p in plan.placements():
        if p.scratch_of is not None:
            macro, holds = f"{prefixes[p.scratch_of]}_SCRATCH", p.name.replace("/scratch", " scratch")
        else:
            prefix, op = writer[p.name]
            macro = C_TYPES[program.backend]["input_buffer"] if p.name == program.input else f"{prefix}_OUT"
            holds = _holds(p.name, op)
        rows.append({"macro": macro, "region": p.region, "offset": p.offset, "bytes": p.bytes, "holds": holds,
                     "steps": str(p.first) if p.first == p.last else f"{p.first}-{p.last}",
                     "address": _address(p, macro, program.backend), "tensor": p.name if p.scratch_of is None else None,
                     "scratch_of": p.scratch_of})
    tensor_buf = {row["tensor"]: row["macro"] for row in rows if row["tensor"] is not None}
    scratch = {row["scratch_of"]: row["macro"] for row in rows if row["scratch_of"] is not None}
    return rows, tensor_buf, scratch


def _holds(tensor: str, op: Op) -> str:
    """What a buffer holds, in the model's words: a blob, the blob after an in-place layer
    (an SSA name such as ``pool1@1``), or a copy the planner made."""
    if op.kernel is COPY:
        return f"copy of {op.inputs[0].split('@')[0]} for {op.layer}"
    blob = tensor.split("@")[0]
    return blob if blob == op.layer or "@" not in tensor else f"{blob} after {op.layer}"


def _address(placement: Placement, macro: str, backend: str = "q7") -> str:
    """C expression of a buffer's first byte inside run_nn() (``image`` is its argument)."""
    byte, scratch = C_TYPES[backend]["byte_t"], C_TYPES[backend]["scratch_t"]
    if placement.region == IMAGE:
        return f"(({byte} *)image + {macro}_OFFSET)"
    if placement.scratch_of is not None:
        return f"(({scratch} *)(void *)(nn_arena + {macro}_OFFSET))" if scratch != "void" \
            else f"((void *)(nn_arena + {macro}_OFFSET))"
    return f"(nn_arena + {macro}_OFFSET)"
