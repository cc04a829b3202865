"""What every s8 lowering reads from its :class:`~cmsisgen.ops.base.LoweringContext`: the
s8 quantization, a call's offsets and the activation range a fused ReLU leaves it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import ir
from ..ops.base import LoweringContext
from .cpu import scratch_core
from .roles import fused_relu

if TYPE_CHECKING:
    from ..quantizer_s8 import QuantizationS8

def core(ctx: LoweringContext) -> str:
    """The build whose *_get_buffer_size answers the plan uses: CMSIS-NN's DSP build for the
    Cortex-M7 (GCC), its MVE build for the Cortex-M55 (--cpu, :mod:`cmsisgen.s8.cpu`)."""
    return scratch_core(ctx.cpu)


def quant(ctx: LoweringContext) -> "QuantizationS8":
    """The context's quantization, which is the s8 one when an s8 lowering runs."""
    return ctx.quant  # type: ignore[return-value]


def act_range(ctx: LoweringContext, tensor: str) -> tuple[int, int]:
    """The activation range a call clamps to: from its output's zero point when a ReLU is fused."""
    zero = quant(ctx).tensors[tensor].zero_point
    return (max(-128, zero), 127) if fused_relu(ctx.net, tensor) else (-128, 127)


def offsets(ctx: LoweringContext, layer: ir.Layer) -> dict:
    """The negated input zero point and the output zero point, as the s8 calls take them."""
    tensors = quant(ctx).tensors
    return {"input_offset": -tensors[layer.bottoms[0]].zero_point,
            "output_offset": tensors[layer.tops[0]].zero_point}
