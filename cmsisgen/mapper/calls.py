"""The lowering's output: a straight-line program of kernel calls over named tensors.

Everything downstream (buffer planner, simulator, code generator, report) reads this
one structure, so a kernel decision is made once, in the lowering (each op's
:class:`~cmsisgen.ops.base.Kernel` carries its simulator model and its C).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:
    from ..ops.base import Kernel


@dataclass(frozen=True)
class TensorInfo:
    """An activation tensor as the generated code holds it: HWC int8 in Q(7-frac).frac (q7), or
    at the scale and zero point of ``quant`` (s8)."""

    name: str
    shape: tuple[int, int, int]  # (C, H, W), Caffe order, for reports
    frac: int
    #: s8: its scale and zero point (cmsisgen.s8.quantization.TensorQuant); None on q7
    quant: Any = None

    @property
    def size(self) -> int:
        c, h, w = self.shape
        return c * h * w


@dataclass
class Op:
    """One emitted call.

    ``kernel`` is what is called: its simulator model and its C (:class:`cmsisgen.ops.base.Kernel`);
    ``kind`` is its short name. ``in_shape`` is input 0 as the kernel reads it, (H, W, C):
    a Flatten or Reshape alias may name the same bytes under another shape.
    ``args`` are the kernel's size arguments, by the names its C parameters use; ``formats``
    the Q formats (fractional bits) and shifts, each named once (``in_frac``, ``out_frac``,
    ``weight_frac``, ``bias_frac``, ``bias_lshift``, ``out_rshift``, ...) for Python, JSON
    and C alike. ``weights``/``bias`` are in the logical layout the simulator uses;
    ``weight_data`` is the flattened array exactly as emitted for the chosen function and
    ``weight_bytes`` the flash it takes with the bias. ``params`` holds any other value the
    kernel needs (the input conversion's constants, the channel order).

    Memory properties the buffer planner (:mod:`cmsisgen.mapper.buffers`) reads; a new
    kind of op declares them here instead of the planner knowing its function:
    ``in_place``: the output is written over input 0, from the same first byte (the
    planner gives both one offset, after copying input 0 when it is read later);
    ``clobbers_input``: the call destroys input 0 (copied first when read later);
    ``scratch_bytes``: working memory needed during this call only;
    ``reads_past_end``: bytes the call reads beyond the end of input 0 (they are
    reserved after that tensor, never used).
    """

    layer: str
    layer_type: str
    kernel: "Kernel"
    function: str
    inputs: list[str]
    output: str
    in_shape: tuple[int, int, int] = (0, 0, 0)
    args: dict[str, int] = field(default_factory=dict)
    weights: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    weight_data: Optional[np.ndarray] = None
    weight_bytes: int = 0
    scratch_bytes: int = 0
    in_place: bool = False
    clobbers_input: bool = False
    reads_past_end: int = 0
    macs: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    params: Any = None
    #: lines nn.c shows before this step: why the step order departs from the prototxt's (a
    #: ReLU moved after a max pool, or dropped, by mapper/commute.py)
    comments: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.kernel.kind


@dataclass(frozen=True)
class NetworkOutput:
    """One output of the network, as run_nn() writes it to the caller's pointer."""

    blob: str  # the Caffe blob name: run_nn()'s argument and the NN_OUTPUT_<BLOB>_* macros are named after it
    tensor: str  # the tensor whose bytes hold it (an alias's source tensor)
    size: int
    frac: int
    #: (C, H, W) when the output is spatial: run_nn() then writes it HWC, while Caffe's
    #: output (and the float forward) is in C, H, W order.
    hwc: Optional[tuple[int, int, int]] = None
    #: s8: its scale and zero point (cmsisgen.s8.quantization.TensorQuant); None on q7
    quant: Any = None

    def in_caffe_order(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) simulator/firmware values of this output -> Caffe's element order."""
        if self.hwc is None:
            return scores
        c, h, w = self.hwc
        return scores.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(len(scores), -1)


@dataclass
class Program:
    name: str
    ops: list[Op]
    tensors: dict[str, TensorInfo]
    input: str
    #: run_nn()'s outputs in its argument order: the order of the layers that compute them
    #: in the prototxt. The simulator returns them side by side in this order.
    outputs: list[NetworkOutput]
    input_shape: tuple[int, int, int]  # (C, H, W) of the raw image run_nn() takes
    warnings: list[str] = field(default_factory=list)
    #: the CMSIS-NN API the ops call (ops.base.BACKENDS): the code generator's frame follows it
    backend: str = "q7"
    #: the core the s8 calls are planned for (--cpu, cmsisgen.s8.cpu): scratch sizes, kernel sums
    cpu: str = "cortex-m7"

    @property
    def output(self) -> str:
        """The tensor of the first output (the only one of a single-output net)."""
        return self.outputs[0].tensor

    @property
    def output_size(self) -> int:
        """Bytes of every output together (the simulator's row)."""
        return sum(out.size for out in self.outputs)

    def split_outputs(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """(N, output_size) simulator/firmware rows -> {blob: (N, K) in Caffe's element order}."""
        parts, start = {}, 0
        for out in self.outputs:
            parts[out.blob] = out.in_caffe_order(scores[:, start:start + out.size])
            start += out.size
        return parts

    def output_in_caffe_order(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) rows of a single-output program -> Caffe's element order."""
        (out,) = self.outputs
        return out.in_caffe_order(scores)
