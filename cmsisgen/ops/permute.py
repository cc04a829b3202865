"""Permute (SSD's layer, permute_param.order): the axes of the (N, C, H, W) blob reordered.

With the batch kept first, any order is a three-axis gather of the HWC input: the output
(C', H', W') is written HWC like every tensor, so the readers after it (a Flatten and an
inner product, as in SSD's heads) see Caffe's order of the permuted blob with no note.
One nn_copy_strided_q7 call; the identity order is an alias. Caffe's PermuteLayer appends
the axes the order does not name, in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LayerKind, LoweringContext, Shape, one_input
from .caffe_params import ErrorMaker
from .copy_kernels import strided_op

CHOICE = Choice("Permute", (Candidate("nn_copy_strided_q7", ()),),
                note="any order that keeps the batch as axis 0 (a byte gather into the permuted blob's HWC "
                     "layout); the identity order is an alias; the output keeps the input's Q format")


@dataclass(frozen=True)
class PermuteParams:
    """The full order of the four axes (as Caffe completes it)."""

    order: tuple[int, ...] = (0, 1, 2, 3)


class Permute(LayerKind):
    types = ("Permute",)
    choice = CHOICE
    keeps_format = True

    def parse(self, layer: Any, err: ErrorMaker) -> PermuteParams:
        given = [int(o) for o in layer.permute_param.order]
        if any(o > 3 for o in given) or len(set(given)) != len(given):
            raise err(f"permute_param.order {given} must name distinct axes of an (N, C, H, W) blob (0-3)")
        order = tuple(given + [axis for axis in range(4) if axis not in given])
        if order[0] != 0:
            raise err(f"Permute with order {list(order)} moves the batch axis: not supported (axis 0 must stay "
                      "first)")
        return PermuteParams(order=order)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        dims = (1, *one_input(net, layer))
        order = layer.params.order  # type: ignore[union-attr]
        return dims[order[1]], dims[order[2]], dims[order[3]]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(inputs[0].transpose(layer.params.order))]  # type: ignore[union-attr]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
        order = layer.params.order  # type: ignore[union-attr]
        if order == (0, 1, 2, 3):
            return None
        c, h, w = ctx.shape(layer.bottoms[0])
        count = {1: c, 2: h, 3: w}
        stride = {1: 1, 2: w * c, 3: c}  # of each Caffe axis in the HWC input
        # the output's HWC axes are its Caffe axes 2, 3, 1, i.e. input axes order[2], order[3], order[1]
        axes = [(count[order[i]], stride[order[i]]) for i in (2, 3, 1)]
        return strided_op(layer, ctx, layer.tops[0], 0, axes, f"order {list(order)}")
