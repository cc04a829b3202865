"""Layers that only rename bytes: Dropout, Split, Flatten, Reshape (no code, no copy).

Activations are held HWC. A Flatten (or a Reshape to (N, K)) of a spatial tensor names its
HWC bytes, while Caffe's flattened order is C, H, W: only readers that can absorb a
permutation of their input (an inner product permutes its weight columns) may read such a
tensor, or the network output (reordered on the host). A Reshape that keeps the bytes'
meaning (the channel count kept, or a vector viewed as a 1-channel image) may feed
anything.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper.rules import Site, reason, rule
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, LayerKind, LoweringContext, Shape, fail, generic_site, one_input


@rule("read by {readers}")
def readers_take_any_byte_order(site: Site) -> bool:
    """A Flatten output, or a Reshape that reorders the HWC bytes activations are kept in, holds its input's HWC bytes under Caffe's C, H, W order: only inner products (their weight columns are permuted to the bytes' order) may read it, through aliases and ReLUs, or it is the network output."""
    return not site.readers


CHOICE = Choice("Dropout, Split, Flatten, Reshape", (Candidate("(no code: the buffer is shared)",
                                                               (readers_take_any_byte_order,)),),
                note="aliases: the output is the input's bytes; a Reshape to (N, K) or one that keeps the "
                     "channel count may feed anything")


class Alias(LayerKind):
    """A layer whose every output is its input's bytes, in the same order (Dropout, Split)."""

    keeps_format = True
    alias = True
    choice = CHOICE
    keeps_bytes = True

    def __init__(self, caffe_type: str) -> None:
        self.types = (caffe_type,)

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0]] * len(layer.tops)

    def held_layout(self, net: ir.Net, layer: ir.Layer, held: dict[str, Shape]) -> Optional[Shape]:
        """The spatial (C, H, W) whose HWC bytes the output holds, when not its own shape."""
        return held.get(layer.bottoms[0])

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        """Dropout and Split pass a byte-order note on; only Flatten and Reshape start one."""

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> None:
        return None


class Flatten(Alias):
    keeps_bytes = False

    def __init__(self) -> None:
        super().__init__("Flatten")

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        held = held_layouts(net)
        if layer.tops[0] in held and layer.bottoms[0] not in held:  # where a byte-order note starts
            readers = ", ".join(f"'{r.name}' ({r.type})" for r in _strict_readers(net, layer.tops[0], held))
            site = dataclasses.replace(generic_site(net, layer), readers=readers)
            if not readers_take_any_byte_order(site):
                raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): {reason(readers_take_any_byte_order, site)}")

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ReshapeParams:
        """Caffe FlattenLayer on (N, C, H, W): axes axis..end_axis become one; kept as the Reshape
        it is (0 copies a dimension, -1 takes the flattened ones)."""
        if not hasattr(layer, "flatten_param"):  # (a V1 layer has none: Caffe's defaults)
            return ir.ReshapeParams(dims=(0, -1))
        fp = layer.flatten_param
        axis, end = (a + 4 if a < 0 else a for a in (fp.axis, fp.end_axis))
        if not 1 <= axis <= end <= 3:
            raise err(f"Flatten from axis {fp.axis} to end_axis {fp.end_axis} is not supported (only axes 1-3 of "
                      "an (N, C, H, W) blob, axis <= end_axis: the batch stays)")
        return ir.ReshapeParams(dims=(0,) * axis + (-1,) + (0,) * (3 - end))

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        return _flattened(one_input(net, layer), _dims(layer))

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        return [x.reshape(x.shape[0], *_flattened(x.shape[1:], _dims(layer)))]

    def held_layout(self, net: ir.Net, layer: ir.Layer, held: dict[str, Shape]) -> Optional[Shape]:
        """A vector holds its source's HWC bytes under Caffe's C, H, W order (the source: the
        input, or the spatial tensor whose bytes the input already holds); a spatial output
        also holds its own HWC bytes unless the reshape reorders them."""
        c, h, w = net.shapes[layer.bottoms[0]]
        out = net.shapes[layer.tops[0]]
        source = held.get(layer.bottoms[0]) or (c, h, w)
        if out[1] * out[2] == 1:  # (a one-channel source's HWC bytes are its Caffe order)
            return source if source[0] > 1 and source[1] * source[2] > 1 else None
        return None if _reshape_keeps_bytes(source, out) else source


def _dims(layer: ir.Layer) -> tuple[int, ...]:
    """A Flatten's parameters as :meth:`Flatten.parse` writes them (Caffe's default for a layer
    built without them)."""
    return getattr(layer.params, "dims", (0, -1))


