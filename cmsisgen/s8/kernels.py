"""Bit-exact numpy models of the CMSIS-NN v7.0.0 s8 kernels, as built for a Cortex-M7 (DSP path).

Each function writes what the library (or the project's portable copy,
firmware/cmsis_nn_s8_portable) writes for a batch of images, one call per image:
activations are int8 NHWC ``[N, H, W, C]``; convolution filters ``[C_out, kh, kw,
C_in / groups]``; depthwise filters ``[kh, kw, C_in * ch_mult]``; fully connected filters
``[rows, depth]``. Offsets are the negated zero points, as the library takes them.

Why the models can be this plain: the library's convolution, depthwise and fully connected
specialisations (1x1, 1xN, 3x3, im2col, SMLAD pairs) all form the same integer
``bias + sum((x + input_offset) * w)`` in a wrapping 32-bit accumulator (padding adds
nothing) before :func:`~cmsisgen.s8.arith.requantize`; the sums are formed exactly here
(float32 BLAS over blocks short enough to stay below 2**24, blocks summed in float64) and
wrapped to int32. Where the DSP build differs from
upstream's plain-C build it is noted and the DSP build is modelled (:func:`elementwise_add_s8`).
"""
from __future__ import annotations

import numpy as np

from . import fixedpoint as fx
from .arith import divide_by_power_of_two, requantize, wrap_int32
from .quantization import ADD_LEFT_SHIFT

_ACCUM_BITS = 12
#: Terms of (x + offset) * w (|.| <= 255 * 128) whose sum float32 holds exactly (2**24).
_FLOAT32_EXACT_TERMS = 2**24 // (255 * 128)
#: Elements of one im2col block (bounds the model's memory to about 64 MB).
_IM2COL_CHUNK_ELEMS = 1 << 24


def finish(acc, mult, shift, output_offset: int, act: tuple[int, int]) -> np.ndarray:
    """Requantize, add the output offset, clamp: the tail every rescaling kernel shares."""
    out = requantize(wrap_int32(acc), mult, shift) + int(output_offset)
    return np.clip(out, act[0], act[1]).astype(np.int8)


