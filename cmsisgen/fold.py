"""Fold BatchNorm and Scale layers away where the arithmetic allows, before calibration.

At inference both layers are a per-channel affine map ``y = x * factor + offset``. Folded
into the Convolution or InnerProduct that produces their input, they cost nothing and
lose no precision to an extra q7 rounding, so that is done whenever the producer's output
has no other reader (and is not a network output). What cannot be folded (a BatchNorm
after a pooling layer, on the network input, or on a tensor that a branch also reads)
stays as one canonical ``Scale`` layer with blobs ``[factor, offset]``, which the
quantizer treats as a weighted layer and the mapper emits as the project's own
per-channel q7 kernel. A BatchNorm directly followed by its Scale becomes one map.

The folded net is what gets calibrated, quantized and evaluated; its float outputs equal
the unfolded net's up to float32 rounding.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import ir
from .float_forward import batch_norm_factors

AFFINE = ("BatchNorm", "Scale")
FOLD_TARGETS = ("Convolution", "InnerProduct")


def fold_affine(net: ir.Net) -> list[str]:
    """Rewrite ``net`` in place (it must have weights); returns one note per folded layer."""
    notes: list[str] = []
    for layer in net.layers:
        if layer.type in AFFINE:
            _canonical(layer)
    changed = True
    while changed:
        changed = False
        for layer in list(net.layers):
            if layer.type != "Scale":
                continue
            producer = net.producer(layer.bottoms[0])
            if producer is None or not _sole_reader(net, layer):
                continue
            if producer.type in FOLD_TARGETS:
                _fold_into_weights(producer, layer)
            elif producer.type == "Scale":
                factor, offset = layer.blobs
                producer.blobs = [producer.blobs[0] * factor, producer.blobs[1] * factor + offset]
            else:
                continue
            notes.append(f"{layer.name} folded into {producer.name}")
            _bypass(net, producer, layer)
            changed = True
    return notes


def _canonical(layer: ir.Layer) -> None:
    """BatchNorm or Scale -> Scale with float32 blobs [factor, offset]."""
    if layer.type == "BatchNorm":
        factor, offset = batch_norm_factors(layer)
    else:
        factor = layer.blobs[0].astype(np.float64)
        offset = layer.blobs[1].astype(np.float64) if len(layer.blobs) > 1 else np.zeros_like(factor)
    layer.type = "Scale"
    layer.params = ir.ScaleParams(bias_term=True)
    layer.blobs = [factor.astype(np.float32), offset.astype(np.float32)]


def _sole_reader(net: ir.Net, layer: ir.Layer) -> bool:
    source = layer.bottoms[0]
    return source not in net.outputs and [r.name for r in net.consumers(source)] == [layer.name]


def _fold_into_weights(producer: ir.Layer, layer: ir.Layer) -> None:
    factor, offset = (b.astype(np.float64) for b in layer.blobs)
    weights = producer.blobs[0].astype(np.float64)
    p = producer.params
    if isinstance(p, ir.InnerProductParams) and p.transpose:
        weights = weights * factor[None, :]
    else:
        weights = weights * factor.reshape((-1,) + (1,) * (weights.ndim - 1))
    bias = producer.blobs[1].astype(np.float64) if len(producer.blobs) > 1 else np.zeros_like(factor)
    producer.blobs = [weights.astype(np.float32), (bias * factor + offset).astype(np.float32)]
    producer.params = dataclasses.replace(p, bias_term=True)  # type: ignore[type-var]


def _bypass(net: ir.Net, producer: ir.Layer, layer: ir.Layer) -> None:
    """The producer now writes the folded layer's output tensor; the old one disappears."""
    old = producer.tops[0]
    producer.tops = [layer.tops[0]] + producer.tops[1:]
    net.layers.remove(layer)
    net.shapes.pop(old, None)
