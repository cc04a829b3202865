"""The mapper's output: a straight-line program of CMSIS-NN calls over named tensors.

Everything downstream (buffer planner, simulator, code generator, report) reads this
one structure, so a kernel decision is made once, in the mapper.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..preprocess import InputFixedPoint


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

    ``kind`` selects the simulator kernel and the template snippet: "input", "conv",
    "maxpool", "avepool", "relu", "fc", "softmax", "concat" or "copy".
    ``args`` are the CMSIS-NN size arguments by their upstream parameter names.
    ``weights``/``bias`` are in the logical layout the simulator uses; ``weight_data``
    is the flattened int8 array exactly as emitted for the chosen function.

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
    kind: str
    function: str
    inputs: list[str]
    output: str
    args: dict[str, int] = field(default_factory=dict)
    weights: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    weight_data: Optional[np.ndarray] = None
    scratch_bytes: int = 0
    in_place: bool = False
    clobbers_input: bool = False
    reads_past_end: int = 0
    macs: int = 0
    formats: dict[str, int] = field(default_factory=dict)  # in/out/weight/bias fracs, shifts
    input_fp: Optional[InputFixedPoint] = None
    channel_source: tuple[int, ...] = ()


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

    def output_in_caffe_order(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) simulator/firmware scores -> Caffe's element order."""
        if self.output_hwc is None:
            return scores
        c, h, w = self.output_hwc
        return scores.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(len(scores), -1)
