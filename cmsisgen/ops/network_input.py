"""The network input: run_nn()'s uint8 image converted to q7 in place (not a Caffe layer).

The arithmetic is :class:`cmsisgen.preprocess.InputFixedPoint`'s (the simulator's model);
the C below computes exactly it in the cheaper form :mod:`cmsisgen.input_forms` derives (a
q7 table per channel, or per-pixel offsets with the common power of two divided out). The
conversion is the one body nn.c keeps, since it is specialised to the network (channel
order, form, bytes per iteration) at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..input_forms import input_form
from ..mapper.calls import Op
from ..preprocess import Preprocessing
from .base import Kernel, Shape, hwc


#: Pixels an iteration of the C loop converts, by channels: the first that divides H*W (12 to 16
#: bytes an iteration spread the loop's own instructions thin).
PIXELS_PER_ITERATION = {1: (16, 8, 4, 2, 1), 3: (4, 2, 1)}


def _simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    images = inputs[0]
    return op.params.fixed_point.apply(images)


PARAMETERS = """\
/* {{ op.layer }}: uint8 HWC image -> q7, Q{{ 7 - f.out_frac }}.{{ f.out_frac }}. The simulator's definition,
 *   q = saturate((pixel * {{ op.params.fixed_point.mul }} - offset + 2^{{ op.params.fixed_point.shift - 1 }}) >> {{ op.params.fixed_point.shift }}), offset = round(mean * scale * 2^({{ f.out_frac }} + {{ op.params.fixed_point.shift }})){{ " per pixel" if op.params.fixed_point.per_pixel else " per channel" }},
{% if op.params.form.kind == "table" %}
 * tabulated for every pixel value: q = NN_INPUT_TABLE[NN_INPUT_TABLE_ROW_<c> * 256 + pixel] for model
 * channel c (one 256-entry row per distinct channel mapping). */
#define NN_INPUT_FRAC_BITS {{ f.out_frac }}
{% for row in op.params.form.row_of_channel %}
#define NN_INPUT_TABLE_ROW_{{ loop.index0 }} {{ row }}
{% endfor %}
#define NN_INPUT_TABLE_SIZE {{ op.params.form.rows.size }}
{% else %}
 * computed as q = saturate((pixel * NN_INPUT_MUL + NN_INPUT_OFFSET[i]) >> NN_INPUT_SHIFT), i the HWC index
 * (the rounding term folded into the offsets, the power of two common to the multiplier and 2^{{ op.params.fixed_point.shift }}
 * divided out). */
