"""Fold BatchNorm and Scale layers away where the arithmetic allows, before calibration.

At inference both layers are a per-channel affine map ``y = x * factor + offset``. Folded
into the layer that produces their input (a kind that ``absorbs_affine``: Convolution,
ConvolutionDepthwise, Deconvolution, InnerProduct), they cost nothing and lose no precision to an extra q7 rounding, so that is
done whenever the producer's output has no other reader (and is not a network output).
What cannot be folded (a BatchNorm after a pooling layer, on the network input, or on a
tensor that a branch also reads) stays as one canonical Scale layer with blobs
``[factor, offset]``, which the quantizer treats as a weighted layer and the lowering
emits as the project's own per-channel q7 kernel. A BatchNorm directly followed by its
Scale becomes one map.

The folded net is what gets calibrated, quantized and evaluated; its float outputs equal
the unfolded net's up to float32 rounding.
"""
from __future__ import annotations

import numpy as np

from . import ir
from .ops import kind_of
from .ops.scale import SCALE


def fold_affine(net: ir.Net) -> list[str]:
    """Rewrite ``net`` in place (it must have weights); returns one note per folded layer."""
    notes: list[str] = []
    for layer in net.layers:
        kind = kind_of(layer)
        if kind.affine:
            SCALE.canonical(layer, *kind.affine_factors(layer))
    changed = True
    while changed:
        changed = False
        for layer in list(net.layers):
            if kind_of(layer) is not SCALE:
                continue
            producer = net.producer(layer.bottoms[0])
            if producer is None or not _sole_reader(net, layer):
                continue
            target = kind_of(producer)
            factor, offset = layer.blobs
            if target.absorbs_affine:
                target.absorb_affine(producer, factor.astype(np.float64), offset.astype(np.float64))
            elif target is SCALE:
                producer.blobs = [producer.blobs[0] * factor, producer.blobs[1] * factor + offset]
            else:
                continue
            notes.append(f"{layer.name} folded into {producer.name}")
            _bypass(net, producer, layer)
            changed = True
    return notes


def _sole_reader(net: ir.Net, layer: ir.Layer) -> bool:
    source = layer.bottoms[0]
    return source not in net.outputs and [r.name for r in net.consumers(source)] == [layer.name]


def _bypass(net: ir.Net, producer: ir.Layer, layer: ir.Layer) -> None:
    """The producer now writes the folded layer's output tensor; the old one disappears."""
    old = producer.tops[0]
    producer.tops = [layer.tops[0]] + producer.tops[1:]
    net.layers.remove(layer)
    net.shapes.pop(old, None)
