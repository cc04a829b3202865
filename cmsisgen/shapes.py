"""Caffe's shape rules: fill ``Net.shapes`` with (C, H, W) for every tensor.

Each layer kind states its own rule (:meth:`cmsisgen.ops.base.LayerKind.output_shape`),
copied from Caffe's Reshape() code exactly (the pooling ceil rounding and the clipping of
a last window that would start in the padding included), because the generated C code
must produce feature maps of exactly the size the trained net expects.
"""
from __future__ import annotations

from cmsisgen import ir
from cmsisgen.ops import kind_of
from cmsisgen.ops.base import Shape, fail


def layer_output_shapes(net: ir.Net, layer: ir.Layer) -> list[Shape]:
    """Shapes of ``layer.tops`` given that its bottoms are already in ``net.shapes``."""
    for b in layer.bottoms:
        if b not in net.shapes:
            raise fail(net, layer, f"input '{b}' has no known shape")
    return kind_of(layer).output_shapes(net, layer)


def infer_shapes(net: ir.Net) -> None:
    """Fill ``net.shapes`` in layer order (the IR keeps layers in execution order)."""
    net.shapes = {k: tuple(v) for k, v in net.input_shapes.items()}  # type: ignore[misc]
    for layer in net.layers:
        for top, shape in zip(layer.tops, layer_output_shapes(net, layer)):
            if min(shape) <= 0:
                raise fail(net, layer, f"output '{top}' would have shape {shape}")
            net.shapes[top] = shape


def expected_blob_shapes(net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
    """The blob shapes Caffe allocates for ``layer`` (needs ``net.shapes`` filled): e.g.
    Convolution (O, C/group, kh, kw) [+ (O,)]; see each kind's ``blob_shapes``."""
    return kind_of(layer).blob_shapes(net, layer)
