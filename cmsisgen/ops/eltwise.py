"""Caffe Eltwise (SUM with coefficients, PROD, MAX) onto the project's own q7 kernels.

Where branches meet, inputs may be in different Q formats: each is shifted left into one
accumulator format (SUM also multiplies by its integer coefficient), and the result is
rounded half up into the output's own format (:class:`EltwiseQuant`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..qformat import q_format
from ..simulator.kernels import nn_round, saturate_q7
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, choose, fail, generic_site, stem

#: The accumulator (int32) must hold every term with room for the rounding constant.
ELTWISE_ACC_LIMIT = 2**31 - 2**30
#: Largest magnitude of an integer SUM coefficient (int16 precision; the kernel holds int32).
ELTWISE_COEFF_MAX = 32767
#: Most fractional bits of a SUM coefficient.
ELTWISE_COEFF_FRAC_MAX = 15
#: Largest right shift of a PROD: 2^14 + 2^15 >> 16 is 0 (see quantize_eltwise).
PROD_MAX_RSHIFT = 16
#: Largest right shift of a SUM or MAX.
ELTWISE_MAX_RSHIFT = 30


@dataclass(frozen=True)
class EltwiseQuant:
    """Integer form of an Eltwise layer.

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


def _eltwise_bound(coeffs: Iterable[int], lshifts: Iterable[int]) -> int:
    """Largest magnitude the SUM accumulator can reach (every input at -128)."""
    return sum(max(abs(c), 1) * 128 * 2**shift for c, shift in zip(coeffs, lshifts))


