"""The network input: run_nn()'s uint8 image converted to q7 in place (not a Caffe layer).

The arithmetic is :class:`cmsisgen.preprocess.InputFixedPoint`'s (the simulator's model);
the C below computes exactly it in the cheaper form :mod:`cmsisgen.input_forms` derives (a
q7 table per channel, or per-pixel offsets with the common power of two divided out, byte by
byte with SSAT or, for (pixel + offset) >> 0 or 1 with int16 offsets in image channel order,
four bytes at a time with SHADD16/QADD16 and SSAT16). The
conversion is the one body nn.c keeps, since it is specialised to the network (channel
order, form, bytes per iteration) at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..input_forms import input_form
from ..mapper.calls import Op
from ..preprocess import InputFixedPoint, Preprocessing
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
{{ op.params.offsets_in_c_order() | c_array }}
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

#: The conversion function, one byte at a time (see the module docstring).
_SCALAR = '{% if op.params.form.kind == "affine" %}\n' + SATURATE + """{% endif %}
/*
 * uint8 pixels -> {{ byte_name }} network input, in place in the caller's buffer, {{ op.params.pixels | sum(start=[]) | length }} bytes an iteration.
 * The bytes are read as uint8 ({{ "an" if byte_t == "int8_t" else "a" }} {{ byte_t }} read would turn every value >= 128 negative), all
 * of a pixel's before any is written, since the channel order may change.
{% if op.params.form.kind == "table" %}
 * Each byte is one load from NN_INPUT_TABLE, which holds the conversion for every value.
{% else %}
 * Right shifts of negative int32 are arithmetic on every Arm and host compiler this code
 * targets (as CMSIS-NN itself assumes).
{% endif %}
 */
