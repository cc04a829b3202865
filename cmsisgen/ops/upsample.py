"""Upsample (nearest neighbour, upsample_param.scale): every pixel repeated scale x scale times.

The fork pycaffe here is built from (brocolli-caffe, upsample_param 500: scale and dims_num)
repeats each value into a scale x scale block; its dims_num 3 mode is for (N, C, L) blobs and
is refused. The project's own nn_upsample_nearest_q7 builds each output row with memcpy of
whole pixels and repeats the row with memcpy; scale 1 is an alias. The output keeps the
input's Q format.

Interp (DeepLab/PSPNet) is not compiled: it interpolates bilinearly, and rounding its
weighted sums in q7 would not reproduce Caffe's float result, so it stays an unsupported
type (its interp_param parses, so the refusal names the layer type).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, hwc, one_input
from .caffe_params import ErrorMaker
from .copy_kernels import UPSAMPLE, ByteMover


@dataclass(frozen=True)
class UpsampleParams:
    """The fork's UpsampleParameter: ``scale`` >= 1, the same along height and width."""

    scale: int = 1


CHOICE = Choice("Upsample", (Candidate("nn_upsample_nearest_q7", ()),),
                note="nearest neighbour by an integer scale (the fork's upsample_param.scale, dims_num 4); scale 1 "
                     "is an alias; the output keeps the input's Q format")


class Upsample(ByteMover):
    types = ("Upsample",)
    choice = CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> UpsampleParams:
        up = layer.upsample_param
        if up.dims_num != 4:
            raise err(f"upsample_param.dims_num {up.dims_num} is not supported (only 4: an (N, C, H, W) blob)")
        if up.scale < 1:
            raise err(f"upsample_param.scale must be at least 1 (got {up.scale})")
        return UpsampleParams(scale=up.scale)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        c, h, w = one_input(net, layer)
        scale = layer.params.scale  # type: ignore[union-attr]
        return c, h * scale, w * scale

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        scale = layer.params.scale  # type: ignore[union-attr]
        return [inputs[0].repeat(scale, axis=2).repeat(scale, axis=3)]

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        return layer.params.scale == 1  # type: ignore[union-attr]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
        if self.emits_no_call(ctx.net, layer):
            return None
        scale = layer.params.scale  # type: ignore[union-attr]
        c, h, w = ctx.shape(layer.bottoms[0])
        return Op(layer=layer.name, layer_type=layer.type, output=layer.tops[0], kernel=UPSAMPLE,
                  function="nn_upsample_nearest_q7", inputs=ctx.bottoms[:1], in_shape=hwc((c, h, w)),
                  args={"in_h": h, "in_w": w, "ch": c, "scale_h": scale, "scale_w": scale},
                  formats={"in_frac": ctx.frac(layer.bottoms[0]), "out_frac": ctx.frac(layer.tops[0])})
