"""The s8 backend's part of each layer kind: checks, quantization roles and lowering.

Kept beside the q7 kinds rather than inside them (:meth:`LayerKind.check_s8` and
:meth:`LayerKind.lower_s8` come here), keyed by kind class, so that the s8 backend grows
one kind at a time without touching the q7 modules. A kind not in :data:`_LOWERINGS` is
refused before calibration, naming the layer. The calls and their C are in
:mod:`cmsisgen.s8.calls`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper import layout
from ..mapper.calls import Op
from ..mapper.rules import UINT16_MAX
from ..ops import kind_of
from ..ops.base import LayerKind, LoweringContext, Shape, hwc, stem
from ..ops.argmax import ArgMax
from ..ops.concat import Concat
from ..ops.convolution import Convolution
from ..ops.convolution_depthwise import ConvolutionDepthwise, resolved_depthwise
from ..ops import copy_kernels
from ..ops.copy_kernels import ByteMover
from ..ops.eltwise import Eltwise
from ..ops.lookup_activation import LOOKUP_KINDS
from ..ops import lrn as lrn_op
from ..ops.lrn import LRN
from ..ops.network_input import InputConstants
from ..ops.prelu import PReLU
from ..ops.inner_product import InnerProduct
from ..ops.pooling import Pooling
from ..ops.relu import ReLU
from ..ops.scale import Scale
from ..ops.softmax import Softmax
from ..ops.table_activation import SIGMOID, TANH
from ..preprocess import INPUT_SHIFT, InputFixedPoint, Preprocessing
from . import calls, scratch
from .quantization import TensorQuant, add_params, mul_params, softmax_params

if TYPE_CHECKING:
    from ..quantizer_s8 import QuantizationS8

#: The core whose *_get_buffer_size answers the plan uses (Cortex-M4/M7/M33 with GCC).
CORE = "dsp"
#: arm_softmax_s8's rows must be shorter than this (its final shift would pass 31 bits).
SOFTMAX_MAX_ROW = 511


def _error(layer: ir.Layer, what: str) -> CmsisgenError:
    return CmsisgenError(f"layer '{layer.name}' ({layer.type}): {what}")


# --- the roles each kind plays in s8 quantization -------------------------------------------
def keeps_quant(layer: ir.Layer) -> bool:
    """Input(s) and output share one scale and zero point (no rescale in the call)."""
    kind = kind_of(layer)
    return (kind.alias or isinstance(kind, (Pooling, Concat, ByteMover)) or clamps_s8(layer)
            or _eltwise_max(layer))


def shared_quant(layer: ir.Layer) -> list[str]:
    """The tensors that must share one quantization because of ``layer`` (none: it rescales).
    A Crop's second input only gives the size: its values are never read."""
    if not keeps_quant(layer):
        return []
    return (layer.bottoms[:1] if isinstance(kind_of(layer), ByteMover) else layer.bottoms) + layer.tops


def _eltwise_max(layer: ir.Layer) -> bool:
    """arm_maximum_s8 does not rescale: its inputs and output share one quantization."""
    return isinstance(kind_of(layer), Eltwise) and layer.params.operation == "max"  # type: ignore[union-attr]


def clamps_s8(layer: ir.Layer) -> bool:
    """A plain ReLU: max(x, 0), at its input's quantization."""
    return isinstance(kind_of(layer), ReLU) and not _leaky(layer)


def commutes_with_relu(layer: ir.Layer) -> bool:
    """relu(f(x)) == f(relu(x)): max pooling, concatenation and aliases, through which a later
    ReLU makes negative inputs irrelevant."""
    kind = kind_of(layer)
    return (kind.alias or isinstance(kind, (Concat, ByteMover)) or _eltwise_max(layer)
            or isinstance(kind, Pooling) and layer.params.method == "max")  # type: ignore[union-attr]


#: Softmax's output quantization in the TFLite int8 spec (what arm_softmax_s8 writes).
SOFTMAX_OUTPUT = TensorQuant(scale=1.0 / 256, zero_point=-128)
#: An index (ArgMax) is its own value.
INDEX_OUTPUT = TensorQuant(scale=1.0, zero_point=0)


def symmetric(layer: ir.Layer) -> bool:
    """Inputs and output at zero point 0: the LRN kernel squares and scales raw int8 values."""
    return isinstance(kind_of(layer), LRN)


