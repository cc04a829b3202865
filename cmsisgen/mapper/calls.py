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
    """An activation tensor as the generated code holds it: HWC int8 in Q(7-frac).frac."""

    name: str
    shape: tuple[int, int, int]  # (C, H, W), Caffe order, for reports
    frac: int

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

    @property
    def kind(self) -> str:
        return self.kernel.kind


@dataclass
class Program:
    name: str
    ops: list[Op]
    tensors: dict[str, TensorInfo]
    input: str
    output: str
    input_shape: tuple[int, int, int]  # (C, H, W) of the raw image run_nn() takes
    warnings: list[str] = field(default_factory=list)
    #: (C, H, W) when the output is spatial: run_nn() then writes it HWC, while Caffe's
    #: output (and the float forward) is in C, H, W order.
    output_hwc: Optional[tuple[int, int, int]] = None
    #: the CMSIS-NN API the ops call (ops.base.BACKENDS): the code generator's frame follows it
    backend: str = "q7"
    #: s8: the output's scale and zero point (cmsisgen.s8.quantization.TensorQuant)
    output_quant: Any = None

    def output_in_caffe_order(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) simulator/firmware scores -> Caffe's element order."""
        if self.output_hwc is None:
            return scores
        c, h, w = self.output_hwc
        return scores.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(len(scores), -1)
