"""TFLite int8 quantization for the s8 backend: asymmetric activations, per-channel weights.

Every tensor gets a scale and a zero point (:class:`~cmsisgen.s8.quantization.TensorQuant`)
from its calibrated [min, max]. Kernels that do not rescale (pooling, aliases, a ReLU fused as
the activation range of the call before it) need their inputs and outputs at one
quantization, so, as in the q7 quantizer, those tensors form union-find groups whose range
is the union of their members'. A tensor whose negative values can never reach the output
(read only by ReLUs, or by max pooling/aliases whose outputs are) contributes its positive
side only: a ReLU fused into the call writes ``max(q, zero_point)``, so spending codes on
negatives would only lose resolution. Likewise a tensor read only by Sigmoids and TanHs
(directly or through max pooling, concatenation and aliases) needs no codes where the
function's output is already at its lowest or highest int8 code: its range stops there (as
the q7 quantizer limits a table activation's input format). Softmax writes scale 1/256, zero point -128 whatever
the range. An average pooling is the exception among the kernels that keep their input's
quantization: where its output's own range would gain enough bits (the mean of a wide tensor,
a global pool of large activations) it rescales into a scale of its own, its input's / 2^shift,
on the project's nn_avgpool_caffe_s8 (:func:`_activations`). Weighted layers get symmetric per-output-channel weights (a fully connected
layer one scale, since arm_fully_connected_s8 takes one multiplier), int32 biases at
``s_in * s_w`` and the multipliers/shifts TFLite would choose.

Nothing here names a layer type: :mod:`cmsisgen.s8.roles` says how each kind takes part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ir
from .errors import CmsisgenError
from .s8 import roles
from .s8.quantization import (INT8_MAX, INT8_MIN, TensorQuant, activation_quant, channel_multipliers, quantize_bias,
                              quantize_weights, weight_scales)
from .s8.own_kernels import avgpool_max_shift
from .tensor_groups import TensorGroups

SOFTMAX_OUTPUT = roles.SOFTMAX_OUTPUT


@dataclass(frozen=True)
class LayerQuantS8:
    """A weighted layer's integers: int8 weights with the output channel first, int32 bias."""

    weights: np.ndarray
    bias: np.ndarray
    weight_scales: np.ndarray
    mult: np.ndarray
    shift: np.ndarray


@dataclass
class QuantizationS8:
    tensors: dict[str, TensorQuant]
    layers: dict[str, LayerQuantS8]
    warnings: list[str] = field(default_factory=list)
    #: other layers' integer parameters (a softmax's mult/shift/diff_min, an own-scale average pooling's shift)
    params: dict[str, Any] = field(default_factory=dict)
    #: The Q formats of the q7 backend: 0 for every tensor (TensorInfo.frac; the q7 byte movers
    #: the s8 backend reuses read it, for a comment only).
    tensor_frac: dict[str, int] = field(default_factory=dict)


def _lowest_needed(net: ir.Net, name: str, ranges: dict[str, tuple[float, float]]) -> float:
    """The most negative value of ``name`` that can change the network's output (see the module)."""
    readers = net.consumers(name)
    low = ranges.get(name, (0.0, 0.0))[0]
    if not readers or name in net.outputs:
        return low
    if all(roles.clamps_s8(layer) for layer in readers):
        return 0.0
    if all(roles.commutes_with_relu(layer) for layer in readers):
        return max(low, min(_lowest_needed(net, top, ranges) for layer in readers for top in layer.tops))
    return low


def _saturation_bounds(net: ir.Net, name: str, ranges: dict[str, tuple[float, float]],
                       quant: dict[str, TensorQuant]) -> tuple[float, float]:
    """The part of ``name``'s calibrated range whose values can change the output through the
    Sigmoids/TanHs reading it (see the module), widened by one step of the narrowed range so
    that its end codes still map to the function's end codes; the whole range otherwise."""
    lo, hi = ranges.get(name, (0.0, 0.0))
    readers = net.consumers(name)
    if not readers or name in net.outputs:
        return lo, hi
    spans = []
    for layer in readers:
        saturating = roles.saturating_inverse(layer)
        if saturating is not None:
            spans.append(_unsaturated(*saturating, quant[layer.tops[0]]))
        elif roles.commutes_with_relu(layer):
            spans += [_saturation_bounds(net, top, ranges, quant) for top in layer.tops]
        else:
            return lo, hi
    low, high = max(lo, min(s[0] for s in spans)), min(hi, max(s[1] for s in spans))
    step = (high - low) / (INT8_MAX - INT8_MIN) if high > low else 0.0
    return (max(lo, low - step) if low > lo else lo), (min(hi, high + step) if high < hi else hi)


