"""Element-wise functions of one input -- ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold --
onto the project's own nn_lookup_q7, by a 256-entry table, in place (a ReLU6 or Clip whose
table is max(x, 0) in its formats runs as arm_relu_q7 instead).

A q7 input takes only 256 values, so any function of it is exactly a table: entry ``i``
holds ``f(int8(i) * 2**-in_frac)`` in the output's format, computed at compile time in
float64 from the layer's parameters, rounded half away from zero and saturated to int8
(:func:`cmsisgen.qformat.quantize_array`); where the function has no value (Power of a
negative base to a fractional power: NaN in Caffe) the entry is 0. The table is the
correctly rounded q7 result for every input, costs 256 bytes of flash per layer and one
load per value, whatever the function. The input and output formats are independent: the
output's comes from calibration, at most 6 fractional bits for Threshold (its 1 must fit);
a tensor read only by ReLU6 (without negative slope) or Clip is sized by their outputs'
range (values beyond it saturate where the function is flat anyway).

The float forward follows Caffe's CPU code for each type (float32, in its order of
operations); ReLU6 is the forks' type (min(max(x, 0), 6)), with brocolli-caffe's optional
``relu6_param { threshold negative_slope }``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..qformat import quantize_array
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, generic_site, stem
from .caffe_params import ErrorMaker
from .relu import RELU

#: Most fractional bits of Threshold's output: 1.0 must be a q7 value.
THRESHOLD_MAX_FRAC = 6


@dataclass(frozen=True)
class PointwiseParams:
    """The parameters of one element-wise function (those of its type; the rest keep their defaults)."""

    negative_slope: float = 0.0  # ReLU6
    threshold: float = 0.0  # ReLU6 (clamp), Threshold
    low: float = 0.0  # Clip min
    high: float = 0.0  # Clip max
    power: float = 1.0  # Power: (shift + scale * x) ** power
    scale: float = 1.0
    shift: float = 0.0
    alpha: float = 1.0  # ELU


@rule("input {in_frac} and output {out_frac} fractional bits")
def table_is_relu(site: Site) -> bool:
    """arm_relu_q7 only clamps at zero: it runs a ReLU6 or Clip whose table is max(x, 0), i.e. input and output in one format whose largest value is within the upper bound (min 0 for Clip, no negative slope for ReLU6)."""
    return site.table_is_relu is not False


CHOICE = Choice("Power, AbsVal, ELU, BNLL, Threshold",
                (Candidate("nn_lookup_q7", ()),),
                note="one 256-entry int8 table per layer (in weights.c), computed at compile time from the "
                     "function and the input and output formats: the exact value rounded half away from zero and "
                     "saturated (0 where Caffe gives NaN); in place")
#: ReLU6 and Clip: the SIMD arm_relu_q7 where the table is a plain ReLU (no value of the format
#: reaches the upper bound), which saves the table's flash and half the cycles.
CLAMP_CHOICE = Choice("ReLU6, Clip", (Candidate("arm_relu_q7", (table_is_relu,)), *CHOICE.candidates),
                      note="the SIMD arm_relu_q7 where the q7 function is max(x, 0), else the table of nn_lookup_q7 "
                           "(as for Power, AbsVal, ELU, BNLL, Threshold below)")


def lookup_q7(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``nn_lookup_q7`` on int8 ``x`` (any shape): ``table[(uint8_t)x]``."""
    return table[x.view(np.uint8)]


LOOKUP = Kernel(
    "lookup", lambda op, inputs: lookup_q7(inputs[0], op.weights),
    call="""\
    /* {{ op.layer }} */
    nn_lookup_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_TABLE, {{ prefix }}_SIZE, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, in place; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_SIZE {{ op.args.size }}
""",
    weights="""\
/* {{ op.layer }}: {{ op.function }} table, entry i = f(int8(i) in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}) in Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
const q7_t {{ prefix }}_TABLE[256] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
""", source="nn_lookup_q7.c")


def lookup_table(function: Callable[[np.ndarray], np.ndarray], in_frac: int, out_frac: int) -> np.ndarray:
    """The 256 int8 entries for ``function`` (float64 -> float64), in index (uint8 bit pattern) order."""
    x = np.arange(256, dtype=np.int64)
    x = np.where(x >= 128, x - 256, x).astype(np.float64) * 2.0 ** -in_frac
    with np.errstate(all="ignore"):
        y = np.asarray(function(x), dtype=np.float64)
    return quantize_array(np.nan_to_num(y, nan=0.0, posinf=np.inf, neginf=-np.inf), out_frac)


