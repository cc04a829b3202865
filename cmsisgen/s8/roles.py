"""The part each layer kind plays in s8 quantization (what :mod:`cmsisgen.quantizer_s8` asks).

The quantizer names no layer type: whether a kind keeps its input's scale and zero point, is
centred on zero, writes a fixed quantization, carries per-channel or per-tensor weights, or
needs integer parameters of its own once the ranges are known is answered here, from the kind.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from ..ops import kind_of
from ..ops.argmax import ArgMax
from ..ops.concat import Concat
from ..ops.convolution import Convolution
from ..ops.copy_kernels import ByteMover
from ..ops.deconvolution import Deconvolution, kernel_weights
from ..ops.eltwise import Eltwise
from ..ops.inner_product import InnerProduct
from ..ops.lrn import LRN
from ..ops.pooling import Pooling
from ..ops.relu import ReLU
from ..ops.scale import Scale
from ..ops.softmax import Softmax
from ..ops.table_activation import SIGMOID, TANH
from .quantization import TensorQuant, add_params, mul_params, softmax_params, sum_params

#: Softmax's output quantization in the TFLite int8 spec (what arm_softmax_s8 writes).
SOFTMAX_OUTPUT = TensorQuant(scale=1.0 / 256, zero_point=-128)
#: An index (ArgMax) is its own value.
INDEX_OUTPUT = TensorQuant(scale=1.0, zero_point=0)


def keeps_quant(layer: ir.Layer) -> bool:
    """Input(s) and output share one scale and zero point (no rescale in the call)."""
    kind = kind_of(layer)
    return (kind.alias or isinstance(kind, (Pooling, Concat, ByteMover)) or clamps_s8(layer)
            or eltwise_max(layer))


def shared_quant(layer: ir.Layer) -> list[str]:
    """The tensors that must share one quantization because of ``layer`` (none: it rescales).
    A Crop's second input only gives the size: its values are never read."""
    if not keeps_quant(layer):
        return []
    return (layer.bottoms[:1] if isinstance(kind_of(layer), ByteMover) else layer.bottoms) + layer.tops


#: Bits of resolution an average pooling's own scale must gain to leave arm_avgpool_s8 (as on
#: q7, :data:`cmsisgen.ops.pooling.MIN_GAIN_OFF_CMSIS_NN`): one bit is not worth the library's
#: optimized loop; a pool that runs on nn_avgpool_caffe_s8 anyway takes any gain.
MIN_GAIN_OFF_ARM_AVGPOOL = 2


def average_pooling(layer: ir.Layer) -> bool:
    """An AVE Pooling: the one kind without weights that may rescale into its own scale."""
    return isinstance(kind_of(layer), Pooling) and layer.params.method == "ave"  # type: ignore[union-attr]


def own_scale_min_gain(net: ir.Net, layer: ir.Layer) -> int:
    """The bits an average pooling's own output scale must gain over its input's for the
    quantizer to give it one (see :data:`MIN_GAIN_OFF_ARM_AVGPOOL`)."""
    return MIN_GAIN_OFF_ARM_AVGPOOL if ave_divisor_matches_caffe(net, layer) else 1


def _window_sizes(size: int, kernel: int, stride: int, pad: int, out: int) -> list[tuple[int, int]]:
    """(Caffe's divisor, arm_avgpool_s8's divisor) on one axis for every output position."""
    sizes = []
    for i in range(out):
        start = i * stride - pad
        caffe = min(start + kernel, size + pad) - start
        inside = min(start + kernel, size) - max(start, 0)
        sizes.append((caffe, inside))
    return sizes


def ave_divisor_matches_caffe(net: ir.Net, layer: ir.Layer) -> bool:
    """Every average-pooling window divides by the same count in Caffe and arm_avgpool_s8."""
    p: ir.PoolParams = layer.params  # type: ignore[assignment]
    _, h, w = net.shapes[layer.bottoms[0]]
    _, oh, ow = net.shapes[layer.tops[0]]
    rows = _window_sizes(h, p.kernel_h, p.stride_h, p.pad_h, oh)
    cols = _window_sizes(w, p.kernel_w, p.stride_w, p.pad_w, ow)
    return all(rc * cc == ri * ci and ri > 0 and ci > 0 for rc, ri in rows for cc, ci in cols)


def eltwise_max(layer: ir.Layer) -> bool:
    """arm_maximum_s8 does not rescale: its inputs and output share one quantization."""
    return isinstance(kind_of(layer), Eltwise) and layer.params.operation == "max"  # type: ignore[union-attr]


def leaky(layer: ir.Layer) -> bool:
    """A ReLU with a negative slope: a table lookup on s8, not a clamp."""
    return layer.params.negative_slope != 0.0  # type: ignore[union-attr]


