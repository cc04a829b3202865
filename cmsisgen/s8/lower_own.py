"""The s8 lowerings onto the project's own kernels, where CMSIS-NN v7.0.0 has no call with
Caffe's semantics: table lookups (element-wise activations, leaky ReLU, PReLU), LRN, ArgMax
and the byte copies (Slice, Crop, ShuffleChannel, Permute, Upsample)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..ops import copy_kernels, kind_of
from ..ops import lrn as lrn_op
from ..ops.base import LayerKind, LoweringContext, stem
from ..ops.lookup_activation import LOOKUP_KINDS
from ..ops.prelu import PReLU
from ..ops.table_activation import SIGMOID, TANH
from . import calls
from .checks import refusal
from .context import quant
from .quantization import TensorQuant


def table_kind(kind: LayerKind) -> bool:
    """A function of each value alone (per channel at most), run as a table lookup (nn_lookup_s8)."""
    return kind in LOOKUP_KINDS or kind is SIGMOID or kind is TANH or isinstance(kind, PReLU)


def lookup_tables(layer: ir.Layer, q_in: TensorQuant, q_out: TensorQuant, channels: int) -> np.ndarray:
    """(channels or 1, 256) int8: the layer's float forward of every int8 input value, quantized
    to the output; one row when every channel has the same function."""
    values = q_in.dequantize(np.arange(-128, 128)).astype(np.float32)
    x = np.broadcast_to(values, (1, channels, 1, 256)).copy()
    y = kind_of(layer).forward(layer, [x])[0].reshape(channels, 256)
    tables = q_out.quantize(y)
    return tables[:1] if np.all(tables == tables[:1]) else tables


def lookup(layer: ir.Layer, ctx: LoweringContext) -> Op:
    c, h, w = ctx.shape(layer.bottoms[0])
    tensors = quant(ctx).tensors
    tables = lookup_tables(layer, tensors[layer.bottoms[0]], tensors[layer.tops[0]], c)
    per_channel = len(tables) > 1
    return Op(**stem(layer), kernel=calls.LOOKUP_S8, function="nn_lookup_channels_s8" if per_channel else "nn_lookup_s8",
              inputs=ctx.bottoms[:1], in_shape=(h, w, c), args={"channels": c, "pixels": h * w},
              weight_data=tables.reshape(-1), weight_bytes=tables.size, macs=c * h * w, params={"tables": tables})


def argmax(layer: ir.Layer, ctx: LoweringContext) -> Op:
    """nn_argmax_q7's arithmetic on int8_t: quantization keeps the order of values, so the
    index of the largest int8 value is Caffe's (ties aside)."""
    c, h, w = ctx.held or ctx.shape(layer.bottoms[0])
    whole = int(not layer.params.per_pixel or ctx.held is not None)  # type: ignore[union-attr]
    return Op(**stem(layer), kernel=calls.ARGMAX_S8, function="nn_argmax_s8", inputs=ctx.bottoms, in_shape=(h, w, c),
              args={"channels": c, "pixels": h * w, "whole": whole}, macs=c * h * w)


#: The q7 byte copies' comments name the Q format kept; on s8 it is the scale and zero point.
_Q_KEPT = "Q{{ 7 - f.out_frac }}.{{ f.out_frac }} kept"
_S8_MOVERS = {kernel.kind: dataclasses.replace(kernel, parameters=kernel.parameters.replace(
    _Q_KEPT, "the input's scale and zero point kept")) for kernel in (copy_kernels.STRIDED, copy_kernels.UPSAMPLE)}
assert all(_Q_KEPT not in kernel.parameters for kernel in _S8_MOVERS.values())


def byte_mover(layer: ir.Layer, ctx: LoweringContext):
    """Slice, Crop, ShuffleChannel, Permute, Upsample: the q7 backend's byte copies
    (nn_copy_q7.c), which move int8 bytes whatever they mean; input and output share one
    quantization (:func:`cmsisgen.s8.roles.shared_quant`), so nothing is rescaled."""
    lowered = kind_of(layer).lower_q7(layer, ctx)
    for op in lowered if isinstance(lowered, list) else [lowered] if lowered is not None else []:
        op.kernel = _S8_MOVERS[op.kernel.kind]
    return lowered


def lrn_table(layer: ir.Layer, q_in: TensorQuant, q_out: TensorQuant) -> lrn_op.LrnTable:
    """nn_lrn_q7's table (cmsisgen/ops/lrn.py) for zero-point-0 int8 at any scales: entry =
    (k + a * S * s_in^2)^-beta * s_in / s_out * 2^mul_frac, out = (x * entry) >> mul_frac."""
    p: ir.LRNParams = layer.params  # type: ignore[assignment]
    k, a = lrn_op.coefficients(p)
    size = int(lrn_op.table_index(np.array([lrn_op.window_size(p) * 128 * 128]))[0]) + 1
    base = k + a * lrn_op.index_middles(size) * q_in.scale ** 2
    if np.any(base <= 0):
        raise refusal(layer, f"k + alpha * sum must stay positive (k = {p.k:g})")
    multiplier = base ** -p.beta * (q_in.scale / q_out.scale)
    mul_frac = min(lrn_op.MAX_OUT_RSHIFT, math.floor(math.log2(lrn_op.ENTRY_MAX / float(multiplier.max()))))
    if mul_frac < 0:
        raise refusal(layer, "the output range is too narrow for the input's (the multiplier passes 2^31)")
    table = np.clip(np.floor(multiplier * 2.0 ** mul_frac + 0.5), 0, lrn_op.ENTRY_MAX).astype(np.int32)
    return lrn_op.LrnTable(table=table, mantissa_bits=lrn_op.MANTISSA_BITS, mul_frac=mul_frac, out_rshift=mul_frac)


def lrn(layer: ir.Layer, ctx: LoweringContext) -> Op:
    p: ir.LRNParams = layer.params  # type: ignore[assignment]
    tensors = quant(ctx).tensors
    table = lrn_table(layer, tensors[layer.bottoms[0]], tensors[layer.tops[0]])
    c, h, w = ctx.shape(layer.bottoms[0])
    args = {"height": h, "width": w, "channels": c, "local_size": p.local_size,
            "mantissa_bits": table.mantissa_bits, "table_size": table.table.size}
    return Op(**stem(layer), kernel=calls.LRN_S8, function=f"nn_lrn_{p.region}_q7", inputs=ctx.bottoms,
              in_shape=(h, w, c), args=args, weight_data=table.table, weight_bytes=4 * table.table.size,
              macs=c * h * w * (lrn_op.window_size(p) + 1),
              formats={"mul_frac": table.mul_frac, "out_rshift": table.out_rshift})
