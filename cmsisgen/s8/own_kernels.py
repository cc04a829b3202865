"""Bit-exact models of the project's own s8 kernels (firmware/cmsisgen_kernels/*_s8.c) that
are not table lookups: where CMSIS-NN v7.0.0 has no call with Caffe's semantics (or, for a SUM of
more than two inputs, no call at all)."""
from __future__ import annotations

import numpy as np

from ..ops.own_conv import deconv_sums
from .arith import requantize, wrap_int32
from .kernels import _rounded_mean  # arm_avgpool_s8's rounding, which nn_avgpool_caffe_s8 keeps
from .kernels import finish
from .quantization import ADD_LEFT_SHIFT


def avgpool_caffe_s8(x, *, kernel, stride, pad, out_hw, act=(-128, 127), input_offset: int = 0,
                     output_offset: int = 0, shift: int = 0) -> np.ndarray:
    """nn_avgpool_caffe_s8: the sum of the window's pixels inside the image, each plus
    ``input_offset``, times 2**``shift`` (an output scale 2**shift times finer than the input's),
    divided, rounded half away from zero, by Caffe's count (the window clipped to the padded
    image), plus ``output_offset``. Offsets and shift 0 are arm_avgpool_s8's arithmetic."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out_hw
    out = np.empty((n, oh, ow, c), dtype=np.int64)
    for oy in range(oh):
        y0 = oy * sh - ph
        y1 = min(y0 + kh, h + ph)
        for ox in range(ow):
            x0 = ox * sw - pw
            x1 = min(x0 + kw, w + pw)
            window = x[:, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)].astype(np.int64) + int(input_offset)
            out[:, oy, ox] = _rounded_mean(window * (1 << int(shift)), (y1 - y0) * (x1 - x0)) + int(output_offset)
    return np.clip(out, act[0], act[1]).astype(np.int8)


def avgpool_max_shift(kernel_h: int, kernel_w: int) -> int:
    """The largest ``shift`` nn_avgpool_caffe_s8 takes for a window: every window sum, at most
    255 * kernel_h * kernel_w in magnitude, times 2**shift, plus half the count, stays in int32."""
    peak = 255 * kernel_h * kernel_w
    shift = 0
    while (peak << (shift + 1)) + peak // 2 < 2**31:
        shift += 1
    return shift


def deconv_s8(x, w, bias, *, mult, shift, input_offset: int, output_offset: int, act=(-128, 127), groups: int,
              stride, pad, dilation, out_hw) -> np.ndarray:
    """nn_deconv_s8: Caffe's transposed convolution of ``x + input_offset`` (the products
    nn_deconv_q7 gathers), plus the int32 bias, wrapped to 32 bits and requantized per output
    channel as the library's convolutions are (default double rounding)."""
    shifted = np.asarray(x, dtype=np.int64) + int(input_offset)
    acc = deconv_sums(shifted, np.asarray(w), groups=groups, stride=stride, pad=pad, dilation=dilation, out_hw=out_hw)
    total = acc.astype(np.int64) + np.asarray(bias, dtype=np.int64)
    return finish(total, np.asarray(mult, np.int64), np.asarray(shift, np.int64), output_offset, act)


def eltwise_add_s8(inputs, *, in_params, out_params) -> np.ndarray:
    """nn_eltwise_add_s8: arm_elementwise_add_s8's arithmetic (plain-C build) for any number of
    inputs of one shape. ``in_params``: (offset, multiplier, shift) per input; ``out_params``:
    (offset, multiplier, shift, act_min, act_max). Per element, each ``(x_i + offset_i) << 20``
    (wrapped to 32 bits) is requantized by its input's multiplier, the terms summed in a
    wrapping int32, and the sum requantized onto the output."""
    total = np.int64(0)
    for x, (offset, mult, shift) in zip(inputs, in_params):
        shifted = wrap_int32((np.asarray(x, dtype=np.int64) + int(offset)) << ADD_LEFT_SHIFT)
        total = total + requantize(shifted, int(mult), int(shift))
    offset, mult, shift, act_min, act_max = out_params
    return finish(total, int(mult), int(shift), offset, (act_min, act_max))