def fixed_output(layer: ir.Layer) -> Optional[TensorQuant]:
    """The quantization a kernel writes whatever the calibrated range (None: from the range)."""
    kind = kind_of(layer)
    return SOFTMAX_OUTPUT if isinstance(kind, Softmax) else INDEX_OUTPUT if isinstance(kind, ArgMax) else None


def weighted_s8(layer: ir.Layer) -> bool:
    return isinstance(kind_of(layer), (Convolution, InnerProduct, Scale))


def per_tensor_weights(layer: ir.Layer) -> bool:
    """arm_fully_connected_s8 takes one multiplier: one weight scale for the whole matrix."""
    return isinstance(kind_of(layer), InnerProduct)


def weights_out_first(layer: ir.Layer) -> np.ndarray:
    """The float weights with the output channel on axis 0 (a transposed inner product turned)."""
    weights = np.asarray(layer.blobs[0], dtype=np.float64)
    if isinstance(kind_of(layer), InnerProduct) and layer.params.transpose:  # type: ignore[union-attr]
        return weights.T
    if isinstance(kind_of(layer), Scale):  # a 1x1 depthwise convolution's [c, 1, 1, 1]
        return weights.reshape(-1, 1, 1, 1)
    return weights


# --- checks (before calibration) --------------------------------------------------------------
def _fusing_producer(net: ir.Net, layer: ir.Layer) -> Optional[ir.Layer]:
    """The call a ReLU is fused into: the convolution, inner product, pooling or eltwise that
    writes its input, when the ReLU is that tensor's only reader."""
    producer = net.producer(layer.bottoms[0])
    if producer is None or len(net.consumers(layer.bottoms[0])) != 1:
        return None
    return producer if isinstance(kind_of(producer), (Convolution, InnerProduct, Pooling, Eltwise, Scale)) else None


def fused_relu(net: ir.Net, tensor: str) -> bool:
    """Whether the call writing ``tensor`` clamps at its zero point (a ReLU fused into it)."""
    readers = net.consumers(tensor)
    return len(readers) == 1 and clamps_s8(readers[0])


def _leaky(layer: ir.Layer) -> bool:
    return layer.params.negative_slope != 0.0  # type: ignore[union-attr]


def _table_kind(kind: LayerKind) -> bool:
    """A function of each value alone (per channel at most), run as a table lookup (nn_lookup_s8)."""
    return kind in LOOKUP_KINDS or kind is SIGMOID or kind is TANH or isinstance(kind, PReLU)


def lookup_tables(layer: ir.Layer, q_in, q_out, channels: int) -> np.ndarray:
    """(channels or 1, 256) int8: the layer's float forward of every int8 input value, quantized
    to the output; one row when every channel has the same function."""
    values = q_in.dequantize(np.arange(-128, 128)).astype(np.float32)
    x = np.broadcast_to(values, (1, channels, 1, 256)).copy()
    y = kind_of(layer).forward(layer, [x])[0].reshape(channels, 256)
    tables = q_out.quantize(y)
    return tables[:1] if np.all(tables == tables[:1]) else tables


def depthwise(net: ir.Net, layer: ir.Layer) -> bool:
    """One group per input channel: arm_depthwise_conv_wrapper_s8 (channel multiplier out / in)."""
    c = net.shapes[layer.bottoms[0]][0]
    return layer.params.group == c > 1  # type: ignore[union-attr]


def _check_pooling(net: ir.Net, layer: ir.Layer) -> None:
    sizes = (*net.shapes[layer.bottoms[0]], *net.shapes[layer.tops[0]])
    if max(sizes) > UINT16_MAX:
        raise _error(layer, f"a size above {UINT16_MAX}: the pooling calls take them as uint16_t")


def _window_sizes(size: int, kernel: int, stride: int, pad: int, out: int) -> list[tuple[int, int]]:
    """(Caffe's divisor, arm_avgpool_s8's divisor) on one axis for every output position."""
    sizes = []
    for i in range(out):
        start = i * stride - pad
        caffe = min(start + kernel, size + pad) - start
        inside = min(start + kernel, size) - max(start, 0)
        sizes.append((caffe, inside))
    return sizes


