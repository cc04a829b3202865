"""Lowering: a quantized Net becomes a Program of kernel calls, one backend at a time.

Per layer it asks the layer's kind (:mod:`cmsisgen.ops`) for the call: the kind picks the
function by its rule predicates (or the one the user forced with ``--kernel``), lays the
weights out the way that function reads them and records the exact scratch it needs.
Aliases (Dropout, Split, Flatten, Reshape, and a byte mover whose setting moves nothing, such
as a Slice with one top) emit nothing: their outputs name their inputs' bytes. A Slice emits
one call per top.
"""
from __future__ import annotations

from typing import Optional

from .. import ir
from ..errors import CmsisgenError
from ..ops import kind_of
from ..ops.alias import held_layouts
from ..ops.base import BACKENDS, LayerKind, LoweringContext, advisories
from ..ops.network_input import lower_input_q7
from ..preprocess import Preprocessing
from ..quantizer import Quantization
from .calls import NetworkOutput, Program, TensorInfo


def map_network(net: ir.Net, quant: Quantization, pre: Preprocessing, fc_variant: str = "opt",
                forced: Optional[dict[str, str]] = None, backend: str = "q7", cpu: str = "cortex-m7") -> Program:
    """Build the Program for ``net`` on ``backend`` for the core ``cpu``; ``net`` must have
    passed :func:`check_supported`."""
    (input_name, input_shape), = net.input_shapes.items()
    scales = getattr(quant, "tensors", {})  # (s8: each tensor's scale and zero point)
    tensors = {name: TensorInfo(name, tuple(shape), quant.tensor_frac.get(name, 0), scales.get(name))
               for name, shape in net.shapes.items()}
    alias: dict[str, str] = {}  # alias tensor -> tensor that holds its bytes
    held = held_layouts(net)

    def storage(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    ops = [_lower_input(backend, input_name, tuple(input_shape), quant, pre)]
    warnings = list(quant.warnings)
    for layer in net.layers:
        kind = kind_of(layer)
        ctx = LoweringContext(net=net, quant=quant, bottoms=[storage(b) for b in layer.bottoms],
                              held=held.get(layer.bottoms[0]), fc_variant=fc_variant, forced=dict(forced or {}),
                              cpu=cpu)
        lowered = _lowering(kind, backend)(layer, ctx)
        if lowered is None:
            alias.update((top, layer.bottoms[0]) for top in layer.tops)
            continue
        for op in lowered if isinstance(lowered, list) else [lowered]:  # (a Slice: one call per top)
            for choice in kind.choices(layer, fc_variant):
                if op.function in choice.functions():
                    warnings.extend(advisories(choice, op.function, kind.site(net, layer)))
            ops.append(op)
    outputs = [_network_output(net, name, storage(name), held, quant) for name in net.outputs]
    return Program(name=net.name or "net", ops=ops, tensors=tensors, input=input_name, outputs=outputs,
                   input_shape=tuple(input_shape), warnings=warnings, backend=backend, cpu=cpu)


def _network_output(net: ir.Net, name: str, tensor: str, held: dict, quant: Quantization) -> NetworkOutput:
    """An output of the net as run_nn() writes it: named after its Caffe blob, its bytes those
    of ``tensor`` (the alias's source), HWC when spatial."""
    c, h, w = net.shapes[name]
    hwc = held.get(name) or ((c, h, w) if h * w > 1 else None)
    return NetworkOutput(blob=name.split("@")[0], tensor=tensor, size=c * h * w, frac=quant.tensor_frac.get(tensor, 0),
                         hwc=hwc, quant=getattr(quant, "tensors", {}).get(tensor))


def _lower_input(backend: str, name: str, shape: tuple[int, int, int], quant, pre: Preprocessing):
    """The conversion of run_nn()'s uint8 image into the backend's input tensor."""
    if backend == "s8":
        from ..s8.input_step import lower_input_s8
        return lower_input_s8(name, shape, quant, pre)
    return lower_input_q7(name, shape, quant.tensor_frac[name], pre)


def _lowering(kind: LayerKind, backend: str):
    """The kind's ``lower_<backend>`` (every kind has one per backend in BACKENDS)."""
    return getattr(kind, f"lower_{backend}")


def check_supported(net: ir.Net, fc_variant: str = "opt", forced: Optional[dict[str, str]] = None,
                    backend: str = "q7") -> None:
    """Fail fast, before calibration: one input, an output computed by a layer, every layer with a function whose
    rules hold (the forced ones included), and every forced layer in the net."""
    if len(net.input_shapes) != 1:
        raise CmsisgenError(f"{net.source}: cmsisgen supports one network input, found {len(net.input_shapes)}")
    if not net.outputs:
        raise CmsisgenError(f"{net.source}: the network has no output computed by a layer")
    if backend not in BACKENDS:
        raise CmsisgenError(f"backend {backend}: not one of {', '.join(BACKENDS)}")
    forced = forced or {}
    layers = {layer.name: layer for layer in net.layers}
    for name, function in forced.items():
        _check_forced(layers.get(name), name, function)
    for layer in net.layers:
        getattr(kind_of(layer), f"check_{backend}")(net, layer, fc_variant, forced.get(layer.name))


def _check_forced(layer: Optional[ir.Layer], name: str, function: str) -> None:
    """A function forced for a layer must name a layer of the net that emits a call, and be one
    of its kind's functions (whether its rules hold is the kind's check)."""
    if layer is None:
        raise CmsisgenError(f"kernel {name}={function}: the network has no layer '{name}'")
    kind = kind_of(layer)
    if kind.alias:
        raise CmsisgenError(f"layer '{name}' ({layer.type}): kernel {function}: the layer emits no call "
                            "(its output is its input's bytes)")
    functions = list(dict.fromkeys(f for choice in kind.choices() for f in choice.functions()))  # each once
    if function not in functions:
        raise CmsisgenError(f"layer '{name}' ({layer.type}): kernel {function} is not a function for this layer "
                            f"(candidates: {', '.join(functions)})")
