"""Power-of-two (Qm.n) quantization, as in Arm's CMSIS-NN CIFAR-10 guide.

Every tensor gets a number of fractional bits ``f`` (value = q7 * 2**-f), chosen from its
largest magnitude. Convolution and inner-product layers then get
``bias_lshift = f_in + f_w - f_b`` and ``out_rshift = f_in + f_w - f_out``; CMSIS-NN
takes both as unsigned shifts, so formats are lowered (never raised) until no shift
is negative. Layer kinds that do not rescale (``keeps_format``: ReLU, pooling, aliases,
concat) force their inputs and outputs into one format (unless the layer's kernel can rescale
after all, ``own_format``: an average pooling on nn_pool_q7, whose output may be finer): that is how a Concat's inputs
are reconciled (its copy loop cannot rescale, so all its inputs and its output are one
union-find group). A kind that rescales (an Eltwise) computes its own integer parameters
once every format is known (``quantize_params``). Nothing here names a layer type: each
kind's attributes (:mod:`cmsisgen.ops.base`) say what it needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from . import ir
from .calibration import calibrate
from .errors import CmsisgenError
from .ops import KINDS, kind_of
from .qformat import DEFAULT_FRAC, frac_bits_for, q_format, quantize_array
from .tensor_groups import TensorGroups

__all__ = ["calibrate", "quantize", "frac_bits_for", "quantize_array", "q_format", "LayerQuant", "Quantization"]

#: Largest out_rshift: 127 * 2**23 leaves the int32 accumulator 2x headroom over the
#: calibrated output range.
MAX_OUT_RSHIFT = 23
#: bias << bias_lshift must stay well inside int32 (127 << 23 < 2**30).
MAX_BIAS_LSHIFT = 23
#: Fractional bits a tensor tied to a fixed Q0.7 output may need at most before it saturates (values in (-2, 2)).
FIXED_OUTPUT_GROUP_MIN_FRAC = 6


@dataclass(frozen=True)
class LayerQuant:
    """Formats and shifts of one weighted layer; arrays stay in Caffe's layout."""

    in_frac: int
    out_frac: int
    weight_frac: int
    bias_frac: int
    bias_lshift: int
    out_rshift: int
    weights: np.ndarray
    bias: np.ndarray


@dataclass
class Quantization:
    tensor_frac: dict[str, int]
    layers: dict[str, LayerQuant]
    warnings: list[str] = field(default_factory=list)
    #: other layers' integer parameters (an Eltwise's shifts, a PReLU's slopes), from their kind
    params: dict[str, Any] = field(default_factory=dict)


def _format_keeping_types() -> str:
    """The layer types that tie their inputs' and outputs' formats, for messages."""
    return ", ".join(t for kind in KINDS if kind.keeps_format for t in kind.types)


def quantize(net: ir.Net, ranges: dict[str, float], adjust: Optional[dict[str, int]] = None,
             forced: Optional[dict[str, str]] = None) -> Quantization:
    """Choose every format and shift; see the module docstring for the rules. ``adjust``
    adds fractional bits to a tensor's format group before the rules apply (``--optimize``);
    ``forced`` (layer -> --kernel function) can keep a layer from having its own format."""
    own = {layer.name for layer in net.layers
           if kind_of(layer).keeps_format and kind_of(layer).own_format(net, layer, (forced or {}).get(layer.name))}
    while True:
        quant = _quantize(net, ranges, adjust or {}, own)
        too_little = {layer.name for layer in net.layers if layer.name in own
                      and _gain(layer, quant.tensor_frac) < kind_of(layer).own_format_min_gain(net, layer)}
        if not too_little:
            return quant
        own -= too_little


def _gain(layer: ir.Layer, tensor_frac: dict[str, int]) -> int:
    """Fractional bits an own format adds over the input's. It may only add (the kernel shifts
    left): one that came out coarser (lowered with the tensors it is tied to downstream), or
    finer by less than the kind's minimum, shares its input's after all."""
    return tensor_frac[layer.tops[0]] - tensor_frac[layer.bottoms[0]]


