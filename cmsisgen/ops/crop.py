"""Caffe Crop: the first input cut to the second input's shape from ``axis`` on, at ``offset``.

The second input is read for its shape only (FCN crops an upsampled score map to the image),
so only the first one shares the output's Q format. The crop is a window of the HWC input:
one nn_copy_strided_q7 call, a memcpy per row when every channel and the full width are
kept, per pixel otherwise. A crop that keeps the whole input is an alias.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, fail
from .caffe_params import ErrorMaker
from .copy_kernels import ByteMover, strided_op, window_axes, window_offset

CHOICE = Choice("Crop", (Candidate("nn_copy_strided_q7", ()),),
                note="the first input cut to the second input's shape from axis on (Caffe's offsets); the output "
                     "keeps the first input's Q format; a crop that keeps everything is an alias")


@dataclass(frozen=True)
class CropParams:
    """Caffe CropParameter: ``axis`` (canonical, of (N, C, H, W)) and ``offsets`` as given."""

    axis: int = 2
    offsets: tuple[int, ...] = ()


class Crop(ByteMover):
    types = ("Crop",)
    choice = CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> CropParams:
        cp = layer.crop_param
        axis = cp.axis + 4 if cp.axis < 0 else cp.axis
        if not 0 <= axis <= 3:
            raise err(f"crop_param.axis {cp.axis} is not an axis of an (N, C, H, W) blob")
        if len(cp.offset) > 1 and len(cp.offset) != 4 - axis:
            raise err(f"crop_param has {len(cp.offset)} offsets: give none, one, or one per axis from axis {axis} "
                      f"({4 - axis})")
        return CropParams(axis=axis, offsets=tuple(int(o) for o in cp.offset))

    def window(self, net: ir.Net, layer: ir.Layer) -> tuple[Shape, Shape]:
        """(start (c, y, x), size (C, H, W)) of the crop in the first input, as CropLayer::Reshape."""
        if len(layer.bottoms) != 2:
            raise fail(net, layer, f"expects 2 inputs (the blob to crop and the blob whose shape it takes), "
                                   f"got {len(layer.bottoms)}")
        p: CropParams = layer.params  # type: ignore[assignment]
        source, reference = (1, *net.shapes[layer.bottoms[0]]), (1, *net.shapes[layer.bottoms[1]])
        start, size = [0] * 4, list(source)
        for i in range(p.axis, 4):
            offset = p.offsets[0] if len(p.offsets) == 1 else p.offsets[i - p.axis] if p.offsets else 0
            if source[i] < reference[i] + offset:
                raise fail(net, layer, f"cannot crop {reference[i]} at offset {offset} from {source[i]} along axis "
                                       f"{i} ('{layer.bottoms[0]}' {net.shapes[layer.bottoms[0]]}, "
                                       f"'{layer.bottoms[1]}' {net.shapes[layer.bottoms[1]]})")
            start[i], size[i] = offset, reference[i]
        return tuple(start[1:]), tuple(size[1:])  # type: ignore[return-value]

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        return self.window(net, layer)[1]

    def format_bottoms(self, layer: ir.Layer) -> list[str]:
        return layer.bottoms[:1]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, reference = inputs
        p: CropParams = layer.params  # type: ignore[assignment]
        index = [slice(None)] * 4
        for i in range(p.axis, 4):
            offset = p.offsets[0] if len(p.offsets) == 1 else p.offsets[i - p.axis] if p.offsets else 0
            index[i] = slice(offset, offset + reference.shape[i])
        return [x[tuple(index)].copy()]

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        return self.window(net, layer)[1] == net.shapes[layer.bottoms[0]]  # nothing cut away

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
        if self.emits_no_call(ctx.net, layer):
            return None
        start, size = self.window(ctx.net, layer)
        shape = ctx.shape(layer.bottoms[0])
        return strided_op(layer, ctx, layer.tops[0], window_offset(shape, start), window_axes(shape, size),
                          f"window of {size[0]} channels x {size[1]} x {size[2]} from channel {start[0]}, "
                          f"row {start[1]}, column {start[2]}")