def clamps_s8(layer: ir.Layer) -> bool:
    """A plain ReLU: max(x, 0), at its input's quantization."""
    return isinstance(kind_of(layer), ReLU) and not leaky(layer)


def commutes_with_relu(layer: ir.Layer) -> bool:
    """relu(f(x)) == f(relu(x)): max pooling, concatenation and aliases, through which a later
    ReLU makes negative inputs irrelevant."""
    kind = kind_of(layer)
    return (kind.alias or isinstance(kind, (Concat, ByteMover)) or eltwise_max(layer)
            or isinstance(kind, Pooling) and layer.params.method == "max")  # type: ignore[union-attr]


def saturating_inverse(layer: ir.Layer) -> Optional[tuple[Callable[[float], float], float, float]]:
    """A Sigmoid's or TanH's inverse and the limits of its output (None for other kinds): their
    input beyond where the output reaches its end codes cannot change the output, so it need
    not be represented."""
    kind = kind_of(layer)
    if kind is SIGMOID:
        return (lambda p: _inverse(p, 0.0, lambda v: math.log(v / (1.0 - v)))), 0.0, 1.0
    if kind is TANH:
        return (lambda p: _inverse(p, -1.0, math.atanh)), -1.0, 1.0
    return None


def _inverse(p: float, low: float, inverse: Callable[[float], float]) -> float:
    """``inverse(p)`` inside the function's open range (low, 1); its infinite limits outside."""
    return -math.inf if p <= low else math.inf if p >= 1.0 else inverse(p)


def fused_relu(net: ir.Net, tensor: str) -> bool:
    """Whether the call writing ``tensor`` clamps at its zero point (a ReLU fused into it)."""
    readers = net.consumers(tensor)
    return len(readers) == 1 and clamps_s8(readers[0])


def symmetric(layer: ir.Layer) -> bool:
    """Inputs and output at zero point 0: the LRN kernel squares and scales raw int8 values."""
    return isinstance(kind_of(layer), LRN)


def fixed_output(layer: ir.Layer) -> Optional[TensorQuant]:
    """The quantization a kernel writes whatever the calibrated range (None: from the range)."""
    kind = kind_of(layer)
    return SOFTMAX_OUTPUT if isinstance(kind, Softmax) else INDEX_OUTPUT if isinstance(kind, ArgMax) else None


def weighted_s8(layer: ir.Layer) -> bool:
    """Layers whose blobs become int8 weights, an int32 bias and per-channel multipliers."""
    return isinstance(kind_of(layer), (Convolution, InnerProduct, Scale, Deconvolution))


def per_tensor_weights(layer: ir.Layer) -> bool:
    """arm_fully_connected_s8 takes one multiplier: one weight scale for the whole matrix."""
    return isinstance(kind_of(layer), InnerProduct)


def weights_out_first(layer: ir.Layer) -> np.ndarray:
    """The float weights with the output channel on axis 0 (a transposed inner product turned)."""
    weights = np.asarray(layer.blobs[0], dtype=np.float64)
    if isinstance(kind_of(layer), InnerProduct) and layer.params.transpose:  # type: ignore[union-attr]
        return weights.T
    if isinstance(kind_of(layer), Scale):  # a 1x1 depthwise convolution's [c, 1, 1, 1]
        return weights.reshape(-1, 1, 1, 1)
    if isinstance(kind_of(layer), Deconvolution):  # Caffe's [c_in, out / group, kh, kw] turned
        return kernel_weights(weights, layer.params.group)  # type: ignore[union-attr]
    return weights


def quantize_params(layer: ir.Layer, tensors: dict[str, TensorQuant]) -> Any:
    """A layer's integer parameters beyond weights once every tensor's quantization is known
    (None: none); a ValueError says why the ranges give none."""
    kind = kind_of(layer)
    if isinstance(kind, Softmax):
        return softmax_params(tensors[layer.bottoms[0]].scale)
    if not isinstance(kind, Eltwise) or eltwise_max(layer):
        return None
    p: ir.EltwiseParams = layer.params  # type: ignore[assignment]
    scales = [tensors[b].scale for b in layer.bottoms]
    if p.operation == "prod":
        return mul_params(scales[0], scales[1], tensors[layer.tops[0]].scale)
    coeffs = p.coeffs or (1.0,) * len(scales)
    signed = [c * s for c, s in zip(coeffs, scales)]
    if len(signed) == 2:  # arm_elementwise_add_s8
        return add_params(signed[0], signed[1], tensors[layer.tops[0]].scale)
    return sum_params(signed, tensors[layer.tops[0]].scale)  # nn_eltwise_add_s8
