"""Caffe Deconvolution (transposed convolution: FCN-style learned upsampling) onto the project's
own nn_deconv_q7 (:mod:`cmsisgen.ops.own_conv`).

Caffe computes it as the backward pass of a convolution: each input pixel, times its filter,
is added to the output window at ``(iy * stride - pad + ky * dilation, ...)``. The weight blob
is ``(C_in, C_out / group, kh, kw)``; it is emitted ``[C_out][kh][kw][C_in / group]`` so that
the kernel reads it as nn_conv_q7 does. The quantization is the convolutions' (weights and
bias formats, bias_lshift, out_rshift) and BatchNorm/Scale fold into it the same way.
CMSIS-NN's q7 API has no transposed convolution; lowering it onto arm_convolve_* would need the
input spread out with zeros in scratch (stride^2 times the input) for the same products.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, choose, fail, hwc, stem
from .convolution import ConvolutionParamKind, checked_input
from .own_conv import NN_DECONV, own_conv_args, positions_fit_uint32, reads
from .weighted import absorb_affine, weighted_formats

CHOICE = Choice("Deconvolution", (Candidate("nn_deconv_q7", (positions_fit_uint32,)),),
                note="the project's own kernel, with CMSIS-NN's q7 arithmetic; any kernel, stride, padding, "
                     "dilation and group")


def deconv_out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Caffe DeconvolutionLayer: stride * (in - 1) + dilation * (kernel - 1) + 1 - 2 * pad."""
    return stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad


def deconvolution(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Float32 NCHW transposed convolution: per kernel tap, the input times that tap's
    (C_in -> C_out) matrix is added at the tap's strided output positions inside the cropped
    output (Caffe's col2im), then the bias."""
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    n, c, h, w = x.shape
    oh = deconv_out(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
    ow = deconv_out(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)
    sh, sw, dh, dw = p.stride_h, p.stride_w, p.dilation_h, p.dilation_w
    weights = layer.blobs[0].astype(np.float32)
    in_g, out_g = c // p.group, p.num_output // p.group
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = np.zeros((n, oh, ow, p.num_output), dtype=np.float32)
    for ky in range(p.kernel_h):
        iy, oy = reads(h, ky * dh, sh, p.pad_h, oh)
        for kx in range(p.kernel_w):
            ix, ox = reads(w, kx * dw, sw, p.pad_w, ow)
            part = xh[:, iy[:, None], ix[None, :]]
            for g in range(p.group):
                out[:, oy[:, None], ox[None, :], g * out_g:(g + 1) * out_g] += \
                    part[..., g * in_g:(g + 1) * in_g] @ weights[g * in_g:(g + 1) * in_g, :, ky, kx]
    if p.bias_term:
        out = out + layer.blobs[1].astype(np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def kernel_weights(weights: np.ndarray, group: int) -> np.ndarray:
    """Caffe's ``(C_in, C_out/g, kh, kw)`` as ``[C_out][kh][kw][C_in/g]``, the groups in order."""
    c_in, out_g, kh, kw = weights.shape
    split = weights.reshape(group, c_in // group, out_g, kh, kw)
    return np.ascontiguousarray(split.transpose(0, 2, 3, 4, 1).reshape(group * out_g, kh, kw, c_in // group))


class Deconvolution(ConvolutionParamKind):
    types = ("Deconvolution",)
    choice = CHOICE

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        p, (c, h, w) = checked_input(net, layer)
        oh = deconv_out(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
        ow = deconv_out(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)
        if oh <= 0 or ow <= 0:
            raise fail(net, layer, f"padding {p.pad_h}x{p.pad_w} crops away all of the {oh + 2 * p.pad_h}x"
                                   f"{ow + 2 * p.pad_w} output (kernel {p.kernel_h}x{p.kernel_w}, stride "
                                   f"{p.stride_h}x{p.stride_w} on the {h}x{w} input)")
        return p.num_output, oh, ow

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        p: ir.ConvParams = layer.params  # type: ignore[assignment]
        c = net.shapes[layer.bottoms[0]][0]
        shapes: list[tuple[int, ...]] = [(c, p.num_output // p.group, p.kernel_h, p.kernel_w)]
        return shapes + [(p.num_output,)] if p.bias_term else shapes

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [deconvolution(inputs[0], layer)] * len(layer.tops)

    def absorb_affine(self, layer: ir.Layer, factor: np.ndarray, offset: np.ndarray) -> None:
        p: ir.ConvParams = layer.params  # type: ignore[assignment]
        c_in, out_g = layer.blobs[0].shape[:2]
        # output channel g * out_g + j is column j of the rows of group g
        per_row = np.repeat(factor.reshape(p.group, 1, out_g), c_in // p.group, axis=1)
        absorb_affine(layer, per_row.reshape(c_in, out_g, 1, 1), factor, offset)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        site = self.site(ctx.net, layer)
        function = choose(CHOICE, site, ctx.forced.get(layer.name))
        lq = ctx.quant.layers[layer.name]
        weights = kernel_weights(lq.weights, site.group)
        # without a bias term the quantizer's zero bias has the weight blob's first dimension (C_in)
        bias = lq.bias if layer.params.bias_term else np.zeros(site.out_ch, dtype=np.int8)  # type: ignore[union-attr]
        return Op(**stem(layer), kernel=NN_DECONV, function=function, inputs=ctx.bottoms,
                  in_shape=hwc(ctx.shape(layer.bottoms[0])), bias=bias, formats=weighted_formats(ctx, layer, lq),
                  args=own_conv_args(site), weights=weights, weight_data=weights.reshape(-1),
                  weight_bytes=weights.size + bias.size,
                  macs=site.in_h * site.in_w * site.out_ch * (site.in_ch // site.group) * site.kernel_h * site.kernel_w)
