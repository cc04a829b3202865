"""The s8 calls: each kernel's simulator model (:mod:`cmsisgen.s8.kernels`) and its C.

parameters.h gets each call's constant structures as initializer macros (a ``static const``
in a header every translation unit includes would be an unused variable in most of them);
run_nn() defines them ``static const`` locally. weights.c gets the int8 weights, the int32
biases and the per-channel multipliers and shifts, all const (the library's
``cmsis_nn_per_channel_quant_params`` takes non-const pointers it never writes through:
the call casts). Every call with scratch checks once, on its first run, that the library's
``*_get_buffer_size`` asks for no more than the plan gave it (``NN_CHECK_SCRATCH``).
"""
from __future__ import annotations

import numpy as np

from ..mapper.calls import Op
from ..ops.base import Kernel
from ..ops import network_input
from ..ops.lrn import LRN_Q7
from . import kernels, own_kernels


#: The params every call with per-channel requantization passes its model by name.
_PER_CHANNEL_PARAMS = ("mult", "shift", "input_offset", "output_offset", "act", "stride", "pad", "dilation", "out_hw")


def _per_channel(model, *extra: str):
    """The simulation of a convolution-like call: its model of (input, weights, bias) and the
    op's params by name (the shared ones and the call's ``extra``)."""
    def simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
        return model(inputs[0], op.weights, op.bias, **{key: op.params[key] for key in _PER_CHANNEL_PARAMS + extra})
    return simulate


