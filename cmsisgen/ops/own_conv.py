"""The project's own q7 convolutions (firmware/cmsisgen_kernels/nn_conv_q7.c): ``nn_conv_q7``
for the convolutions no CMSIS-NN q7 function runs (dilation, sizes beyond their uint16/int16
counters, groups the depthwise and per-group calls cannot take) and ``nn_deconv_q7`` for
Caffe's Deconvolution (transposed convolution).

Both keep CMSIS-NN's q7 arithmetic, so their quantization is the convolutions': the
accumulator starts at ``(bias << bias_lshift) + NN_ROUND(out_rshift)``, adds the int8
products in 32 bits (wrapping modulo 2**32 as the SMLAD accumulators do) and is shifted
right by ``out_rshift`` and saturated. Weights are ``[O][kh][kw][I/group]`` (the dense
convolutions' HWC layout, the groups one after the other). The models below are the
bit-exact references: the dot products are exact in float64 and ``_requantize`` wraps and
rounds as the C does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..simulator.kernels import _requantize
from .base import Kernel

Pair = tuple[int, int]
#: nn_conv_q7.c computes positions (output * stride + kernel offset, input + padding) in uint32_t.
POSITION_LIMIT = 1 << 31


def _reach(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return size + 2 * pad + (size - 1) * stride + dilation * (kernel - 1)


@rule("input {in_h}x{in_w}, output {out_h}x{out_w}, kernel {kernel_h}x{kernel_w}, stride {stride_h}x{stride_w}, "
      "padding {pad_h}x{pad_w}, dilation {dilation_h}x{dilation_w}")
def positions_fit_uint32(site: Site) -> bool:
    """nn_conv_q7 and nn_deconv_q7 compute image positions (position * stride + dilation * kernel offset, plus padding) in uint32_t: they must stay below 2^31."""
    return all(_reach(max(i, o), k, s, p, d) < POSITION_LIMIT for i, o, k, s, p, d in (
        (site.in_h, site.out_h, site.kernel_h, site.stride_h, site.pad_h, site.dilation_h),
        (site.in_w, site.out_w, site.kernel_w, site.stride_w, site.pad_w, site.dilation_w)))

#: parameters.h: the geometry the call puts in one nn_conv_shape_q7.
PARAMETERS = """\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, weights Q{{ 7 - f.weight_frac }}.{{ f.weight_frac }}, bias Q{{ 7 - f.bias_frac }}.{{ f.bias_frac }}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
/* nn_conv_shape_q7: input HxWxC, output HxWxC, kernel, stride, padding, dilation (each HxW), groups, shifts */
#define {{ prefix }}_SHAPE { {{ a.in_h }}, {{ a.in_w }}, {{ a.in_ch }}, {{ a.out_h }}, {{ a.out_w }}, {{ a.out_ch }}, \\
        {{ a.kernel_h }}, {{ a.kernel_w }}, {{ a.stride_h }}, {{ a.stride_w }}, {{ a.pad_h }}, {{ a.pad_w }}, \\
        {{ a.dilation_h }}, {{ a.dilation_w }}, {{ a.groups }}, {{ f.bias_lshift }}, {{ f.out_rshift }} }
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
#define {{ prefix }}_BIAS_SIZE {{ op.bias.size }}
"""

CALL = """\
    /* {{ op.layer }} */
    {
        static const nn_conv_shape_q7 shape = {{ prefix }}_SHAPE;

        {{ op.function }}({{ buf[op.inputs[0]] }}, &shape, {{ prefix }}_WT, {{ prefix }}_BIAS, {{ out }});
    }
