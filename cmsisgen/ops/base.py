"""The op interface: what every pipeline stage asks of one Caffe layer kind.

A :class:`LayerKind` holds everything cmsisgen knows about one Caffe layer type: its shape
rule and blob shapes (graph IR), its float forward with Caffe semantics (reference), its
part in Qm.n quantization, and, per backend, how it lowers onto kernel calls: the
candidate functions with their rule predicates, the weight layout, and for each function
a :class:`Kernel` -- the simulator model and the C text (call site, parameters, weights).
The pipeline stages iterate over the graph and ask the kind; none of them names a layer
type.

Backends are a second axis: a kind lowers for backend ``b`` through its method
``lower_<b>`` (and checks through ``check_<b>``). The q7 backend (CMSIS_5 5.9.0's legacy
API) is ``lower_q7``; a second backend (the CMSIS-NN s8 API) adds ``lower_s8`` and its own
kernels next to the q7 ones, in the same module, without touching any stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper import rules
from ..mapper.rules import Rule, Site

if TYPE_CHECKING:  # imported for annotations only: the program imports nothing from here
    from ..mapper.calls import Op
    from ..quantizer import Quantization

Shape = tuple[int, int, int]

#: The backends a kind may lower for (a kind without ``lower_<backend>`` does not support it).
BACKENDS = ("q7", "s8")


@dataclass(frozen=True)
class Kernel:
    """One function cmsisgen emits a call to: how the simulator computes it and the C it writes.

    ``kind`` names the call in programs, reports and tests ("conv", "maxpool", ...).
    ``simulate(op, inputs)`` gets input 0 in the HWC shape ``op.in_shape`` (N, H, W, C) and
    the other inputs in their own tensors' shapes, and returns the output as int8 NHWC.
    ``call``, ``parameters`` and ``weights`` are Jinja2 snippets for run_nn() in nn.c, for
    parameters.h and for weights.c (each array ``const TYPE NAME[SIZE] NN_WEIGHT_SECTION = {``,
    which weights.h declares); they see ``op``, ``p`` (the op's C prefix), ``buf``
    (tensor -> buffer macro) and ``out`` (the output buffer macro).
    ``source`` names the project's own C file that defines the function (empty for CMSIS-NN).
    """

    kind: str
    simulate: Callable[["Op", list[np.ndarray]], np.ndarray]
    call: str
    parameters: str = ""
    weights: str = ""
    source: str = ""
    #: for a call that writes its output over its input: how it does so on the planned
    #: memory, (op, memory, offset, size) -> None, where the order of its reads and writes
    #: matters (the simulator of planned memory runs it there)
    over_input: Optional[Callable[["Op", np.ndarray, int, int], None]] = None


@dataclass(frozen=True)
class Candidate:
    """A function a layer may lower to, with the rules that must hold for it to be chosen,
    the rules that only warn (the result departs from Caffe), and the rule under which its
    output may be written over its input."""

    function: str
    rules: tuple[Rule, ...]
    advisories: tuple[Rule, ...] = ()
    in_place: Optional[Rule] = None


@dataclass(frozen=True)
class Choice:
    """Candidates for one key of a kind (its layer type, or type/variant), in order of preference."""

    key: str
    candidates: tuple[Candidate, ...]
    note: str = ""

    def functions(self) -> list[str]:
        return [c.function for c in self.candidates]

    def candidate(self, function: str) -> Candidate:
        return next(c for c in self.candidates if c.function == function)


@dataclass
class LoweringContext:
    """What a kind's lowering reads besides its layer: the graph, the quantization, where the
    inputs' bytes live and what the user forced."""

    net: ir.Net
    quant: "Quantization"
    bottoms: list[str]  # storage tensor of each input (aliases resolved)
    held: Optional[Shape]  # the spatial (C, H, W) whose HWC bytes input 0 holds, if not its own shape
    fc_variant: str = "opt"
    forced: dict[str, str] = field(default_factory=dict)  # layer -> function (--kernel)
    cpu: str = "cortex-m7"  # --cpu: the core the s8 calls are planned for (cmsisgen.s8.cpu)

    def shape(self, tensor: str) -> Shape:
        return self.net.shapes[tensor]

    def frac(self, tensor: str) -> int:
        return self.quant.tensor_frac[tensor]


class LayerKind:
    """Base of every layer kind; subclasses override what their layer type needs.

    Quantization attributes (see :mod:`cmsisgen.quantizer`): ``keeps_format`` -- the output
    holds (a subset of) its inputs' values, so inputs and output share one Q format;
    ``weighted`` -- weights and bias quantized with the convolutions' shifts;
    ``fixed_output_frac`` -- the kernel writes one Q format whatever the range (see
    :meth:`clamps` and :meth:`output_frac_bound` for the rest); ``input_range_limit`` --
    input values beyond it saturate where the function is flat anyway. Layout attributes: ``alias`` -- no code, the output is the
    input's bytes; ``keeps_bytes`` -- the output has its input's byte order (aliases and
    in-place elementwise ops), so a Flatten's HWC-vs-CHW note passes through it;
    ``reads_any_byte_order`` -- the layer can absorb a permutation of its input (an inner
    product's weight columns).
    """

    types: tuple[str, ...] = ()
    keeps_format = False
    weighted = False
    fixed_output_frac: Optional[int] = None
    input_range_limit: Optional[float] = None
    alias = False
    keeps_bytes = False
    reads_any_byte_order = False
    #: Folding (cmsisgen.fold): an affine kind is a per-channel ``x * factor + offset``; an
    #: absorbing kind can take one into its weights.
    affine = False
    absorbs_affine = False
    #: Float forward (cmsisgen.float_forward): the kind's ``forward`` gives the same floats
    #: whatever the memory order of its NCHW inputs (no float sum over a strided axis), so a
    #: tensor held NHWC in memory reaches it without a transposing copy; other kinds get C order.
    forward_any_layout = False

    def affine_factors(self, layer: ir.Layer) -> tuple[np.ndarray, np.ndarray]:
        """An affine kind's ``(factor, offset)`` per channel, float64."""
        raise NotImplementedError(layer.type)

    def absorb_affine(self, layer: ir.Layer, factor: np.ndarray, offset: np.ndarray) -> None:
        """Fold ``x * factor + offset`` per output channel into an absorbing kind's weights."""
        raise NotImplementedError(layer.type)

    # --- loading ---------------------------------------------------------------------------
    def parse(self, layer: Any, err: Callable[[str], CmsisgenError]) -> ir.LayerParams:
        """The layer's Caffe parameter message (current or V1) as the IR's frozen params, with
        Caffe's defaults; ``err`` makes an error naming the file and the layer."""
        return ir.NoParams()

    # --- graph IR -------------------------------------------------------------------------
    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        """Caffe's shape rule for ``layer.tops`` (all tops share it)."""
        return one_input(net, layer)

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        """The blob shapes Caffe allocates for the layer (``net.shapes`` filled)."""
        return []

    # --- float reference --------------------------------------------------------------------
    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Float32 NCHW outputs, one per top, with Caffe's semantics."""
        raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): no float implementation")

    # --- quantization -------------------------------------------------------------------------
    def clamps(self, layer: ir.Layer) -> bool:
        """The output is max(x, 0): a tensor read only by such layers needs its positive range only."""
        return False

    def output_group_error(self, layer: ir.Layer, other: str, value: float, through: str) -> str:
        """Why a tensor tied (``through`` format-keeping layers) to a fixed output format cannot share it."""
        return (f"layer '{layer.name}' ({layer.type}): its kernel writes Q{7 - (self.fixed_output_frac or 0)}."
                f"{self.fixed_output_frac}, but its output shares one format (through {through}) with '{other}', "
                f"whose values reach {value:g}")

    def bound_cycle_error(self, layer: ir.Layer, through: str) -> str:
        """Why no output format satisfies :meth:`output_frac_bound` (the output is tied to its own input)."""
        return (f"layer '{layer.name}' ({layer.type}): no Q formats give non-negative shifts: its output "
                f"shares a format with its own input (through {through})")

    def output_frac_bound(self, layer: ir.Layer, frac: Callable[[str], int],
                          weight_frac: dict[str, int], bias_frac: dict[str, int]) -> Optional[int]:
        """Most fractional bits the output may have given its inputs' formats (None: any)."""
        return None

    def quantize_params(self, net: ir.Net, layer: ir.Layer, tensor_frac: dict[str, int]) -> Any:
        """Integer parameters of the layer once every tensor's format is known (None: none)."""
        return None

    # --- lowering ------------------------------------------------------------------------------
    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        """The layer's geometry as the rules see it."""
        return generic_site(net, layer)

    #: the candidate list of a kind with one (kinds with several override :meth:`choices`)
    choice: Optional[Choice] = None

    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        """The candidate lists this kind chooses from: for ``layer``, or every one (docs, --kernel)."""
        return (self.choice,) if self.choice is not None else ()

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        """Refuse, before calibration, a layer no q7 function can run (or the forced one cannot)."""
        for choice in self.choices(layer, fc_variant):
            choose(choice, self.site(net, layer), forced)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Union["Op", list["Op"], None]:
        """The q7 call for the layer (a list: one call per top, in order), or None for an alias (no code)."""
        raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): not supported by cmsisgen")

    def check_s8(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        """Refuse, before calibration, a layer the s8 backend cannot run (:mod:`cmsisgen.s8.lowering`)."""
        from ..s8.lowering import check_s8
        check_s8(self, net, layer, forced)

    def lower_s8(self, layer: ir.Layer, ctx: LoweringContext) -> Optional["Op"]:
        """The s8 call for the layer (:mod:`cmsisgen.s8.lowering`), or None when it emits no code."""
        from ..s8.lowering import lower_s8
        return lower_s8(self, layer, ctx)

    # --- evaluation ----------------------------------------------------------------------------
    def class_count(self, net: ir.Net, layer: ir.Layer) -> Optional[int]:
        """For a layer whose output is the predicted class itself (ArgMax): how many classes it
        picks from, and evaluate's top-1 is that value; None: the output holds one score per class."""
        return None
    # --- layers with several different tops, or inputs read for their shape only ---------------
    def output_shapes(self, net: ir.Net, layer: ir.Layer) -> list[Shape]:
        """Caffe's shape rule for each top (a kind whose tops differ, such as Slice, overrides it)."""
        return [self.output_shape(net, layer)] * len(layer.tops)

    def format_bottoms(self, layer: ir.Layer) -> list[str]:
        """The inputs a ``keeps_format`` kind ties to its output's format (Crop reads its second
        input for its shape only)."""
        return list(layer.bottoms)

    def own_format(self, net: ir.Net, layer: ir.Layer, forced: Optional[str]) -> bool:
        """A ``keeps_format`` layer whose q7 kernel can rescale after all (``forced``: the
        --kernel function, if any): its output gets its own calibrated format, never coarser
        than its input's (average pooling on nn_pool_q7)."""
        return False

    def own_format_min_gain(self, net: ir.Net, layer: ir.Layer) -> int:
        """The fractional bits an own format must add over the input's to be kept (else the
        layer shares its input's format): what the finer format costs may outweigh one bit."""
        return 1


def fail(net: ir.Net, layer: ir.Layer, message: str) -> CmsisgenError:
    """A shape-rule error naming the prototxt and the layer."""
    prefix = f"{net.source}: " if net.source else ""
    return CmsisgenError(f"{prefix}layer '{layer.name}' ({layer.type}): {message}")


def one_input(net: ir.Net, layer: ir.Layer) -> Shape:
    """The shape of a layer's single input (an error when it has another number of inputs)."""
    if len(layer.bottoms) != 1:
        raise fail(net, layer, f"expects 1 input, got {len(layer.bottoms)}")
    return net.shapes[layer.bottoms[0]]


def generic_site(net: ir.Net, layer: ir.Layer, **geometry: Any) -> Site:
    """A Site from the layer's first input and output shapes, plus kind-specific ``geometry``."""
    c, h, w = net.shapes[layer.bottoms[0]]
    oc, oh, ow = net.shapes[layer.tops[0]]
    fields: dict[str, Any] = dict(layer=layer.name, type=layer.type, in_ch=c, in_h=h, in_w=w, out_ch=oc, out_h=oh,
                                  out_w=ow, inputs=len(layer.bottoms))
    fields.update(geometry)
    return Site(**fields)


def choose(choice: Choice, site: Site, forced: Optional[str] = None) -> str:
    """The function for ``site`` from ``choice`` (or the user's ``forced`` one, checked)."""
    return rules.choose(choice.key, [(c.function, c.rules) for c in choice.candidates], site, forced)


def advisories(choice: Choice, function: str, site: Site) -> list[str]:
    """Warnings for a chosen function (its advisory rules that fail)."""
    return [f"layer '{site.layer}': {rules.reason(rule, site)}"
            for rule in choice.candidate(function).advisories if not rule(site)]


def in_place(choice: Choice, function: str, site: Site) -> bool:
    """Whether the chosen function may write its output over its input for this layer."""
    rule = choice.candidate(function).in_place
    return rule is not None and rule(site)


def stem(layer: ir.Layer) -> dict[str, Any]:
    """The Op fields every lowering fills the same way."""
    return dict(layer=layer.name, layer_type=layer.type, output=layer.tops[0])


def formats(ctx: LoweringContext, layer: ir.Layer) -> dict[str, int]:
    """Input and output fractional bits of a single-input layer."""
    return {"in_frac": ctx.frac(layer.bottoms[0]), "out_frac": ctx.frac(layer.tops[0])}


def hwc(shape: Shape) -> tuple[int, int, int]:
    """(C, H, W) -> (H, W, C), the order the kernels read."""
    c, h, w = shape
    return h, w, c