def _fc(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    n = len(inputs[0])
    out = kernels.fully_connected_s8(inputs[0].reshape(n, -1), op.weights, op.bias, mult=p["mult"], shift=p["shift"],
                                     input_offset=p["input_offset"], output_offset=p["output_offset"], act=p["act"])
    return out.reshape(n, 1, 1, -1)


def _pool(model):
    def simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
        p = op.params
        return model(inputs[0], kernel=p["kernel"], stride=p["stride"], pad=p["pad"], out_hw=p["out_hw"], act=p["act"])
    return simulate


def _softmax(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    return kernels.softmax_s8(inputs[0], mult=p.mult, shift=p.shift, diff_min=p.diff_min)


#: The scratch check and the context of a call, shared by every call with dims.
_CONTEXT = """\
        const cmsis_nn_context ctx = { {{ "nn_scratch" if op.scratch_bytes else "NULL" }}, {{ op.scratch_bytes }} };
{% if op.scratch_bytes %}
        NN_CHECK_SCRATCH({{ get_size }}, {{ op.scratch_bytes }});
{% endif %}
"""

_DIMS = """\
#define {{ prefix }}_INPUT_DIMS { 1, {{ op.in_shape[0] }}, {{ op.in_shape[1] }}, {{ op.in_shape[2] }} }
"""

_STATUS = """\
        if (status != ARM_CMSIS_NN_SUCCESS) {
            return status;
        }
    }
"""

_ACT = "{ {{ op.params.act[0] }}, {{ op.params.act[1] }} }"


def _per_channel_weights(layout: str) -> str:
    """weights.c of a call with per-channel requantization: int8 weights in ``layout``, then
    an int32 bias, multiplier and shift per output channel (the convolutions and nn_deconv_s8)."""
    return """\
/* {{ op.layer }}: {{ op.function }}; int8 weights """ + layout + """, per output channel: int32 bias, multiplier, shift */
const int8_t {{ prefix }}_WT[{{ prefix }}_WT_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
const int32_t {{ prefix }}_BIAS[{{ prefix }}_CHANNELS] NN_WEIGHT_SECTION = {
{{ op.bias | c_array }}
};
const int32_t {{ prefix }}_MULT[{{ prefix }}_CHANNELS] NN_WEIGHT_SECTION = {
{{ op.params.mult | c_array }}
};
const int32_t {{ prefix }}_SHIFT[{{ prefix }}_CHANNELS] NN_WEIGHT_SECTION = {
{{ op.params.shift | c_array }}
};
"""


def _conv_kernel(kind: str, simulate, params_type: str, function: str, params_head: str, filter_dims: str,
                 layout: str, get_size: str = "", upscale: str = "") -> Kernel:
    """A convolution call (dense/grouped or depthwise): the same frame, its own parameter struct.
    ``get_size``: the size call (default: the function's, with the four dims the wrappers take);
    ``upscale``: arm_convolve_s8's extra argument before the output dims."""
    get_size = get_size or f"{function}_get_buffer_size(&conv_params, &input_dims, &filter_dims, &output_dims)"
    return Kernel(
        kind, simulate,
        call="""\
    /* {{ op.layer }} */
    {
        static const %(type)s conv_params = {{ prefix }}_CONV_PARAMS;
        static const cmsis_nn_dims input_dims = {{ prefix }}_INPUT_DIMS, filter_dims = {{ prefix }}_FILTER_DIMS,
                                   bias_dims = {{ prefix }}_BIAS_DIMS, output_dims = {{ prefix }}_OUTPUT_DIMS;
        const cmsis_nn_per_channel_quant_params quant_params = { (int32_t *){{ prefix }}_MULT, (int32_t *){{ prefix }}_SHIFT };
{%% set get_size = "%(get_size)s" %%}
""" % {"type": params_type, "get_size": get_size} + _CONTEXT + """\
        status = %(function)s(&ctx, &conv_params, &quant_params, &input_dims, {{ buf[op.inputs[0]] }},
                 &filter_dims, {{ prefix }}_WT, &bias_dims, {{ prefix }}_BIAS, %(upscale)s&output_dims, {{ out }});
""" % {"function": function, "upscale": upscale} + _STATUS,
        parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, scratch {{ op.scratch_bytes }} bytes */
#define {{ prefix }}_CONV_PARAMS { {{ op.params.input_offset }}, {{ op.params.output_offset }}, """ + params_head + """\\
    { {{ op.params.stride[1] }}, {{ op.params.stride[0] }} }, { {{ op.params.pad[1] }}, {{ op.params.pad[0] }} }, \\
    { {{ op.params.dilation[1] }}, {{ op.params.dilation[0] }} }, """ + _ACT + """ }
""" + _DIMS + """\
#define {{ prefix }}_FILTER_DIMS """ + filter_dims + """
#define {{ prefix }}_BIAS_DIMS { 1, 1, 1, {{ op.bias.size }} }
#define {{ prefix }}_OUTPUT_DIMS { 1, {{ op.params.out_hw[0] }}, {{ op.params.out_hw[1] }}, {{ op.bias.size }} }
#define {{ prefix }}_CHANNELS {{ op.bias.size }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
""",
        weights=_per_channel_weights(layout))


CONV_S8 = _conv_kernel(
    "conv_s8", _per_channel(kernels.conv_s8), "cmsis_nn_conv_params", "arm_convolve_wrapper_s8", "",
    "{ {{ op.weights.shape[0] }}, {{ op.weights.shape[1] }}, {{ op.weights.shape[2] }}, {{ op.weights.shape[3] }} }",
    "[out][kernel_y][kernel_x][in / group]")
#: arm_convolve_s8 itself (no upscale): on Helium, a one-row convolution whose padding the
#: wrapper's MVE arm_convolve_1_x_n_s8 refuses (cmsisgen.s8.cpu.mve_1xn_fails).
CONV_S8_DIRECT = _conv_kernel(
    "conv_s8_direct", _per_channel(kernels.conv_s8), "cmsis_nn_conv_params", "arm_convolve_s8", "",
    "{ {{ op.weights.shape[0] }}, {{ op.weights.shape[1] }}, {{ op.weights.shape[2] }}, {{ op.weights.shape[3] }} }",
    "[out][kernel_y][kernel_x][in / group]", get_size="arm_convolve_s8_get_buffer_size(&input_dims, &filter_dims)",
    upscale="NULL, ")
DEPTHWISE_S8 = _conv_kernel(
    "depthwise_s8", _per_channel(kernels.depthwise_conv_s8, "ch_mult"), "cmsis_nn_dw_conv_params",
    "arm_depthwise_conv_wrapper_s8",
    "{{ op.params.ch_mult }}, ",
    "{ 1, {{ op.weights.shape[0] }}, {{ op.weights.shape[1] }}, {{ op.weights.shape[2] }} }",
    "[kernel_y][kernel_x][out]")

FC_S8 = Kernel(
    "fc_s8", _fc,
    call="""\
    /* {{ op.layer }} */
    {
        static const cmsis_nn_fc_params fc_params = {{ prefix }}_FC_PARAMS;
        static const cmsis_nn_per_tensor_quant_params quant_params = { {{ prefix }}_MULT, {{ prefix }}_SHIFT };
        static const cmsis_nn_dims input_dims = { 1, 1, 1, {{ prefix }}_DEPTH }, filter_dims = { {{ prefix }}_DEPTH, 1, 1, {{ prefix }}_ROWS },
                                   bias_dims = { 1, 1, 1, {{ prefix }}_ROWS }, output_dims = { 1, 1, 1, {{ prefix }}_ROWS };
{% set get_size = "arm_fully_connected_s8_get_buffer_size(&filter_dims)" %}
{% if op.params.kernel_sums is defined %}
        /* the MVE build reads each row's kernel sum from ctx.buf (computed by cmsisgen, in flash) */
        const cmsis_nn_context ctx = { (void *){{ prefix }}_KSUM, {{ prefix }}_ROWS * (int32_t)sizeof(int32_t) };
        NN_CHECK_SCRATCH({{ get_size }}, {{ prefix }}_ROWS * (int32_t)sizeof(int32_t));
{% else %}
""" + _CONTEXT + """\
{% endif %}
        status = arm_fully_connected_s8(&ctx, &fc_params, &quant_params, &input_dims, {{ buf[op.inputs[0]] }},
                                        &filter_dims, {{ prefix }}_WT, &bias_dims, {{ prefix }}_BIAS, &output_dims,
                                        {{ out }});
""" + _STATUS,
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, columns in the HWC order of its input's bytes */
#define {{ prefix }}_FC_PARAMS { {{ op.params.input_offset }}, 0, {{ op.params.output_offset }}, """ + _ACT + """ }
#define {{ prefix }}_MULT {{ op.params.mult }}
#define {{ prefix }}_SHIFT {{ op.params.shift }}
#define {{ prefix }}_DEPTH {{ a.depth }}
#define {{ prefix }}_ROWS {{ a.rows }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
""",
    weights="""\
/* {{ op.layer }}: {{ op.function }}; int8 weights [row][column], int32 bias */
const int8_t {{ prefix }}_WT[{{ prefix }}_WT_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
const int32_t {{ prefix }}_BIAS[{{ prefix }}_ROWS] NN_WEIGHT_SECTION = {
{{ op.bias | c_array }}
};
{% if op.params.kernel_sums is defined %}
/* {{ op.layer }}: kernel sums the Helium (MVE) build reads, computed at compile time: per row bias + input_offset * sum(row) */
const int32_t {{ prefix }}_KSUM[{{ prefix }}_ROWS] NN_WEIGHT_SECTION = {
{{ op.params.kernel_sums | c_array }}
};
{% endif %}
""")

_POOL_CALL = """\
    /* {{ op.layer }} */
    {
        static const cmsis_nn_pool_params pool_params = {{ prefix }}_POOL_PARAMS;
        static const cmsis_nn_dims input_dims = {{ prefix }}_INPUT_DIMS, filter_dims = {{ prefix }}_FILTER_DIMS,
                                   output_dims = {{ prefix }}_OUTPUT_DIMS;
{% set get_size = "arm_avgpool_s8_get_buffer_size(output_dims.w, input_dims.c)" %}
""" + _CONTEXT + """\
        status = {{ op.function }}(&ctx, &pool_params, &input_dims, {{ buf[op.inputs[0]] }}, &filter_dims, &output_dims,
                 {{ out }});
""" + _STATUS

_POOL_PARAMETERS = """\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, scratch {{ op.scratch_bytes }} bytes */
#define {{ prefix }}_POOL_PARAMS { { {{ op.params.stride[1] }}, {{ op.params.stride[0] }} }, \\
    { {{ op.params.pad[1] }}, {{ op.params.pad[0] }} }, """ + _ACT + """ }
""" + _DIMS + """\
#define {{ prefix }}_FILTER_DIMS { 1, {{ op.params.kernel[0] }}, {{ op.params.kernel[1] }}, 1 }
#define {{ prefix }}_OUTPUT_DIMS { 1, {{ op.params.out_hw[0] }}, {{ op.params.out_hw[1] }}, {{ a.channels }} }
"""

MAXPOOL_S8 = Kernel("maxpool_s8", _pool(kernels.max_pool_s8), call=_POOL_CALL, parameters=_POOL_PARAMETERS)
AVGPOOL_S8 = Kernel("avgpool_s8", _pool(kernels.avgpool_s8), call=_POOL_CALL, parameters=_POOL_PARAMETERS)

SOFTMAX_S8 = Kernel(
    "softmax_s8", _softmax,
    call="""\
    /* {{ op.layer }} */
    arm_softmax_s8({{ buf[op.inputs[0]] }}, {{ prefix }}_ROWS, {{ prefix }}_ROW_SIZE, {{ prefix }}_MULT, {{ prefix }}_SHIFT,
                   {{ prefix }}_DIFF_MIN, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; output scale 1/256, zero point -128 */
#define {{ prefix }}_ROWS {{ a.rows }}
#define {{ prefix }}_ROW_SIZE {{ a.row_size }}
#define {{ prefix }}_MULT {{ op.params.mult }}
#define {{ prefix }}_SHIFT {{ op.params.shift }}
#define {{ prefix }}_DIFF_MIN {{ op.params.diff_min }}
""")


#: The q7 backend's input step (the cheaper form of the same fixed point) at the s8 input's
#: constants, as nn_input_s8: only the header comment, the input's scale and zero point (for
#: q7's format) and the table's type and comment (weights.h) differ.
_INPUT_HEAD = """\
/* {{ op.layer }}: uint8 HWC image -> int8 at the input's scale and zero point. The simulator's definition,
 *   q = saturate((pixel * {{ op.params.fixed_point.mul }} - offset + 2^{{ op.params.fixed_point.shift - 1 }}) >> {{ op.params.fixed_point.shift }}), offset = round(mean * scale / s_in * 2^{{ op.params.fixed_point.shift }}) - zero_point * 2^{{ op.params.fixed_point.shift }}{{ " per pixel" if op.params.fixed_point.per_pixel else " per channel" }},
"""
assert network_input.PARAMETERS.split("\n", 2)[2].startswith("{% if op.params.form.kind")  # (after 2 comment lines)
_INPUT_FORMAT = "#define NN_INPUT_FRAC_BITS {{ f.out_frac }}\n"
_INPUT_QUANT = """\
#define NN_INPUT_SCALE {{ "%.17g" | format(op.params.quant.scale) }}
#define NN_INPUT_ZERO_POINT {{ op.params.quant.zero_point }}
"""
INPUT_S8 = Kernel("input_s8", lambda op, inputs: op.params.fixed_point.apply(inputs[0]), call="    nn_input_s8(image);\n",
                  parameters=_INPUT_HEAD + network_input.PARAMETERS.split("\n", 2)[2].replace(_INPUT_FORMAT,
                                                                                               _INPUT_QUANT),
                  weights=network_input.WEIGHTS.replace("const q7_t ", "const int8_t ").replace(  # (v4+: no q7_t)
                      "the q7 input of every pixel value", "the int8 input of every pixel value"))
assert "const int8_t NN_INPUT_TABLE" in INPUT_S8.weights and "q7" not in INPUT_S8.weights
assert "FRAC" not in INPUT_S8.parameters and INPUT_S8.parameters.count("NN_INPUT_ZERO_POINT") == 2


def _add(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    r = p["rescale"]
    return kernels.elementwise_add_s8(inputs[0], inputs[1].reshape(inputs[0].shape),
                                      input_1=(p["offsets"][0], *r.input_1), input_2=(p["offsets"][1], *r.input_2),
                                      output=(p["output_offset"], *r.output), left_shift=r.left_shift, act=p["act"],
                                      dsp=p.get("dsp_lanes", True))


def _mul(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    return kernels.elementwise_mul_s8(inputs[0], inputs[1].reshape(inputs[0].shape), input_1_offset=p["offsets"][0],
                                      input_2_offset=p["offsets"][1], output=(p["output_offset"], *p["rescale"]),
                                      act=p["act"])


_ELEMENTWISE_STATUS = """\
    if (status != ARM_CMSIS_NN_SUCCESS) {
        return status;
    }
"""

ADD_S8 = Kernel(
    "add_s8", _add,
    call="""\
    /* {{ op.layer }} */
    status = arm_elementwise_add_s8({{ buf[op.inputs[0]] }}, {{ buf[op.inputs[1]] }},
                                    {{ prefix }}_IN1_OFFSET, {{ prefix }}_IN1_MULT, {{ prefix }}_IN1_SHIFT,
                                    {{ prefix }}_IN2_OFFSET, {{ prefix }}_IN2_MULT, {{ prefix }}_IN2_SHIFT,
                                    {{ prefix }}_LEFT_SHIFT, {{ out }}, {{ prefix }}_OUTPUT_OFFSET, {{ prefix }}_OUTPUT_MULT,
                                    {{ prefix }}_OUTPUT_SHIFT, {{ prefix }}_ACT_MIN, {{ prefix }}_ACT_MAX, {{ prefix }}_SIZE);
""" + _ELEMENTWISE_STATUS,
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; both inputs onto twice the larger scale, then the output's */
#define {{ prefix }}_IN1_OFFSET {{ op.params.offsets[0] }}
#define {{ prefix }}_IN1_MULT {{ op.params.rescale.input_1[0] }}
#define {{ prefix }}_IN1_SHIFT {{ op.params.rescale.input_1[1] }}
#define {{ prefix }}_IN2_OFFSET {{ op.params.offsets[1] }}
#define {{ prefix }}_IN2_MULT {{ op.params.rescale.input_2[0] }}
#define {{ prefix }}_IN2_SHIFT {{ op.params.rescale.input_2[1] }}
#define {{ prefix }}_LEFT_SHIFT {{ op.params.rescale.left_shift }}
#define {{ prefix }}_OUTPUT_OFFSET {{ op.params.output_offset }}
#define {{ prefix }}_OUTPUT_MULT {{ op.params.rescale.output[0] }}
#define {{ prefix }}_OUTPUT_SHIFT {{ op.params.rescale.output[1] }}
#define {{ prefix }}_ACT_MIN {{ op.params.act[0] }}
#define {{ prefix }}_ACT_MAX {{ op.params.act[1] }}
#define {{ prefix }}_SIZE {{ a.size }}
""")

MUL_S8 = Kernel(
    "mul_s8", _mul,
    call="""\
    /* {{ op.layer }} */
    status = arm_elementwise_mul_s8({{ buf[op.inputs[0]] }}, {{ buf[op.inputs[1]] }}, {{ prefix }}_IN1_OFFSET,
                                    {{ prefix }}_IN2_OFFSET, {{ out }}, {{ prefix }}_OUTPUT_OFFSET, {{ prefix }}_OUTPUT_MULT,
                                    {{ prefix }}_OUTPUT_SHIFT, {{ prefix }}_ACT_MIN, {{ prefix }}_ACT_MAX, {{ prefix }}_SIZE);
""" + _ELEMENTWISE_STATUS,
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }} */
#define {{ prefix }}_IN1_OFFSET {{ op.params.offsets[0] }}
#define {{ prefix }}_IN2_OFFSET {{ op.params.offsets[1] }}
#define {{ prefix }}_OUTPUT_OFFSET {{ op.params.output_offset }}
#define {{ prefix }}_OUTPUT_MULT {{ op.params.rescale[0] }}
#define {{ prefix }}_OUTPUT_SHIFT {{ op.params.rescale[1] }}
#define {{ prefix }}_ACT_MIN {{ op.params.act[0] }}
#define {{ prefix }}_ACT_MAX {{ op.params.act[1] }}
#define {{ prefix }}_SIZE {{ a.size }}
""")

CONCAT_S8 = Kernel(
    "concat_s8",
    lambda op, inputs: np.concatenate([x.reshape(len(x), op.args["height"], op.args["width"], -1) for x in inputs],
                                      axis=3),
    call="""\
    /* {{ op.layer }}: each input's channels at their offset in every pixel */
{% for tensor in op.inputs %}
    arm_concatenation_s8_x({{ buf[tensor] }}, {{ op.params.channels[loop.index0] }}, {{ prefix }}_WIDTH, {{ prefix }}_HEIGHT, 1,
                           {{ out }}, {{ prefix }}_CHANNELS, {{ op.params.offsets[loop.index0] }});
{% endfor %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, one call per input; inputs and output share one quantization */
#define {{ prefix }}_CHANNELS {{ a.channels }}
#define {{ prefix }}_HEIGHT {{ a.height }}
#define {{ prefix }}_WIDTH {{ a.width }}
""")

RELU_S8 = Kernel(
    "relu_s8", lambda op, inputs: kernels.maximum_s8(inputs[0], np.int8(op.params["zero"])),
    call="""\
    /* {{ op.layer }}: max(x, zero point) */
    {
        static const cmsis_nn_dims input_dims = {{ prefix }}_INPUT_DIMS, zero_dims = { 1, 1, 1, 1 };
        const cmsis_nn_context ctx = { NULL, 0 };
        status = arm_maximum_s8(&ctx, {{ buf[op.inputs[0]] }}, &input_dims, {{ prefix }}_ZERO, &zero_dims, {{ out }},
                                &input_dims);
""" + _STATUS,
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }} with its zero point (not fusable into the call before it) */
""" + _DIMS,
    weights="""\
/* {{ op.layer }}: the zero point of its input and output */
const int8_t {{ prefix }}_ZERO[1] NN_WEIGHT_SECTION = {
    {{ op.params.zero }}
};
""")


def _maximum(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    out = inputs[0]
    for other in inputs[1:]:
        out = kernels.maximum_s8(out, other.reshape(out.shape))
    return out


MAX_S8 = Kernel(
    "max_s8", _maximum,
    call="""\
    /* {{ op.layer }}: the first two inputs, then each further one with the result so far */
    {
        static const cmsis_nn_dims dims = {{ prefix }}_INPUT_DIMS;
        const cmsis_nn_context ctx = { NULL, 0 };
{% for tensor in op.inputs[1:] %}
        status = arm_maximum_s8(&ctx, {{ buf[op.inputs[0]] if loop.first else out }}, &dims, {{ buf[tensor] }}, &dims,
                                {{ out }}, &dims);
        if (status != ARM_CMSIS_NN_SUCCESS) {
            return status;
        }
{% endfor %}
    }
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; inputs and output share one quantization */
""" + _DIMS)


def _lookup(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    tables = op.params["tables"]
    index = inputs[0].astype(np.int64) + 128
    if len(tables) == 1:
        return tables[0][index]
    return tables[np.arange(tables.shape[0]), index]


LOOKUP_S8 = Kernel(
    "lookup_s8", _lookup, source="nn_lookup_s8.c",
    call="""\
    /* {{ op.layer }} */
{% if op.function == "nn_lookup_s8" %}
    nn_lookup_s8({{ buf[op.inputs[0]] }}, {{ prefix }}_TABLE, {{ prefix }}_CHANNELS * {{ prefix }}_PIXELS, {{ out }});
{% else %}
    nn_lookup_channels_s8({{ buf[op.inputs[0]] }}, {{ prefix }}_TABLE, {{ prefix }}_CHANNELS, {{ prefix }}_PIXELS, {{ out }});
{% endif %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, a table of the layer's function at its input's and output's quantization */
#define {{ prefix }}_CHANNELS {{ a.channels }}u
#define {{ prefix }}_PIXELS {{ a.pixels }}u
#define {{ prefix }}_TABLE_SIZE {{ op.weight_data.size }}
""",
    weights="""\
/* {{ op.layer }}: {{ op.function }}; table[x + 128]{{ " per channel" if op.function != "nn_lookup_s8" }} */
const int8_t {{ prefix }}_TABLE[{{ prefix }}_TABLE_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
""")


def _argmax(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    from ..ops.argmax import argmax_q7  # the same arithmetic on int8

    return argmax_q7(inputs[0], not op.args["whole"])


ARGMAX_S8 = Kernel(
    "argmax_s8", _argmax, source="nn_argmax_s8.c",
    call="""\
    /* {{ op.layer }} */
    nn_argmax_s8({{ buf[op.inputs[0]] }}, {{ prefix }}_CH, {{ prefix }}_PIXELS, {{ prefix }}_WHOLE, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; out: the index itself (scale 1, zero point 0) */
#define {{ prefix }}_CH {{ a.channels }}u
#define {{ prefix }}_PIXELS {{ a.pixels }}u
#define {{ prefix }}_WHOLE {{ a.whole }}u
""")


def _avgpool_caffe(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    return own_kernels.avgpool_caffe_s8(inputs[0], kernel=p["kernel"], stride=p["stride"], pad=p["pad"],
                                        out_hw=p["out_hw"], act=p["act"], input_offset=p["input_offset"],
                                        output_offset=p["output_offset"], shift=p["shift"])


AVGPOOL_CAFFE_S8 = Kernel(
    "avgpool_caffe_s8", _avgpool_caffe, source="nn_avgpool_caffe_s8.c",
    call="""\
    /* {{ op.layer }} */
    {
        static const uint16_t dims[11] = { {{ op.in_shape[0] }}, {{ op.in_shape[1] }}, {{ op.in_shape[2] }}, {{ op.params.kernel[0] }}, {{ op.params.kernel[1] }},
                                           {{ op.params.stride[0] }}, {{ op.params.stride[1] }}, {{ op.params.pad[0] }}, {{ op.params.pad[1] }},
                                           {{ op.params.out_hw[0] }}, {{ op.params.out_hw[1] }} };
        static const int32_t quant[5] = {{ prefix }}_QUANT;

        nn_avgpool_caffe_s8({{ buf[op.inputs[0]] }}, dims, quant, {{ out }});
    }
""",
    parameters="""\
{% if op.params.shift %}
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}: its output has its own scale, the input's / 2^{{ op.params.shift }} (arm_avgpool_s8 keeps the input's) */
{% else %}
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}: Caffe divides by the window clipped to the padded image (arm_avgpool_s8 would not) */
{% endif %}
/* input offset (the negated zero point), output offset (zero point), shift into the output scale, activation min, max */
#define {{ prefix }}_QUANT { {{ op.params.input_offset }}, {{ op.params.output_offset }}, {{ op.params.shift }}, {{ op.params.act[0] }}, {{ op.params.act[1] }} }
""")

#: nn_lrn_q7's calls on zero-point-0 int8 (q7_t is int8_t); the table is cmsisgen.s8.lower_own.lrn_table's.
LRN_S8 = Kernel(
    "lrn_s8", LRN_Q7.simulate, call=LRN_Q7.call, weights=LRN_Q7.weights, source=LRN_Q7.source,
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; int8 at zero point 0 in and out, multipliers x 2^{{ f.mul_frac }} (int32, s_in / s_out folded in) */
#define {{ prefix }}_HEIGHT {{ a.height }}
#define {{ prefix }}_WIDTH {{ a.width }}
#define {{ prefix }}_CH {{ a.channels }}
#define {{ prefix }}_LOCAL_SIZE {{ a.local_size }}
#define {{ prefix }}_MANTISSA_BITS {{ a.mantissa_bits }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
#define {{ prefix }}_TABLE_SIZE {{ a.table_size }}
""")


#: Caffe's Deconvolution (nn_deconv_s8.c): the geometry as 15 uint32_t, the offsets and range as 4 int32_t.
DECONV_S8 = Kernel(
    "deconv_s8", _per_channel(own_kernels.deconv_s8, "groups"), source="nn_deconv_s8.c",
    call="""\
    /* {{ op.layer }} */
    {
        static const uint32_t dims[15] = {{ prefix }}_DIMS;
        static const int32_t quant[4] = {{ prefix }}_QUANT;

        nn_deconv_s8({{ buf[op.inputs[0]] }}, dims, quant, {{ prefix }}_WT, {{ prefix }}_BIAS, {{ prefix }}_MULT,
                     {{ prefix }}_SHIFT, {{ out }});
    }
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; Caffe's transposed convolution, requantized per output channel */
/* input HxWxC, output HxWxC, kernel, stride, padding, dilation (each HxW), groups */
#define {{ prefix }}_DIMS { {{ op.in_shape[0] }}, {{ op.in_shape[1] }}, {{ op.in_shape[2] }}, {{ op.params.out_hw[0] }}, \\
        {{ op.params.out_hw[1] }}, {{ op.bias.size }}, {{ op.weights.shape[1] }}, {{ op.weights.shape[2] }}, \\
        {{ op.params.stride[0] }}, {{ op.params.stride[1] }}, {{ op.params.pad[0] }}, {{ op.params.pad[1] }}, \\
        {{ op.params.dilation[0] }}, {{ op.params.dilation[1] }}, {{ op.params.groups }} }
/* input offset (the negated zero point), output offset (zero point), activation min, max */
#define {{ prefix }}_QUANT { {{ op.params.input_offset }}, {{ op.params.output_offset }}, {{ op.params.act[0] }}, {{ op.params.act[1] }} }
#define {{ prefix }}_CHANNELS {{ op.bias.size }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
""",
    weights=_per_channel_weights("[out][kernel_y][kernel_x][in / group]"))


def _sum(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    p = op.params
    r = p["rescale"]
    return own_kernels.eltwise_add_s8([x.reshape(inputs[0].shape) for x in inputs],
                                      in_params=[(offset, *m) for offset, m in zip(p["offsets"], r.inputs)],
                                      out_params=(p["output_offset"], *r.output, *p["act"]))


#: Eltwise SUM of more than two inputs (nn_eltwise_add_s8.c): arm_elementwise_add_s8's arithmetic for N.
EWSUM_S8 = Kernel(
    "ewsum_s8", _sum, source="nn_eltwise_add_s8.c",
    call="""\
    /* {{ op.layer }} */
    {
        const int8_t *const inputs[{{ prefix }}_INPUTS] = { {% for name in op.inputs %}{{ buf[name] }}{{ ", " if not loop.last }}{% endfor %} };
        static const int32_t in_params[3 * {{ prefix }}_INPUTS] = {{ prefix }}_IN_PARAMS;
        static const int32_t out_params[5] = {{ prefix }}_OUT_PARAMS;

        nn_eltwise_add_s8(inputs, {{ prefix }}_INPUTS, in_params, out_params, {{ prefix }}_SIZE, {{ out }});
    }
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; the inputs onto {{ op.params.headroom }} times the largest scale, then the output's */
/* per input: offset (the negated zero point), multiplier, shift (after a left shift of {{ op.params.rescale.left_shift }}) */
#define {{ prefix }}_IN_PARAMS { {% for offset in op.params.offsets %}{{ offset }}, {{ op.params.rescale.inputs[loop.index0][0] }}, {{ op.params.rescale.inputs[loop.index0][1] }}{{ ", " if not loop.last }}{% endfor %} }
/* output offset (zero point), multiplier, shift, activation min, max */
#define {{ prefix }}_OUT_PARAMS { {{ op.params.output_offset }}, {{ op.params.rescale.output[0] }}, {{ op.params.rescale.output[1] }}, {{ op.params.act[0] }}, {{ op.params.act[1] }} }
#define {{ prefix }}_INPUTS {{ op.inputs | length }}
#define {{ prefix }}_SIZE {{ a.size }}
""")
