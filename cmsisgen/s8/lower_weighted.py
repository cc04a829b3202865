"""The s8 calls of the weighted kinds: convolutions (grouped, depthwise, dilated), a standing
Scale as a 1x1 depthwise convolution, and the inner product, each with its per-channel
multipliers and the scratch its CMSIS-NN v7.0.0 call asks for on the planned core; and
Caffe's Deconvolution on the project's nn_deconv_s8 (CMSIS-NN's arm_transpose_conv_s8 has
no groups or dilation and places rows as Caffe does only when the kernel is at least the
stride and the padding a multiple of it)."""
from __future__ import annotations

import numpy as np

from .. import ir
from ..mapper import layout
from ..mapper.calls import Op
from ..ops.base import LoweringContext, stem
from ..ops.convolution_depthwise import resolved_depthwise
from . import calls, scratch
from .context import act_range, core, offsets, quant
from .cpu import has_mve, mve_1xn_fails, takes_1xn_path
from .kernel_sums import fc_kernel_sums


def depthwise(net: ir.Net, layer: ir.Layer) -> bool:
    """One group per input channel: arm_depthwise_conv_wrapper_s8 (channel multiplier out / in)."""
    c = net.shapes[layer.bottoms[0]][0]
    return layer.params.group == c > 1  # type: ignore[union-attr]


