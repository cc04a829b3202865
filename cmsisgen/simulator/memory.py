"""Run a Program in its planned memory: the image buffer and the arena as flat byte arrays.

:mod:`cmsisgen.simulator.program` computes every tensor into its own array; the generated
C instead keeps tensors at the offsets of the buffer plan, where bytes are reused, pooled
over in place and used as scratch. This module replays a program on that memory so that
a wrong plan shows up as wrong values, not only as an overlap a checker happens to look
for:

- before a call, its scratch and (unless it works in place) its output bytes are filled
  with noise, since the kernel writes them while it still reads its inputs;
- a call that clobbers its input leaves noise there (bar what it wrote as output);
- pooling written over its input runs in the DSP kernels' order on the shared bytes: the
  x pass in place, then output row after output row, max pooling copying (memmove) the
  first input row of its window into the row and comparing the later ones into it element
  by element, average pooling summing all of its rows (bufferA) before writing the row.

Every other op is computed by :func:`cmsisgen.simulator.program._run_op` from the bytes
its inputs hold at that moment, then stored at its output's offset.
"""
from __future__ import annotations

import numpy as np

from ..mapper.buffers import ARENA, IMAGE, BufferPlan
from ..mapper.program import Op, Program
from . import kernels
from .program import _run_op


def run_in_plan(program: Program, plan: BufferPlan, images: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Every step's output (int8, N x bytes) as read back from the planned memory right
    after the step, for uint8 ``images`` (N, H, W, C) as run_nn() receives them."""
    rng = np.random.default_rng(seed)
    n = len(images)
    memory = {IMAGE: rng.integers(-128, 128, size=(n, plan.input_buffer_bytes), dtype=np.int8),
              ARENA: rng.integers(-128, 128, size=(n, plan.arena_bytes), dtype=np.int8)}
    memory[IMAGE][:, :images[0].size] = images.reshape(n, -1).view(np.int8)

    def where(name: str) -> tuple[np.ndarray, int, int]:
        p = plan.tensors[name]
        return memory[p.region], p.offset, program.tensors[name].size

    def read(name: str) -> np.ndarray:
        mem, offset, size = where(name)
        c, h, w = program.tensors[name].shape
        return mem[:, offset:offset + size].reshape(n, h, w, c).copy()

    def noise(mem: np.ndarray, offset: int, size: int) -> None:
        mem[:, offset:offset + size] = rng.integers(-128, 128, size=(n, size), dtype=np.int8)

    steps = []
    for index, op in enumerate(program.ops):
        if index in plan.scratch:
            noise(memory[ARENA], plan.scratch[index].offset, op.scratch_bytes)
        if not op.in_place and op.kind != "input":
            noise(*where(op.output))
        if op.in_place and op.kind in ("maxpool", "avepool"):
            # the kernel's own geometry: the input may be a Reshape alias of a differently shaped tensor
            a = op.args
            _pool_over_input(op, *where(op.inputs[0]), (a["ch_im_in"], a["dim_im_in"], a["dim_im_in"]))
        else:
            out = _run_op(op, [read(name) for name in op.inputs], program, images)
            if op.clobbers_input:
                noise(*where(op.inputs[0]))
            mem, offset, size = where(op.output)
            mem[:, offset:offset + size] = out.reshape(n, size)
        mem, offset, size = where(op.output)
        steps.append(mem[:, offset:offset + size].copy())
    return steps


def _pool_over_input(op: Op, mem: np.ndarray, offset: int, size: int, shape: tuple[int, int, int]) -> None:
    """arm_maxpool_q7_HWC / arm_avepool_q7_HWC (DSP build) with Im_out == Im_in, on ``mem``."""
    a = op.args
    c, d, _ = shape
    k, p, s, o = a["dim_kernel"], a["padding"], a["stride"], a["dim_im_out"]
    pool = kernels.maxpool_q7_hwc if op.kind == "maxpool" else kernels.avepool_q7_hwc
    x = mem[:, offset:offset + size].reshape(-1, d, d, c)
    _, after_x_pass = pool(x, kernel=k, pad=p, stride=s, out_dim=o, return_im_in=True)
    buf = after_x_pass.reshape(len(x), -1).astype(np.int32)  # Im_in == Im_out from here on
    row_in, row_out = d * c, o * c
    for i, (start, stop) in enumerate(kernels._dsp_windows(d, k, p, s, o, first_pass=False)):
        target = i * row_out
        if op.kind == "maxpool":
            buf[:, target:target + row_out] = buf[:, start * row_in:start * row_in + row_out].copy()  # memmove
            for j in range(start + 1, stop):
                source = j * row_in
                if source >= target + row_out or source + row_out <= target:
                    buf[:, target:target + row_out] = np.maximum(buf[:, target:target + row_out],
                                                                 buf[:, source:source + row_out])
                    continue
                for e in range(row_out):  # element by element: a source byte is also a target byte
                    buf[:, target + e] = np.maximum(buf[:, target + e], buf[:, source + e])
        else:
            acc = sum(buf[:, j * row_in:j * row_in + row_out].copy() for j in range(start, stop))
            buf[:, target:target + row_out] = kernels._trunc_div(acc, stop - start)
    mem[:, offset:offset + size] = buf.astype(np.int8)
