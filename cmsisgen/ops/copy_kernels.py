"""The project's own kernels of the layers that only move bytes (firmware nn_copy_q7.c).

Slice, Crop, ShuffleChannel and Permute of an HWC tensor are all one gather:
``out[(i0 * n1 + i1) * n2 + i2] = in[offset + i0 * s0 + i1 * s1 + i2 * s2]``
(:func:`strided_op`), with the axes merged where they are contiguous so that the innermost
run is as long as the bytes allow (one memcpy for a whole channel range, row or tensor).
Nearest-neighbour Upsample repeats bytes instead, so it has its own kernel. Neither can
change a value, so every output keeps its input's Q format (``keeps_format``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper.calls import Op
from .base import Kernel, LayerKind, LoweringContext, hwc

#: (count, stride in bytes) of one axis of a gather, outermost first.
Axis = tuple[int, int]


def copy_strided_q7(x: np.ndarray, offset: int, axes: Sequence[Axis]) -> np.ndarray:
    """The bit-exact model of nn_copy_strided_q7 on a batch ``x`` (N, ...): (N, n0 * n1 * n2)."""
    index = np.full(1, offset, dtype=np.int64)
    for count, stride in axes:
        index = (index[:, None] + np.arange(count, dtype=np.int64)[None, :] * stride).reshape(-1)
    return x.reshape(len(x), -1)[:, index]


def upsample_nearest_q7(x: np.ndarray, scale_h: int, scale_w: int) -> np.ndarray:
    """The bit-exact model of nn_upsample_nearest_q7 on (N, H, W, C)."""
    return x.repeat(scale_h, axis=1).repeat(scale_w, axis=2)


def merge_axes(axes: Sequence[Axis]) -> list[Axis]:
    """The same gather with fewer, longer axes: an axis of count 1 is dropped, and an axis whose
    stride is the whole extent of the next one is merged into it (contiguous rows of a window,
    all channels of a pixel); padded to three axes in front with (1, 0)."""
    merged: list[Axis] = []
    for count, stride in axes:
        if count == 1:
            continue
        if merged and merged[-1][1] == count * stride:
            merged[-1] = (merged[-1][0] * count, stride)
        else:
            merged.append((count, stride))
    if len(merged) > 3:
        raise AssertionError(f"a gather of {len(merged)} axes")  # (the layers here gather at most three)
    return [(1, 0)] * (3 - len(merged)) + merged


STRIDED = Kernel(
    "copy_strided",
    lambda op, inputs: copy_strided_q7(inputs[0], op.args["offset"], _axes(op)),
    call="""\
    /* {{ op.layer }}: {{ op.params }} */
    nn_copy_strided_q7({{ buf[op.inputs[0]] }}{{ " + %s_OFFSET" % prefix if op.args.offset }}, {{ prefix }}_N0, {{ prefix }}_S0, {{ prefix }}_N1, {{ prefix }}_S1, {{ prefix }}_N2, {{ prefix }}_S2, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.params }}; a byte copy, Q{{ 7 - f.out_frac }}.{{ f.out_frac }} kept:
   out[(i0 * N1 + i1) * N2 + i2] = in[OFFSET + i0 * S0 + i1 * S1 + i2 * S2] */
{% if op.args.offset %}
#define {{ prefix }}_OFFSET {{ op.args.offset }}u
{% endif %}
{% for i in range(3) %}
#define {{ prefix }}_N{{ i }} {{ op.args["n%d" % i] }}u
#define {{ prefix }}_S{{ i }} {{ op.args["s%d" % i] }}u
{% endfor %}
""", source="nn_copy_q7.c")

UPSAMPLE = Kernel(
    "upsample_nearest",
    lambda op, inputs: upsample_nearest_q7(inputs[0], op.args["scale_h"], op.args["scale_w"]),
    call="""\
    /* {{ op.layer }} */
    nn_upsample_nearest_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_IN_H, {{ prefix }}_IN_W, {{ prefix }}_CH, {{ prefix }}_SCALE_H, {{ prefix }}_SCALE_W, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): nearest-neighbour upsampling by {{ op.args.scale_h }}x{{ op.args.scale_w }}; Q{{ 7 - f.out_frac }}.{{ f.out_frac }} kept */
#define {{ prefix }}_IN_H {{ op.args.in_h }}u
#define {{ prefix }}_IN_W {{ op.args.in_w }}u
#define {{ prefix }}_CH {{ op.args.ch }}u
#define {{ prefix }}_SCALE_H {{ op.args.scale_h }}u
#define {{ prefix }}_SCALE_W {{ op.args.scale_w }}u
""", source="nn_copy_q7.c")


class ByteMover(LayerKind):
    """A layer that only moves bytes: its output keeps its input's Q format, and where its
    setting leaves the bytes where they are it emits no call (an alias)."""

    keeps_format = True

    def emits_no_call(self, net: ir.Net, layer: ir.Layer) -> bool:
        """Whether the output is the input's bytes as they are (a kind's trivial settings)."""
        return False

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        """A function forced for a layer that emits no call is refused, as for the other aliases."""
        if forced is not None and self.emits_no_call(net, layer):
            raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): kernel {forced}: the layer emits no call "
                                "(its output is its input's bytes)")
        super().check_q7(net, layer, fc_variant, forced)


def _axes(op: Op) -> list[Axis]:
    return [(op.args[f"n{i}"], op.args[f"s{i}"]) for i in range(3)]


def strided_op(layer: ir.Layer, ctx: LoweringContext, top: str, offset: int, axes: Sequence[Axis],
               about: str, name: str = "") -> Op:
    """The nn_copy_strided_q7 call writing ``top`` from input 0 (``axes``: the output's HWC
    axes, outermost first, as (count, input stride)); ``name`` names the step (default: the layer)."""
    merged = merge_axes(axes)
    args = {"offset": offset, **{f"n{i}": n for i, (n, _) in enumerate(merged)},
            **{f"s{i}": s for i, (_, s) in enumerate(merged)}}
    return Op(layer=name or layer.name, layer_type=layer.type, output=top, kernel=STRIDED,
              function="nn_copy_strided_q7", inputs=ctx.bottoms[:1], in_shape=hwc(ctx.shape(layer.bottoms[0])),
              args=args, formats={"in_frac": ctx.frac(layer.bottoms[0]), "out_frac": ctx.frac(top)}, params=about)


def window_axes(shape: tuple[int, int, int], out: tuple[int, int, int]) -> list[Axis]:
    """The HWC axes of an ``out``-sized (C, H, W) window of an HWC tensor of ``shape``."""
    c, _, w = shape
    oc, oh, ow = out
    return [(oh, w * c), (ow, c), (oc, 1)]


def window_offset(shape: tuple[int, int, int], start: tuple[int, int, int]) -> int:
    """Byte offset of the window's first element (``start``: its (c, y, x))."""
    c, _, w = shape
    c0, y0, x0 = start
    return (y0 * w + x0) * c + c0