def _taps(x, kernel, stride, pad, dilation, out_hw):
    """Yield (ky, kx, view [N, oh, ow, C]) of the zero-padded, offset input for every tap."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, pad, dilation, out_hw
    need_h = max(h + ph, (oh - 1) * sh + (kh - 1) * dh + 1)
    need_w = max(w + pw, (ow - 1) * sw + (kw - 1) * dw + 1)
    padded = np.zeros((n, need_h, need_w, c), dtype=x.dtype)
    padded[:, ph:ph + h, pw:pw + w] = x
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, padded[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]


def _exact_matmul(patches: np.ndarray, w: np.ndarray) -> np.ndarray:
    """patches [..., K] @ w [K, C] of integers, exact: float32 BLAS over blocks of K whose sums
    float32 holds exactly, blocks summed in float64."""
    flat = patches.reshape(-1, patches.shape[-1])
    total = np.zeros((len(flat), w.shape[1]), dtype=np.float64)
    for i in range(0, w.shape[0], _FLOAT32_EXACT_TERMS):
        block = np.ascontiguousarray(flat[:, i:i + _FLOAT32_EXACT_TERMS])
        total += block @ np.ascontiguousarray(w[i:i + _FLOAT32_EXACT_TERMS])
    return total.reshape(patches.shape[:-1] + (w.shape[1],))


def conv_s8(x, w, bias, *, mult, shift, input_offset: int, output_offset: int, act=(-128, 127),
            stride=(1, 1), pad=(0, 0), dilation=(1, 1), out_hw) -> np.ndarray:
    """arm_convolve_wrapper_s8 (any path): grouped when w's last axis < C_in (groups = C_in // it)."""
    cout, kh, kw, cg = np.shape(w)
    x = (np.asarray(x, dtype=np.int16) + int(input_offset)).astype(np.float32)
    groups = x.shape[3] // cg
    per_group = cout // groups
    w = np.asarray(w, dtype=np.float32).reshape(groups, per_group, kh * kw * cg)
    acc = np.empty(x.shape[:1] + tuple(out_hw) + (cout,), dtype=np.float64)
    chunk = max(1, _IM2COL_CHUNK_ELEMS // max(1, out_hw[0] * out_hw[1] * kh * kw * cg))
    for b in range(0, len(x), chunk):
        views = [v for _, _, v in _taps(x[b:b + chunk], (kh, kw), stride, pad, dilation, out_hw)]
        for g in range(groups):
            patches = np.concatenate([v[..., g * cg:(g + 1) * cg] for v in views], axis=-1)
            acc[b:b + chunk, ..., g * per_group:(g + 1) * per_group] = _exact_matmul(patches, w[g].T)
    acc = acc.astype(np.int64) + (0 if bias is None else np.asarray(bias, dtype=np.int64))
    return finish(acc, np.asarray(mult, np.int64), np.asarray(shift, np.int64), output_offset, act)


def depthwise_conv_s8(x, w, bias, *, mult, shift, input_offset: int, output_offset: int, act=(-128, 127),
                      ch_mult: int = 1, stride=(1, 1), pad=(0, 0), dilation=(1, 1), out_hw) -> np.ndarray:
    """arm_depthwise_conv_wrapper_s8: output channel i * ch_mult + m reads input channel i."""
    x = np.repeat(np.asarray(x, dtype=np.int64) + int(input_offset), ch_mult, axis=3)
    w = np.asarray(w, dtype=np.int64)
    kh, kw, _ = w.shape
    acc = np.zeros(x.shape[:1] + tuple(out_hw) + (w.shape[2],), dtype=np.int64)
    for ky, kx, view in _taps(x, (kh, kw), stride, pad, dilation, out_hw):
        acc += view * w[ky, kx]
    acc = acc + (0 if bias is None else np.asarray(bias, dtype=np.int64))
    return finish(acc, np.asarray(mult, np.int64), np.asarray(shift, np.int64), output_offset, act)


def fully_connected_s8(x, w, bias, *, mult: int, shift: int, input_offset: int, output_offset: int,
                       filter_offset: int = 0, act=(-128, 127)) -> np.ndarray:
    """arm_fully_connected_s8: x [N, depth], w [rows, depth], one per-tensor multiplier."""
    xo = np.asarray(x, dtype=np.float64) + int(input_offset)
    wo = np.asarray(w, dtype=np.float64) + int(filter_offset)
    acc = (xo @ wo.T).astype(np.int64) + (0 if bias is None else np.asarray(bias, dtype=np.int64))
    return finish(acc, int(mult), int(shift), output_offset, act)


def vector_sum_s8(w, *, lhs_offset: int, rhs_offset: int = 0, bias=None) -> np.ndarray:
    """arm_vector_sum_s8: per row, bias + lhs_offset * (row sum + cols * rhs_offset), int32 wrap
    (the kernel sums MVE's arm_fully_connected_s8 reads from its context; DSP ignores them)."""
    w = np.asarray(w, dtype=np.int64)
    sums = w.sum(axis=1) + w.shape[1] * int(rhs_offset)
    start = np.zeros(len(w), np.int64) if bias is None else np.asarray(bias, np.int64)
    return wrap_int32(start + int(lhs_offset) * sums).astype(np.int32)


def _windows(size: int, kernel: int, stride: int, pad: int, out: int) -> list[tuple[int, int]]:
    """Each output position's [start, end) on one axis, clipped to the image (padding never counts)."""
    starts = [i * stride - pad for i in range(out)]
    return [(max(0, s), min(s + kernel, size)) for s in starts]


def pool_windows_nonempty(in_hw, kernel, stride, pad, out_hw) -> bool:
    """Whether every window overlaps the image (else arm_avgpool_s8 returns ARM_CMSIS_NN_ARG_ERROR)."""
    return all(a < b for axis in range(2)
               for a, b in _windows(in_hw[axis], kernel[axis], stride[axis], pad[axis], out_hw[axis]))


def _pool(x, kernel, stride, pad, out_hw, reduce, empty) -> np.ndarray:
    x = np.asarray(x)
    n, h, w, c = x.shape
    rows = _windows(h, kernel[0], stride[0], pad[0], out_hw[0])
    cols = _windows(w, kernel[1], stride[1], pad[1], out_hw[1])
    out = np.empty((n, len(rows), len(cols), c), dtype=np.int64)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            window = x[:, y0:y1, x0:x1].astype(np.int64)
            out[:, i, j] = reduce(window, (y1 - y0) * (x1 - x0)) if y1 > y0 and x1 > x0 else empty[:, i, j]
    return out


def max_pool_s8(x, *, kernel, stride, pad, out_hw, act=(-128, 127), prior=None) -> np.ndarray:
    """arm_max_pool_s8. A window wholly in the padding leaves the output's ``prior`` content (clamped)."""
    empty = np.zeros(np.shape(x)[:1] + tuple(out_hw) + np.shape(x)[3:], np.int64) if prior is None else prior
    out = _pool(x, kernel, stride, pad, out_hw, lambda win, _: win.max(axis=(1, 2)), np.asarray(empty, np.int64))
    return np.clip(out, act[0], act[1]).astype(np.int8)


def _rounded_mean(window: np.ndarray, count: int) -> np.ndarray:
    """(sum +/- count // 2) / count with C's truncating division: ties away from zero."""
    total = window.sum(axis=(1, 2))
    total = np.where(total > 0, total + count // 2, total - count // 2)
    return np.sign(total) * (np.abs(total) // count)


def avgpool_s8(x, *, kernel, stride, pad, out_hw, act=(-128, 127)) -> np.ndarray:
    """arm_avgpool_s8: mean over the window's pixels inside the image (same in DSP and plain C)."""
    if not pool_windows_nonempty(np.shape(x)[1:3], kernel, stride, pad, out_hw):
        raise ValueError("an average-pooling window lies wholly in the padding: arm_avgpool_s8 returns "
                         "ARM_CMSIS_NN_ARG_ERROR")
    out = _pool(x, kernel, stride, pad, out_hw, _rounded_mean, None)
    return np.clip(out, act[0], act[1]).astype(np.int8)


def softmax_s8(x, *, mult: int, shift: int, diff_min: int) -> np.ndarray:
    """arm_softmax_s8 over the last axis: output scale 1/256, zero point -128.

    ``mult``, ``shift`` and ``diff_min`` come from :func:`cmsisgen.s8.quantization.softmax_params`.
    Rows must be shorter than 512 (the library's final shift would exceed 31 bits otherwise).
    """
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    used = diff >= int(diff_min)
    scaled = wrap_int32(diff * (1 << int(shift)))
    exps = fx.exp_on_negative_values(fx.saturating_doubling_high_mult(scaled, int(mult)))
    total = wrap_int32(np.where(used, divide_by_power_of_two(exps, _ACCUM_BITS), 0).sum(axis=-1, keepdims=True))
    headroom = fx.count_leading_zeros(total)
    normalised = np.where(total > 0, (total << headroom) & 0xFFFFFFFF, 0)
    scale = fx.one_over_one_plus_x(wrap_int32(normalised - 2**31))
    bits_over_unit = _ACCUM_BITS - headroom + 23
    out = divide_by_power_of_two(fx.saturating_doubling_high_mult(scale, exps), bits_over_unit) - 128
    return np.where(used, np.clip(out, -128, 127), -128).astype(np.int8)


def _lane_values(x, offset: int, left_shift: int, dsp: bool) -> np.ndarray:
    """One addend shifted left as the DSP build forms it: 16-bit lanes read zero-extended,
    except the last len % 4 elements of each call (plain C, sign-extended)."""
    v = np.asarray(x, dtype=np.int64) + int(offset)
    flat = v.reshape(len(v), -1)
    in_lanes = np.arange(flat.shape[1]) < (flat.shape[1] // 4 * 4 if dsp else 0)
    lanes = np.where(in_lanes, flat & 0xFFFF, flat)
    return wrap_int32(lanes << int(left_shift)).reshape(v.shape)


def elementwise_add_s8(a, b, *, input_1: tuple[int, int, int], input_2: tuple[int, int, int],
                       output: tuple[int, int, int], left_shift: int = ADD_LEFT_SHIFT,
                       act=(-128, 127), dsp: bool = True) -> np.ndarray:
    """arm_elementwise_add_s8, one call per image (a[i], b[i] of equal size).

    ``input_1``, ``input_2`` and ``output`` are (offset, multiplier, shift). The DSP build
    differs from upstream's plain-C build when ``left_shift < 16`` and an offset input is
    negative (:func:`_lane_values`); with TFLite's 20 the two agree. ``dsp=False`` models
    the plain-C build (for comparing with upstream built on a host).
    """
    (off1, m1, s1), (off2, m2, s2), (off_out, m_out, s_out) = input_1, input_2, output
    total = wrap_int32(requantize(_lane_values(a, off1, left_shift, dsp), m1, s1)
                       + requantize(_lane_values(b, off2, left_shift, dsp), m2, s2))
    return finish(total, m_out, s_out, off_out, act)


def elementwise_mul_s8(a, b, *, input_1_offset: int, input_2_offset: int, output: tuple[int, int, int],
                       act=(-128, 127)) -> np.ndarray:
    """arm_elementwise_mul_s8: (a + off1) * (b + off2), requantized (same in DSP and plain C)."""
    product = (np.asarray(a, np.int64) + int(input_1_offset)) * (np.asarray(b, np.int64) + int(input_2_offset))
    off_out, m_out, s_out = output
    return finish(product, m_out, s_out, off_out, act)


def maximum_s8(a, b) -> np.ndarray:
    """arm_maximum_s8 (no requantization), numpy broadcasting of size-1 axes.

    Upstream v7.0.0 agrees for equal shapes, a scalar, and the broadcasts tested, but not
    when input 1 has w * c == 1 and h > 1 against a larger w * c (it reads past input 1).
    """
    return np.maximum(np.asarray(a, np.int8), np.asarray(b, np.int8))


def relu6_s8(x) -> np.ndarray:
    """arm_relu6_s8: clamp raw int8 values to [0, 6] (zero point 0 only)."""
    return np.clip(np.asarray(x, np.int8), 0, 6).astype(np.int8)
