"""Permute (SSD's layer, permute_param.order): the axes of the (N, C, H, W) blob reordered.

With the batch kept first, any order is a three-axis gather of the HWC input: the output
(C', H', W') is written HWC like every tensor (one nn_copy_strided_q7 call). The identity
order is an alias, and so is SSD's (0, 2, 3, 1) (NCHW -> NHWC) where the bytes are already
in place: the input's HWC bytes are the permuted blob in Caffe's order, which is how an
inner product, a Flatten to a vector or the network output read it (SSD's heads:
Permute, Flatten, Concat). Caffe's PermuteLayer appends the axes the order does not name,
in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, one_input
from .alias import Flatten, held_layouts
from .caffe_params import ErrorMaker
from .copy_kernels import ByteMover, strided_op

CHOICE = Choice("Permute", (Candidate("nn_copy_strided_q7", ()),),
                note="any order that keeps the batch as axis 0 (a byte gather into the permuted blob's HWC "
                     "layout); the output keeps the input's Q format. The identity order is an alias, and so is "
                     "SSD's order (0, 2, 3, 1) when only inner products, a Flatten or Reshape to a vector (through "
                     "Split, Dropout and ReLU) or the network output read it: the HWC bytes already are the "
                     "permuted blob in Caffe's order")


@dataclass(frozen=True)
class PermuteParams:
    """The full order of the four axes (as Caffe completes it)."""

    order: tuple[int, ...] = (0, 1, 2, 3)


class Permute(ByteMover):
    types = ("Permute",)
    choice = CHOICE

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

    def held_layout(self, net: ir.Net, layer: ir.Layer, held: dict[str, Shape]) -> Optional[Shape]:
        """An alias in SSD's order holds the permuted blob's bytes in Caffe's order, i.e. the HWC
        bytes of a one-row, one-channel image (an inner product reads them with its columns as
        Caffe has them, a Flatten makes them a plain vector)."""
        if layer.params.order == (0, 1, 2, 3):  # type: ignore[union-attr]
            return held.get(layer.bottoms[0])
        c, h, w = net.shapes[layer.tops[0]]
        return (1, 1, c * h * w) if self.is_alias(net, layer, held.get(layer.bottoms[0])) else None

    def is_alias(self, net: ir.Net, layer: ir.Layer, input_note: Optional[Shape]) -> bool:
        """Whether the layer emits no code: the identity order, or SSD's order (0, 2, 3, 1) on an
        input held in its own HWC order and read only as Caffe's flat order."""
        order = layer.params.order  # type: ignore[union-attr]
        return order == (0, 1, 2, 3) or (order == (0, 2, 3, 1) and input_note is None
                                         and _read_in_caffe_order(net, layer.tops[0]))

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        return self.is_alias(net, layer, held_layouts(net).get(layer.bottoms[0]))

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
        order = layer.params.order  # type: ignore[union-attr]
        if self.is_alias(ctx.net, layer, ctx.held):
            return None
        c, h, w = ctx.shape(layer.bottoms[0])
        count = {1: c, 2: h, 3: w}
        stride = {1: 1, 2: w * c, 3: c}  # of each Caffe axis in the HWC input
        # the output's HWC axes are its Caffe axes 2, 3, 1, i.e. input axes order[2], order[3], order[1]
        axes = [(count[order[i]], stride[order[i]]) for i in (2, 3, 1)]
        return strided_op(layer, ctx, layer.tops[0], 0, axes, f"order {list(order)}")


def _read_in_caffe_order(net: ir.Net, tensor: str) -> bool:
    """Whether every reader of ``tensor`` (through Split, Dropout and elementwise layers) takes
    it as Caffe's flat order: an inner product, or a Flatten or Reshape to a vector."""
    from . import kind_of

    for reader in net.consumers(tensor):
        kind = kind_of(reader)
        if kind.reads_any_byte_order:
            continue
        if isinstance(kind, Flatten) and net.shapes[reader.tops[0]][1:] == (1, 1):
            continue
        if not (kind.keeps_bytes and all(_read_in_caffe_order(net, top) for top in reader.tops)):
            return False
    return True