def ave_divisor_matches_caffe(net: ir.Net, layer: ir.Layer) -> bool:
    """Every average-pooling window divides by the same count in Caffe and arm_avgpool_s8."""
    p: ir.PoolParams = layer.params  # type: ignore[assignment]
    _, h, w = net.shapes[layer.bottoms[0]]
    _, oh, ow = net.shapes[layer.tops[0]]
    rows = _window_sizes(h, p.kernel_h, p.stride_h, p.pad_h, oh)
    cols = _window_sizes(w, p.kernel_w, p.stride_w, p.pad_w, ow)
    return all(rc * cc == ri * ci and ri > 0 and ci > 0 for rc, ri in rows for cc, ci in cols)


def _check_softmax(net: ir.Net, layer: ir.Layer) -> None:
    c = net.shapes[layer.bottoms[0]][0]
    if c > SOFTMAX_MAX_ROW:
        raise _error(layer, f"{c} channels: arm_softmax_s8 takes rows of at most {SOFTMAX_MAX_ROW}")
    if net.consumers(layer.tops[0]):
        raise _error(layer, "the s8 backend supports a Softmax only as a network output (it writes scale 1/256)")


def _check_eltwise(net: ir.Net, layer: ir.Layer) -> None:
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    if p.operation != "max" and len(layer.bottoms) != 2:
        raise _error(layer, f"{p.operation.upper()} of {len(layer.bottoms)} inputs: the s8 backend runs SUM and PROD "
                            "of two inputs only (arm_elementwise_add_s8, arm_elementwise_mul_s8)")
    if any(c <= 0 for c in p.coeffs):
        raise _error(layer, f"coeff {', '.join(f'{c:g}' for c in p.coeffs)}: arm_elementwise_add_s8 takes "
                            "positive coefficients only (folded into its input multipliers)")


def quantize_params(layer: ir.Layer, tensors: dict) -> object:
    """A layer's integer parameters beyond weights once every tensor's quantization is known
    (None: none); a ValueError says why the ranges give none."""
    kind = kind_of(layer)
    if isinstance(kind, Softmax):
        return softmax_params(tensors[layer.bottoms[0]].scale)
    if not isinstance(kind, Eltwise) or _eltwise_max(layer):
        return None
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    scales = [tensors[b].scale for b in layer.bottoms]
    if p.operation == "prod":
        return mul_params(scales[0], scales[1], tensors[layer.tops[0]].scale)
    coeffs = p.coeffs or (1.0, 1.0)
    return add_params(coeffs[0] * scales[0], coeffs[1] * scales[1], tensors[layer.tops[0]].scale)


def check_s8(kind: LayerKind, net: ir.Net, layer: ir.Layer, forced: Optional[str]) -> None:
    """Refuse a layer the s8 backend cannot run yet, naming it, its type and the backend."""
    if forced is not None:
        raise _error(layer, f"kernel {forced}: --kernel is not supported by the s8 backend")
    if kind.alias:
        kind.check_q7(net, layer, "opt", None)  # the byte-order rules of Flatten/Reshape hold as in q7
        return
    entry = _entry(kind)
    if entry is None:
        raise _error(layer, "not supported by the s8 backend yet")
    entry[0](net, layer)


# --- lowering ---------------------------------------------------------------------------------
def _quant(ctx: LoweringContext) -> "QuantizationS8":
    return ctx.quant  # type: ignore[return-value]


def _act_range(ctx: LoweringContext, tensor: str) -> tuple[int, int]:
    """The activation range a call clamps to: from its output's zero point when a ReLU is fused."""
    zero = _quant(ctx).tensors[tensor].zero_point
    return (max(-128, zero), 127) if fused_relu(ctx.net, tensor) else (-128, 127)


def _offsets(ctx: LoweringContext, layer: ir.Layer) -> dict:
    tensors = _quant(ctx).tensors
    return {"input_offset": -tensors[layer.bottoms[0]].zero_point,
            "output_offset": tensors[layer.tops[0]].zero_point}


