"""The DSP q7 pooling passes as whole-tensor operations, where their windows are plain.

``arm_maxpool_q7_HWC`` / ``arm_avepool_q7_HWC`` (DSP build) pool each row in place, then
the columns (:func:`cmsisgen.simulator.kernels.maxpool_q7_hwc`, which models every quirk
window by window). When every window the passes visit is the clipped window
``[i*stride - pad, i*stride - pad + kernel)`` (``pool_dsp_matches_plain_c_windows``), no
window reads a column the row pass already overwrote, so each pass is a reduction over
``kernel`` strided views: tap ``j`` of output ``i`` is input ``i*stride - pad + j``, and the
outputs whose tap ``j`` lies inside the image are a contiguous range. Maximum and sums do
not depend on the order of their terms; the averages divide each pass by its own clipped
count and truncate, as the C's integer division does (see :func:`_divide`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import numpy as np


def tap_ranges(size: int, kernel: int, stride: int, pad: int, out: int) -> Iterator[tuple[int, int, int]]:
    """(first output, end output, its input index) of every tap, in tap order, that lands
    inside the image for some output: output ``i`` reads input ``i*stride - pad + tap``, and
    the outputs for which that is inside ``[0, size)`` are ``first .. end - 1``."""
    for tap in range(kernel):
        first = max(0, -(-(pad - tap) // stride))  # smallest i with i*stride - pad + tap >= 0
        end = min(out, -(-(size + pad - tap) // stride))  # i*stride - pad + tap < size
        if first < end:
            yield first, end, first * stride - pad + tap


def _counts(size: int, kernel: int, stride: int, pad: int, out: int) -> np.ndarray:
    starts = np.arange(out) * stride - pad
    return np.minimum(starts + kernel, size) - np.maximum(starts, 0)


def reduce_taps(x: np.ndarray, size: int, axis: int, kernel: int, stride: int, pad: int,
                combine: Callable[..., Any], initial: Any, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """The ``size`` windows along ``axis`` reduced by ``combine(acc, tap, out=acc)`` over whole
    strided views, first tap first, from ``initial`` (``dtype``, else ``x``'s; the memory order
    ``x``'s): the first tap is copied rather than combined with ``initial`` (one pass less)."""
    shape = list(x.shape)
    shape[axis] = size
    acc = np.empty_like(x, dtype=dtype, shape=shape)
    ranges = list(tap_ranges(x.shape[axis], kernel, stride, pad, size))
    if not ranges:  # every window outside the image
        acc[...] = initial
    for index, (first, end, start) in enumerate(ranges):
        target = [slice(None)] * x.ndim
        source = [slice(None)] * x.ndim
        target[axis] = slice(first, end)
        source[axis] = slice(start, start + (end - first - 1) * stride + 1, stride)
        view, tap = acc[tuple(target)], x[tuple(source)]
        if index == 0:
            _fill_outside(acc, axis, first, end, initial)
            np.copyto(view, tap)
        else:
            combine(view, tap, out=view)
    return acc


def _fill_outside(acc: np.ndarray, axis: int, first: int, end: int, value) -> None:
    for part in (slice(0, first), slice(end, acc.shape[axis])):
        index = [slice(None)] * acc.ndim
        index[axis] = part
        acc[tuple(index)] = value


def _pool_axis(x: np.ndarray, axis: int, kernel: int, stride: int, pad: int, out: int, mode: str) -> np.ndarray:
    if mode == "max":  # -128 is below or equal to every value: it never changes a maximum
        return reduce_taps(x, out, axis, kernel, stride, pad, np.maximum, -128)
    # sums of at most 256 q7 values: exact in float32
    sums = reduce_taps(x, out, axis, kernel, stride, pad, np.add, 0, dtype=np.float32)
    counts = _counts(x.shape[axis], kernel, stride, pad, out).astype(np.float32)
    return _divide(sums, counts.reshape([-1 if a == axis else 1 for a in range(x.ndim)]))


def _divide(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """C's truncating ``sum / count`` for |sum| <= 2**15, 1 <= count <= 256, in float32:
    a quotient that is not an integer lies at least 1/count >= 2**-8 from one, and float32's
    rounding error on it is at most 2**15 * 2**-24 = 2**-9, so truncating the rounded quotient
    (the cast to int8 truncates towards zero) gives the exact integer quotient."""
    np.divide(sums, counts, out=sums)
    return sums.astype(np.int8)


def pool_separable(x: np.ndarray, kernel: int, pad: int, stride: int, out_dim: int, mode: str) -> np.ndarray:
    """The DSP pool's result for int8 NHWC ``x`` (square), windows plain (see module doc)."""
    rows = _pool_axis(x, 2, kernel, stride, pad, out_dim, mode)
    return _pool_axis(rows, 1, kernel, stride, pad, out_dim, mode)
