"""Caffe Sigmoid and TanH onto arm_nn_activations_direct_q7, in place.

The function reads its input with at most 3 integer bits (Q3.4 after its shift; larger
values saturate where both functions are flat) and writes Q0.7, so the quantizer sizes
the input for [-8, 8) at most and fixes the output format.
"""
from __future__ import annotations


import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule
from ..qformat import q_format
from ..simulator.activations import MIN_INPUT_FRAC, OUTPUT_FRAC, activations_direct_q7
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, generic_site, stem

#: Input magnitude the table covers (Q3.4's largest value).
TABLE_INPUT_MAX = 127.0 / 16


@rule("input {in_frac} and output {out_frac} fractional bits")
def table_activation_formats(site: Site) -> bool:
    """arm_nn_activations_direct_q7 looks the input up in a 256-entry table over [-8, 8) and writes Q0.7, in place: the input needs at least 4 fractional bits (at most 3 integer bits) and the output must be Q0.7 (not so when a Concat or pooling ties it to wider values)."""
    return site.in_frac is None or (site.in_frac >= MIN_INPUT_FRAC and site.out_frac == OUTPUT_FRAC)


CHOICE = Choice("Sigmoid, TanH", (Candidate("arm_nn_activations_direct_q7", (table_activation_formats,)),))

ACTIVATION = Kernel(
    "activation", lambda op, inputs: activations_direct_q7(inputs[0], op.args["int_width"],
                                                            "sigmoid" if op.args["type"] == 0 else "tanh"),
    call="""\
    /* {{ op.layer }}: in place, input Q{{ 7 - op.formats.in_frac }}.{{ op.formats.in_frac }} -> Q0.7 */
{% set kind = "ARM_SIGMOID" if op.args.type == 0 else "ARM_TANH" %}
{% if op.args.size > 65535 %}
    {
        /* arm_nn_activations_direct_q7 takes a uint16_t size: run it in chunks */
        uint32_t done;
        for (done = 0; done < {{ prefix }}_SIZE; done += 65535u) {
            const uint32_t left = {{ prefix }}_SIZE - done;
            arm_nn_activations_direct_q7({{ out }} + done, (uint16_t)(left < 65535u ? left : 65535u),
                                         {{ prefix }}_INT_WIDTH, {{ kind }});
        }
    }
{% else %}
    arm_nn_activations_direct_q7({{ out }}, {{ prefix }}_SIZE, {{ prefix }}_INT_WIDTH, {{ kind }});
{% endif %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, in place; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, out Q0.7 */
#define {{ prefix }}_SIZE {{ op.args.size }}
#define {{ prefix }}_INT_WIDTH {{ op.args.int_width }}
""")


class TableActivation(LayerKind):
    """Sigmoid (``type`` 0 in arm_nn_activation_type) or TanH (1)."""

    fixed_output_frac = OUTPUT_FRAC
    choice = CHOICE
    input_range_limit = TABLE_INPUT_MAX

    def __init__(self, caffe_type: str, function, activation_type: int) -> None:
        self.types = (caffe_type,)
        self.function = function
        self.activation_type = activation_type

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [self.function(inputs[0])]

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        fmt = formats(ctx, layer)
        site = generic_site(ctx.net, layer, **fmt)
        function = choose(CHOICE, site, ctx.forced.get(layer.name))
        c, h, w = ctx.shape(layer.bottoms[0])
        return Op(**stem(layer), kernel=ACTIVATION, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args={"size": c * h * w, "int_width": 7 - fmt["in_frac"], "type": self.activation_type},
                  in_place=True, macs=c * h * w, formats=fmt)

    def output_group_error(self, layer: ir.Layer, other: str, value: float, through: str) -> str:
        return (f"layer '{layer.name}' ({layer.type}): arm_nn_activations_direct_q7 writes {q_format(OUTPUT_FRAC)}, "
                f"but its output shares one format (through {through}) with '{other}', whose values reach {value:g}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x).astype(np.float32)


SIGMOID = TableActivation("Sigmoid", _sigmoid, 0)
TANH = TableActivation("TanH", _tanh, 1)
