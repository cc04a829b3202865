"""Power-of-two (Qm.n) quantization, as in Arm's CMSIS-NN CIFAR-10 guide.

Every tensor gets a number of fractional bits ``f`` (value = q7 * 2**-f), chosen from its
largest magnitude. Convolution and inner-product layers then get
``bias_lshift = f_in + f_w - f_b`` and ``out_rshift = f_in + f_w - f_out``; CMSIS-NN
takes both as unsigned shifts, so formats are lowered (never raised) until no shift
is negative. Layers that do not rescale (ReLU, pooling, dropout, flatten, split,
concat) force their inputs and outputs into one format: that is how a Concat's inputs
are reconciled (its copy loop cannot rescale, so all its inputs and its output are one
union-find group). An Eltwise rescales instead: its output has its own format and each
input is shifted into a common accumulator format (:func:`quantize_eltwise`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from . import ir
from .errors import CmsisgenError

#: Fractional bits for a tensor that is zero everywhere (any format represents it).
DEFAULT_FRAC = 7
#: arm_softmax_q7's fixed output format, Q0.7.
SOFTMAX_FRAC = 7
#: Largest out_rshift: 127 * 2**23 leaves the int32 accumulator 2x headroom over the
#: calibrated output range.
MAX_OUT_RSHIFT = 23
#: bias << bias_lshift must stay well inside int32 (127 << 23 < 2**30).
MAX_BIAS_LSHIFT = 23
#: Layers whose output has exactly the values (or a subset) of their inputs.
FORMAT_PRESERVING = ("ReLU", "Pooling", "Dropout", "Flatten", "Split", "Concat", "PReLU", "Reshape")
#: arm_nn_activations_direct_q7 layers: input with at most 3 integer bits, output Q0.7.
TABLE_ACTIVATIONS = ("Sigmoid", "TanH")
TABLE_INPUT_MAX = 127.0 / 16  # Q3.4: larger inputs saturate where sigmoid/tanh are flat anyway
TABLE_OUTPUT_FRAC = 7
#: Layers with weights, whose shifts the quantizer derives.
WEIGHTED = ("Convolution", "InnerProduct", "Scale")


def frac_bits_for(max_abs: float) -> int:
    """Most fractional bits for which ``max_abs`` still fits in int8 without saturating."""
    if not np.isfinite(max_abs) or max_abs <= 0:
        return DEFAULT_FRAC
    return int(math.floor(math.log2(127.0 / max_abs)))


def quantize_array(values: np.ndarray, frac: int) -> np.ndarray:
    """Round half away from zero, then saturate to int8."""
    scaled = np.asarray(values, dtype=np.float64) * 2.0**frac
    return np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -128, 127).astype(np.int8)


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


@dataclass(frozen=True)
class EltwiseQuant:
    """Integer form of an Eltwise layer: where branches meet, inputs may be in different
    formats, so each is rescaled by a shift into one accumulator format.

    SUM: ``acc = sum(coeffs[i] * (x_i << lshifts[i]))``; MAX: ``acc = max(x_i << lshifts[i])``;
    PROD (two inputs): ``acc = x_0 * x_1``. Then ``out = sat8((acc + NN_ROUND(out_rshift))
    >> out_rshift)``. ``coeffs`` are the Caffe coefficients times ``2**coeff_frac``.
    """

    in_fracs: tuple[int, ...]
    out_frac: int
    lshifts: tuple[int, ...]
    coeffs: tuple[int, ...]
    coeff_frac: int
    out_rshift: int


@dataclass
class Quantization:
    tensor_frac: dict[str, int]
    layers: dict[str, LayerQuant]
    warnings: list[str] = field(default_factory=list)
    eltwise: dict[str, EltwiseQuant] = field(default_factory=dict)
    #: leaky ReLU / PReLU: int8 negative slope per channel and its fractional bits
    slopes: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)


def calibrate(net: ir.Net, batches: Iterable[np.ndarray]) -> dict[str, float]:
    """Largest magnitude of every tensor over float batches (NCHW) of calibration inputs."""
    from .float_forward import forward

    ranges: dict[str, float] = {}
    for batch in batches:
        for name, value in forward(net, batch).items():
            ranges[name] = max(ranges.get(name, 0.0), float(np.abs(value).max(initial=0.0)))
    return ranges


class _Groups:
    """Union-find over tensor names: members must share one Q format."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def quantize(net: ir.Net, ranges: dict[str, float]) -> Quantization:
    """Choose every format and shift; see the module docstring for the rules."""
    groups = _Groups()
    tensors = list(net.input_shapes) + [t for layer in net.layers for t in layer.tops]
    for layer in net.layers:
        if layer.type in FORMAT_PRESERVING:
            for name in layer.bottoms + layer.tops:
                groups.union(name, layer.tops[0])
    group_frac: dict[str, int] = {}
    for name in tensors:
        root = groups.find(name)
        group_frac[root] = min(group_frac.get(root, 99), frac_bits_for(_relevant_range(net, name, ranges)))

    weight_frac = {layer.name: frac_bits_for(float(np.abs(layer.blobs[0]).max(initial=0.0)))
                   for layer in net.layers if layer.type in WEIGHTED}
    # arm_softmax_q7 always writes Q0.7 (127 ~ 1.0), whatever the calibrated range says
    # (mapper.check_supported allows a Softmax only as the network output).
    for layer in net.layers:
        if layer.type == "Softmax":
            group_frac[groups.find(layer.tops[0])] = SOFTMAX_FRAC
        if layer.type in TABLE_ACTIVATIONS:
            _check_table_output_group(net, layer, groups, tensors, ranges)
            group_frac[groups.find(layer.tops[0])] = TABLE_OUTPUT_FRAC
    bias_frac = {layer.name: _bias_frac_wanted(layer) for layer in net.layers if layer.type in WEIGHTED}
    # Lower output formats until every out_rshift is non-negative; formats only ever
    # decrease, so this reaches a fixed point -- unless a layer's output format is tied
    # (through format-preserving layers) to its own input's and the weights on that cycle
    # need negative fractional bits: then every pass lowers it again, forever.
    changed = True
    passes = 0

    def lower(tensor: str, bound: int, cycle_error: Callable[[], str]) -> bool:
        """Lower ``tensor``'s format group to at most ``bound`` fractional bits; True if it changed."""
        root = groups.find(tensor)
        if group_frac[root] <= bound:
            return False
        if passes > len(net.layers) + 1:
            raise CmsisgenError(cycle_error())
        group_frac[root] = bound
        return True

    while changed:
        changed = False
        passes += 1
        for layer in net.layers:
            if _is_product(layer):
                # a product of two q7 inputs has f_0 + f_1 fractional bits: never more on the output;
                # with the output tied to one of its own inputs of negative fractional bits (through
                # a Concat, say), every pass lowers it again
                total = sum(group_frac[groups.find(b)] for b in layer.bottoms)
                changed |= lower(layer.tops[0], total, lambda layer=layer: (
                    f"layer '{layer.name}' (Eltwise PROD): no Q format fits both its output and "
                    f"its inputs: the output is tied to an input of its own (e.g. through a Concat) "
                    f"whose values need more than 7 integer bits"))
            if layer.type not in WEIGHTED:
                continue
            in_frac = group_frac[groups.find(layer.bottoms[0])]
            accumulator = in_frac + min(weight_frac[layer.name], bias_frac[layer.name] + MAX_BIAS_LSHIFT - in_frac)
            changed |= lower(layer.tops[0], accumulator, lambda layer=layer: (
                f"layer '{layer.name}' ({layer.type}): no Q formats give non-negative shifts: its output "
                f"shares a format with its own input (through {', '.join(FORMAT_PRESERVING)}) and its "
                f"weights need {q_format(weight_frac[layer.name])}"))

    tensor_frac = {name: group_frac[groups.find(name)] for name in tensors}
    layers: dict[str, LayerQuant] = {}
    warnings: list[str] = []
    for layer in net.layers:
        if layer.type not in WEIGHTED:
            continue
        layers[layer.name], warning = _quantize_layer(layer, tensor_frac, weight_frac[layer.name],
                                                      bias_frac[layer.name])
        if warning:
            warnings.append(warning)
    eltwise = {layer.name: quantize_eltwise(layer, tensor_frac) for layer in net.layers if layer.type == "Eltwise"}
    slopes = {layer.name: quantize_slopes(_negative_slopes(net, layer)) for layer in net.layers if _is_leaky(layer)}
    return Quantization(tensor_frac=tensor_frac, layers=layers, warnings=warnings, eltwise=eltwise, slopes=slopes)