def _unsaturated(inverse, low: float, high: float, out: TensorQuant) -> tuple[float, float]:
    """The inputs between which the function's output changes code: beyond, it rounds to the
    code its limit ``low`` (``high``) rounds to, however far the input goes."""
    first, last = (int(out.quantize(np.array([limit]))[0]) for limit in (low, high))
    return (inverse(float(out.dequantize(first + 0.5))) if first < INT8_MAX else -math.inf,
            inverse(float(out.dequantize(last - 0.5))) if last > INT8_MIN else math.inf)


def quantize_s8(net: ir.Net, ranges: dict[str, tuple[float, float]]) -> QuantizationS8:
    """Every tensor's scale and zero point and every weighted layer's integers."""
    tensors = list(net.input_shapes) + [t for layer in net.layers for t in layer.tops]
    quant, pool_shifts = _activations(net, ranges, tensors)
    layers = {layer.name: _weighted(layer, quant[layer.bottoms[0]], quant[layer.tops[0]],
                                    roles.per_tensor_weights(layer))
              for layer in net.layers if roles.weighted_s8(layer)}
    params = {layer.name: value for layer in net.layers if (value := _params(layer, quant)) is not None}
    params.update(pool_shifts)
    # tensor_frac: 0 for every tensor, as the q7 byte movers the s8 backend reuses read one
    return QuantizationS8(tensors=quant, layers=layers, params=params, tensor_frac=dict.fromkeys(quant, 0))


def _activations(net: ir.Net, ranges: dict[str, tuple[float, float]],
                 tensors: list[str]) -> tuple[dict[str, TensorQuant], dict[str, int]]:
    """The tensors' quantizations, and the average poolings given their own output scale (the
    input's / 2^shift, see the module) with their shifts. Every pool is tried on its own first;
    those that cannot keep one go back into their input's group and the rest are tried again,
    until every pool left holds one (the set only shrinks, so this ends)."""
    pools = [layer for layer in net.layers if roles.average_pooling(layer)]
    own = {layer.name for layer in pools}
    while True:
        quant, bounds, groups = _grouped_quant(net, ranges, tensors, own)
        shifts = _finer_outputs([layer for layer in pools if layer.name in own], quant, bounds, groups, net)
        if set(shifts) == own:
            return quant, shifts
        own = set(shifts)


def _finer_outputs(pools: list[ir.Layer], quant: dict[str, TensorQuant], bounds: dict[str, tuple[float, float]],
                   groups: TensorGroups, net: ir.Net) -> dict[str, int]:
    """Give each pool, in network order (a pool reading another's output sees its final scale),
    its output group at the input's scale / 2^shift, in ``quant``; the pools that keep one, with
    their shifts. A pool drops out when it gains too few bits, when an earlier pool already set
    its output group (one group has one scale, and two inputs' scales seldom differ by a power
    of two), or when a later pool changed its input's scale after it was set."""
    kept: list[tuple[ir.Layer, int]] = []
    claimed: set[str] = set()
    for layer in pools:
        root = groups.find(layer.tops[0])
        shift = _pool_shift(net, layer, quant, groups)
        if root in claimed or shift < roles.own_scale_min_gain(net, layer):
            continue
        claimed.add(root)
        finer = activation_quant(*bounds[root], scale=quant[layer.bottoms[0]].scale / 2**shift)
        quant.update({t: finer for t in quant if groups.find(t) == root})
        kept.append((layer, shift))
    return {layer.name: shift for layer, shift in kept
            if quant[layer.bottoms[0]].scale / 2**shift == quant[layer.tops[0]].scale}


