"""Caffe Softmax (over channels of a 1x1 tensor) onto arm_softmax_q7, as the network output.

arm_softmax_q7 writes Q0.7 whatever its input, so the quantizer fixes the output format;
a later layer reading that tensor in another format would read it wrongly, hence the
output-only rule.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..simulator import kernels
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, generic_site, stem

#: arm_softmax_q7's fixed output format, Q0.7.
SOFTMAX_FRAC = 7
#: arm_softmax_q7 counts with an int16_t.
SOFTMAX_MAX_LENGTH = 32767


@rule("input {in_h}x{in_w}x{in_ch}")
def vector_input(site: Site) -> bool:
    """arm_softmax_q7 works on a vector: its input must be 1x1 spatially (a softmax over channels of a 1x1 tensor)."""
    return site.in_h == 1 and site.in_w == 1


@rule("{in_ch} elements")
def softmax_length(site: Site) -> bool:
    """arm_softmax_q7 counts with an int16_t: the vector must have at most 32767 elements."""
    return site.in_ch <= SOFTMAX_MAX_LENGTH


@rule("read by {readers}")
def network_output_only(site: Site) -> bool:
    """arm_softmax_q7 writes Q0.7 whatever follows, so a Softmax is supported only as a network output: no layer may read it."""
    return not site.readers


CHOICE = Choice("Softmax", (Candidate("arm_softmax_q7", (vector_input, softmax_length, network_output_only)),))

SOFTMAX = Kernel(
    "softmax", lambda op, inputs: kernels.softmax_q7(inputs[0].reshape(len(inputs[0]), -1)).reshape(
        len(inputs[0]), 1, 1, -1),
    call="""\
    /* {{ op.layer }} */
    arm_softmax_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_DIM_VEC, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }} */
#define {{ prefix }}_DIM_VEC {{ op.args.dim_vec }}
""")


class Softmax(LayerKind):
    types = ("Softmax",)
    choice = CHOICE
    fixed_output_frac = SOFTMAX_FRAC
    #: arm_softmax_q7 computes 2**x, not e**x: its values are not the float ones (the ranking
    #: is), so evaluate --per-layer does not blame it for the SQNR it shows.
    matches_float = False

    def parse(self, layer: Any, err: ErrorMaker) -> ir.NoParams:
        if layer.softmax_param.axis not in (1, -3):
            raise err(f"softmax axis {layer.softmax_param.axis} is not supported (only 1)")
        return ir.NoParams()

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        z = inputs[0] - inputs[0].max(axis=1, keepdims=True)
        e = np.exp(z)
        return [(e / e.sum(axis=1, keepdims=True)).astype(np.float32)]

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        readers = ", ".join(f"'{r.name}'" for r in net.consumers(layer.tops[0]))
        return dataclasses.replace(generic_site(net, layer), readers=readers)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        site = self.site(ctx.net, layer)
        function = choose(CHOICE, site, ctx.forced.get(layer.name))
        return Op(**stem(layer), kernel=SOFTMAX, function=function, inputs=ctx.bottoms,
                  in_shape=(1, 1, site.in_ch), args={"dim_vec": site.in_ch}, macs=site.in_ch,
                  formats=formats(ctx, layer))