def _flattened(shape: Sequence[int], dims: tuple[int, ...]) -> Shape:
    """(C, H, W) after a Flatten whose parameters :meth:`Flatten.parse` wrote as ``dims``."""
    full = [1, *shape]
    axis = dims.index(-1)
    end = axis + 4 - len(dims)
    out = full[:axis] + [int(np.prod(full[axis:end + 1]))] + full[end + 1:]
    return tuple(out[1:]) + (1,) * (4 - len(out))  # type: ignore[return-value]


def _reshape_keeps_bytes(held: Shape, out: Shape) -> bool:
    """Whether HWC bytes of shape ``held`` are also the HWC bytes of the Caffe reshape to
    ``out``: pixels regrouped row-major with the channel count kept, or a vector (CHW order is
    HWC order) viewed as a 1-channel image."""
    c, h, w = held
    return out[0] == c or (h * w == 1 and out[0] == 1)


class Reshape(Flatten):
    def __init__(self) -> None:
        Alias.__init__(self, "Reshape")

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ReshapeParams:
        rp = layer.reshape_param
        if rp.axis != 0 or rp.num_axes != -1:
            raise err(f"Reshape of part of the shape (axis {rp.axis}, num_axes {rp.num_axes}) is not supported; "
                      "give the whole shape (axis 0, num_axes -1)")
        return ir.ReshapeParams(dims=tuple(int(d) for d in rp.shape.dim))

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        """Caffe ReshapeLayer on the whole (1, C, H, W) blob: 0 copies the input's dimension at
        that index, one -1 is inferred; the batch stays 1; (N, K) means (K, 1, 1)."""
        dims_param: tuple[int, ...] = layer.params.dims  # type: ignore[union-attr]
        c, h, w = one_input(net, layer)
        full = (1, c, h, w)
        if not 1 <= len(dims_param) <= 4:
            raise fail(net, layer, f"shape {list(dims_param)} must have 1 to 4 dimensions")
        dims = [full[i] if d == 0 else d for i, d in enumerate(dims_param)]
        if dims.count(-1) > 1 or any(d < -1 for d in dims):
            raise fail(net, layer, f"shape {list(dims_param)}: at most one -1 and no other negative dimension")
        known = int(np.prod([d for d in dims if d != -1]))
        if -1 in dims:
            if known == 0 or (c * h * w) % known:
                raise fail(net, layer, f"shape {list(dims_param)} does not divide the input's {c * h * w} values")
            dims[dims.index(-1)] = c * h * w // known
        if dims[0] != 1 or len(dims) == 1:
            raise fail(net, layer, f"shape {list(dims_param)} must keep the batch as the first dimension")
        out = tuple(dims[1:]) + (1,) * (4 - len(dims))
        if out[0] * out[1] * out[2] != c * h * w:
            raise fail(net, layer, f"shape {list(dims_param)} holds {out[0] * out[1] * out[2]} values, "
                                   f"the input {c * h * w}")
        return out  # type: ignore[return-value]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(layer.params.dims)][1:]  # type: ignore[union-attr]
        out = x.reshape(x.shape[0], *dims)
        return [out.reshape(out.shape + (1,) * (4 - out.ndim))]


def held_layouts(net: ir.Net) -> dict[str, Shape]:
    """Tensors that hold a spatial tensor's HWC bytes under another shape (a Flatten output,
    and its aliases and in-place elementwise layers) -> the spatial (C, H, W) of those bytes."""
    from . import kind_of

    held: dict[str, Shape] = {}
    for layer in net.layers:
        kind = kind_of(layer)
        layout = getattr(kind, "held_layout", None)  # (aliases, and kinds that are aliases at times)
        if layout is not None:
            spatial = layout(net, layer, held)
        elif kind.keeps_bytes:
            spatial = held.get(layer.bottoms[0])
        else:
            continue
        if spatial is not None:
            held.update((top, spatial) for top in layer.tops)
    return held


def _strict_readers(net: ir.Net, tensor: str, held: dict[str, Shape]) -> list[ir.Layer]:
    """Layers that read ``tensor``'s bytes (directly, or through aliases and in-place
    elementwise layers that pass the byte-order note on) and need them in the tensor's own order."""
    from . import kind_of

    found: list[ir.Layer] = []
    for reader in net.consumers(tensor):
        kind = kind_of(reader)
        if kind.reads_any_byte_order or (kind.alias and reader.tops[0] not in held):
            continue
        if kind.alias or kind.keeps_bytes:
            found.extend(r for top in reader.tops for r in _strict_readers(net, top, held) if r not in found)
        elif reader not in found:
            found.append(reader)
    return found


DROPOUT = Alias("Dropout")
SPLIT = Alias("Split")