def _is_leaky(layer: ir.Layer) -> bool:
    return layer.type == "PReLU" or (layer.type == "ReLU" and getattr(layer.params, "negative_slope", 0.0) != 0.0)


def _negative_slopes(net: ir.Net, layer: ir.Layer) -> np.ndarray:
    channels = net.shapes[layer.bottoms[0]][0]
    if layer.type == "PReLU":
        return np.broadcast_to(layer.blobs[0].reshape(-1), (channels,)).astype(np.float64)
    return np.full(channels, float(layer.params.negative_slope))  # type: ignore[union-attr]


#: Most fractional bits of a negative slope (0.01 needs 13 for 1% precision).
MAX_SLOPE_FRAC = 23


def quantize_slopes(slopes: np.ndarray) -> tuple[np.ndarray, int]:
    """Negative slopes as int8 ``a * 2**frac``: the most fractional bits that keep the
    largest slope in int8 (at least 0, at most MAX_SLOPE_FRAC); applied to a negative
    input x as ``(x * a + NN_ROUND(frac)) >> frac``, in the input's own format."""
    frac = min(MAX_SLOPE_FRAC, max(0, frac_bits_for(float(np.abs(slopes).max(initial=0.0)))))
    return quantize_array(slopes, frac), frac


def _check_table_output_group(net: ir.Net, layer: ir.Layer, groups: _Groups, tensors: list[str],
                              ranges: dict[str, float]) -> None:
    """A Sigmoid/TanH writes Q0.7: refuse when a tensor tied to its output's format (through
    Concat, pooling, ...) needs values beyond (-2, 2), which Q0.7 would saturate."""
    root = groups.find(layer.tops[0])
    own = {lay.tops[0] for lay in net.layers if lay.type in TABLE_ACTIVATIONS}
    for name in tensors:
        if name not in own and groups.find(name) == root and frac_bits_for(_relevant_range(net, name, ranges)) < 6:
            raise CmsisgenError(
                f"layer '{layer.name}' ({layer.type}): arm_nn_activations_direct_q7 writes Q0.7, but its output "
                f"shares one format (through {', '.join(FORMAT_PRESERVING)}) with '{name}', whose values reach "
                f"{ranges.get(name, 0.0):g}")


