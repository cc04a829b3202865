"""ConvolutionDepthwise, the depthwise convolution layer of the Caffe forks MobileNet models
were trained with: a convolution_param whose output channels are the input channels, each
filtered on its own (weights ``(C, 1, kh, kw)``, bias ``(C,)``; group is implied).

It is lowered exactly as a Convolution with ``group`` equal to its channels (the
"Convolution/group" candidates: the CMSIS-NN depthwise functions, else nn_conv_q7), and
BatchNorm/Scale fold into it as into a Convolution. The fork ignores num_output and group;
a value other than the channel count means the model is not what its author thinks, so it
is refused instead.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from .. import ir
from ..mapper.rules import Site
from .base import Choice, Shape, fail, one_input
from .caffe_params import ErrorMaker
from .convolution import GROUPED, Convolution, parse_convolution_param

CHOICE = Choice("ConvolutionDepthwise", GROUPED.candidates,
                note="as a Convolution with group equal to its channels (the Convolution/group list)")


def _resolved(layer: ir.Layer, channels: int) -> ir.Layer:
    """The layer as the equivalent Convolution: num_output and group are its channel count."""
    params = dataclasses.replace(layer.params, num_output=channels, group=channels)  # type: ignore[type-var]
    return dataclasses.replace(layer, params=params)


class ConvolutionDepthwise(Convolution):
    types = ("ConvolutionDepthwise",)

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ConvParams:
        cp = layer.convolution_param
        params = parse_convolution_param(cp, err, num_output_required=False)
        # 0: not given, the input's channel count (checked in output_shape, where it is known)
        return dataclasses.replace(params, num_output=cp.num_output if cp.HasField("num_output") else 0,
                                   group=cp.group if cp.HasField("group") else 0)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        p: ir.ConvParams = layer.params  # type: ignore[assignment]
        c = one_input(net, layer)[0]
        for what, value in (("num_output", p.num_output), ("group", p.group)):
            if value not in (0, c):
                raise fail(net, layer, f"{what} {value} is not the input's {c} channels: ConvolutionDepthwise "
                                       f"filters each input channel on its own")
        return super().output_shape(net, _resolved(layer, c))

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        return super().blob_shapes(net, _resolved(layer, net.shapes[layer.bottoms[0]][0]))

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return super().forward(_resolved(layer, inputs[0].shape[1]), inputs)

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        return super().site(net, _resolved(layer, net.shapes[layer.bottoms[0]][0]))

    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        return (CHOICE,)