def _lower_convolution(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    lq = _quant(ctx).layers[layer.name]
    c, h, w = ctx.shape(layer.bottoms[0])
    oc, oh, ow = ctx.shape(layer.tops[0])
    weights = layout.conv_weights_hwc(lq.weights)  # [oc, kh, kw, c / group]
    geometry = {"stride": (p.stride_h, p.stride_w), "pad": (p.pad_h, p.pad_w), "dilation": (p.dilation_h, p.dilation_w)}
    dims = ((1, h, w, c), (oc, p.kernel_h, p.kernel_w, c // p.group), (1, oh, ow, oc))
    params = dict(_offsets(ctx, layer), act=_act_range(ctx, layer.tops[0]), mult=lq.mult, shift=lq.shift,
                  weight_scales=lq.weight_scales,
                  out_hw=(oh, ow), **geometry)
    common = dict(stem(layer), inputs=ctx.bottoms, in_shape=(h, w, c), bias=lq.bias, params=params,
                  weight_bytes=weights.size + 4 * (lq.bias.size + lq.mult.size + lq.shift.size),
                  macs=oh * ow * oc * (c // p.group) * p.kernel_h * p.kernel_w)
    if depthwise(ctx.net, layer):
        dw = np.ascontiguousarray(weights[:, :, :, 0].transpose(1, 2, 0))  # [kh, kw, oc]
        params["ch_mult"] = oc // c
        need = scratch.depthwise_conv_wrapper_s8(dims[0], (1, p.kernel_h, p.kernel_w, oc), dims[2], core=CORE,
                                                 **geometry)
        return Op(**common, kernel=calls.DEPTHWISE_S8, function="arm_depthwise_conv_wrapper_s8", weights=dw,
                  weight_data=dw.reshape(-1), scratch_bytes=need)
    need = scratch.convolve_wrapper_s8(*dims, core=CORE, **geometry)
    if p.group > 1:  # the wrapper's size ignores groups on its 1x1 path, then runs arm_convolve_s8
        need = max(need, scratch.convolve_s8(dims[0], dims[1], CORE))
    return Op(**common, kernel=calls.CONV_S8, function="arm_convolve_wrapper_s8", weights=weights,
              weight_data=weights.reshape(-1), scratch_bytes=need)


def _lower_convolution_depthwise(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """ConvolutionDepthwise as the Convolution with group equal to its channels it is."""
    return _lower_convolution(resolved_depthwise(layer, ctx.shape(layer.bottoms[0])[0]), ctx)


#: The q7 byte copies' comments name the Q format kept; on s8 it is the scale and zero point.
_Q_KEPT = "Q{{ 7 - f.out_frac }}.{{ f.out_frac }} kept"
_S8_MOVERS = {kernel.kind: dataclasses.replace(kernel, parameters=kernel.parameters.replace(
    _Q_KEPT, "the input's scale and zero point kept")) for kernel in (copy_kernels.STRIDED, copy_kernels.UPSAMPLE)}
assert all(_Q_KEPT not in kernel.parameters for kernel in _S8_MOVERS.values())


def _lower_byte_mover(layer: ir.Layer, ctx: LoweringContext):
    """Slice, Crop, ShuffleChannel, Permute, Upsample: the q7 backend's byte copies
    (nn_copy_q7.c), which move int8 bytes whatever they mean; input and output share one
    quantization (:func:`shared_quant`), so nothing is rescaled."""
    lowered = kind_of(layer).lower_q7(layer, ctx)
    for op in lowered if isinstance(lowered, list) else [lowered] if lowered is not None else []:
        op.kernel = _S8_MOVERS[op.kernel.kind]
    return lowered


def _lower_scale(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """A standing (canonical, after folding) Scale: a 1x1 depthwise convolution, channel
    multiplier 1, whose weights are the factors and whose bias is the offset."""
    lq = _quant(ctx).layers[layer.name]
    c, h, w = ctx.shape(layer.bottoms[0])
    weights = np.ascontiguousarray(lq.weights.reshape(1, 1, c))
    geometry = {"stride": (1, 1), "pad": (0, 0), "dilation": (1, 1)}
    params = dict(_offsets(ctx, layer), act=_act_range(ctx, layer.tops[0]), mult=lq.mult, shift=lq.shift,
                  weight_scales=lq.weight_scales,
                  out_hw=(h, w), ch_mult=1, **geometry)
    need = scratch.depthwise_conv_wrapper_s8((1, h, w, c), (1, 1, 1, c), (1, h, w, c), core=CORE, **geometry)
    return Op(**stem(layer), kernel=calls.DEPTHWISE_S8, function="arm_depthwise_conv_wrapper_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), weights=weights, bias=lq.bias, weight_data=weights.reshape(-1),
              weight_bytes=weights.size + 4 * (lq.bias.size + lq.mult.size + lq.shift.size), scratch_bytes=need,
              macs=c * h * w, params=params)


def _lower_inner_product(layer: ir.Layer, ctx: LoweringContext) -> Op:
    lq = _quant(ctx).layers[layer.name]
    matrix = lq.weights
    c, h, w = ctx.shape(layer.bottoms[0])
    source = ctx.held or ((c, h, w) if h * w > 1 else None)
    if source is not None:
        matrix = layout.fc_columns_chw_to_hwc(matrix, *source)
    depth, rows = c * h * w, matrix.shape[0]
    params = dict(_offsets(ctx, layer), act=_act_range(ctx, layer.tops[0]), mult=int(lq.mult[0]),
                  shift=int(lq.shift[0]), weight_scales=lq.weight_scales)
    return Op(**stem(layer), kernel=calls.FC_S8, function="arm_fully_connected_s8", inputs=ctx.bottoms,
              in_shape=(1, 1, depth), args={"depth": depth, "rows": rows}, weights=matrix, bias=lq.bias,
              weight_data=matrix.reshape(-1), weight_bytes=matrix.size + 4 * lq.bias.size,
              scratch_bytes=scratch.fully_connected_s8((depth, 1, 1, rows), CORE), macs=depth * rows, params=params)


def _lower_pooling(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.PoolParams = layer.params  # type: ignore[assignment]
    c, h, w = ctx.shape(layer.bottoms[0])
    _, oh, ow = ctx.shape(layer.tops[0])
    average = p.method == "ave"
    params = dict(act=_act_range(ctx, layer.tops[0]), kernel=(p.kernel_h, p.kernel_w), stride=(p.stride_h, p.stride_w),
                  pad=(p.pad_h, p.pad_w), out_hw=(oh, ow))
    common = dict(stem(layer), inputs=ctx.bottoms, in_shape=(h, w, c), args={"channels": c}, params=params,
                  macs=oh * ow * c * p.kernel_h * p.kernel_w)
    if not average:
        return Op(**common, kernel=calls.MAXPOOL_S8, function="arm_max_pool_s8")
    if not ave_divisor_matches_caffe(ctx.net, layer):
        return Op(**common, kernel=calls.AVGPOOL_CAFFE_S8, function="nn_avgpool_caffe_s8")
    return Op(**common, kernel=calls.AVGPOOL_S8, function="arm_avgpool_s8", scratch_bytes=scratch.avgpool_s8(ow, c, CORE))


def _lower_softmax(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    return Op(**stem(layer), kernel=calls.SOFTMAX_S8, function="arm_softmax_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), args={"rows": h * w, "row_size": c}, macs=h * w * c,
              params=_quant(ctx).params[layer.name])


def _lower_eltwise(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    if _eltwise_max(layer):
        return Op(**stem(layer), kernel=calls.MAX_S8, function="arm_maximum_s8", inputs=ctx.bottoms,
                  in_shape=(h, w, c), macs=c * h * w * (len(layer.bottoms) - 1))
    tensors = _quant(ctx).tensors
    offsets = [-tensors[b].zero_point for b in layer.bottoms]
    params = dict(rescale=_quant(ctx).params[layer.name], offsets=offsets, act=_act_range(ctx, layer.tops[0]),
                  output_offset=tensors[layer.tops[0]].zero_point)
    product = layer.params.operation == "prod"  # type: ignore[union-attr]
    return Op(**stem(layer), kernel=calls.MUL_S8 if product else calls.ADD_S8,
              function="arm_elementwise_mul_s8" if product else "arm_elementwise_add_s8", inputs=ctx.bottoms,
              in_shape=(h, w, c), args={"size": c * h * w}, macs=c * h * w, params=params)


def _check_concat(net: ir.Net, layer: ir.Layer) -> None:
    c, h, w = net.shapes[layer.tops[0]]
    if max(c, h, w) > UINT16_MAX:
        raise _error(layer, f"output {c}x{h}x{w}: arm_concatenation_s8_x takes uint16_t sizes (at most {UINT16_MAX})")


def _lower_concat(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.tops[0])
    channels = [ctx.shape(b)[0] for b in layer.bottoms]
    first = ctx.shape(layer.bottoms[0])
    return Op(**stem(layer), kernel=calls.CONCAT_S8, function="arm_concatenation_s8_x", inputs=ctx.bottoms,
              in_shape=hwc(first), args={"channels": c, "height": h, "width": w},
              params={"channels": channels, "offsets": [sum(channels[:i]) for i in range(len(channels))]})


def _lower_relu(layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
    """Fused into the call before it when it can be (its output then names that call's bytes),
    else arm_maximum_s8 of the input and the one-element tensor {zero point}: max(x, zp) is the
    ReLU at the input's quantization, which the output shares."""
    if _leaky(layer):
        return _lower_lookup(layer, ctx)
    if _fusing_producer(ctx.net, layer) is not None:
        return None
    c, h, w = ctx.shape(layer.bottoms[0])
    zero = _quant(ctx).tensors[layer.tops[0]].zero_point
    return Op(**stem(layer), kernel=calls.RELU_S8, function="arm_maximum_s8", inputs=ctx.bottoms[:1],
              in_shape=(h, w, c), args={"size": c * h * w}, weight_bytes=1, macs=c * h * w, params={"zero": zero})


def _lower_lookup(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    tensors = _quant(ctx).tensors
    tables = lookup_tables(layer, tensors[layer.bottoms[0]], tensors[layer.tops[0]], c)
    per_channel = len(tables) > 1
    return Op(**stem(layer), kernel=calls.LOOKUP_S8, function="nn_lookup_channels_s8" if per_channel else "nn_lookup_s8",
              inputs=ctx.bottoms[:1], in_shape=(h, w, c), args={"channels": c, "pixels": h * w},
              weight_data=tables.reshape(-1), weight_bytes=tables.size, macs=c * h * w, params={"tables": tables})


def _lower_argmax(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """nn_argmax_q7's arithmetic on int8_t: quantization keeps the order of values, so the
    index of the largest int8 value is Caffe's (ties aside)."""
    c, h, w = ctx.held or ctx.shape(layer.bottoms[0])
    whole = int(not layer.params.per_pixel or ctx.held is not None)  # type: ignore[union-attr]
    return Op(**stem(layer), kernel=calls.ARGMAX_S8, function="nn_argmax_s8", inputs=ctx.bottoms, in_shape=(h, w, c),
              args={"channels": c, "pixels": h * w, "whole": whole}, macs=c * h * w)


def lrn_table(layer: ir.Layer, q_in: TensorQuant, q_out: TensorQuant) -> lrn_op.LrnTable:
    """nn_lrn_q7's table (cmsisgen/ops/lrn.py) for zero-point-0 int8 at any scales: entry =
    (k + a * S * s_in^2)^-beta * s_in / s_out * 2^mul_frac, out = (x * entry) >> mul_frac."""
    p: ir.LRNParams = layer.params  # type: ignore[assignment]
    k, a = lrn_op.coefficients(p)
    size = int(lrn_op.table_index(np.array([lrn_op.window_size(p) * 128 * 128]))[0]) + 1
    base = k + a * lrn_op.index_middles(size) * q_in.scale ** 2
    if np.any(base <= 0):
        raise _error(layer, f"k + alpha * sum must stay positive (k = {p.k:g})")
    multiplier = base ** -p.beta * (q_in.scale / q_out.scale)
    mul_frac = min(lrn_op.MAX_OUT_RSHIFT, math.floor(math.log2(lrn_op.ENTRY_MAX / float(multiplier.max()))))
    if mul_frac < 0:
        raise _error(layer, "the output range is too narrow for the input's (the multiplier passes 2^31)")
    table = np.clip(np.floor(multiplier * 2.0 ** mul_frac + 0.5), 0, lrn_op.ENTRY_MAX).astype(np.int32)
    return lrn_op.LrnTable(table=table, mantissa_bits=lrn_op.MANTISSA_BITS, mul_frac=mul_frac, out_rshift=mul_frac)


def _lower_lrn(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.LRNParams = layer.params  # type: ignore[assignment]
    tensors = _quant(ctx).tensors
    table = lrn_table(layer, tensors[layer.bottoms[0]], tensors[layer.tops[0]])
    c, h, w = ctx.shape(layer.bottoms[0])
    args = {"height": h, "width": w, "channels": c, "local_size": p.local_size,
            "mantissa_bits": table.mantissa_bits, "table_size": table.table.size}
    return Op(**stem(layer), kernel=calls.LRN_S8, function=f"nn_lrn_{p.region}_q7", inputs=ctx.bottoms,
              in_shape=(h, w, c), args=args, weight_data=table.table, weight_bytes=4 * table.table.size,
              macs=c * h * w * (lrn_op.window_size(p) + 1),
              formats={"mul_frac": table.mul_frac, "out_rshift": table.out_rshift})


#: kind class -> (check, lower)
_LOWERINGS: dict[type, tuple[Callable[[ir.Net, ir.Layer], None], Callable[[ir.Layer, LoweringContext], Optional[Op]]]] = {
    Convolution: (lambda net, layer: None, _lower_convolution),
    InnerProduct: (lambda net, layer: None, _lower_inner_product),
    Pooling: (_check_pooling, _lower_pooling),
    ReLU: (lambda net, layer: None, _lower_relu),
    Softmax: (_check_softmax, _lower_softmax),
    Eltwise: (_check_eltwise, _lower_eltwise),
    Concat: (_check_concat, _lower_concat),
    Scale: (lambda net, layer: None, _lower_scale),
    ArgMax: (lambda net, layer: kind_of(layer).check_q7(net, layer, "opt", None), _lower_argmax),
    LRN: (lambda net, layer: kind_of(layer).check_q7(net, layer, "opt", None), _lower_lrn),
    ConvolutionDepthwise: (lambda net, layer: None, _lower_convolution_depthwise),
}


def _entry_of_subclass(kind: LayerKind):
    """Kinds that share one s8 lowering by their base class: the byte movers (same checks as q7)."""
    if isinstance(kind, ByteMover):
        return (lambda net, layer: kind.check_q7(net, layer, "opt", None), _lower_byte_mover)
    return None


def _entry(kind: LayerKind):
    entry = next((entry for cls, entry in _LOWERINGS.items() if type(kind) is cls), None)
    if entry is None and _table_kind(kind):
        return (lambda net, layer: None, _lower_lookup)
    return entry or _entry_of_subclass(kind)


def lower_s8(kind: LayerKind, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
    """The s8 call for ``layer`` (None: an alias or a fused ReLU, no code)."""
    if kind.alias:
        return None
    entry = _entry(kind)
    if entry is None:
        raise _error(layer, "not supported by the s8 backend yet")
    return entry[1](layer, ctx)


def input_fixed_point(pre: Preprocessing, scale: float, zero_point: int, shape: Shape) -> InputFixedPoint:
    """q = saturate((pixel * MUL - OFFSET + 2**(S-1)) >> S) with the zero point folded into OFFSET:
    ``MUL = round(scale_pre / s_in * 2**S)``, ``OFFSET = round(mean * scale_pre / s_in * 2**S) - zp * 2**S``."""
    c, h, w = shape
    factor = pre.scale / scale * 2.0 ** INPUT_SHIFT
    mean = np.broadcast_to(pre.mean, (c, 1, 1) if pre.mean.shape[1:] == (1, 1) else (c, h, w))
    offsets = np.round(mean.astype(np.float64) * factor).astype(np.int64) - (int(zero_point) << INPUT_SHIFT)
    per_pixel = offsets.shape[1:] != (1, 1)
    flat = offsets.transpose(1, 2, 0).reshape(-1) if per_pixel else offsets.reshape(-1)
    fp = InputFixedPoint(mul=int(round(factor)), offsets=flat, per_pixel=per_pixel, shift=INPUT_SHIFT)
    fp.check_range()
    return fp


def lower_input_s8(name: str, shape: Shape, quant: "QuantizationS8", pre: Preprocessing) -> Op:
    """The first op: run_nn()'s uint8 image -> the int8 network input at its scale and zero point."""
    c, h, w = shape
    tq = quant.tensors[name]
    constants = InputConstants(pre, 0, shape, fixed_point=input_fixed_point(pre, tq.scale, tq.zero_point, shape),
                               quant=tq)
    return Op(layer=name, layer_type="Input", kernel=calls.INPUT_S8, function="nn_input_s8", inputs=[], output=name,
              in_shape=hwc(shape), args={"size": h * w, "channels": c}, params=constants,
              weight_bytes=constants.form.flash_bytes, formats={"out_frac": 0})