def _quantize(net: ir.Net, ranges: dict[str, float], adjust: dict[str, int], own: set[str]) -> Quantization:
    """:func:`quantize` with the ``keeps_format`` layers in ``own`` given their own formats."""
    groups = TensorGroups()
    tensors = list(net.input_shapes) + [t for layer in net.layers for t in layer.tops]
    for layer in net.layers:
        kind = kind_of(layer)
        if kind.keeps_format and layer.name not in own:
            for name in kind.format_bottoms(layer) + layer.tops:
                groups.union(name, layer.tops[0])
    group_frac: dict[str, int] = {}
    for name in tensors:
        root = groups.find(name)
        group_frac[root] = min(group_frac.get(root, 99), frac_bits_for(_relevant_range(net, name, ranges)))
    for name, delta in adjust.items():
        group_frac[groups.find(name)] += delta
    weighted = [layer for layer in net.layers if kind_of(layer).weighted]
    weight_frac = {layer.name: frac_bits_for(float(np.abs(layer.blobs[0]).max(initial=0.0))) for layer in weighted}
    bias_frac = {layer.name: _bias_frac_wanted(layer) for layer in weighted}
    _fix_output_formats(net, groups, group_frac, tensors, ranges)
    _lower_to_nonnegative_shifts(net, groups, group_frac, weight_frac, bias_frac)

    tensor_frac = {name: group_frac[groups.find(name)] for name in tensors}
    layers: dict[str, LayerQuant] = {}
    warnings: list[str] = []
    for layer in weighted:
        layers[layer.name], warning = _quantize_layer(layer, tensor_frac, weight_frac[layer.name],
                                                      bias_frac[layer.name])
        if warning:
            warnings.append(warning)
    params = {layer.name: value for layer in net.layers
              if (value := kind_of(layer).quantize_params(net, layer, tensor_frac)) is not None}
    return Quantization(tensor_frac=tensor_frac, layers=layers, warnings=warnings, params=params)


def _fix_output_formats(net: ir.Net, groups: TensorGroups, group_frac: dict[str, int], tensors: list[str],
                        ranges: dict[str, float]) -> None:
    """Kinds whose kernel writes one format (arm_softmax_q7, the table activations: Q0.7) get it
    whatever the calibrated range says; refuse when a tensor tied to that output's format
    (through Concat, pooling, ...) needs values beyond (-2, 2), which Q0.7 would saturate."""
    fixed = [layer for layer in net.layers if kind_of(layer).fixed_output_frac is not None]
    own = {layer.tops[0] for layer in fixed}
    for layer in fixed:
        kind = kind_of(layer)
        root = groups.find(layer.tops[0])
        for name in tensors:
            if (name not in own and groups.find(name) == root
                    and frac_bits_for(_relevant_range(net, name, ranges)) < FIXED_OUTPUT_GROUP_MIN_FRAC):
                raise CmsisgenError(kind.output_group_error(layer, name, ranges.get(name, 0.0),
                                                            _format_keeping_types()))
        group_frac[root] = kind.fixed_output_frac  # type: ignore[assignment]


def _lower_to_nonnegative_shifts(net: ir.Net, groups: TensorGroups, group_frac: dict[str, int],
                                 weight_frac: dict[str, int], bias_frac: dict[str, int]) -> None:
    """Lower output formats until every shift is non-negative: a weighted layer's output has
    at most its accumulator's fractional bits, another kind's at most what its
    ``output_frac_bound`` says. Formats only ever decrease, so this reaches a fixed point --
    unless a layer's output format is tied (through format-keeping layers) to its own
    input's and the bound on that cycle is below it: then every pass lowers it again, and
    after as many passes as layers that is an error."""
    frac_of = lambda tensor: group_frac[groups.find(tensor)]  # noqa: E731
    for passes in range(len(net.layers) + 3):
        changed = False
        for layer in net.layers:
            bound = _output_bound(layer, frac_of, weight_frac, bias_frac)
            root = groups.find(layer.tops[0])
            if bound is None or group_frac[root] <= bound:
                continue
            if passes > len(net.layers) + 1:
                raise CmsisgenError(_cycle_error(layer, weight_frac))
            group_frac[root] = bound
            changed = True
        if not changed:
            return


