"""Which s8 check and lowering each layer kind gets (:meth:`LayerKind.check_s8` and
:meth:`LayerKind.lower_s8` come here).

Kept beside the q7 kinds rather than inside them, keyed by kind class, so that the s8 backend
grows one kind at a time without touching the q7 modules. A kind with no entry is refused
before calibration, naming the layer. The checks are in :mod:`.checks`, the lowerings in
:mod:`.lower_weighted`, :mod:`.lower_unweighted` and :mod:`.lower_own`, the calls' C in
:mod:`.calls`, and the quantization roles in :mod:`.roles`.
"""
from __future__ import annotations

from typing import Callable, Optional

from .. import ir
from ..mapper.calls import Op
from ..ops.argmax import ArgMax
from ..ops.base import LayerKind, LoweringContext
from ..ops.concat import Concat
from ..ops.convolution import Convolution
from ..ops.convolution_depthwise import ConvolutionDepthwise
from ..ops.copy_kernels import ByteMover
from ..ops.deconvolution import Deconvolution
from ..ops.eltwise import Eltwise
from ..ops.inner_product import InnerProduct
from ..ops.lrn import LRN
from ..ops.pooling import Pooling
from ..ops.relu import ReLU
from ..ops.scale import Scale
from ..ops.softmax import Softmax
from . import checks, lower_own, lower_unweighted, lower_weighted

Check = Callable[[ir.Net, ir.Layer], None]
Lower = Callable[[ir.Layer, LoweringContext], Optional[Op]]

#: kind class -> (check, lower)
_LOWERINGS: dict[type, tuple[Check, Lower]] = {
    Convolution: (checks.none, lower_weighted.convolution),
    InnerProduct: (checks.none, lower_weighted.inner_product),
    Pooling: (checks.pooling, lower_unweighted.pooling),
    ReLU: (checks.none, lower_unweighted.relu),
    Softmax: (checks.softmax, lower_unweighted.softmax),
    Eltwise: (checks.eltwise, lower_unweighted.eltwise),
    Concat: (checks.concat, lower_unweighted.concat),
    Scale: (checks.none, lower_weighted.scale),
    ArgMax: (checks.as_q7, lower_own.argmax),
    LRN: (checks.as_q7, lower_own.lrn),
    ConvolutionDepthwise: (checks.none, lower_weighted.convolution_depthwise),
    Deconvolution: (checks.as_q7, lower_weighted.deconvolution),
}


def _entry(kind: LayerKind) -> Optional[tuple[Check, Lower]]:
    """The kind's own entry, else the table lookup for per-value functions, else the byte
    copies' shared entry (same checks as q7) for the kinds that only move bytes."""
    entry = next((entry for cls, entry in _LOWERINGS.items() if type(kind) is cls), None)
    if entry is None and lower_own.table_kind(kind):
        return (checks.none, lower_own.lookup)
    if entry is None and isinstance(kind, ByteMover):
        return (checks.as_q7, lower_own.byte_mover)
    return entry


def check_s8(kind: LayerKind, net: ir.Net, layer: ir.Layer, forced: Optional[str]) -> None:
    """Refuse a layer the s8 backend cannot run yet, naming it, its type and the backend."""
    if forced is not None:
        raise checks.refusal(layer, f"kernel {forced}: --kernel is not supported by the s8 backend")
    if kind.alias:
        kind.check_q7(net, layer, "opt", None)  # the byte-order rules of Flatten/Reshape hold as in q7
        return
    entry = _entry(kind)
    if entry is None:
        raise checks.refusal(layer, "not supported by the s8 backend yet")
    entry[0](net, layer)


def lower_s8(kind: LayerKind, layer: ir.Layer, ctx: LoweringContext) -> Optional[Op]:
    """The s8 call for ``layer`` (None: an alias or a fused ReLU, no code)."""
    if kind.alias:
        return None
    entry = _entry(kind)
    if entry is None:
        raise checks.refusal(layer, "not supported by the s8 backend yet")
    return entry[1](layer, ctx)