static void {{ op.function }}(uint8_t *image)
{
    {{ byte_t }} *const out = ({{ byte_t }} *)image;
{% if op.params.form.kind == "table" %}
{% for row in op.params.form.row_of_channel %}
    const {{ byte_t }} *const table{{ loop.index0 }} = NN_INPUT_TABLE + NN_INPUT_TABLE_ROW_{{ loop.index0 }} * 256;
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
            out[i{{ " + %du" % lane.index if lane.index else "" }}] = ({{ byte_t }})nn_input_saturate(p{{ lane.source }} * NN_INPUT_MUL + NN_INPUT_OFFSET[i{{ " + %du" % lane.index if lane.index else "" }}]);
{% endif %}
{% endfor %}
        }
{% endfor %}
    }
}
"""

#: The affine form with MUL 1 and SHIFT 0 or 1, channels in image order and int16 offsets: four
#: bytes at a time as two pairs of halfwords (the even bytes and the odd bytes), one halving (or
#: saturating) add and one SSAT16 a pair; the same values in plain C where the core lacks SIMD.
_SIMD = """\
/*
 * Four pixel bytes (+ their int16 offsets) -> four {{ byte_name }} values: bytes 0 and 2 and bytes 1 and 3
 * as pairs of halfwords, each pair {{ "(p + offset) >> 1 (SHADD16, exact)" if op.params.form.shift else "p + offset (QADD16)" }}, saturated to
 * [-128, 127] (SSAT16), packed back. NN_INPUT_OFFSET holds each group of four bytes' offsets as
 * 0, 2, 1, 3 (the two pairs).
 */
{% for name, ror in (("even", 0), ("odd", 8)) %}
/* bytes {{ "0 and 2" if ror == 0 else "1 and 3" }} of x, zero-extended to halfwords: one UXTB16 */
static inline uint32_t nn_input_{{ name }}_bytes(uint32_t x)
{
#if defined(__GNUC__) && defined(__ARM_FEATURE_SIMD32)
    uint32_t b;
    __asm__("uxtb16 %0, %1{{ ", ror #8" if ror else "" }}" : "=r"(b) : "r"(x));
    return b;
#else
    return {{ "(x >> 8)" if ror else "x" }} & 0x00FF00FFu;
#endif
}

{% endfor %}
static inline uint32_t nn_input_pair(uint32_t pixels, uint32_t offsets)
{
#if defined(__GNUC__) && defined(__ARM_FEATURE_SIMD32)
    uint32_t q;
    __asm__("{{ "shadd16" if op.params.form.shift else "qadd16" }} %0, %1, %2" : "=r"(q) : "r"(pixels), "r"(offsets));
    __asm__("ssat16 %0, #8, %1" : "=r"(q) : "r"(q));
    return q;
#else
    uint32_t q = 0;
    uint32_t half;
    for (half = 0; half < 32u; half += 16u) {
        const int32_t sum = (int32_t)((pixels >> half) & 0xFFFFu) + (int16_t)(uint16_t)(offsets >> half);
        const int32_t v = sum >> NN_INPUT_SHIFT;
        q |= ((uint32_t)(v < -128 ? -128 : (v > 127 ? 127 : v)) & 0xFFFFu) << half;
    }
    return q;
#endif
}

/*
 * uint8 pixels -> {{ byte_name }} network input, in place in the caller's buffer, {{ op.params.simd_bytes }} bytes an iteration
 * where the size allows (the bytes are read as uint8: never wrapped to negative).
 */
static void {{ op.function }}(uint8_t *image)
{
    uint32_t i;

    for (i = 0; i < (uint32_t)NN_INPUT_SIZE; i += {{ op.params.simd_bytes }}u) {
{% for k in range(0, op.params.simd_bytes, 4) %}
        {
            uint32_t x;
            uint32_t even;
            uint32_t odd;
            memcpy(&x, image + i{{ " + %du" % k if k else "" }}, 4);
            memcpy(&even, NN_INPUT_OFFSET + i{{ " + %du" % k if k else "" }}, 4);
            memcpy(&odd, NN_INPUT_OFFSET + i + {{ k + 2 }}u, 4);
            even = nn_input_pair(nn_input_even_bytes(x), even);
            odd = nn_input_pair(nn_input_odd_bytes(x), odd);
            x = nn_input_even_bytes(even) | (nn_input_even_bytes(odd) << 8);
            memcpy(image + i{{ " + %du" % k if k else "" }}, &x, 4);
        }
{% endfor %}
    }
}
"""

#: The conversion function, emitted once into nn.c (see the module docstring), named after the
#: op's function; byte_t and byte_name are the backend's (cmsisgen.codegen.C_TYPES).
DEFINITION = "{% if op.params.simd_bytes %}" + _SIMD + "{% else %}" + _SCALAR + "{% endif %}"

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

    def __init__(self, pre: Preprocessing, frac: int, shape: Shape,
                 fixed_point: Optional[InputFixedPoint] = None, quant: Any = None) -> None:
        c, h, w = shape
        #: (``fixed_point``: given by the s8 backend, whose input has a scale and zero point: ``quant``,
        #: a cmsisgen.s8.quantization.TensorQuant, which parameters.h states)
        self.fixed_point = fixed_point or pre.fixed_point(frac, shape)
        self.quant = quant
        self.form = input_form(self.fixed_point, shape)
        self.channel_source = pre.channel_source
        count = next(n for n in PIXELS_PER_ITERATION[c] if (h * w) % n == 0)
        self.pixels = [[Lane(index=k, channel=k - first, source=first + pre.channel_source[k - first])
                        for k in range(first, first + c)] for first in range(0, count * c, c)]
        form = self.form
        simd = (form.kind == "affine" and form.mul == 1 and form.shift in (0, 1) and form.c_type == "int16_t"
                and tuple(pre.channel_source) == tuple(range(c)))
        #: bytes an iteration of the SIMD loop (0: the byte-wise loop): 16, 12, 8 or 4, dividing the size
        self.simd_bytes = next((n for n in (16, 12, 8, 4) if (c * h * w) % n == 0), 0) if simd else 0

    def offsets_in_c_order(self) -> np.ndarray:
        """NN_INPUT_OFFSET as the C reads it: the SIMD loop takes each group of four as 0, 2, 1, 3."""
        offsets = self.form.offsets
        return offsets.reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1) if self.simd_bytes else offsets


def lower_input_q7(name: str, shape: Shape, frac: int, pre: Preprocessing) -> Op:
    """The first op of every program: run_nn()'s image -> the q7 network input."""
    c, h, w = shape
    constants = InputConstants(pre, frac, shape)
    return Op(layer=name, layer_type="Input", kernel=INPUT_Q7, function="nn_input_q7", inputs=[], output=name,
              in_shape=hwc(shape), args={"size": h * w, "channels": c}, params=constants,
              weight_bytes=constants.form.flash_bytes, formats={"out_frac": frac})