"""

WEIGHTS = """\
/* {{ op.layer }}: {{ op.function }}, [out_ch][kernel_y][kernel_x][in_ch / groups] */
const q7_t {{ prefix }}_WT[{{ prefix }}_WT_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
const q7_t {{ prefix }}_BIAS[{{ prefix }}_BIAS_SIZE] NN_WEIGHT_SECTION = {
{{ op.bias | c_array }}
};
"""


def _taps(x: np.ndarray, w: np.ndarray, groups: int, ky: int, kx: int) -> np.ndarray:
    """One kernel tap of every group: ``x`` [..., C] float64 times ``w[:, ky, kx, :]`` -> [..., O]."""
    in_g, out_g = x.shape[-1] // groups, w.shape[0] // groups
    xg = x.reshape(*x.shape[:-1], groups, in_g)
    wg = w[:, ky, kx, :].astype(np.float64).reshape(groups, out_g, in_g)
    return np.einsum("...gi,goi->...go", xg, wg).reshape(*x.shape[:-1], groups * out_g)


def reads(out: int, tap: int, stride: int, pad: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, the output positions ``o`` whose input position ``o * stride - pad + tap``
    is inside ``[0, size)``, and those input positions. (For a transposed convolution, call it
    with the input and output sizes swapped: input ``i`` adds to output ``i * stride - pad + tap``.)
    Index arithmetic, never a padded copy: the padding may be far larger than the image."""
    pos = np.arange(out) * stride - pad + tap
    keep = (pos >= 0) & (pos < size)
    return np.nonzero(keep)[0], pos[keep]


def window(x: np.ndarray, out_hw: Pair, tap: Pair, stride: Pair, pad: Pair) -> np.ndarray:
    """NHWC ``x`` at rows ``oy * sh - ph + tap_y`` and columns alike, zero in the padding."""
    oy, iy = reads(out_hw[0], tap[0], stride[0], pad[0], x.shape[1])
    ox, ix = reads(out_hw[1], tap[1], stride[1], pad[1], x.shape[2])
    win = np.zeros((x.shape[0], *out_hw, x.shape[3]), dtype=x.dtype)
    win[:, oy[:, None], ox[None, :]] = x[:, iy[:, None], ix[None, :]]
    return win


def conv_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, groups: int, stride: Pair, pad: Pair,
            dilation: Pair, out_hw: Pair, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """``nn_conv_q7`` on int8 NHWC ``x`` with ``w`` int8[O, kh, kw, C/groups]: output (oy, ox)
    reads input row ``oy*sh - ph + ky*dh`` and column ``ox*sw - pw + kx*dw``, taps outside
    the image adding nothing; returns int8[N, oh, ow, O]."""
    _, kh, kw, in_g = w.shape
    xf = x.astype(np.float64)
    acc = np.zeros((x.shape[0], *out_hw, w.shape[0]), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            acc += _taps(window(xf, out_hw, (ky * dilation[0], kx * dilation[1]), stride, pad), w, groups, ky, kx)
    return _requantize(acc, bias, bias_lshift, out_rshift, kh * kw * in_g)


def deconv_sums(x: np.ndarray, w: np.ndarray, *, groups: int, stride: Pair, pad: Pair, dilation: Pair,
                out_hw: Pair) -> np.ndarray:
    """The exact float64 sums of a transposed convolution of NHWC ``x`` (any integers) with
    ``w`` int8[O, kh, kw, C/groups]: input pixel (iy, ix) adds ``x * w[o, ky, kx]`` to output
    ``(iy*sh - ph + ky*dh, ix*sw - pw + kx*dw)`` (Caffe's col2im). The q7 and s8 kernels gather
    the same products per output pixel, and integer sums do not depend on their order."""
    n, h, wd, _ = x.shape
    _, kh, kw, _ = w.shape
    acc = np.zeros((n, *out_hw, w.shape[0]), dtype=np.float64)
    xf = x.astype(np.float64)
    for ky in range(kh):
        iy, oy = reads(h, ky * dilation[0], stride[0], pad[0], out_hw[0])
        for kx in range(kw):
            ix, ox = reads(wd, kx * dilation[1], stride[1], pad[1], out_hw[1])
            # one tap sends distinct input pixels to distinct output pixels: no index repeats
            acc[:, oy[:, None], ox[None, :]] += _taps(xf[:, iy[:, None], ix[None, :]], w, groups, ky, kx)
    return acc


def deconv_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, groups: int, stride: Pair, pad: Pair,
              dilation: Pair, out_hw: Pair, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """``nn_deconv_q7``: :func:`deconv_sums` with CMSIS-NN's q7 bias, rounding and shift."""
    acc = deconv_sums(x, w, groups=groups, stride=stride, pad=pad, dilation=dilation, out_hw=out_hw)
    return _requantize(acc, bias, bias_lshift, out_rshift, int(np.prod(w.shape[1:])))


def _model(function):
    def simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
        a = op.args
        return function(inputs[0], op.weights, op.bias, groups=a["groups"], stride=(a["stride_h"], a["stride_w"]),
                        pad=(a["pad_h"], a["pad_w"]), dilation=(a["dilation_h"], a["dilation_w"]),
                        out_hw=(a["out_h"], a["out_w"]), bias_lshift=op.formats["bias_lshift"],
                        out_rshift=op.formats["out_rshift"])
    return simulate


NN_CONV = Kernel("own_conv", _model(conv_q7), CALL, PARAMETERS, WEIGHTS, source="nn_conv_q7.c")
NN_DECONV = Kernel("deconv", _model(deconv_q7), CALL, PARAMETERS, WEIGHTS, source="nn_conv_q7.c")


def own_conv_args(site: Any) -> dict[str, int]:
    """The nn_conv_shape_q7 fields of a convolution-like layer's Site."""
    return {"in_h": site.in_h, "in_w": site.in_w, "in_ch": site.in_ch, "out_h": site.out_h, "out_w": site.out_w,
            "out_ch": site.out_ch, "kernel_h": site.kernel_h, "kernel_w": site.kernel_w, "stride_h": site.stride_h,
            "stride_w": site.stride_w, "pad_h": site.pad_h, "pad_w": site.pad_w, "dilation_h": site.dilation_h,
            "dilation_w": site.dilation_w, "groups": site.group}
