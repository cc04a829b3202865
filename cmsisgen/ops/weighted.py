"""What the layers with weights and a bias share (Convolution, InnerProduct, standalone Scale):
their Q formats and shifts in one dict, BatchNorm/Scale folded into their weights, and
their two flash arrays."""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import ir
from .base import LoweringContext

#: weights.h: the weight and bias arrays; ``about`` says how the weights are laid out.
WEIGHT_ARRAYS = """\
/* {{ op.layer }}: {{ op.function }}{{ about }} */
const q7_t {{ prefix }}_WT[{{ prefix }}_WT_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
const q7_t {{ prefix }}_BIAS[{{ prefix }}_BIAS_SIZE] NN_WEIGHT_SECTION = {
{{ op.bias | c_array }}
};
"""


def weighted_formats(ctx: LoweringContext, layer: ir.Layer, lq) -> dict[str, int]:
    """Input, output, weight and bias formats and the two shifts, each under its one name."""
    return {"in_frac": ctx.frac(layer.bottoms[0]), "out_frac": ctx.frac(layer.tops[0]),
            "weight_frac": lq.weight_frac, "bias_frac": lq.bias_frac, "bias_lshift": lq.bias_lshift,
            "out_rshift": lq.out_rshift}


def absorb_affine(layer: ir.Layer, weight_factor: np.ndarray, factor: np.ndarray, offset: np.ndarray) -> None:
    """Fold ``y = x * factor + offset`` (per output channel) into the layer's weights and bias;
    ``weight_factor`` is ``factor`` shaped to broadcast over the weight blob."""
    weights = layer.blobs[0].astype(np.float64) * weight_factor
    bias = layer.blobs[1].astype(np.float64) if len(layer.blobs) > 1 else np.zeros_like(factor)
    layer.blobs = [weights.astype(np.float32), (bias * factor + offset).astype(np.float32)]
    layer.params = dataclasses.replace(layer.params, bias_term=True)  # type: ignore[type-var]
