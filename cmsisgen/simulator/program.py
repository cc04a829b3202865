"""Run a mapped Program on a batch, bit-exactly as the generated C computes it.

This is the oracle behind the accuracy report, the known-answer vectors and the tests;
each op dispatches to the kernel model in :mod:`cmsisgen.simulator.kernels`.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..ir import last_reads
from ..mapper.program import Op, Program
from . import activations, generated_kernels, kernels


def run_program(program: Program, images: np.ndarray, keep_all: bool = False,
                batch_size: int = 1000, progress: Optional[Callable[[int], None]] = None) -> dict[str, np.ndarray] | np.ndarray:
    """``images``: uint8 (N, H, W, C) exactly as ``run_nn()`` receives them.

    Returns the output as int8 (N, K) (K = output size, HWC order), or with ``keep_all``
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
        return np.zeros((0, program.tensors[program.output].size), dtype=np.int8)
    return np.concatenate(outputs)


def _run_batch(program: Program, images: np.ndarray, keep_all: bool):
    values: dict[str, np.ndarray] = {}
    last_read = last_reads(op.inputs for op in program.ops)
    for index, op in enumerate(program.ops):
        values[op.output] = _run_op(op, [values[name] for name in op.inputs], program, images)
        if not keep_all:
            # set(): an op may read one tensor twice (a Concat of x with x)
            for name in set(op.inputs):
                if last_read[name] == index and name != program.output:
                    del values[name]
    if keep_all:
        return values
    out = values[program.output]
    return out.reshape(out.shape[0], -1)


def _run_op(op: Op, inputs: list[np.ndarray], program: Program, images: np.ndarray) -> np.ndarray:
    """One op, with its input in the shape its kernel reads and its output in its tensor's
    shape: a Reshape is an alias, so the bytes it names are held in their source's shape."""
    a = op.args
    if inputs:
        n = len(inputs[0])
        if "ch_im_in" in a:
            h, w = a.get("dim_im_in_y", a.get("dim_im_in")), a.get("dim_im_in_x", a.get("dim_im_in"))
            inputs = [inputs[0].reshape(n, h, w, a["ch_im_in"])] + inputs[1:]
        elif {"height", "width", "channels"} <= a.keys():
            inputs = [inputs[0].reshape(n, a["height"], a["width"], a["channels"])] + inputs[1:]
        elif "channels" in a:
            inputs = [inputs[0].reshape(n, 1, -1, a["channels"])] + inputs[1:]
    out = _run_kernel(op, inputs, program, images)
    c, h, w = program.tensors[op.output].shape
    return out.reshape(len(out), h, w, c)


def _run_kernel(op: Op, inputs: list[np.ndarray], program: Program, images: np.ndarray) -> np.ndarray:
    a = op.args
    if op.kind == "input":
        return op.input_fp.apply(images)  # type: ignore[union-attr]
    if op.kind == "conv":
        oc = program.tensors[op.output].shape
        return kernels.conv_hwc_q7(inputs[0], op.weights, op.bias, stride=(a["stride_y"], a["stride_x"]),
                                   pad=(a["padding_y"], a["padding_x"]), out_hw=(oc[1], oc[2]),
                                   bias_shift=a["bias_shift"], out_shift=a["out_shift"])
    if op.kind in ("depthwise", "group_conv"):
        oc = program.tensors[op.output].shape
        geometry = dict(stride=(a["stride_y"], a["stride_x"]), pad=(a["padding_y"], a["padding_x"]),
                        out_hw=(oc[1], oc[2]), bias_shift=a["bias_shift"], out_shift=a["out_shift"])
        if op.kind == "depthwise":
            return kernels.depthwise_conv_hwc_q7(inputs[0], op.weights, op.bias, **geometry)
        return kernels.group_conv_hwc_q7(inputs[0], op.weights, op.bias, groups=a["groups"], **geometry)
    if op.kind == "lrn":
        return kernels.lrn_q7(inputs[0], op.weight_data, local_size=a["local_size"],
                              region="across" if op.function == "nn_lrn_across_q7" else "within",
                              mantissa_bits=a["mantissa_bits"], out_shift=a["out_shift"])
    if op.kind in ("maxpool", "avepool"):
        kernel = kernels.maxpool_q7_hwc if op.kind == "maxpool" else kernels.avepool_q7_hwc
        return kernel(inputs[0], kernel=a["dim_kernel"], pad=a["padding"], stride=a["stride"],
                      out_dim=a["dim_im_out"])
    if op.kind == "relu":
        return kernels.relu_q7(inputs[0])
    if op.kind == "fc":
        n = inputs[0].shape[0]
        out = kernels.fully_connected_q7(inputs[0].reshape(n, -1), op.weights, op.bias,
                                         bias_shift=a["bias_shift"], out_shift=a["out_shift"])
        return out.reshape(n, 1, 1, -1)
    if op.kind == "softmax":
        n = inputs[0].shape[0]
        return kernels.softmax_q7(inputs[0].reshape(n, -1)).reshape(n, 1, 1, -1)
    if op.kind == "concat":
        return np.concatenate(inputs, axis=3)
    if op.kind == "global_pool":
        return generated_kernels.global_pool_q7(inputs[0], bool(a["average"]))
    if op.kind == "activation":
        return activations.activations_direct_q7(inputs[0], a["int_width"], "sigmoid" if a["type"] == 0 else "tanh")
    if op.kind == "prelu":
        return generated_kernels.prelu_q7(inputs[0], op.weights, a["slope_shift"])
    if op.kind == "scale":
        return generated_kernels.scale_q7(inputs[0], op.weights, op.bias, a["bias_shift"], a["out_shift"])
    if op.kind == "eltwise":
        lshifts = [a[f"lshift{i}"] for i in range(len(inputs))]
        if op.function == "nn_eltwise_sum_q7":
            coeffs = [a[f"coeff{i}"] for i in range(len(inputs))]
            return generated_kernels.eltwise_sum_q7(inputs, coeffs, lshifts, a["out_rshift"])
        if op.function == "nn_eltwise_max_q7":
            return generated_kernels.eltwise_max_q7(inputs, lshifts, a["out_rshift"])
        return generated_kernels.eltwise_prod_q7(inputs[0], inputs[1], a["out_rshift"])
    if op.kind == "copy":
        return inputs[0].copy()
    raise ValueError(f"no simulator kernel for op kind {op.kind!r}")


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