#define NN_INPUT_FRAC_BITS {{ f.out_frac }}
#define NN_INPUT_MUL {{ op.params.form.mul }}
#define NN_INPUT_SHIFT {{ op.params.form.shift }}
#define NN_INPUT_OFFSET_SIZE {{ op.params.form.offsets.size }}
{% endif %}
"""

WEIGHTS = """\
{% if op.params.form.kind == "table" %}
/* Input conversion table: the q7 input of every pixel value (see parameters.h). */
const q7_t NN_INPUT_TABLE[NN_INPUT_TABLE_SIZE] NN_WEIGHT_SECTION = {
{{ op.params.form.rows | c_array }}
};
{% else %}
/* Input conversion offsets per pixel, HWC (see parameters.h). */
const {{ op.params.form.c_type }} NN_INPUT_OFFSET[NN_INPUT_OFFSET_SIZE] NN_WEIGHT_SECTION = {
{{ op.params.form.offsets | c_array }}
};
{% endif %}
"""

#: Saturation of the affine form: one SSAT (with its shift) on cores that have it, the same
#: value in plain C elsewhere (gcc turns the C clamp into compares and branches).
SATURATE = """\
/* saturate(acc >> NN_INPUT_SHIFT) to [-128, 127]: one SSAT where the core has it. */
static inline int32_t nn_input_saturate(int32_t acc)
{
#if defined(__GNUC__) && defined(__ARM_FEATURE_SAT)
    int32_t q;
    __asm__("ssat %0, #8, %1{{ ", asr #%d" % op.params.form.shift if op.params.form.shift else "" }}" : "=r"(q) : "r"(acc));
    return q;
#else
    const int32_t q = acc >> NN_INPUT_SHIFT;
    return q < -128 ? -128 : (q > 127 ? 127 : q);
#endif
}

"""

#: The conversion function, emitted once into nn.c (see the module docstring).
DEFINITION = '{% if op.params.form.kind == "affine" %}\n' + SATURATE + """{% endif %}
/*
 * uint8 pixels -> q7 network input, in place in the caller's buffer, {{ op.params.pixels | sum(start=[]) | length }} bytes an iteration.
 * The bytes are read as uint8 (a q7_t read would turn every value >= 128 negative), all
 * of a pixel's before any is written, since the channel order may change.
{% if op.params.form.kind == "table" %}
 * Each byte is one load from NN_INPUT_TABLE, which holds the conversion for every value.
{% else %}
 * Right shifts of negative int32 are arithmetic on every Arm and host compiler this code
 * targets (as CMSIS-NN itself assumes).
{% endif %}
 */
static void nn_input_q7(uint8_t *image)
{
    q7_t *const out = (q7_t *)image;
{% if op.params.form.kind == "table" %}
{% for row in op.params.form.row_of_channel %}
    const q7_t *const table{{ loop.index0 }} = NN_INPUT_TABLE + NN_INPUT_TABLE_ROW_{{ loop.index0 }} * 256;
{% endfor %}
{% endif %}
    uint32_t i;

    for (i = 0; i < (uint32_t)NN_INPUT_SIZE; i += {{ op.params.pixels | sum(start=[]) | length }}u) {
{% for pixel in op.params.pixels %}
        {
{% for lane in pixel %}
            const int32_t p{{ lane.index }} = image[i{{ " + %du" % lane.index if lane.index else "" }}];
{% endfor %}
{% for lane in pixel %}
{% if op.params.form.kind == "table" %}
            out[i{{ " + %du" % lane.index if lane.index else "" }}] = table{{ lane.channel }}[p{{ lane.source }}];
{% else %}
            out[i{{ " + %du" % lane.index if lane.index else "" }}] = (q7_t)nn_input_saturate(p{{ lane.source }} * NN_INPUT_MUL + NN_INPUT_OFFSET[i{{ " + %du" % lane.index if lane.index else "" }}]);
{% endif %}
{% endfor %}
        }
{% endfor %}
    }
}
"""

INPUT_Q7 = Kernel(kind="input", simulate=_simulate, call="    nn_input_q7(image);\n", parameters=PARAMETERS,
                  weights=WEIGHTS)


@dataclass(frozen=True)
class Lane:
    """One byte of an iteration of the C loop: its offset in the iteration, its model channel,
    and the offset of the byte it reads (the image channel the model channel comes from)."""

    index: int
    channel: int
    source: int


class InputConstants:
    """The input conversion's constants (``fixed_point``, the simulator's definition), the form
    the C computes them in (``form``), the image channel each model channel reads
    (``channel_source``) and the bytes of an iteration of the C loop, pixel by pixel (``pixels``)."""

    def __init__(self, pre: Preprocessing, frac: int, shape: Shape) -> None:
        c, h, w = shape
        self.fixed_point = pre.fixed_point(frac, shape)
        self.form = input_form(self.fixed_point, shape)
        self.channel_source = pre.channel_source
        count = next(n for n in PIXELS_PER_ITERATION[c] if (h * w) % n == 0)
        self.pixels = [[Lane(index=k, channel=k - first, source=first + pre.channel_source[k - first])
                        for k in range(first, first + c)] for first in range(0, count * c, c)]


def lower_input_q7(name: str, shape: Shape, frac: int, pre: Preprocessing) -> Op:
    """The first op of every program: run_nn()'s image -> the q7 network input."""
    c, h, w = shape
    constants = InputConstants(pre, frac, shape)
    return Op(layer=name, layer_type="Input", kernel=INPUT_Q7, function="nn_input_q7", inputs=[], output=name,
              in_shape=hwc(shape), args={"size": h * w, "channels": c}, params=constants,
              weight_bytes=constants.form.flash_bytes, formats={"out_frac": frac})
