"""Caffe BatchNorm and Scale: per-channel affine maps, folded away where possible.

:mod:`cmsisgen.fold` rewrites both into one canonical Scale with blobs ``[factor, offset]``
and folds it into the Convolution or InnerProduct before it when that layer's output has
no other reader. What stays (after a pooling, on the network input, on a tensor a branch
also reads) runs as the project's own nn_scale_q7: the accumulator of a 1x1 depthwise
convolution, with the convolutions' shifts.
"""
from __future__ import annotations


from typing import Any

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..simulator.kernels import nn_round, saturate_q7
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, stem
from .weighted import WEIGHT_ARRAYS, weighted_formats

#: nn_scale_q7 counts channels and pixels in uint32_t.
UINT32_MAX = 2**32 - 1


@rule("{in_ch} channels x {in_h}x{in_w} pixels")
def sizes_fit_uint32(site: Site) -> bool:
    """nn_scale_q7 (the project's own kernel) multiplies each channel by its q7 factor and adds its bias with the convolutions' shifts, on any shape whose size fits a uint32_t."""
    return site.in_ch * site.in_h * site.in_w <= UINT32_MAX


CHOICE = Choice("BatchNorm, Scale", (Candidate("nn_scale_q7", (sizes_fit_uint32,)),),
                note="only where it cannot be folded into the Convolution or InnerProduct before it")


def scale_q7(x: np.ndarray, mult: np.ndarray, bias: np.ndarray, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """``nn_scale_q7`` on NHWC ``x``: per channel c,
    ``sat8(((bias[c] << bias_lshift) + NN_ROUND(out_rshift) + x * mult[c]) >> out_rshift)``."""
    acc = (bias.astype(np.int64) << bias_lshift) + nn_round(out_rshift) + x.astype(np.int64) * mult.astype(np.int64)
    return saturate_q7(acc >> out_rshift)


SCALE_Q7 = Kernel(
    "scale", lambda op, inputs: scale_q7(inputs[0], op.weights, op.bias, op.formats["bias_lshift"],
                                         op.formats["out_rshift"]),
    call="""\
    /* {{ op.layer }} */
    nn_scale_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_WT, {{ prefix }}_BIAS, {{ prefix }}_CH, {{ prefix }}_PIXELS,
                {{ prefix }}_BIAS_LSHIFT, {{ prefix }}_OUT_RSHIFT, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, per-channel factor and bias; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, factors Q{{ 7 - f.weight_frac }}.{{ f.weight_frac }}, bias Q{{ 7 - f.bias_frac }}.{{ f.bias_frac }}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_CH {{ a.channels }}
#define {{ prefix }}_PIXELS {{ a.pixels }}
#define {{ prefix }}_BIAS_LSHIFT {{ f.bias_lshift }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
#define {{ prefix }}_BIAS_SIZE {{ op.bias.size }}
""",
    weights="{% set about = ', one factor per channel' %}\n" + WEIGHT_ARRAYS, source="nn_scale_q7.c")


def batch_norm_factors(layer: ir.Layer) -> tuple[np.ndarray, np.ndarray]:
    """Caffe BatchNorm (stored statistics) as ``y = x * factor + offset`` per channel, float64.

    Caffe divides the stored sums by the scale factor blob (0 -> statistics of 0), then
    computes ``(x - mean) / sqrt(variance + eps)``.
    """
    mean, variance, count = (np.asarray(b, dtype=np.float64) for b in layer.blobs[:3])
    inv = 0.0 if count.reshape(-1)[0] == 0 else 1.0 / float(count.reshape(-1)[0])
    factor = 1.0 / np.sqrt(variance * inv + layer.params.eps)  # type: ignore[union-attr]
    return factor, -mean * inv * factor


class BatchNorm(LayerKind):
    """Caffe BatchNorm with its stored statistics (blobs: mean, variance, scale factor)."""

    types = ("BatchNorm",)
    choice = CHOICE
    affine = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.BatchNormParams:
        bp = layer.batch_norm_param
        if bp.HasField("use_global_stats") and not bp.use_global_stats:
            raise err("use_global_stats: false normalises with each batch's own statistics; "
                      "only the stored statistics can be deployed")
        return ir.BatchNormParams(eps=float(bp.eps))

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        c = net.shapes[layer.bottoms[0]][0]
        return [(c,), (c,), (1,)]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Caffe's order of float32 operations: subtract the mean, then divide by the deviation."""
        mean, variance, count = layer.blobs[:3]
        inv = np.float32(0.0 if count.reshape(-1)[0] == 0 else 1.0 / count.reshape(-1)[0])
        std = np.sqrt(variance.astype(np.float32) * inv + np.float32(layer.params.eps))  # type: ignore[union-attr]
        centred = inputs[0] - (mean.astype(np.float32) * inv)[None, :, None, None]
        return [(centred / std[None, :, None, None]).astype(np.float32)]

    def affine_factors(self, layer: ir.Layer) -> tuple[np.ndarray, np.ndarray]:
        return batch_norm_factors(layer)


class Scale(LayerKind):
    """Caffe Scale along channels with a learned factor per channel (blobs: factor [, bias]);
    after folding, the canonical form of every BatchNorm/Scale left standing."""

    types = ("Scale",)
    choice = CHOICE
    affine = True
    weighted = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ScaleParams:
        sp = layer.scale_param
        if len(layer.bottom) != 1:
            raise err("a Scale with its factors in a second input is not supported (only learned factors)")
        if sp.axis not in (1, -3) or sp.num_axes != 1:
            raise err(f"Scale is supported along channels only (axis 1, num_axes 1; got axis {sp.axis}, "
                      f"num_axes {sp.num_axes})")
        return ir.ScaleParams(bias_term=sp.bias_term)

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        c = net.shapes[layer.bottoms[0]][0]
        return [(c,), (c,)] if layer.params.bias_term else [(c,)]  # type: ignore[union-attr]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """``x * factor (+ bias)``."""
        out = inputs[0] * layer.blobs[0].astype(np.float32)[None, :, None, None]
        if len(layer.blobs) > 1:
            out = out + layer.blobs[1].astype(np.float32)[None, :, None, None]
        return [out.astype(np.float32)]

    def affine_factors(self, layer: ir.Layer) -> tuple[np.ndarray, np.ndarray]:
        factor = layer.blobs[0].astype(np.float64)
        offset = layer.blobs[1].astype(np.float64) if len(layer.blobs) > 1 else np.zeros_like(factor)
        return factor, offset

    def canonical(self, layer: ir.Layer, factor: np.ndarray, offset: np.ndarray) -> None:
        """Make ``layer`` the canonical Scale ``x * factor + offset`` (float32 blobs)."""
        layer.type = self.types[0]
        layer.params = ir.ScaleParams(bias_term=True)
        layer.blobs = [factor.astype(np.float32), offset.astype(np.float32)]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        function = choose(CHOICE, self.site(ctx.net, layer), ctx.forced.get(layer.name))
        lq = ctx.quant.layers[layer.name]
        c, h, w = ctx.shape(layer.bottoms[0])
        return Op(**stem(layer), kernel=SCALE_Q7, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args={"channels": c, "pixels": h * w}, weights=lq.weights, bias=lq.bias,
                  weight_data=lq.weights.reshape(-1), weight_bytes=lq.weights.size + lq.bias.size, in_place=True,
                  macs=c * h * w, formats=weighted_formats(ctx, layer, lq))


SCALE = Scale()