def _grouped_quant(net: ir.Net, ranges: dict[str, tuple[float, float]], tensors: list[str],
                   own: set[str]) -> tuple[dict[str, TensorQuant], dict[str, tuple[float, float]], TensorGroups]:
    """The quantizations with every layer in ``own`` rescaling, the final bounds of each group
    (by representative) and the groups."""
    groups = TensorGroups()
    for layer in net.layers:
        for name in ([] if layer.name in own else roles.shared_quant(layer)):
            groups.union(name, layer.tops[0])
    first, _ = _tensor_quant(net, groups, tensors, ranges, ranges)
    quant, bounds = _tensor_quant(net, groups, tensors, ranges,
                                  {name: _saturation_bounds(net, name, ranges, first) for name in tensors})
    return quant, bounds, groups


def _pool_shift(net: ir.Net, layer: ir.Layer, quant: dict[str, TensorQuant], groups: TensorGroups) -> int:
    """How many bits finer than its input's the pool's own output scale can be: the output
    group's calibrated step fits that many times into the input's (no more than the kernel's
    int32 sum takes; 0 for an output whose quantization is fixed or centred on zero)."""
    fixed = {groups.find(other.tops[0]) for other in net.layers if roles.fixed_output(other) is not None}
    if groups.find(layer.tops[0]) in fixed | _centred_roots(net, groups):
        return 0
    ratio = quant[layer.bottoms[0]].scale / quant[layer.tops[0]].scale
    p: ir.PoolParams = layer.params  # type: ignore[assignment]
    return min(max(int(math.floor(math.log2(ratio) + 1e-9)), 0), avgpool_max_shift(p.kernel_h, p.kernel_w))


def _tensor_quant(net: ir.Net, groups: TensorGroups, tensors: list[str], ranges: dict[str, tuple[float, float]],
                  spans: dict[str, tuple[float, float]]) -> tuple[dict[str, TensorQuant], dict[str, tuple[float, float]]]:
    """Each tensor's quantization from ``spans`` (its range, or the part of it that matters),
    and each group's bounds by representative."""
    bounds: dict[str, tuple[float, float]] = {}
    for name in tensors:
        root = groups.find(name)
        lo, hi = bounds.get(root, (0.0, 0.0))
        low, high = spans.get(name, (0.0, 0.0))
        bounds[root] = (min(lo, max(low, _lowest_needed(net, name, ranges))), max(hi, high))
    centred = _centred_roots(net, groups)
    group_quant = {root: _symmetric(lo, hi) if root in centred else activation_quant(lo, hi)
                   for root, (lo, hi) in bounds.items()}
    for layer in net.layers:
        if (fixed := roles.fixed_output(layer)) is not None:
            group_quant[groups.find(layer.tops[0])] = fixed
    return {name: group_quant[groups.find(name)] for name in tensors}, bounds


def _centred_roots(net: ir.Net, groups: TensorGroups) -> set[str]:
    """The groups a kernel needs centred on zero (zero point 0)."""
    return {groups.find(t) for layer in net.layers if roles.symmetric(layer) for t in layer.bottoms + layer.tops}


def _symmetric(lo: float, hi: float) -> TensorQuant:
    """Zero point 0, the larger magnitude onto 127 (for kernels that need raw values centred)."""
    peak = max(-lo, hi)
    return TensorQuant(scale=peak / 127 if peak > 0 else 1.0, zero_point=0)


def _params(layer: ir.Layer, quant: dict[str, TensorQuant]) -> Any:
    """A layer's other integer parameters; ranges that give none are an error naming the layer."""
    try:
        return roles.quantize_params(layer, quant)
    except ValueError as exc:
        raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): {exc}") from None


def _weighted(layer: ir.Layer, q_in: TensorQuant, q_out: TensorQuant, per_tensor: bool) -> LayerQuantS8:
    """Weights with the output channel first (an inner product's transposed matrix turned)."""
    weights = roles.weights_out_first(layer)
    rows = len(weights)
    bias = (np.asarray(layer.blobs[1], dtype=np.float64) if len(layer.blobs) > 1
            else np.zeros(rows, dtype=np.float64))
    if per_tensor:
        scales = np.full(rows, float(weight_scales(weights.reshape(1, -1))[0]))
    else:
        scales = weight_scales(weights.reshape(rows, -1))
    mult, shift = channel_multipliers(q_in.scale, scales, q_out.scale)
    return LayerQuantS8(weights=quantize_weights(weights, scales), bias=quantize_bias(bias, q_in.scale, scales),
                        weight_scales=scales, mult=mult, shift=shift)