def convolution(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    lq = quant(ctx).layers[layer.name]
    c, h, w = ctx.shape(layer.bottoms[0])
    oc, oh, ow = ctx.shape(layer.tops[0])
    weights = layout.conv_weights_hwc(lq.weights)  # [oc, kh, kw, c / group]
    geometry = {"stride": (p.stride_h, p.stride_w), "pad": (p.pad_h, p.pad_w), "dilation": (p.dilation_h, p.dilation_w)}
    dims = ((1, h, w, c), (oc, p.kernel_h, p.kernel_w, c // p.group), (1, oh, ow, oc))
    params = dict(offsets(ctx, layer), act=act_range(ctx, layer.tops[0]), mult=lq.mult, shift=lq.shift,
                  weight_scales=lq.weight_scales, out_hw=(oh, ow), **geometry)
    common = dict(stem(layer), inputs=ctx.bottoms, in_shape=(h, w, c), bias=lq.bias, params=params,
                  weight_bytes=weights.size + 4 * (lq.bias.size + lq.mult.size + lq.shift.size),
                  macs=oh * ow * oc * (c // p.group) * p.kernel_h * p.kernel_w)
    if depthwise(ctx.net, layer):
        dw = np.ascontiguousarray(weights[:, :, :, 0].transpose(1, 2, 0))  # [kh, kw, oc]
        params["ch_mult"] = oc // c
        need = scratch.depthwise_conv_wrapper_s8(dims[0], (1, p.kernel_h, p.kernel_w, oc), dims[2], core=core(ctx),
                                                 **geometry)
        return Op(**common, kernel=calls.DEPTHWISE_S8, function="arm_depthwise_conv_wrapper_s8", weights=dw,
                  weight_data=dw.reshape(-1), scratch_bytes=need)
    if _mve_1xn_fails(ctx, (h, w, c), p, ow):
        return Op(**common, kernel=calls.CONV_S8_DIRECT, function="arm_convolve_s8", weights=weights,
                  weight_data=weights.reshape(-1), scratch_bytes=scratch.convolve_s8(dims[0], dims[1], core(ctx)))
    need = scratch.convolve_wrapper_s8(*dims, core=core(ctx), **geometry)
    if p.group > 1:  # the wrapper's size ignores groups on its 1x1 path, then runs arm_convolve_s8
        need = max(need, scratch.convolve_s8(dims[0], dims[1], core(ctx)))
    return Op(**common, kernel=calls.CONV_S8, function="arm_convolve_wrapper_s8", weights=weights,
              weight_data=weights.reshape(-1), scratch_bytes=need)


def _mve_1xn_fails(ctx: LoweringContext, in_shape: tuple[int, int, int], p: ir.ConvParams, out_w: int) -> bool:
    """On Helium the wrapper would run arm_convolve_1_x_n_s8, which fails for this padding
    (:func:`cmsisgen.s8.cpu.mve_1xn_fails`): the layer calls arm_convolve_s8 instead."""
    return (has_mve(ctx.cpu) and takes_1xn_path(in_shape, (p.kernel_h, p.kernel_w), (p.stride_h, p.stride_w),
                                                (p.pad_h, p.pad_w), (p.dilation_h, p.dilation_w), p.group > 1)
            and mve_1xn_fails(in_shape[1], p.kernel_w, p.stride_w, p.pad_w, out_w))


def convolution_depthwise(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """ConvolutionDepthwise as the Convolution with group equal to its channels it is."""
    return convolution(resolved_depthwise(layer, ctx.shape(layer.bottoms[0])[0]), ctx)


def scale(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """A standing (canonical, after folding) Scale: a 1x1 depthwise convolution, channel
    multiplier 1, whose weights are the factors and whose bias is the offset."""
    lq = quant(ctx).layers[layer.name]
    c, h, w = ctx.shape(layer.bottoms[0])
    weights = np.ascontiguousarray(lq.weights.reshape(1, 1, c))
    geometry = {"stride": (1, 1), "pad": (0, 0), "dilation": (1, 1)}
    params = dict(offsets(ctx, layer), act=act_range(ctx, layer.tops[0]), mult=lq.mult, shift=lq.shift,
                  weight_scales=lq.weight_scales, out_hw=(h, w), ch_mult=1, **geometry)
    need = scratch.depthwise_conv_wrapper_s8((1, h, w, c), (1, 1, 1, c), (1, h, w, c), core=core(ctx), **geometry)
    return Op(**stem(layer), kernel=calls.DEPTHWISE_S8, function="arm_depthwise_conv_wrapper_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), weights=weights, bias=lq.bias, weight_data=weights.reshape(-1),
              weight_bytes=weights.size + 4 * (lq.bias.size + lq.mult.size + lq.shift.size), scratch_bytes=need,
              macs=c * h * w, params=params)


def inner_product(layer: ir.Layer, ctx: LoweringContext) -> Op:
    lq = quant(ctx).layers[layer.name]
    matrix = lq.weights
    c, h, w = ctx.shape(layer.bottoms[0])
    source = ctx.held or ((c, h, w) if h * w > 1 else None)
    if source is not None:
        matrix = layout.fc_columns_chw_to_hwc(matrix, *source)
    depth, rows = c * h * w, matrix.shape[0]
    params = dict(offsets(ctx, layer), act=act_range(ctx, layer.tops[0]), mult=int(lq.mult[0]),
                  shift=int(lq.shift[0]), weight_scales=lq.weight_scales)
    # On Helium the library reads each row's kernel sum from ctx.buf: computed here, kept in flash.
    sums = fc_kernel_sums(matrix, lq.bias, params["input_offset"]) if has_mve(ctx.cpu) else None
    if sums is not None:
        params["kernel_sums"] = sums
    return Op(**stem(layer), kernel=calls.FC_S8, function="arm_fully_connected_s8", inputs=ctx.bottoms,
              in_shape=(1, 1, depth), args={"depth": depth, "rows": rows}, weights=matrix, bias=lq.bias,
              weight_data=matrix.reshape(-1), weight_bytes=matrix.size + 4 * lq.bias.size * (1 if sums is None else 2),
              scratch_bytes=0 if sums is not None else scratch.fully_connected_s8((depth, 1, 1, rows), core(ctx)),
              macs=depth * rows, params=params)


def deconvolution(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """nn_deconv_s8: any kernel, stride, padding, dilation and group, with the convolutions'
    int32 bias and per-channel multipliers; no scratch."""
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    lq = quant(ctx).layers[layer.name]
    c, h, w = ctx.shape(layer.bottoms[0])
    oc, oh, ow = ctx.shape(layer.tops[0])
    params = dict(offsets(ctx, layer), act=act_range(ctx, layer.tops[0]), mult=lq.mult, shift=lq.shift,
                  weight_scales=lq.weight_scales, out_hw=(oh, ow), stride=(p.stride_h, p.stride_w),
                  pad=(p.pad_h, p.pad_w),
                  dilation=(p.dilation_h, p.dilation_w), groups=p.group)
    return Op(**stem(layer), kernel=calls.DECONV_S8, function="nn_deconv_s8", inputs=ctx.bottoms, in_shape=(h, w, c),
              weights=lq.weights, bias=lq.bias, weight_data=lq.weights.reshape(-1), params=params,
              weight_bytes=lq.weights.size + 4 * (lq.bias.size + lq.mult.size + lq.shift.size),
              macs=h * w * oc * (c // p.group) * p.kernel_h * p.kernel_w)
