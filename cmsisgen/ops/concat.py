"""Caffe Concat along channels: the project's own copy loop (nn_concat_channels_q7) per input.

The copy cannot rescale, so the quantizer gives every input and the output one Q format
(``keeps_format``): where branches meet nothing needs rescaling.
"""
from __future__ import annotations


from typing import Any

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, fail, formats, stem

CHOICE = Choice("Concat", (Candidate("nn_concat_channels_q7", ()),),
                note="channels only (axis 1); the inputs and the output share one Q format")

CONCAT = Kernel(
    "concat", lambda op, inputs: np.concatenate([x.reshape(len(x), *op.in_shape[:2], -1) for x in inputs], axis=3),
    call="""\
    /* {{ op.layer }} */
{% set ns = namespace(offset=0) %}
{% for name in op.inputs %}
    nn_concat_channels_q7({{ buf[name] }}, {{ prefix }}_IN{{ loop.index0 }}_CH, {{ out }}, {{ prefix }}_OUT_CH, {{ ns.offset }}u, {{ prefix }}_PIXELS);
{% set ns.offset = ns.offset + op.args["ch_in%d" % loop.index0] %}
{% endfor %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): channel concatenation of {{ op.inputs | length }} inputs; Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_PIXELS {{ op.args.pixels }}
#define {{ prefix }}_OUT_CH {{ op.args.ch_out }}
{% for name in op.inputs %}
#define {{ prefix }}_IN{{ loop.index0 }}_CH {{ op.args["ch_in%d" % loop.index0] }}
{% endfor %}
""", source="nn_concat_q7.c")


class Concat(LayerKind):
    types = ("Concat",)
    choice = CHOICE
    keeps_format = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ConcatParams:
        cp = layer.concat_param
        axis = cp.axis if cp.HasField("axis") else cp.concat_dim
        return ir.ConcatParams(axis=axis + 4 if axis < 0 else axis)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        if not layer.bottoms:
            raise fail(net, layer, "has no inputs")
        axis = layer.params.axis  # type: ignore[union-attr]
        if axis != 1:
            raise fail(net, layer, f"concatenation along axis {axis} is not supported (only channels, axis 1)")
        shapes = [net.shapes[b] for b in layer.bottoms]
        if any(s[1:] != shapes[0][1:] for s in shapes):
            listing = ", ".join(f"{b} {net.shapes[b]}" for b in layer.bottoms)
            raise fail(net, layer, f"inputs differ in height/width: {listing}")
        return sum(s[0] for s in shapes), shapes[0][1], shapes[0][2]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.concatenate(inputs, axis=1)]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        c, h, w = ctx.shape(layer.bottoms[0])
        channels = [ctx.shape(b)[0] for b in layer.bottoms]
        args = {"pixels": h * w, "ch_out": sum(channels), **{f"ch_in{i}": ch for i, ch in enumerate(channels)}}
        return Op(**stem(layer), kernel=CONCAT, function="nn_concat_channels_q7", inputs=ctx.bottoms,
                  in_shape=(h, w, c), args=args, formats=formats(ctx, layer))