def _output_bound(layer: ir.Layer, frac_of: Callable[[str], int], weight_frac: dict[str, int],
                  bias_frac: dict[str, int]) -> Optional[int]:
    kind = kind_of(layer)
    if not kind.weighted:
        return kind.output_frac_bound(layer, frac_of, weight_frac, bias_frac)
    in_frac = frac_of(layer.bottoms[0])
    return in_frac + min(weight_frac[layer.name], bias_frac[layer.name] + MAX_BIAS_LSHIFT - in_frac)


def _cycle_error(layer: ir.Layer, weight_frac: dict[str, int]) -> str:
    message = kind_of(layer).bound_cycle_error(layer, _format_keeping_types())
    if layer.name in weight_frac:
        message += f" and its weights need {q_format(weight_frac[layer.name])}"
    return message


def _relevant_range(net: ir.Net, name: str, ranges: dict[str, float]) -> float:
    """The magnitude a tensor's format must hold.

    A tensor read only by plain ReLUs needs its positive side only: a negative value that
    saturates at -128 still becomes 0 after the ReLU. Sizing such a tensor (a conv output,
    typically) by its most negative value would waste integer bits on values the network
    never uses. A tensor read only by functions that are flat beyond some input
    (``input_range_limit``: sigmoid, tanh) needs no more than that.
    """
    readers = net.consumers(name)
    limits = [kind_of(layer).input_range_limit for layer in readers]
    if readers and all(limit is not None for limit in limits):
        return min(ranges.get(name, 0.0), max(limits))  # type: ignore[type-var]
    if readers and all(kind_of(layer).clamps(layer) for layer in readers):
        return max((ranges.get(top, 0.0) for layer in readers for top in layer.tops), default=0.0)
    return ranges.get(name, 0.0)


def _bias(layer: ir.Layer) -> np.ndarray:
    return layer.blobs[1] if len(layer.blobs) > 1 else np.zeros(layer.blobs[0].shape[0], dtype=np.float32)


def _bias_frac_wanted(layer: ir.Layer) -> int:
    """Fractional bits the bias would like; an all-zero bias fits any format."""
    bias = _bias(layer)
    return frac_bits_for(float(np.abs(bias).max(initial=0.0))) if np.any(bias) else 99


def _quantize_layer(layer: ir.Layer, tensor_frac: dict[str, int], w_frac: int,
                    b_wanted: int) -> tuple[LayerQuant, str]:
    in_frac = tensor_frac[layer.bottoms[0]]
    out_frac = tensor_frac[layer.tops[0]]
    # The int32 accumulator holds the output scaled by 2**out_rshift and starts from
    # bias << bias_lshift: beyond MAX_OUT_RSHIFT / MAX_BIAS_LSHIFT it wraps instead of
    # saturating (and shifts of 32 or more are undefined in C). Tiny weights would ask
    # for that; give them fewer fractional bits (they round to almost nothing anyway).
    w_frac = min(w_frac, out_frac + MAX_OUT_RSHIFT - in_frac, b_wanted + MAX_BIAS_LSHIFT - in_frac)
    accumulator = in_frac + w_frac
    weights = layer.blobs[0]
    bias = _bias(layer)
    # Small biases (|b| < 1/128 is common) need more fractional bits than 7, up to the
    # accumulator's own resolution, or they round to zero.
    b_frac = min(b_wanted, accumulator)
    if not np.any(bias):
        b_frac = max(min(DEFAULT_FRAC, accumulator), accumulator - MAX_BIAS_LSHIFT)
    q_bias = quantize_array(bias, b_frac)
    warning = ""
    if np.any(bias) and not np.any(q_bias):
        warning = (f"layer '{layer.name}': every bias is below the accumulator resolution "
                   f"2^{-accumulator} and quantizes to zero")
    lq = LayerQuant(in_frac=in_frac, out_frac=out_frac, weight_frac=w_frac, bias_frac=b_frac,
                    bias_lshift=accumulator - b_frac, out_rshift=accumulator - out_frac,
                    weights=quantize_array(weights, w_frac), bias=q_bias)
    return lq, warning