def eltwise_coefficients(coeffs: Iterable[float], lshifts: Iterable[int]) -> tuple[tuple[int, ...], int]:
    """Caffe SUM coefficients as integers ``c * 2**frac``, rounded half away from zero: the
    most fractional bits (at most 15) that keep every integer within +-32767 and the
    accumulator within ELTWISE_ACC_LIMIT, then as few as represent the same integers
    (1, -1, 2 stay exact with ``frac`` 0; 0.3 becomes 4915 / 2**14)."""
    values, shifts = [float(c) for c in coeffs], list(lshifts)
    for frac in range(ELTWISE_COEFF_FRAC_MAX, -1, -1):
        ints = [int(np.sign(c) * math.floor(abs(c) * 2**frac + 0.5)) for c in values]
        if max(map(abs, ints), default=0) <= ELTWISE_COEFF_MAX and _eltwise_bound(ints, shifts) <= ELTWISE_ACC_LIMIT:
            break
    while frac > 0 and all(c % 2 == 0 for c in ints):
        frac -= 1
        ints = [c // 2 for c in ints]
    return tuple(ints), frac


def quantize_eltwise(layer: ir.Layer, tensor_frac: dict[str, int]) -> EltwiseQuant:
    """Shifts that bring every input of an Eltwise into one accumulator format (see EltwiseQuant)."""
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    in_fracs = tuple(tensor_frac[b] for b in layer.bottoms)
    out_frac = tensor_frac[layer.tops[0]]
    if p.operation == "prod":
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
    if _eltwise_bound(coeffs, lshifts) > ELTWISE_ACC_LIMIT or common + coeff_frac - out_frac > ELTWISE_MAX_RSHIFT:
        raise CmsisgenError(f"layer '{layer.name}' (Eltwise): input formats "
                            f"{', '.join(q_format(f) for f in in_fracs)} are too far apart for a 32-bit accumulator")
    return EltwiseQuant(in_fracs=in_fracs, out_frac=out_frac, lshifts=lshifts, coeffs=coeffs, coeff_frac=coeff_frac,
                        out_rshift=common + coeff_frac - out_frac)


def _round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    return saturate_q7((acc + nn_round(shift)) >> shift)


def eltwise_sum_q7(inputs: Sequence[np.ndarray], coeffs: Sequence[int], lshifts: Sequence[int],
                   out_rshift: int) -> np.ndarray:
    """``nn_eltwise_sum_q7``: ``sat8((sum(c_i * (x_i << l_i)) + NN_ROUND(r)) >> r)``."""
    acc = np.zeros(inputs[0].shape, dtype=np.int64)
    for x, coeff, shift in zip(inputs, coeffs, lshifts):
        acc += int(coeff) * (x.astype(np.int64) << shift)
    return _round_shift(acc, out_rshift)


def eltwise_max_q7(inputs: Sequence[np.ndarray], lshifts: Sequence[int], out_rshift: int) -> np.ndarray:
    """``nn_eltwise_max_q7``: ``sat8((max(x_i << l_i) + NN_ROUND(r)) >> r)``."""
    acc = inputs[0].astype(np.int64) << lshifts[0]
    for x, shift in zip(inputs[1:], lshifts[1:]):
        acc = np.maximum(acc, x.astype(np.int64) << shift)
    return _round_shift(acc, out_rshift)


def eltwise_prod_q7(a: np.ndarray, b: np.ndarray, out_rshift: int) -> np.ndarray:
    """``nn_eltwise_prod_q7``: ``sat8((a * b + NN_ROUND(r)) >> r)``."""
    return _round_shift(a.astype(np.int64) * b.astype(np.int64), out_rshift)


@rule("{inputs} inputs")
def two_inputs(site: Site) -> bool:
    """nn_eltwise_prod_q7 (the project's own kernel) multiplies two q7 inputs into one int32 product: an Eltwise PROD must have exactly 2 inputs."""
    return site.inputs == 2


@rule("{inputs} inputs")
def two_or_more_inputs(site: Site) -> bool:
    """nn_eltwise_sum_q7 and nn_eltwise_max_q7 (the project's own kernels) shift each input into one int32 accumulator format (the sum also multiplies it by its integer coefficient): any number of inputs from 2 on, in any Q formats."""
    return site.inputs >= 2


SUM = Choice("Eltwise/sum", (Candidate("nn_eltwise_sum_q7", (two_or_more_inputs,)),))
PROD = Choice("Eltwise/prod", (Candidate("nn_eltwise_prod_q7", (two_inputs,)),))
MAX = Choice("Eltwise/max", (Candidate("nn_eltwise_max_q7", (two_or_more_inputs,)),))
CHOICES = {"sum": SUM, "prod": PROD, "max": MAX}


def _same_shape(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [x.reshape(len(x), *op.in_shape) for x in inputs]


def _simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    q: EltwiseQuant = op.params
    inputs = _same_shape(op, inputs)
    if op.function == "nn_eltwise_sum_q7":
        return eltwise_sum_q7(inputs, q.coeffs, q.lshifts, q.out_rshift)
    if op.function == "nn_eltwise_max_q7":
        return eltwise_max_q7(inputs, q.lshifts, q.out_rshift)
    return eltwise_prod_q7(inputs[0], inputs[1], q.out_rshift)


ELTWISE = Kernel(
    "eltwise", _simulate,
    call="""\
    /* {{ op.layer }} */
{% if op.function == "nn_eltwise_prod_q7" %}
    nn_eltwise_prod_q7({{ buf[op.inputs[0]] }}, {{ buf[op.inputs[1]] }}, {{ prefix }}_OUT_RSHIFT, {{ out }}, {{ prefix }}_SIZE);
{% else %}
    {
        const q7_t *const in[{{ prefix }}_INPUTS] = { {% for name in op.inputs %}{{ buf[name] }}{{ ", " if not loop.last }}{% endfor %} };
        static const uint8_t lshift[{{ prefix }}_INPUTS] = {{ prefix }}_LSHIFTS;
{% if op.function == "nn_eltwise_sum_q7" %}
        static const int32_t coeff[{{ prefix }}_INPUTS] = {{ prefix }}_COEFFS;

        nn_eltwise_sum_q7(in, coeff, lshift, {{ prefix }}_INPUTS, {{ prefix }}_OUT_RSHIFT, {{ out }}, {{ prefix }}_SIZE);
{% else %}

        nn_eltwise_max_q7(in, lshift, {{ prefix }}_INPUTS, {{ prefix }}_OUT_RSHIFT, {{ out }}, {{ prefix }}_SIZE);
{% endif %}
    }
{% endif %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; inputs {% for name in op.inputs %}Q{{ 7 - f["in%d_frac" % loop.index0] }}.{{ f["in%d_frac" % loop.index0] }}{{ ", " if not loop.last }}{% endfor %}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }}{% if op.function == "nn_eltwise_sum_q7" %}, coefficients with {{ f.coeff_frac }} fractional bits{% endif %} */
#define {{ prefix }}_SIZE {{ a.size }}
#define {{ prefix }}_INPUTS {{ a.inputs }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
{% if op.function != "nn_eltwise_prod_q7" %}
#define {{ prefix }}_LSHIFTS { {{ op.params.lshifts | join(", ") }} }
{% endif %}
{% if op.function == "nn_eltwise_sum_q7" %}
#define {{ prefix }}_COEFFS { {{ op.params.coeffs | join(", ") }} }
{% endif %}
""", source="nn_eltwise_q7.c")


class Eltwise(LayerKind):
    types = ("Eltwise",)

    def parse(self, layer: Any, err: ErrorMaker) -> ir.EltwiseParams:
        ep = layer.eltwise_param
        operation = {0: "prod", 1: "sum", 2: "max"}[ep.operation]
        coeffs = tuple(float(c) for c in ep.coeff)
        if coeffs and operation != "sum":
            raise err("Eltwise takes coefficients only for SUM (Caffe refuses them otherwise)")
        return ir.EltwiseParams(operation=operation, coeffs=coeffs)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        """Caffe EltwiseLayer: two or more inputs of one shape; one coefficient per input."""
        p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
        if len(layer.bottoms) < 2:
            raise fail(net, layer, f"needs at least 2 inputs, got {len(layer.bottoms)}")
        if p.coeffs and len(p.coeffs) != len(layer.bottoms):
            raise fail(net, layer, f"has {len(p.coeffs)} coefficients for {len(layer.bottoms)} inputs")
        shapes = [net.shapes[b] for b in layer.bottoms]
        if any(s != shapes[0] for s in shapes):
            listing = ", ".join(f"{b} {net.shapes[b]}" for b in layer.bottoms)
            raise fail(net, layer, f"inputs differ in shape: {listing}")
        return shapes[0]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Caffe EltwiseLayer, accumulating in input order in float32 as Caffe does."""
        p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
        out = inputs[0].astype(np.float32)
        if p.operation == "sum":
            coeffs = p.coeffs or (1.0,) * len(inputs)
            out = out * np.float32(coeffs[0])
            for x, c in zip(inputs[1:], coeffs[1:]):
                out = out + np.float32(c) * x
        elif p.operation == "prod":
            for x in inputs[1:]:
                out = out * x
        else:
            for x in inputs[1:]:
                out = np.maximum(out, x)
        return [out.astype(np.float32)]

    def output_frac_bound(self, layer: ir.Layer, frac: Callable[[str], int], weight_frac: dict[str, int],
                          bias_frac: dict[str, int]) -> Optional[int]:
        """A product of two q7 inputs has f_0 + f_1 fractional bits: never more on the output."""
        if layer.params.operation != "prod":  # type: ignore[union-attr]
            return None
        return sum(frac(b) for b in layer.bottoms)

    def bound_cycle_error(self, layer: ir.Layer, through: str) -> str:
        return (f"layer '{layer.name}' (Eltwise PROD): no Q format fits both its output and its inputs: the output "
                "is tied to an input of its own (e.g. through a Concat) whose values need more than 7 integer bits")

    def quantize_params(self, net: ir.Net, layer: ir.Layer, tensor_frac: dict[str, int]) -> EltwiseQuant:
        return quantize_eltwise(layer, tensor_frac)

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        return generic_site(net, layer, method=layer.params.operation)  # type: ignore[union-attr]

    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        return (CHOICES[layer.params.operation],) if layer is not None else (SUM, PROD, MAX)  # type: ignore[union-attr]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        site = self.site(ctx.net, layer)
        function = choose(CHOICES[site.method], site, ctx.forced.get(layer.name))
        q: EltwiseQuant = ctx.quant.params[layer.name]
        c, h, w = ctx.shape(layer.tops[0])
        fmt = {"in_frac": q.in_fracs[0], "out_frac": q.out_frac, **{f"in{i}_frac": f for i, f in enumerate(q.in_fracs)},
               "coeff_frac": q.coeff_frac, "out_rshift": q.out_rshift}
        return Op(**stem(layer), kernel=ELTWISE, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args={"size": c * h * w, "inputs": len(ctx.bottoms)}, params=q, macs=c * h * w * len(ctx.bottoms),
                  formats=fmt)
