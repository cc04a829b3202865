"""Caffe PReLU (a learned negative slope per channel, or one shared) onto the project's own
nn_prelu_q7, which also runs a leaky ReLU (see :mod:`cmsisgen.ops.relu`).

Negative values are multiplied by an int8 slope with up to MAX_SLOPE_FRAC fractional bits
and rounded half up; the output keeps the input's format (one format group).
"""
from __future__ import annotations


from typing import Any

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..qformat import frac_bits_for, quantize_array
from ..simulator.kernels import nn_round, saturate_q7
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, generic_site, stem

#: Most fractional bits of a negative slope (0.01 needs 13 for 1% precision).
MAX_SLOPE_FRAC = 23
#: The largest slope magnitude an int8 slope with no fractional bits holds.
SLOPE_MAX = 127.0


@rule("largest negative slope {slope_max:g}")
def slopes_fit_int8(site: Site) -> bool:
    """nn_prelu_q7 (the project's own kernel) keeps non-negative values and multiplies negative ones by a per-channel int8 slope with up to 23 fractional bits, in the input's format: every slope must be within +-127."""
    return site.slope_max <= SLOPE_MAX


CHOICE = Choice("PReLU", (Candidate("nn_prelu_q7", (slopes_fit_int8,)),))


def quantize_slopes(slopes: np.ndarray) -> tuple[np.ndarray, int]:
    """Negative slopes as int8 ``a * 2**frac``: the most fractional bits that keep the
    largest slope in int8 (at least 0, at most MAX_SLOPE_FRAC); applied to a negative
    input x as ``(x * a + NN_ROUND(frac)) >> frac``, in the input's own format."""
    frac = min(MAX_SLOPE_FRAC, max(0, frac_bits_for(float(np.abs(slopes).max(initial=0.0)))))
    return quantize_array(slopes, frac), frac


def prelu_q7(x: np.ndarray, slopes: np.ndarray, shift: int) -> np.ndarray:
    """``nn_prelu_q7`` on NHWC ``x``: ``x`` where ``x >= 0``, else
    ``sat8((x * slopes[c] + NN_ROUND(shift)) >> shift)``."""
    wide = x.astype(np.int64)
    negative = saturate_q7((wide * slopes.astype(np.int64) + nn_round(shift)) >> shift)
    return np.where(x >= 0, x, negative).astype(np.int8)


PRELU = Kernel(
    "prelu", lambda op, inputs: prelu_q7(inputs[0], op.weights, op.args["slope_shift"]),
    call="""\
    /* {{ op.layer }} */
    nn_prelu_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_SLOPE, {{ prefix }}_CH, {{ prefix }}_PIXELS, {{ prefix }}_SLOPE_SHIFT,
                {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, in place; Q{{ 7 - f.out_frac }}.{{ f.out_frac }}, negative slopes Q{{ 7 - f.slope_frac }}.{{ f.slope_frac }} */
#define {{ prefix }}_CH {{ op.args.channels }}
#define {{ prefix }}_PIXELS {{ op.args.pixels }}
#define {{ prefix }}_SLOPE_SHIFT {{ op.args.slope_shift }}
""",
    weights="""\
/* {{ op.layer }}: {{ op.function }} negative slope per channel, {{ op.args.slope_shift }} fractional bits */
const q7_t {{ prefix }}_SLOPE[{{ prefix }}_CH] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
""", source="nn_prelu_q7.c")


def slope_site(net: ir.Net, layer: ir.Layer, slopes: np.ndarray) -> Site:
    """The layer's Site with its largest slope magnitude, for slopes_fit_int8."""
    return generic_site(net, layer, slope_max=float(np.abs(slopes).max(initial=0.0)))


def lower_slopes_q7(layer: ir.Layer, ctx: LoweringContext, choice: Choice, site: Site) -> Op:
    """The nn_prelu_q7 call of a PReLU or leaky ReLU, with its quantized slopes."""
    function = choose(choice, site, ctx.forced.get(layer.name))
    c, h, w = ctx.shape(layer.bottoms[0])
    # a plain ReLU forced onto this kernel (--kernel) has no quantized slopes: they are all 0
    slopes, slope_frac = ctx.quant.params.get(layer.name) or quantize_slopes(np.zeros(c))
    return Op(**stem(layer), kernel=PRELU, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
              args={"channels": c, "pixels": h * w, "slope_shift": slope_frac}, weights=slopes, weight_data=slopes,
              weight_bytes=slopes.size, in_place=True, macs=c * h * w,
              formats=dict(formats(ctx, layer), slope_frac=slope_frac))


class PReLU(LayerKind):
    types = ("PReLU",)
    choice = CHOICE
    keeps_format = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.PReLUParams:
        return ir.PReLUParams(channel_shared=layer.prelu_param.channel_shared)

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        # Caffe keeps a shared slope as a 0-d (scalar) blob
        return [()] if layer.params.channel_shared else [(net.shapes[layer.bottoms[0]][0],)]  # type: ignore[union-attr]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        slopes = np.broadcast_to(layer.blobs[0].astype(np.float32).reshape(-1), (x.shape[1],))
        return [(np.maximum(x, 0) + slopes[None, :, None, None] * np.minimum(x, 0)).astype(np.float32)]

    def slopes(self, net: ir.Net, layer: ir.Layer) -> np.ndarray:
        channels = net.shapes[layer.bottoms[0]][0]
        return np.broadcast_to(layer.blobs[0].reshape(-1), (channels,)).astype(np.float64)

    def quantize_params(self, net: ir.Net, layer: ir.Layer, tensor_frac: dict[str, int]):
        return quantize_slopes(self.slopes(net, layer))

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        return slope_site(net, layer, self.slopes(net, layer))

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        return lower_slopes_q7(layer, ctx, CHOICE, self.site(ctx.net, layer))

