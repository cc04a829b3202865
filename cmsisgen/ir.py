"""Graph IR shared by every pipeline stage.

The loader produces a :class:`Net` in Caffe terms (NCHW blobs, Caffe layer types,
float32 weights in Caffe's own layout); later stages only read it. Tensor names are
SSA: an in-place Caffe layer (``top == bottom``) gets a fresh versioned tensor name so
that every tensor has exactly one producer, which is what lets the buffer planner and
the simulator treat non-chain networks (branches, concat) uniformly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

import numpy as np


@dataclass(frozen=True)
class ConvParams:
    num_output: int
    kernel_h: int
    kernel_w: int
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    bias_term: bool = True
    group: int = 1
    dilation_h: int = 1
    dilation_w: int = 1


@dataclass(frozen=True)
class PoolParams:
    method: str  # "max" or "ave"
    kernel_h: int
    kernel_w: int
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    global_pooling: bool = False
    ceil_mode: bool = True  # Caffe's default rounding of the output size


@dataclass(frozen=True)
class InnerProductParams:
    num_output: int
    bias_term: bool = True
    axis: int = 1
    transpose: bool = False


@dataclass(frozen=True)
class ConcatParams:
    axis: int = 1


@dataclass(frozen=True)
class EltwiseParams:
    """Caffe Eltwise: ``operation`` "sum", "prod" or "max"; ``coeffs`` (SUM only) one per
    input, empty meaning all 1."""

    operation: str = "sum"
    coeffs: tuple[float, ...] = ()


@dataclass(frozen=True)
class LRNParams:
    """Caffe LRN: ``region`` "across" (ACROSS_CHANNELS) or "within" (WITHIN_CHANNEL);
    ``local_size`` is odd (Caffe refuses even sizes). WITHIN_CHANNEL ignores ``k`` (Caffe
    uses 1 there)."""

    local_size: int = 5
    alpha: float = 1.0
    beta: float = 0.75
    k: float = 1.0
    region: str = "across"


@dataclass(frozen=True)
class BatchNormParams:
    """Caffe BatchNorm with the stored statistics (blobs: mean, variance, scale factor)."""

    eps: float = 1e-5


@dataclass(frozen=True)
class ScaleParams:
    """Caffe Scale along channels with a learned factor per channel (blobs: factor [, bias])."""

    bias_term: bool = False


@dataclass(frozen=True)
class PReLUParams:
    """Caffe PReLU: a learned negative slope per channel, or one for all (blob (1,))."""

    channel_shared: bool = False


@dataclass(frozen=True)
class ReshapeParams:
    """Caffe Reshape of the whole blob: ``dims`` with Caffe's 0 (copy the input's) and -1 (infer)."""

    dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class NoParams:
    """ReLU (``negative_slope`` != 0: leaky ReLU), Softmax, Dropout, Flatten, Split."""

    negative_slope: float = 0.0


LayerParams = Union[ConvParams, PoolParams, InnerProductParams, ConcatParams, EltwiseParams, BatchNormParams,
                    ScaleParams, PReLUParams, ReshapeParams, LRNParams, NoParams]


@dataclass
class Layer:
    """One Caffe layer after loading.

    ``type`` is the current-generation Caffe type string (a V1 net's types are upgraded by
    the loader); :func:`cmsisgen.ops.kind_of` gives what cmsisgen knows about it.
    ``blobs`` hold float32 arrays in Caffe's layout: convolution (O, I, kh, kw),
    inner product (O, I) with I in Caffe's CHW flatten order, bias (O,).
    """

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: LayerParams
    blobs: list[np.ndarray] = field(default_factory=list)


@dataclass
class Transform:
    """Caffe ``transform_param`` of the TEST-phase data layer, or CLI overrides."""

    mean_file: Optional[str] = None
    mean_values: tuple[float, ...] = ()
    scale: float = 1.0
    crop_size: int = 0
    # The prototxt has a transform_param (or data_param's old copies); not part of equality.
    given: bool = field(default=False, compare=False)


@dataclass
class Net:
    """A loaded network: inputs, layers in a valid execution order, outputs.

    ``input_shapes`` and ``shapes`` exclude the batch dimension: (C, H, W).
    ``shapes`` is empty until :func:`cmsisgen.shapes.infer_shapes` fills it.
    """

    name: str
    input_shapes: dict[str, tuple[int, int, int]]
    layers: list[Layer]
    outputs: list[str]
    transform: Transform = field(default_factory=Transform)
    source: str = ""  # the prototxt path, for error messages
    shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # one line each, from loading the files

    def producer(self, tensor: str) -> Optional[Layer]:
        for layer in self.layers:
            if tensor in layer.tops:
                return layer
        return None

    def consumers(self, tensor: str) -> list[Layer]:
        return [layer for layer in self.layers if tensor in layer.bottoms]


def last_reads(readers: Iterable[Sequence[str]]) -> dict[str, int]:
    """Index of the last reader of every tensor, given each step's inputs in execution order."""
    last: dict[str, int] = {}
    for index, names in enumerate(readers):
        for name in names:
            last[name] = index
    return last
