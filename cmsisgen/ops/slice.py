"""Caffe Slice: the input cut into consecutive parts along channels, height or width.

Each top is its own window of the input (one nn_copy_strided_q7 call per top): along
channels, a channel range of every HWC pixel (one memcpy per pixel, or per tensor when the
input is a vector); along height, a run of whole rows (one memcpy). A Slice with one top is
Caffe's shared blob: an alias. The tops keep the input's Q format.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ir
from ..mapper.calls import Op
from .base import Candidate, Choice, LoweringContext, Shape, fail, one_input
from .caffe_params import ErrorMaker
from .copy_kernels import ByteMover, strided_op, window_axes, window_offset

CHOICE = Choice("Slice", (Candidate("nn_copy_strided_q7", ()),),
                note="along channels, height or width (axis 1, 2 or 3), at slice_point or in equal parts: one "
                     "byte copy per top (a Slice with one top is an alias); the tops keep the input's Q format")

AXES = {1: "channels", 2: "height", 3: "width"}


@dataclass(frozen=True)
class SliceParams:
    """Caffe SliceParameter: ``axis`` of (N, C, H, W) (slice_dim given: that), ``points`` its slice_point."""

    axis: int = 1
    points: tuple[int, ...] = ()


class Slice(ByteMover):
    types = ("Slice",)
    choice = CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> SliceParams:
        sp = layer.slice_param
        if sp.HasField("axis") and sp.HasField("slice_dim"):
            raise err("slice_param: give axis or slice_dim, not both")
        axis = sp.slice_dim if sp.HasField("slice_dim") else sp.axis
        axis = axis + 4 if axis < 0 else axis
        if axis not in AXES:
            raise err(f"slicing along axis {axis} is not supported (only 1, 2 or 3: channels, height, width; "
                      "axis 0 is the batch)")
        return SliceParams(axis=axis, points=tuple(int(p) for p in sp.slice_point))

    def parts(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, int]]:
        """(start, size) of every top along the slice axis, as Caffe's SliceLayer::Reshape cuts it."""
        p: SliceParams = layer.params  # type: ignore[assignment]
        extent = one_input(net, layer)[p.axis - 1]
        tops = len(layer.tops)
        what = f"the input's {extent} {AXES[p.axis]}" if p.axis == 1 else f"the input's {AXES[p.axis]} {extent}"
        if p.points:
            if len(p.points) != tops - 1:
                raise fail(net, layer, f"{len(p.points)} slice_point values for {tops} tops (Caffe needs one "
                                       "fewer than the tops)")
            bounds = (0, *p.points, extent)
            if any(b <= a for a, b in zip(bounds, bounds[1:])):
                raise fail(net, layer, f"slice_point {list(p.points)} must increase strictly inside {what}")
            return [(a, b - a) for a, b in zip(bounds, bounds[1:])]
        if extent % tops:
            raise fail(net, layer, f"{tops} tops do not divide {what} evenly (give slice_point)")
        return [(i * extent // tops, extent // tops) for i in range(tops)]

    def output_shapes(self, net: ir.Net, layer: ir.Layer) -> list[Shape]:
        axis = layer.params.axis  # type: ignore[union-attr]
        shape = one_input(net, layer)
        return [tuple(size if i == axis - 1 else d for i, d in enumerate(shape))  # type: ignore[misc]
                for _, size in self.parts(net, layer)]

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        return self.output_shapes(net, layer)[0]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        axis = layer.params.axis  # type: ignore[union-attr]
        x = inputs[0]
        points = layer.params.points or [x.shape[axis] // len(layer.tops) * i  # type: ignore[union-attr]
                                         for i in range(1, len(layer.tops))]
        return [part.copy() for part in np.split(x, list(points), axis=axis)]

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        return len(layer.tops) == 1  # Caffe shares the blob

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Optional[list[Op]]:
        if self.emits_no_call(ctx.net, layer):
            return None
        axis = layer.params.axis  # type: ignore[union-attr]
        shape = ctx.shape(layer.bottoms[0])
        ops = []
        for top, (start, _) in zip(layer.tops, self.parts(ctx.net, layer)):
            first = tuple(start if i == axis - 1 else 0 for i in range(3))
            ops.append(strided_op(layer, ctx, top, window_offset(shape, first), window_axes(shape, ctx.shape(top)),
                                  f"{AXES[axis]} {start}..{start + ctx.shape(top)[axis - 1] - 1} into {top}",
                                  name=f"{layer.name}/{top}"))
        return ops
