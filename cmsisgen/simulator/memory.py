"""Run a Program in its planned memory: the image buffer and the arena as flat byte arrays.

:mod:`cmsisgen.simulator.execute` computes every tensor into its own array; the generated
C instead keeps tensors at the offsets of the buffer plan, where bytes are reused, pooled
over in place and used as scratch. This module replays a program on that memory so that
a wrong plan shows up as wrong values, not only as an overlap a checker happens to look
for:

- before a call, its scratch and (unless it works in place) its output bytes are filled
  with noise, since the kernel writes them while it still reads its inputs;
- a call that clobbers its input leaves noise there (bar what it wrote as output);
- a call written over its input whose order of reads and writes matters (pooling) runs its
  kernel's own model of that on the shared bytes (:attr:`cmsisgen.ops.base.Kernel.over_input`).

Every other op is computed by :func:`cmsisgen.simulator.execute._run_op` from the bytes
its inputs hold at that moment, then stored at its output's offset.
"""
from __future__ import annotations

import numpy as np

from ..mapper.buffers import ARENA, IMAGE, BufferPlan
from ..mapper.calls import Program
from .execute import _run_op


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
        if not op.in_place and op.inputs:  # (the input conversion works in place in the image)
            noise(*where(op.output))
        if op.in_place and op.kernel.over_input is not None:
            op.kernel.over_input(op, *where(op.inputs[0]))
        else:
            out = _run_op(op, [read(name) for name in op.inputs], program, images)
            if op.clobbers_input:
                noise(*where(op.inputs[0]))
            mem, offset, size = where(op.output)
            mem[:, offset:offset + size] = out.reshape(n, size)
        mem, offset, size = where(op.output)
        steps.append(mem[:, offset:offset + size].copy())
    return steps
