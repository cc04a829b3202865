"""The s8 calls of the kinds without weights that CMSIS-NN v7.0.0 runs: pooling, softmax,
the elementwise add/mul/maximum, concatenation and a standing ReLU (its maximum with the zero
point); an average pooling goes to the project's nn_avgpool_caffe_s8 where arm_avgpool_s8's
divisor differs from Caffe's (padding) or where the quantizer gave it its own output scale, and
an Eltwise SUM of more than two inputs to the project's nn_eltwise_add_s8."""
from __future__ import annotations

from typing import Optional

from .. import ir
from ..mapper.calls import Op
from ..ops import kind_of
from ..ops.base import LoweringContext, hwc, stem
from ..ops.convolution import Convolution
from ..ops.deconvolution import Deconvolution
from ..ops.eltwise import Eltwise
from ..ops.inner_product import InnerProduct
from ..ops.pooling import Pooling
from ..ops.scale import Scale
from . import calls, scratch
from .context import act_range, core, offsets, quant
from .cpu import dsp_lanes
from .lower_own import lookup
from .quantization import sum_headroom
from .roles import ave_divisor_matches_caffe, eltwise_max, leaky


def pooling(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.PoolParams = layer.params  # type: ignore[assignment]
    c, h, w = ctx.shape(layer.bottoms[0])
    _, oh, ow = ctx.shape(layer.tops[0])
    average = p.method == "ave"
    params = dict(act=act_range(ctx, layer.tops[0]), kernel=(p.kernel_h, p.kernel_w), stride=(p.stride_h, p.stride_w),
                  pad=(p.pad_h, p.pad_w), out_hw=(oh, ow))
    common = dict(stem(layer), inputs=ctx.bottoms, in_shape=(h, w, c), args={"channels": c}, params=params,
                  macs=oh * ow * c * p.kernel_h * p.kernel_w)
    if not average:
        return Op(**common, kernel=calls.MAXPOOL_S8, function="arm_max_pool_s8")
    shift = quant(ctx).params.get(layer.name)  # an own output scale: the input's / 2^shift
    if shift is not None or not ave_divisor_matches_caffe(ctx.net, layer):
        # centred on the zero points even at the input's scale: Caffe's padding is a real 0, the
        # zero point's code, which the count includes but the window sum does not read
        params.update(offsets(ctx, layer), shift=shift or 0)
        return Op(**common, kernel=calls.AVGPOOL_CAFFE_S8, function="nn_avgpool_caffe_s8")
    return Op(**common, kernel=calls.AVGPOOL_S8, function="arm_avgpool_s8",
              scratch_bytes=scratch.avgpool_s8(ow, c, core(ctx)))


def softmax(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    return Op(**stem(layer), kernel=calls.SOFTMAX_S8, function="arm_softmax_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), args={"rows": h * w, "row_size": c}, macs=h * w * c,
              params=quant(ctx).params[layer.name])


def eltwise(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    if eltwise_max(layer):
        return Op(**stem(layer), kernel=calls.MAX_S8, function="arm_maximum_s8", inputs=ctx.bottoms,
                  in_shape=(h, w, c), macs=c * h * w * (len(layer.bottoms) - 1))
    tensors = quant(ctx).tensors
    offsets = [-tensors[b].zero_point for b in layer.bottoms]
    params = dict(rescale=quant(ctx).params[layer.name], offsets=offsets, act=act_range(ctx, layer.tops[0]),
                  output_offset=tensors[layer.tops[0]].zero_point, dsp_lanes=dsp_lanes(ctx.cpu))
    product = layer.params.operation == "prod"  # type: ignore[union-attr]
    if len(layer.bottoms) > 2:  # a SUM (checks.eltwise): the project's kernel, the library's arithmetic for N
        params.update(headroom=sum_headroom(len(layer.bottoms)))
        return Op(**stem(layer), kernel=calls.EWSUM_S8, function="nn_eltwise_add_s8", inputs=ctx.bottoms,
                  in_shape=(h, w, c), args={"size": c * h * w}, macs=c * h * w * (len(layer.bottoms) - 1),
                  params=params)
    return Op(**stem(layer), kernel=calls.MUL_S8 if product else calls.ADD_S8,
              function="arm_elementwise_mul_s8" if product else "arm_elementwise_add_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), args={"size": c * h * w}, macs=c * h * w, params=params)


def concat(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.tops[0])
    channels = [ctx.shape(b)[0] for b in layer.bottoms]
    first = ctx.shape(layer.bottoms[0])
    return Op(**stem(layer), kernel=calls.CONCAT_S8, function="arm_concatenation_s8_x", inputs=ctx.bottoms,
              in_shape=hwc(first), args={"channels": c, "height": h, "width": w},
              params={"channels": channels, "offsets": [sum(channels[:i]) for i in range(len(channels))]})


def _fusing_producer(net: ir.Net, layer: ir.Layer) -> Optional[ir.Layer]:
    """The call a ReLU is fused into: the convolution, inner product, pooling, eltwise, scale or
    deconvolution that writes its input, when the ReLU is that tensor's only reader."""
    producer = net.producer(layer.bottoms[0])
    if producer is None or len(net.consumers(layer.bottoms[0])) != 1:
        return None
    return producer if isinstance(kind_of(producer), (Convolution, InnerProduct, Pooling, Eltwise, Scale,
                                                                Deconvolution)) else None


def relu(layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
    """Fused into the call before it when it can be (its output then names that call's bytes),
    else arm_maximum_s8 of the input and the one-element tensor {zero point}: max(x, zp) is the
    ReLU at the input's quantization, which the output shares."""
    if leaky(layer):
        return lookup(layer, ctx)
    if _fusing_producer(ctx.net, layer) is not None:
        return None
    c, h, w = ctx.shape(layer.bottoms[0])
    zero = quant(ctx).tensors[layer.tops[0]].zero_point
    return Op(**stem(layer), kernel=calls.RELU_S8, function="arm_maximum_s8", inputs=ctx.bottoms[:1],
              in_shape=(h, w, c), args={"size": c * h * w}, weight_bytes=1, macs=c * h * w, params={"zero": zero})
