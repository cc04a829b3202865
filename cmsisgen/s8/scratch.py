"""What CMSIS-NN v7.0.0's ``*_get_buffer_size`` functions return, per core, computed at compile time.

The s8 kernels take scratch memory through ``cmsis_nn_context``; its size depends on the
layer's shapes *and on the build* (the answer is decided by #if on ARM_MATH_DSP /
ARM_MATH_MVEI and, for one kernel, the compiler), so the generated code cannot ask the
library while planning its arena. These functions give the same numbers for:

* ``"dsp"``: Cortex-M4/M7/M33 (ARM_MATH_DSP, no MVE) built with GCC: the target of cmsisgen;
* ``"dsp-armclang"``: the same built with Arm Compiler 6 (the 1x1 fast convolution keeps an
  int16 copy of two input pixels only there);
* ``"mve"``: Cortex-M55/M85 (ARM_MATH_MVEI, helium);
* ``"plain"``: no DSP extension (Cortex-M0/M3), also upstream built on a host.

Shapes are (n, h, w, c) tuples as in ``cmsis_nn_dims``; a convolution filter is
(c_out, kh, kw, c_in / groups), a depthwise filter (1, kh, kw, c_out).
"""
from __future__ import annotations

CORES = ("dsp", "dsp-armclang", "mve", "plain")
#: One input channel and more output channels than this make the MVE depthwise wrapper run
#: a regular convolution on a transposed filter copy (8 with Arm Compiler 6, 1 with GCC).
_MVE_DW_TO_CONV_THRESHOLD = 1
#: Channels the MVE depthwise kernel processes per block.
_MVE_DW_CH_BLOCK = 124

Dims = tuple[int, int, int, int]
Pair = tuple[int, int]


def c_mod(a: int, b: int) -> int:
    """C's ``a % b`` (the sign of the dividend), as upstream's size functions compute it."""
    return a - b * int(a / b)


def _check(core: str) -> None:
    if core not in CORES:
        raise ValueError(f"unknown core {core!r}: expected one of {', '.join(CORES)}")


def convolve_s8(input_dims: Dims, filter_dims: Dims, core: str = "dsp") -> int:
    """arm_convolve_s8_get_buffer_size: im2col columns (int16 pairs, or int8 quads on MVE)."""
    _check(core)
    cols = filter_dims[1] * filter_dims[2] * input_dims[3]
    if core == "mve":
        return 4 * ((cols + 15) // 16) * 16
    return 2 * ((cols + 3) // 4 * 4) * 2


def _conv_1_x_n_mve(input_dims: Dims, filter_dims: Dims, output_dims: Dims, stride_w: int, pad_w: int) -> int:
    """arm_convolve_1_x_n_s8_get_buffer_size on MVE: one padded im2col row at either end."""
    c, kernel_x, out_x = input_dims[3], filter_dims[2], output_dims[2]
    total_pad = (out_x - 1) * stride_w + kernel_x - input_dims[2]
    asym = c_mod(total_pad, 2)  # -1 for a negative odd total, as in C
    right = max(1, (pad_w + asym + stride_w - 1) // stride_w) if pad_w + asym else 0
    left = max(1, (pad_w + stride_w - 1) // stride_w) if pad_w else 0
    if right + max(out_x - (right + left), 0) + left != out_x:
        return convolve_s8(input_dims, filter_dims, "mve")
    pad_left = pad_w * c
    pad_right = right * c if asym else pad_left
    elems = kernel_x * c
    return max(elems + pad_left, elems - c + pad_right)


def convolve_wrapper_s8(input_dims: Dims, filter_dims: Dims, output_dims: Dims, *, stride: Pair = (1, 1),
                        pad: Pair = (0, 0), dilation: Pair = (1, 1), core: str = "dsp") -> int:
    """arm_convolve_wrapper_s8_get_buffer_size; stride/pad/dilation are (h, w).

    Note: the size functions choose the 1x1 path without the kernel's input c == filter c
    test, so a *grouped* 1x1 convolution gets 0 here although the wrapper then runs
    arm_convolve_s8, which refuses a NULL buffer: plan :func:`convolve_s8` for it.
    """
    _check(core)
    if pad == (0, 0) and filter_dims[1:3] == (1, 1) and dilation == (1, 1):
        if stride != (1, 1):
            return 0
        return 2 * input_dims[3] * 2 if core == "dsp-armclang" else 0
    if input_dims[1] == 1 and dilation[1] == 1 and filter_dims[1] == 1 and (stride[1] * input_dims[3]) % 4 == 0:
        if core == "mve":
            return _conv_1_x_n_mve(input_dims, filter_dims, output_dims, stride[1], pad[1])
    return convolve_s8(input_dims, filter_dims, "mve" if core == "mve" else "dsp")


def depthwise_conv_wrapper_s8(input_dims: Dims, filter_dims: Dims, output_dims: Dims, *, pad: Pair = (0, 0),
                              dilation: Pair = (1, 1), stride: Pair = (1, 1), core: str = "dsp") -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size; pad/dilation/stride are (h, w)."""
    _check(core)
    kh, kw = filter_dims[1], filter_dims[2]
    if core == "mve" and input_dims[3] == 1 and output_dims[3] > _MVE_DW_TO_CONV_THRESHOLD:
        conv_filter = (filter_dims[3], kh, kw, filter_dims[0])
        return (convolve_wrapper_s8(input_dims, conv_filter, output_dims, stride=stride, pad=pad, dilation=dilation,
                                    core="mve") + filter_dims[0] * kh * kw * filter_dims[3])
    if input_dims[3] != output_dims[3] or input_dims[0] != 1 or dilation != (1, 1):
        return 0
    if core == "mve":
        return 4 * _MVE_DW_CH_BLOCK * kw * kh
    if core == "plain" or (kh, kw) == (3, 3) and max(pad) <= 1:
        return 0
    return input_dims[3] * kw * kh * 2


def fully_connected_s8(filter_dims: Dims, core: str = "dsp") -> int:
    """arm_fully_connected_s8_get_buffer_size: only MVE keeps per-row kernel sums (int32)."""
    _check(core)
    return filter_dims[3] * 4 if core == "mve" else 0


def avgpool_s8(output_w: int, channels: int, core: str = "dsp") -> int:
    """arm_avgpool_s8_get_buffer_size: the DSP build sums one pixel's channels in int32."""
    _check(core)
    return channels * 4 if core in ("dsp", "dsp-armclang") else 0
