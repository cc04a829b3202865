"""The s8 backend's refusals before calibration: what a CMSIS-NN v7.0.0 call cannot take.

Each check raises a one-line error naming the layer and the call's limit; a kind without a
check here runs whatever its geometry (:mod:`cmsisgen.s8.lowering` pairs kinds with checks).
"""
from __future__ import annotations

from .. import ir
from ..errors import CmsisgenError
from ..mapper.rules import UINT16_MAX
from ..ops import kind_of

#: arm_softmax_s8's rows must be shorter than this (its final shift would pass 31 bits).
SOFTMAX_MAX_ROW = 511


def refusal(layer: ir.Layer, what: str) -> CmsisgenError:
    """The error for ``layer``, naming it and its type as every s8 refusal does."""
    return CmsisgenError(f"layer '{layer.name}' ({layer.type}): {what}")


def none(net: ir.Net, layer: ir.Layer) -> None:
    """Any geometry runs."""


def as_q7(net: ir.Net, layer: ir.Layer) -> None:
    """The q7 backend's rules hold: the kernel or byte copy is the q7 one on int8 bytes."""
    kind_of(layer).check_q7(net, layer, "opt", None)


def pooling(net: ir.Net, layer: ir.Layer) -> None:
    sizes = (*net.shapes[layer.bottoms[0]], *net.shapes[layer.tops[0]])
    if max(sizes) > UINT16_MAX:
        raise refusal(layer, f"a size above {UINT16_MAX}: the pooling calls take them as uint16_t")


def softmax(net: ir.Net, layer: ir.Layer) -> None:
    c = net.shapes[layer.bottoms[0]][0]
    if c > SOFTMAX_MAX_ROW:
        raise refusal(layer, f"{c} channels: arm_softmax_s8 takes rows of at most {SOFTMAX_MAX_ROW}")
    if net.consumers(layer.tops[0]):
        raise refusal(layer, "the s8 backend supports a Softmax only as a network output (it writes scale 1/256)")


def eltwise(net: ir.Net, layer: ir.Layer) -> None:
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    if p.operation == "prod" and len(layer.bottoms) != 2:
        raise refusal(layer, f"PROD of {len(layer.bottoms)} inputs: the s8 backend runs PROD of two inputs only "
                             "(arm_elementwise_mul_s8)")


def concat(net: ir.Net, layer: ir.Layer) -> None:
    c, h, w = net.shapes[layer.tops[0]]
    if max(c, h, w) > UINT16_MAX:
        raise refusal(layer, f"output {c}x{h}x{w}: arm_concatenation_s8_x takes uint16_t sizes (at most {UINT16_MAX})")
