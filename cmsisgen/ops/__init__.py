"""The registry of layer kinds: one module per Caffe layer type (or family), listed here.

Adding a layer type is one new module with a :class:`~cmsisgen.ops.base.LayerKind` and its
kernels, plus a line in :data:`KINDS`; every pipeline stage finds it through
:func:`kind_of`, and docs/supported-operators.md lists it (:mod:`cmsisgen.ops.catalogue`).
"""
from __future__ import annotations

from .. import ir
from ..errors import CmsisgenError
from .alias import DROPOUT, SPLIT, Flatten, Reshape
from .base import LayerKind
from .concat import Concat
from .convolution import Convolution
from .eltwise import Eltwise
from .inner_product import InnerProduct
from .lrn import LRN
from .pooling import Pooling
from .prelu import PReLU
from .relu import ReLU
from .scale import SCALE, BatchNorm
from .softmax import Softmax
from .table_activation import SIGMOID, TANH
from .argmax import ArgMax
from .lookup_activation import LOOKUP_KINDS
from .convolution_depthwise import ConvolutionDepthwise
from .deconvolution import Deconvolution
from .crop import Crop
from .permute import Permute
from .shuffle_channel import ShuffleChannel
from .slice import Slice
from .upsample import Upsample

#: Every supported layer kind, in the order the documentation lists them.
KINDS: tuple[LayerKind, ...] = (
    Convolution(), Pooling(), InnerProduct(), ReLU(), PReLU(), SIGMOID, TANH, Softmax(), LRN(), Concat(),
    Eltwise(), BatchNorm(), SCALE, DROPOUT, SPLIT, Flatten(), Reshape(),
    *LOOKUP_KINDS, ArgMax(),
    ConvolutionDepthwise(), Deconvolution(),
    Slice(), Crop(), ShuffleChannel(), Permute(), Upsample(),
)
_BY_TYPE: dict[str, LayerKind] = {caffe_type: kind for kind in KINDS for caffe_type in kind.types}


def supported_types() -> frozenset[str]:
    """The Caffe layer types cmsisgen compiles."""
    return frozenset(_BY_TYPE)


def kind_of_type(caffe_type: str) -> LayerKind:
    """The kind of a supported Caffe layer type (see :func:`supported_types`)."""
    return _BY_TYPE[caffe_type]


def kind_of(layer: ir.Layer) -> LayerKind:
    """The kind of ``layer`` (an error naming the layer for an unsupported type)."""
    kind = _BY_TYPE.get(layer.type)
    if kind is None:
        raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): not supported by cmsisgen")
    return kind
