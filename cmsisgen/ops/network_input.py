"""The network input: run_nn()'s uint8 image converted to q7 in place (not a Caffe layer).

The arithmetic is :class:`cmsisgen.preprocess.InputFixedPoint`'s, and the C below computes
exactly it; the conversion is the one body nn.c keeps, since it is specialised to the
network (channel order, per-channel or per-pixel offsets) at compile time.
"""
from __future__ import annotations

import numpy as np

from ..mapper.calls import Op
from ..preprocess import Preprocessing
from .base import Kernel, Shape, hwc


def _simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    images = inputs[0]
    return op.params.fixed_point.apply(images)


PARAMETERS = """\
/* {{ op.layer }}: uint8 HWC image -> q7, Q{{ 7 - f.out_frac }}.{{ f.out_frac }}:
 * q = saturate((pixel * NN_INPUT_MUL - NN_INPUT_OFFSET + 2^(NN_INPUT_SHIFT-1)) >> NN_INPUT_SHIFT) */
#define NN_INPUT_FRAC_BITS {{ f.out_frac }}
#define NN_INPUT_MUL {{ op.params.fixed_point.mul }}
#define NN_INPUT_SHIFT {{ op.params.fixed_point.shift }}
#define NN_INPUT_OFFSET_SIZE {{ op.params.fixed_point.offsets.size }}
"""

WEIGHTS = """\
/* Input conversion offsets: round(mean * scale * 2^(NN_INPUT_FRAC_BITS + NN_INPUT_SHIFT)){{ ", per pixel, HWC" if op.params.fixed_point.per_pixel else ", per channel" }}. */
const int32_t NN_INPUT_OFFSET[NN_INPUT_OFFSET_SIZE] NN_WEIGHT_SECTION = {
{{ op.params.fixed_point.offsets | c_array }}
};
"""

#: The conversion function, emitted once into nn.c (see the module docstring).
DEFINITION = """\
/*
 * uint8 pixels -> q7 network input, in place in the caller's buffer. A pixel's channels
 * are read (as uint8: a q7_t read would turn every value >= 128 negative) before any of
 * them is written, since the channel order may change. Right shifts of negative int32
 * are arithmetic on every Arm and host compiler this code targets (as CMSIS-NN itself
 * assumes).
 */
static void nn_input_q7(uint8_t *image)
{
    static const uint8_t channel_source[NN_INPUT_CHANNELS] = { {{ op.params.channel_source | join(", ") }} };
    q7_t *const out = (q7_t *)image;
    uint8_t pixel_in[NN_INPUT_CHANNELS];
    uint32_t pixel;
    uint32_t ch;

    for (pixel = 0; pixel < (uint32_t)(NN_INPUT_HEIGHT * NN_INPUT_WIDTH); pixel++) {
        memcpy(pixel_in, image + pixel * NN_INPUT_CHANNELS, NN_INPUT_CHANNELS);
        for (ch = 0; ch < NN_INPUT_CHANNELS; ch++) {
            const uint32_t index = pixel * NN_INPUT_CHANNELS + ch;
            int32_t acc = (int32_t)pixel_in[channel_source[ch]] * NN_INPUT_MUL
                          - NN_INPUT_OFFSET[{{ "index" if op.params.fixed_point.per_pixel else "ch" }}] + (1 << (NN_INPUT_SHIFT - 1));
            acc >>= NN_INPUT_SHIFT;
            out[index] = (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
        }
    }
}
"""

INPUT_Q7 = Kernel(kind="input", simulate=_simulate, call="    nn_input_q7(image);\n", parameters=PARAMETERS,
                  weights=WEIGHTS)


class InputConstants:
    """The input conversion's constants (``fixed_point``) and the image channel each model
    channel reads (``channel_source``)."""

    def __init__(self, pre: Preprocessing, frac: int, shape: Shape) -> None:
        self.fixed_point = pre.fixed_point(frac, shape)
        self.channel_source = pre.channel_source


def lower_input_q7(name: str, shape: Shape, frac: int, pre: Preprocessing) -> Op:
    """The first op of every program: run_nn()'s image -> the q7 network input."""
    c, h, w = shape
    constants = InputConstants(pre, frac, shape)
    return Op(layer=name, layer_type="Input", kernel=INPUT_Q7, function="nn_input_q7", inputs=[], output=name,
              in_shape=hwc(shape), args={"size": h * w, "channels": c}, params=constants,
              weight_bytes=4 * int(constants.fixed_point.offsets.size), formats={"out_frac": frac})
