"""ShuffleChannel (the ShuffleNet forks' layer, shuffle_channel_param.group): channels seen as
group x (C / group), transposed to (C / group) x group.

A per-pixel permutation of the HWC bytes: one nn_copy_strided_q7 call (output channel
k * group + g is input channel g * (C / group) + k). Group 1 or C changes nothing: an alias.
pycaffe here has no ShuffleChannel, so the float forward follows the fork's
ShuffleChannelLayer (Resize_cpu) as written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, fail, one_input
from .caffe_params import ErrorMaker
from .copy_kernels import ByteMover, strided_op

CHOICE = Choice("ShuffleChannel", (Candidate("nn_copy_strided_q7", ()),),
                note="group must divide the channels; group 1 or group = channels is an alias; the output keeps "
                     "the input's Q format")


@dataclass(frozen=True)
class ShuffleChannelParams:
    """The fork's ShuffleChannelParameter: ``group`` divides the channels."""

    group: int = 1


class ShuffleChannel(ByteMover):
    types = ("ShuffleChannel",)
    choice = CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> ShuffleChannelParams:
        group = layer.shuffle_channel_param.group
        if group < 1:
            raise err("shuffle_channel_param.group must be at least 1")
        return ShuffleChannelParams(group=group)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        shape = one_input(net, layer)
        group = layer.params.group  # type: ignore[union-attr]
        if shape[0] % group:
            raise fail(net, layer, f"group {group} does not divide the {shape[0]} input channels")
        return shape

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        n, c, h, w = x.shape
        group = layer.params.group  # type: ignore[union-attr]
        return [x.reshape(n, group, c // group, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w).copy()]

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        return layer.params.group in (1, net.shapes[layer.bottoms[0]][0])  # type: ignore[union-attr]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
        if self.emits_no_call(ctx.net, layer):
            return None
        c, h, w = ctx.shape(layer.bottoms[0])
        group = layer.params.group  # type: ignore[union-attr]
        return strided_op(layer, ctx, layer.tops[0], 0, [(h * w, c), (c // group, 1), (group, c // group)],
                          f"{c} channels as {group} groups of {c // group}, transposed")
