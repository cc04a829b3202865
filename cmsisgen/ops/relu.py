"""Caffe ReLU onto arm_relu_q7, in place; a leaky ReLU (negative_slope != 0) onto the
project's nn_prelu_q7 with one slope for every channel (:mod:`cmsisgen.ops.prelu`)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..simulator import kernels
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, stem
from .prelu import lower_slopes_q7, quantize_slopes, slope_site, slopes_fit_int8

#: arm_relu_q7 takes a uint16_t size; larger tensors are run in chunks of this many values.
RELU_CHUNK = 65535


@rule("negative_slope {negative_slope:g}")
def plain_relu(site: Site) -> bool:
    """arm_relu_q7 clamps at zero: a leaky ReLU (negative_slope != 0) runs as nn_prelu_q7."""
    return site.negative_slope == 0.0


CHOICE = Choice("ReLU", (Candidate("arm_relu_q7", (plain_relu,)), Candidate("nn_prelu_q7", (slopes_fit_int8,))))

RELU = Kernel(
    "relu", lambda op, inputs: kernels.relu_q7(inputs[0]),
    call="""\
    /* {{ op.layer }} */
{% if op.args.size > 65535 %}
    {
        /* arm_relu_q7 takes a uint16_t size: run it in chunks */
        uint32_t done;
        for (done = 0; done < {{ prefix }}_SIZE; done += 65535u) {
            const uint32_t left = {{ prefix }}_SIZE - done;
            arm_relu_q7({{ out }} + done, (uint16_t)(left < 65535u ? left : 65535u));
        }
    }
{% else %}
    arm_relu_q7({{ out }}, {{ prefix }}_SIZE);
{% endif %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, in place; Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_SIZE {{ op.args.size }}
""")


def _leaky(layer: ir.Layer) -> bool:
    return layer.params.negative_slope != 0.0  # type: ignore[union-attr]


class ReLU(LayerKind):
    types = ("ReLU",)
    choice = CHOICE
    keeps_format = True
    keeps_bytes = True
    forward_any_layout = True  # elementwise: the output keeps the input's memory order

    def parse(self, layer: Any, err: ErrorMaker) -> ir.NoParams:
        return ir.NoParams(negative_slope=float(layer.relu_param.negative_slope))

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        slope = np.float32(layer.params.negative_slope)  # type: ignore[union-attr]
        x = inputs[0]
        return [(np.maximum(x, 0) + slope * np.minimum(x, 0)).astype(np.float32, copy=False) if slope else
                np.maximum(x, 0).astype(np.float32, copy=False)]

    def clamps(self, layer: ir.Layer) -> bool:
        """A plain ReLU outputs max(x, 0): its input needs only its positive range."""
        return not _leaky(layer)

    def slopes(self, net: ir.Net, layer: ir.Layer) -> np.ndarray:
        return np.full(net.shapes[layer.bottoms[0]][0], float(layer.params.negative_slope))  # type: ignore[union-attr]

    def quantize_params(self, net: ir.Net, layer: ir.Layer, tensor_frac: dict[str, int]):
        return quantize_slopes(self.slopes(net, layer)) if _leaky(layer) else None

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        site = slope_site(net, layer, self.slopes(net, layer))
        return dataclasses.replace(site, negative_slope=layer.params.negative_slope)  # type: ignore[union-attr]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        site = self.site(ctx.net, layer)
        function = choose(CHOICE, site, ctx.forced.get(layer.name))
        if function != "arm_relu_q7":
            return lower_slopes_q7(layer, ctx, CHOICE, site)
        c, h, w = ctx.shape(layer.bottoms[0])
        return Op(**stem(layer), kernel=RELU, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args={"size": c * h * w}, in_place=True, macs=c * h * w, formats=formats(ctx, layer))
