"""Caffe ArgMax as the network's last layer onto the project's own nn_argmax_q7.

Two settings are supported, both with top_k 1 and out_max_val false (any other value is
refused naming the field): ``axis: 1`` (per pixel, the index of the largest channel: the
class map of a segmentation net) and no axis (the index of the largest value of the whole
blob, in Caffe's C, H, W order: the class of a classifier). Ties go to the highest index,
as Caffe's partial sort of (value, index) pairs picks them. The output is the index as a q7
value in Q7.0, so at most 128 values may compete; ``evaluate`` takes the index itself as
the predicted class (a per-pixel ArgMax has no single class per image and is refused there).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, choose, formats, generic_site, \
    one_input, stem
from .caffe_params import ErrorMaker

#: Most values one argmax may choose among: its index (0..127) is written as a q7 value.
MAX_CANDIDATES = 128


@dataclass(frozen=True)
class ArgMaxParams:
    """``per_pixel``: axis 1 (over channels); else the whole blob (Caffe's ArgMax without axis)."""

    per_pixel: bool = False


@rule("read by {readers}")
def argmax_is_last(site: Site) -> bool:
    """The index of the largest value (Q7.0) is the network output: ArgMax must be the last layer, its output read by no other layer."""
    return not site.readers


@rule("{in_h}x{in_w}x{in_ch} input, {out_h}x{out_w} output")
def index_fits_q7(site: Site) -> bool:
    """Each index is written as a q7 value (0..127): at most 128 values may compete (the channels with axis 1, the whole blob without axis)."""
    return site.in_ch * site.in_h * site.in_w // (site.out_h * site.out_w) <= MAX_CANDIDATES


CHOICE = Choice("ArgMax", (Candidate("nn_argmax_q7", (argmax_is_last, index_fits_q7)),),
                note="the index of the largest value, as the network output in Q7.0: top_k 1 and out_max_val false "
                     "(other values are refused naming the field), axis 1 (per pixel, over channels) or no axis (the "
                     "whole blob, C, H, W order); ties go to the highest index, as in Caffe")


def argmax_q7(x: np.ndarray, per_pixel: bool) -> np.ndarray:
    """``nn_argmax_q7`` on int8 NHWC ``x``: per pixel (N, H, W, 1), else one CHW index (N, 1, 1, 1)."""
    n, h, w, c = x.shape
    if per_pixel:
        return (c - 1 - np.argmax(x[..., ::-1], axis=-1)).astype(np.int8).reshape(n, h, w, 1)
    flat = x.transpose(0, 3, 1, 2).reshape(n, -1)
    return (flat.shape[1] - 1 - np.argmax(flat[:, ::-1], axis=1)).astype(np.int8).reshape(n, 1, 1, 1)


ARGMAX = Kernel(
    "argmax", lambda op, inputs: argmax_q7(inputs[0], not op.args["whole"]),
    call="""\
    /* {{ op.layer }} */
    nn_argmax_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_CH, {{ prefix }}_PIXELS, {{ prefix }}_WHOLE, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, out: the index, Q7.0 */
#define {{ prefix }}_CH {{ op.args.channels }}
#define {{ prefix }}_PIXELS {{ op.args.pixels }}
#define {{ prefix }}_WHOLE {{ op.args.whole }}
""", source="nn_argmax_q7.c")


class ArgMax(LayerKind):
    types = ("ArgMax",)
    choice = CHOICE
    fixed_output_frac = 0

    def parse(self, layer: Any, err: ErrorMaker) -> ArgMaxParams:
        p = layer.argmax_param
        if p.top_k != 1:
            raise err(f"argmax_param.top_k {p.top_k} is not supported: only top_k 1 (the index of the largest value)")
        if p.out_max_val:
            raise err("argmax_param.out_max_val true is not supported: the output is the index only")
        if p.HasField("axis") and p.axis not in (1, -3):
            raise err(f"argmax_param.axis {p.axis} is not supported: only axis 1 (per pixel, over channels) "
                      "or no axis (over the whole blob)")
        return ArgMaxParams(per_pixel=p.HasField("axis"))

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        _, h, w = one_input(net, layer)
        return (1, h, w) if layer.params.per_pixel else (1, 1, 1)  # type: ignore[union-attr]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        n, c = x.shape[:2]
        if layer.params.per_pixel:  # type: ignore[union-attr]
            return [(c - 1 - np.argmax(x[:, ::-1], axis=1)).astype(np.float32)[:, None]]
        flat = x.reshape(n, -1)
        return [(flat.shape[1] - 1 - np.argmax(flat[:, ::-1], axis=1)).astype(np.float32).reshape(n, 1, 1, 1)]

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        readers = ", ".join(f"'{r.name}' ({r.type})" for r in net.consumers(layer.tops[0]))
        return generic_site(net, layer, readers=readers)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        function = choose(CHOICE, self.site(ctx.net, layer), ctx.forced.get(layer.name))
        c, h, w = ctx.held or ctx.shape(layer.bottoms[0])
        whole = int(not layer.params.per_pixel or ctx.held is not None)  # type: ignore[union-attr]
        return Op(**stem(layer), kernel=ARGMAX, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args={"channels": c, "pixels": h * w, "whole": whole}, macs=c * h * w, formats=formats(ctx, layer))

    def class_count(self, net: ir.Net, layer: ir.Layer) -> int:
        """One index per image: the number of values it picks from (a per-pixel class map has no top-1)."""
        c, h, w = net.shapes[layer.bottoms[0]]
        _, oh, ow = net.shapes[layer.tops[0]]
        if oh * ow > 1:
            raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): its output is one class per pixel "
                                f"({oh}x{ow}), so it has no top-1 per image to evaluate")
        return c * h * w
