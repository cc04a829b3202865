"""Run a lowered Program on a batch, bit-exactly as the generated C computes it.

This is the oracle behind the accuracy report, the known-answer vectors and the tests;
each op runs its kernel's model (:attr:`cmsisgen.ops.base.Kernel.simulate`).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..ir import last_reads
from ..mapper.calls import Op, Program


def run_program(program: Program, images: np.ndarray, keep_all: bool = False,
                batch_size: int = 1000, progress: Optional[Callable[[int], None]] = None) -> dict[str, np.ndarray] | np.ndarray:
    """``images``: uint8 (N, H, W, C) exactly as ``run_nn()`` receives them.

    Returns the outputs as int8 (N, K) (K = ``program.output_size``: every output in HWC order,
    side by side in ``program.outputs`` order, as the self test's buffer holds them;
    :meth:`~cmsisgen.mapper.calls.Program.split_outputs` separates them), or with ``keep_all``
    every tensor as int8 NHWC (only sensible for small batches).
    """
    if keep_all:
        return _run_batch(program, images, keep_all=True)  # type: ignore[return-value]
    outputs = []
    for start in range(0, len(images), batch_size):
        outputs.append(_run_batch(program, images[start:start + batch_size], keep_all=False))
        if progress is not None:
            progress(min(batch_size, len(images) - start))
    if not outputs:
        return np.zeros((0, program.output_size), dtype=np.int8)
    return np.concatenate(outputs)


def _run_batch(program: Program, images: np.ndarray, keep_all: bool):
    values: dict[str, np.ndarray] = {}
    last_read = last_reads(op.inputs for op in program.ops)
    outputs = {out.tensor for out in program.outputs}
    for index, op in enumerate(program.ops):
        values[op.output] = _run_op(op, [values[name] for name in op.inputs], program, images)
        if not keep_all:
            # set(): an op may read one tensor twice (a Concat of x with x)
            for name in set(op.inputs):
                if last_read[name] == index and name not in outputs:
                    del values[name]
    if keep_all:
        return values
    return output_rows(program, values)


def output_rows(program: Program, values: dict[str, np.ndarray]) -> np.ndarray:
    """The (N, output_size) rows run_program() returns, from every tensor (``keep_all``)."""
    n = len(next(iter(values.values())))
    return np.concatenate([values[out.tensor].reshape(n, -1) for out in program.outputs], axis=1)


def _run_op(op: Op, inputs: list[np.ndarray], program: Program, images: np.ndarray) -> np.ndarray:
    """One op, with input 0 in the shape its kernel reads (``op.in_shape``: a Reshape alias
    names bytes held in their source's shape) and its output in its tensor's shape. An op
    without inputs (the input conversion) reads run_nn()'s images."""
    if inputs:
        inputs = [inputs[0].reshape(len(inputs[0]), *op.in_shape)] + inputs[1:]
    else:
        inputs = [images]
    out = op.kernel.simulate(op, inputs)
    c, h, w = program.tensors[op.output].shape
    return out.reshape(len(out), h, w, c)


#: Multiplier step of the per-step checksum (Knuth's multiplicative hash constant).
CHECKSUM_STEP = 2654435761


def step_checksums(program: Program, images: np.ndarray) -> np.ndarray:
    """uint32 (N, steps): checksum of every op's output, as the self test computes it
    through NN_TRACE: ``sum(byte[i] * m[i]) mod 2**32``, ``m[i] = 1 + i * CHECKSUM_STEP``.

    Checking every step, not only the scores, catches a rounding difference in any layer
    even when a final softmax saturates the scores to 0/127.
    """
    sums = np.zeros((len(images), len(program.ops)), dtype=np.uint64)
    values: dict[str, np.ndarray] = {}
    for step, op in enumerate(program.ops):
        # Checksummed as soon as it is computed: an in-place op (a ReLU after its copy)
        # writes the same tensor name again.
        values[op.output] = _run_op(op, [values[name] for name in op.inputs], program, images)
        data = values[op.output].reshape(len(images), -1).view(np.uint8).astype(np.uint64)
        weights = (1 + np.arange(data.shape[1], dtype=np.uint64) * CHECKSUM_STEP) & 0xFFFFFFFF
        # Products stay below 2**40 and a row sum below 2**56: exact in uint64.
        sums[:, step] = (data * weights).sum(axis=1, dtype=np.uint64) & 0xFFFFFFFF
    return sums.astype(np.uint32)
