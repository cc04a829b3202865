"""Bit-exact numpy models of the project's own q7 kernels.

CMSIS-NN has no q7 function for these layers, so cmsisgen brings small portable C kernels
(firmware/cmsisgen_kernels, copied into OUT beside nn.c); each function here computes
exactly what its C counterpart writes (tests/test_own_kernels.py checks them against each
other). Shared arithmetic: int32 accumulators, ``NN_ROUND(s) = (1 << s) >> 1`` added before an
arithmetic right shift (round half up), then saturation to int8.

Activations are int8 batches in NHWC order, like :mod:`cmsisgen.simulator.kernels`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .kernels import nn_round, saturate_q7


def _round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    return saturate_q7((acc + nn_round(shift)) >> shift)


def eltwise_sum_q7(inputs: Sequence[np.ndarray], coeffs: Sequence[int], lshifts: Sequence[int],
                   out_rshift: int) -> np.ndarray:
    """``nn_eltwise_sum_q7``: ``sat8((sum(c_i * (x_i << l_i)) + NN_ROUND(r)) >> r)``."""
    acc = np.zeros(inputs[0].shape, dtype=np.int64)
    for x, coeff, shift in zip(inputs, coeffs, lshifts):
        acc += int(coeff) * (x.astype(np.int64) << shift)
    return _round_shift(acc, out_rshift)


def eltwise_max_q7(inputs: Sequence[np.ndarray], lshifts: Sequence[int], out_rshift: int) -> np.ndarray:
    """``nn_eltwise_max_q7``: ``sat8((max(x_i << l_i) + NN_ROUND(r)) >> r)``."""
    acc = inputs[0].astype(np.int64) << lshifts[0]
    for x, shift in zip(inputs[1:], lshifts[1:]):
        acc = np.maximum(acc, x.astype(np.int64) << shift)
    return _round_shift(acc, out_rshift)


def eltwise_prod_q7(a: np.ndarray, b: np.ndarray, out_rshift: int) -> np.ndarray:
    """``nn_eltwise_prod_q7``: ``sat8((a * b + NN_ROUND(r)) >> r)``."""
    return _round_shift(a.astype(np.int64) * b.astype(np.int64), out_rshift)


def scale_q7(x: np.ndarray, mult: np.ndarray, bias: np.ndarray, bias_shift: int, out_shift: int) -> np.ndarray:
    """``nn_scale_q7`` on NHWC ``x``: per channel c,
    ``sat8(((bias[c] << bias_shift) + NN_ROUND(out_shift) + x * mult[c]) >> out_shift)``."""
    acc = (bias.astype(np.int64) << bias_shift) + nn_round(out_shift) + x.astype(np.int64) * mult.astype(np.int64)
    return saturate_q7(acc >> out_shift)


def prelu_q7(x: np.ndarray, slopes: np.ndarray, shift: int) -> np.ndarray:
    """``nn_prelu_q7`` on NHWC ``x``: ``x`` where ``x >= 0``, else
    ``sat8((x * slopes[c] + NN_ROUND(shift)) >> shift)``."""
    wide = x.astype(np.int64)
    negative = saturate_q7((wide * slopes.astype(np.int64) + nn_round(shift)) >> shift)
    return np.where(x >= 0, x, negative).astype(np.int8)


def global_pool_q7(x: np.ndarray, average: bool) -> np.ndarray:
    """``nn_global_pool_q7`` on NHWC ``x`` -> (N, 1, 1, C): the maximum of each channel, or its
    int32 sum divided by the pixel count rounded half away from zero (C: ``(sum +- count/2) / count``)."""
    n, c = len(x), x.shape[-1]
    flat = x.reshape(n, -1, c).astype(np.int64)
    if not average:
        return flat.max(axis=1).astype(np.int8).reshape(n, 1, 1, c)
    count = flat.shape[1]
    total = flat.sum(axis=1)
    rounded = np.where(total >= 0, total + count // 2, total - count // 2)
    quotient = np.sign(rounded) * (np.abs(rounded) // count)  # C division truncates towards zero
    return saturate_q7(quotient).reshape(n, 1, 1, c)