class Lookup(LayerKind):
    """A function of one input run as a table; subclasses give its parameters and formula."""

    choice = CHOICE
    keeps_bytes = True

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        return PointwiseParams()

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        """f(x) in x's float type, as Caffe's Forward_cpu computes it."""
        raise NotImplementedError

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with np.errstate(all="ignore"):
            return [self.function(inputs[0].astype(np.float32), layer.params).astype(np.float32)]  # type: ignore[arg-type]

    def table(self, layer: ir.Layer, in_frac: int, out_frac: int) -> np.ndarray:
        return lookup_table(lambda x: self.function(x, layer.params), in_frac, out_frac)  # type: ignore[arg-type]

    def quantize_params(self, net: ir.Net, layer: ir.Layer, tensor_frac: dict[str, int]) -> np.ndarray:
        return self.table(layer, tensor_frac[layer.bottoms[0]], tensor_frac[layer.tops[0]])

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        fmt = formats(ctx, layer)
        table = ctx.quant.params[layer.name]
        relu = bool(np.array_equal(table, RELU_TABLE)) and fmt["in_frac"] == fmt["out_frac"]
        function = choose(self.choice, generic_site(ctx.net, layer, table_is_relu=relu, **fmt),
                          ctx.forced.get(layer.name))
        c, h, w = ctx.shape(layer.bottoms[0])
        common = dict(**stem(layer), function=function, inputs=ctx.bottoms, in_shape=(h, w, c), args={"size": c * h * w},
                      in_place=True, macs=c * h * w, formats=fmt)
        if function == "arm_relu_q7":
            return Op(kernel=RELU, **common)
        return Op(kernel=LOOKUP, weights=table, weight_data=table, weight_bytes=table.size, **common)


#: max(x, 0) as a table, in index order
RELU_TABLE = np.maximum(np.arange(256, dtype=np.uint8).view(np.int8), 0).astype(np.int8)


def _scalar(x: np.ndarray, value: float) -> Any:
    return x.dtype.type(value)


class ReLU6(Lookup):
    types = ("ReLU6",)
    choice = CLAMP_CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        p = layer.relu6_param
        return PointwiseParams(negative_slope=float(p.negative_slope), threshold=float(p.threshold))

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        zero = _scalar(x, 0.0)
        return np.minimum(np.maximum(x, zero), _scalar(x, p.threshold)) + _scalar(x, p.negative_slope) * np.minimum(x, zero)

    def clamps(self, layer: ir.Layer) -> bool:
        """min(max(x, 0), threshold): an input beyond the output's range gives what it saturates to."""
        p: PointwiseParams = layer.params  # type: ignore[assignment]
        return p.negative_slope == 0.0 and p.threshold >= 0.0


class Clip(Lookup):
    types = ("Clip",)
    choice = CLAMP_CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        p = layer.clip_param
        missing = [name for name in ("min", "max") if not p.HasField(name)]
        if missing:
            raise err(f"clip_param needs min and max (Caffe requires both); {' and '.join(missing)} not given")
        if p.min > p.max:
            raise err(f"clip_param min {p.min:g} is greater than max {p.max:g}")
        return PointwiseParams(low=float(p.min), high=float(p.max))

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        return np.maximum(_scalar(x, p.low), np.minimum(x, _scalar(x, p.high)))

    def clamps(self, layer: ir.Layer) -> bool:
        """max(min, min(x, max)): an input beyond the output's range gives what it saturates to."""
        return True


class Power(Lookup):
    types = ("Power",)

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        p = layer.power_param
        return PointwiseParams(power=float(p.power), scale=float(p.scale), shift=float(p.shift))

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        power = _scalar(x, p.power)
        if p.power * p.scale == 0.0:  # Caffe ignores the input: 1 for power 0, else shift ** power
            return np.full_like(x, 1.0 if p.power == 0.0 else _scalar(x, p.shift) ** power)
        y = x * _scalar(x, p.scale) if p.scale != 1.0 else x
        y = y + _scalar(x, p.shift) if p.shift != 0.0 else y
        return np.power(y, power) if p.power != 1.0 else y


class AbsVal(Lookup):
    types = ("AbsVal",)

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        return np.abs(x)


class ELU(Lookup):
    types = ("ELU",)

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        return PointwiseParams(alpha=float(layer.elu_param.alpha))

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        zero, one = _scalar(x, 0.0), _scalar(x, 1.0)
        return np.maximum(x, zero) + _scalar(x, p.alpha) * (np.exp(np.minimum(x, zero)) - one)


class BNLL(Lookup):
    types = ("BNLL",)

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        # Caffe: x > 0 ? x + log(1. + exp(-x)) : log(1. + exp(x)), in double
        wide = x.astype(np.float64)
        y = np.where(wide > 0, wide + np.log(1.0 + np.exp(-np.abs(wide))), np.log(1.0 + np.exp(np.minimum(wide, 0.0))))
        return y.astype(x.dtype)


class Threshold(Lookup):
    types = ("Threshold",)

    def parse(self, layer: Any, err: ErrorMaker) -> PointwiseParams:
        return PointwiseParams(threshold=float(layer.threshold_param.threshold))

    def function(self, x: np.ndarray, p: PointwiseParams) -> np.ndarray:
        return (x > _scalar(x, p.threshold)).astype(x.dtype)

    def output_frac_bound(self, layer: ir.Layer, frac: Callable[[str], int],
                          weight_frac: dict[str, int], bias_frac: dict[str, int]) -> Optional[int]:
        """The output is 0 or 1: 1 must be a q7 value (Q1.6 or wider)."""
        return THRESHOLD_MAX_FRAC


LOOKUP_KINDS: tuple[Lookup, ...] = (ReLU6(), Clip(), Power(), AbsVal(), ELU(), BNLL(), Threshold())