def _is_product(layer: ir.Layer) -> bool:
    return layer.type == "Eltwise" and getattr(layer.params, "operation", "") == "prod"


#: The Eltwise accumulator (int32) must hold every term with room for the rounding constant.
ELTWISE_ACC_LIMIT = 2**31 - 2**30


#: Largest magnitude of an integer Eltwise coefficient (int16 precision; the kernel holds int32).
ELTWISE_COEFF_MAX = 32767


def _eltwise_bound(coeffs: Iterable[int], lshifts: Iterable[int]) -> int:
    """Largest magnitude the SUM accumulator can reach (every input at -128)."""
    return sum(max(abs(c), 1) * 128 * 2**shift for c, shift in zip(coeffs, lshifts))


def eltwise_coefficients(coeffs: Iterable[float], lshifts: Iterable[int]) -> tuple[tuple[int, ...], int]:
    """Caffe SUM coefficients as integers ``c * 2**frac``, rounded half away from zero: the
    most fractional bits (at most 15) that keep every integer within +-32767 and the
    accumulator within ELTWISE_ACC_LIMIT, then as few as represent the same integers
    (1, -1, 2 stay exact with ``frac`` 0; 0.3 becomes 4915 / 2**14)."""
    values, shifts = [float(c) for c in coeffs], list(lshifts)
    for frac in range(15, -1, -1):
        ints = [int(np.sign(c) * math.floor(abs(c) * 2**frac + 0.5)) for c in values]
        if max(map(abs, ints), default=0) <= ELTWISE_COEFF_MAX and _eltwise_bound(ints, shifts) <= ELTWISE_ACC_LIMIT:
            break
    while frac > 0 and all(c % 2 == 0 for c in ints):
        frac -= 1
        ints = [c // 2 for c in ints]
    return tuple(ints), frac


#: Largest right shift of an Eltwise PROD: 2^14 + 2^15 >> 16 is 0 (see quantize_eltwise).
PROD_MAX_RSHIFT = 16


def quantize_eltwise(layer: ir.Layer, tensor_frac: dict[str, int]) -> EltwiseQuant:
    """Shifts that bring every input of an Eltwise into one accumulator format (see EltwiseQuant)."""
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    in_fracs = tuple(tensor_frac[b] for b in layer.bottoms)
    out_frac = tensor_frac[layer.tops[0]]
    if p.operation == "prod":
        if len(in_fracs) != 2:
            raise CmsisgenError(f"layer '{layer.name}' (Eltwise): PROD is supported for 2 inputs, "
                                f"got {len(in_fracs)}")
        # |a * b| <= 16384 = 2^14, so any right shift of 16 or more rounds every product to 0:
        # capping it there gives the same outputs and keeps the C shift below 32.
        return EltwiseQuant(in_fracs=in_fracs, out_frac=out_frac, lshifts=(0, 0), coeffs=(1, 1), coeff_frac=0,
                            out_rshift=min(sum(in_fracs) - out_frac, PROD_MAX_RSHIFT))
    common = max(out_frac, *in_fracs)
    lshifts = tuple(common - f for f in in_fracs)
    if p.operation == "sum":
        coeffs, coeff_frac = eltwise_coefficients(p.coeffs or (1.0,) * len(in_fracs), lshifts)
    else:
        coeffs, coeff_frac = (1,) * len(in_fracs), 0
    if _eltwise_bound(coeffs, lshifts) > ELTWISE_ACC_LIMIT or common + coeff_frac - out_frac > 30:
        raise CmsisgenError(f"layer '{layer.name}' (Eltwise): input formats "
                            f"{', '.join(q_format(f) for f in in_fracs)} are too far apart for a 32-bit accumulator")
    return EltwiseQuant(in_fracs=in_fracs, out_frac=out_frac, lshifts=lshifts, coeffs=coeffs, coeff_frac=coeff_frac,
                        out_rshift=common + coeff_frac - out_frac)


def _relevant_range(net: ir.Net, name: str, ranges: dict[str, float]) -> float:
    """The magnitude a tensor's format must hold.

    A tensor read only by ReLUs needs its positive side only: a negative value that
    saturates at -128 still becomes 0 after the ReLU. Sizing such a tensor (a conv
    output, typically) by its most negative value would waste integer bits on values
    the network never uses.
    """
    readers = net.consumers(name)
    if readers and all(layer.type in TABLE_ACTIVATIONS for layer in readers):
        return min(ranges.get(name, 0.0), TABLE_INPUT_MAX)
    if readers and all(layer.type == "ReLU" and not _is_leaky(layer) for layer in readers):
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


def q_format(frac: int) -> str:
    """Human-readable Qm.n (m integer bits excluding the sign)."""
    return f"Q{7 - frac}.{frac}"
