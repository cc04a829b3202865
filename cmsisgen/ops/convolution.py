"""Caffe Convolution: dense, depthwise or grouped, onto the CMSIS-NN q7 convolutions.

Dense convolutions take the first fitting ``arm_convolve_*`` function; a grouped one a
depthwise function when it fits, else one dense call per group on a gathered channel
slice. Weights are emitted HWC (``[O][kh][kw][I]``; depthwise ``[kh][kw][C]``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from .. import ir
from ..im2col import im2col, images_per_chunk
from ..mapper import layout
from ..mapper.calls import Op
from ..mapper.rules import UINT16_MAX, Site, dense, rule, sizes_fit_int16, square_geometry, undilated
from ..simulator import kernels
from .caffe_params import ErrorMaker, optional, spatial
from .base import (Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, choose, fail, generic_site, hwc,
                   one_input, stem)
from .own_conv import NN_CONV, own_conv_args, positions_fit_uint32, window
from .weighted import WEIGHT_ARRAYS, absorb_affine, weighted_formats

#: Bytes arm_convolve_HWC_q7_RGB reads beyond the end of its input (one 4-byte read per pixel).
RGB_READS_PAST_END = 1


@rule("{in_ch} input channels")
def three_input_channels(site: Site) -> bool:
    """arm_convolve_HWC_q7_RGB is written for exactly 3 input channels."""
    return site.in_ch == 3


@rule("{in_ch} input channels")
def input_channels_multiple_of_4(site: Site) -> bool:
    """The _fast convolutions read input channels four at a time: input channels must be a multiple of 4."""
    return site.in_ch % 4 == 0


@rule("{out_ch} output channels")
def output_channels_even(site: Site) -> bool:
    """The _fast convolutions compute two output channels at a time: output channels must be even."""
    return site.out_ch % 2 == 0


@rule("{in_ch} channels x {kernel_h}x{kernel_w} kernel")
def im2col_column_fits_uint16(site: Site) -> bool:
    """The q7 convolutions count one im2col column (in_ch * kernel_h * kernel_w) in a uint16_t: it must be at most 65535."""
    return site.in_ch * site.kernel_h * site.kernel_w <= UINT16_MAX


@rule("kernel {kernel_h}x{kernel_w}, stride {stride_h}x{stride_w}, padding {pad_h}x{pad_w}")
def one_by_one_kernel(site: Site) -> bool:
    """arm_convolve_1x1_HWC_q7_fast_nonsquare is written for a 1x1 kernel with stride 1 and no padding."""
    return (site.kernel_h == site.kernel_w == 1 and site.stride_h == site.stride_w == 1
            and site.pad_h == site.pad_w == 0)


@rule("group {group}, {in_ch} input and {out_ch} output channels")
def depthwise(site: Site) -> bool:
    """The depthwise functions filter each channel on its own: group must equal both the input and the output channel count."""
    return site.group == site.in_ch == site.out_ch


@rule("kernel {kernel_h}x{kernel_w}")
def depthwise_column_fits_uint16(site: Site) -> bool:
    """The depthwise functions count the kernel taps (kernel_h * kernel_w) in a uint16_t: at most 65535."""
    return site.kernel_h * site.kernel_w <= UINT16_MAX


@rule("padding {pad_h}x{pad_w}, output {out_h}x{out_w}")
def padding_within_output(site: Site) -> bool:
    """The _fast convolutions split the output into padded border and inner regions: padding must not exceed the output size."""
    return site.pad_h <= site.out_h and site.pad_w <= site.out_w


#: The project's own convolution (cmsisgen.ops.own_conv), after every CMSIS-NN function.
OWN_CONV = "nn_conv_q7"
_DENSE = (dense, undilated, sizes_fit_int16, im2col_column_fits_uint16)
#: Where two fit, the one that ran fewer instructions on the emulated Cortex-M7 comes first
#: (benchmarks/kernel_choice.py; table in docs/design.md). arm_convolve_HWC_q7_basic and
#: arm_depthwise_separable_conv_HWC_q7 come last: their _nonsquare twins take every geometry
#: they take and ran fewer instructions (0.4-3%), so they are only ever used when forced
#: (--kernel).
DENSE = Choice("Convolution", (
    Candidate("arm_convolve_1x1_HWC_q7_fast_nonsquare", _DENSE + (one_by_one_kernel, input_channels_multiple_of_4,
                                                                  output_channels_even)),
    Candidate("arm_convolve_HWC_q7_RGB", _DENSE + (three_input_channels, square_geometry)),
    Candidate("arm_convolve_HWC_q7_fast", _DENSE + (input_channels_multiple_of_4, output_channels_even,
                                                    padding_within_output, square_geometry)),
    Candidate("arm_convolve_HWC_q7_fast_nonsquare", _DENSE + (input_channels_multiple_of_4, output_channels_even,
                                                              padding_within_output)),
    Candidate("arm_convolve_HWC_q7_basic_nonsquare", _DENSE),
    Candidate("arm_convolve_HWC_q7_basic", _DENSE + (square_geometry,)),
    Candidate(OWN_CONV, (dense, positions_fit_uint32)),
), note=f"The project's own kernel {OWN_CONV} (CMSIS-NN's q7 arithmetic) runs what no CMSIS-NN function can: "
        "dilation, sizes beyond their uint16/int16 counters.")
#: The "Convolution/group" entry that runs one dense convolution per group.
PER_GROUP = "per-group dense convolution"
GROUPED = Choice("Convolution/group", (
    Candidate("arm_depthwise_separable_conv_HWC_q7_nonsquare", (depthwise, undilated, sizes_fit_int16,
                                                                depthwise_column_fits_uint16)),
    Candidate(PER_GROUP, (undilated, sizes_fit_int16)),
    Candidate("arm_depthwise_separable_conv_HWC_q7", (depthwise, undilated, sizes_fit_int16,
                                                      depthwise_column_fits_uint16, square_geometry)),
    Candidate(OWN_CONV, (positions_fit_uint32,)),
), note="group > 1: a depthwise function, else one dense convolution per group (on a gathered channel slice) "
        "with the function the Convolution list picks for one group's channels; "
        f"{OWN_CONV} (all groups in one call) where none of these fits, or the Convolution list picks it for a group.")


def _simulate_conv(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    a = op.args
    return kernels.conv_hwc_q7(inputs[0], op.weights, op.bias, stride=(a["stride_y"], a["stride_x"]),
                               pad=(a["padding_y"], a["padding_x"]), out_hw=(a["dim_im_out_y"], a["dim_im_out_x"]),
                               bias_lshift=op.formats["bias_lshift"], out_rshift=op.formats["out_rshift"])


def _geometry(op: Op) -> dict:
    a = op.args
    return dict(stride=(a["stride_y"], a["stride_x"]), pad=(a["padding_y"], a["padding_x"]),
                out_hw=(a["dim_im_out_y"], a["dim_im_out_x"]), bias_lshift=op.formats["bias_lshift"],
                out_rshift=op.formats["out_rshift"])


PARAMETERS = """\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}{% if op.kind == "group_conv" %} once per group ({{ a.groups }} groups){% endif %}; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, weights Q{{ 7 - f.weight_frac }}.{{ f.weight_frac }}, bias Q{{ 7 - f.bias_frac }}.{{ f.bias_frac }}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_IN_CH {{ a.ch_im_in }}
#define {{ prefix }}_OUT_CH {{ a.ch_im_out }}
{% if op.function.endswith("_nonsquare") %}
#define {{ prefix }}_IN_DIM_X {{ a.dim_im_in_x }}
#define {{ prefix }}_IN_DIM_Y {{ a.dim_im_in_y }}
#define {{ prefix }}_KERNEL_DIM_X {{ a.dim_kernel_x }}
#define {{ prefix }}_KERNEL_DIM_Y {{ a.dim_kernel_y }}
#define {{ prefix }}_PADDING_X {{ a.padding_x }}
#define {{ prefix }}_PADDING_Y {{ a.padding_y }}
#define {{ prefix }}_STRIDE_X {{ a.stride_x }}
#define {{ prefix }}_STRIDE_Y {{ a.stride_y }}
#define {{ prefix }}_OUT_DIM_X {{ a.dim_im_out_x }}
#define {{ prefix }}_OUT_DIM_Y {{ a.dim_im_out_y }}
{% else %}
#define {{ prefix }}_IN_DIM {{ a.dim_im_in_x }}
#define {{ prefix }}_KERNEL_DIM {{ a.dim_kernel_x }}
#define {{ prefix }}_PADDING {{ a.padding_x }}
#define {{ prefix }}_STRIDE {{ a.stride_x }}
#define {{ prefix }}_OUT_DIM {{ a.dim_im_out_x }}
{% endif %}
#define {{ prefix }}_BIAS_LSHIFT {{ f.bias_lshift }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
#define {{ prefix }}_BIAS_SIZE {{ op.bias.size }}
{% if op.kind == "group_conv" %}
#define {{ prefix }}_GROUPS {{ a.groups }}
#define {{ prefix }}_IN_CH_GROUP {{ a.ch_in_group }}
#define {{ prefix }}_OUT_CH_GROUP {{ a.ch_out_group }}
#define {{ prefix }}_WT_GROUP_SIZE {{ op.weight_data.size // a.groups }}
#define {{ prefix }}_IN_PIXELS {{ a.dim_im_in_x * a.dim_im_in_y }}
#define {{ prefix }}_OUT_PIXELS {{ a.dim_im_out_x * a.dim_im_out_y }}
/* scratch: im2col, then the group's gathered input, then the group's output */
#define {{ prefix }}_IM2COL_BYTES {{ a.im2col_bytes }}
#define {{ prefix }}_GROUP_IN_BYTES {{ a.group_in_bytes }}
{% endif %}
"""

WEIGHTS = "{% set about = {'depthwise': ', [kernel_y][kernel_x][channel]', " \
          "'group_conv': \", one group's filters after the other\"}.get(op.kind, '') %}\n" + WEIGHT_ARRAYS

#: The call's arguments after the input (and its channels), by variant: square or _nonsquare.
CALL = """\
    /* {{ op.layer }} */
{% if op.function.endswith("_nonsquare") %}
    status = {{ op.function }}(
            {{ buf[op.inputs[0]] }}, {{ prefix }}_IN_DIM_X, {{ prefix }}_IN_DIM_Y, {{ prefix }}_IN_CH,
            {{ prefix }}_WT, {{ prefix }}_OUT_CH, {{ prefix }}_KERNEL_DIM_X, {{ prefix }}_KERNEL_DIM_Y,
            {{ prefix }}_PADDING_X, {{ prefix }}_PADDING_Y, {{ prefix }}_STRIDE_X, {{ prefix }}_STRIDE_Y,
            {{ prefix }}_BIAS, {{ prefix }}_BIAS_LSHIFT, {{ prefix }}_OUT_RSHIFT, {{ out }},
            {{ prefix }}_OUT_DIM_X, {{ prefix }}_OUT_DIM_Y, nn_scratch, NULL);
{% else %}
    status = {{ op.function }}(
            {{ buf[op.inputs[0]] }}, {{ prefix }}_IN_DIM, {{ prefix }}_IN_CH, {{ prefix }}_WT,
            {{ prefix }}_OUT_CH, {{ prefix }}_KERNEL_DIM, {{ prefix }}_PADDING, {{ prefix }}_STRIDE,
            {{ prefix }}_BIAS, {{ prefix }}_BIAS_LSHIFT, {{ prefix }}_OUT_RSHIFT, {{ out }},
            {{ prefix }}_OUT_DIM, nn_scratch, NULL);
{% endif %}
    if (status != ARM_MATH_SUCCESS) {
        return status;
    }
"""

GROUP_CALL = """\
    /* {{ op.layer }}: per group, gather its input channels, convolve, scatter its output channels */
    {
        q7_t *const group_in = (q7_t *)nn_scratch + {{ prefix }}_IM2COL_BYTES;
        q7_t *const group_out = group_in + {{ prefix }}_GROUP_IN_BYTES;
        uint32_t group;

        for (group = 0; group < {{ prefix }}_GROUPS; group++) {
            nn_gather_channels_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_IN_CH, group * {{ prefix }}_IN_CH_GROUP, group_in,
                                  {{ prefix }}_IN_CH_GROUP, {{ prefix }}_IN_PIXELS);
{% if op.function.endswith("_nonsquare") %}
            status = {{ op.function }}(
                    group_in, {{ prefix }}_IN_DIM_X, {{ prefix }}_IN_DIM_Y, {{ prefix }}_IN_CH_GROUP,
                    {{ prefix }}_WT + group * {{ prefix }}_WT_GROUP_SIZE, {{ prefix }}_OUT_CH_GROUP,
                    {{ prefix }}_KERNEL_DIM_X, {{ prefix }}_KERNEL_DIM_Y, {{ prefix }}_PADDING_X, {{ prefix }}_PADDING_Y,
                    {{ prefix }}_STRIDE_X, {{ prefix }}_STRIDE_Y, {{ prefix }}_BIAS + group * {{ prefix }}_OUT_CH_GROUP,
                    {{ prefix }}_BIAS_LSHIFT, {{ prefix }}_OUT_RSHIFT, group_out, {{ prefix }}_OUT_DIM_X,
                    {{ prefix }}_OUT_DIM_Y, nn_scratch, NULL);
{% else %}
            status = {{ op.function }}(
                    group_in, {{ prefix }}_IN_DIM, {{ prefix }}_IN_CH_GROUP,
                    {{ prefix }}_WT + group * {{ prefix }}_WT_GROUP_SIZE, {{ prefix }}_OUT_CH_GROUP,
                    {{ prefix }}_KERNEL_DIM, {{ prefix }}_PADDING, {{ prefix }}_STRIDE,
                    {{ prefix }}_BIAS + group * {{ prefix }}_OUT_CH_GROUP, {{ prefix }}_BIAS_LSHIFT,
                    {{ prefix }}_OUT_RSHIFT, group_out, {{ prefix }}_OUT_DIM, nn_scratch, NULL);
{% endif %}
            if (status != ARM_MATH_SUCCESS) {
                return status;
            }
            nn_concat_channels_q7(group_out, {{ prefix }}_OUT_CH_GROUP, {{ out }}, {{ prefix }}_OUT_CH,
                                  group * {{ prefix }}_OUT_CH_GROUP, {{ prefix }}_OUT_PIXELS);
        }
    }
"""

CONV = Kernel("conv", _simulate_conv, CALL, PARAMETERS, WEIGHTS)
DEPTHWISE = Kernel("depthwise", lambda op, inputs: kernels.depthwise_conv_hwc_q7(
    inputs[0], op.weights, op.bias, **_geometry(op)), CALL, PARAMETERS, WEIGHTS)
GROUP_CONV = Kernel("group_conv", lambda op, inputs: kernels.group_conv_hwc_q7(
    inputs[0], op.weights, op.bias, groups=op.args["groups"], **_geometry(op)), GROUP_CALL, PARAMETERS, WEIGHTS,
    source="nn_concat_q7.c")


def parse_convolution_param(cp: Any, err: ErrorMaker, num_output_required: bool = True) -> ir.ConvParams:
    """A convolution_param (Convolution, ConvolutionDepthwise, Deconvolution) with Caffe's defaults."""
    if num_output_required and not cp.HasField("num_output"):
        raise err("convolution_param.num_output is required")
    kh, kw = spatial(list(cp.kernel_size), optional(cp, "kernel_h"), optional(cp, "kernel_w"), 0, "kernel", err)
    if kh == 0 or kw == 0:
        raise err("convolution_param needs kernel_size or kernel_h/kernel_w")
    # Caffe: pad_h/pad_w have defaults, so giving only one of them is legal (the other is 0).
    either = cp.HasField("pad_h") or cp.HasField("pad_w")
    ph, pw = spatial(list(cp.pad), cp.pad_h if either else None, cp.pad_w if either else None, 0, "pad", err)
    sh, sw = spatial(list(cp.stride), optional(cp, "stride_h"), optional(cp, "stride_w"), 1, "stride", err)
    dh, dw = spatial(list(cp.dilation), None, None, 1, "dilation", err)
    if dh <= 0 or dw <= 0:
        raise err(f"dilation must be positive, got {dh}x{dw}")
    if cp.axis != 1:
        raise err(f"convolution axis {cp.axis} is not supported (only 1)")
    return ir.ConvParams(num_output=cp.num_output, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph,
                         pad_w=pw, bias_term=cp.bias_term, group=cp.group, dilation_h=dh, dilation_w=dw)


def checked_input(net: ir.Net, layer: ir.Layer) -> tuple[ir.ConvParams, Shape]:
    """The params and input shape of a convolution-like layer, after the checks they share."""
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    c, h, w = one_input(net, layer)
    if p.num_output <= 0:
        raise fail(net, layer, "num_output must be positive")
    if p.group <= 0 or c % p.group or p.num_output % p.group:
        raise fail(net, layer, f"group {p.group} does not divide input channels {c} "
                               f"and num_output {p.num_output}")
    if p.stride_h <= 0 or p.stride_w <= 0:
        raise fail(net, layer, "stride must be positive")
    return p, (c, h, w)


class ConvolutionParamKind(LayerKind):
    """What the kinds read from a convolution_param share: weights and bias quantized as a
    convolution's, BatchNorm/Scale folded in, the parameters and the Site."""

    weighted = True
    absorbs_affine = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.ConvParams:
        return parse_convolution_param(layer.convolution_param, err)

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        p: ir.ConvParams = layer.params  # type: ignore[assignment]
        return generic_site(net, layer, kernel_h=p.kernel_h, kernel_w=p.kernel_w, stride_h=p.stride_h,
                            stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w, group=p.group,
                            dilation_h=p.dilation_h, dilation_w=p.dilation_w)


class Convolution(ConvolutionParamKind):
    types = ("Convolution",)
    forward_any_layout = True  # it reads its input as NHWC whatever the memory order

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        p, (c, h, w) = checked_input(net, layer)
        ext_h = p.dilation_h * (p.kernel_h - 1) + 1
        ext_w = p.dilation_w * (p.kernel_w - 1) + 1
        if p.kernel_h <= 0 or p.kernel_w <= 0 or ext_h > h + 2 * p.pad_h or ext_w > w + 2 * p.pad_w:
            raise fail(net, layer, f"kernel {p.kernel_h}x{p.kernel_w} (dilation {p.dilation_h}x{p.dilation_w}) "
                                   f"does not fit the padded input {h}x{w} (pad {p.pad_h},{p.pad_w})")
        return (p.num_output, conv_out(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h),
                conv_out(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w))

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        p: ir.ConvParams = layer.params  # type: ignore[assignment]
        c = net.shapes[layer.bottoms[0]][0]
        shapes: list[tuple[int, ...]] = [(p.num_output, c // p.group, p.kernel_h, p.kernel_w)]
        return shapes + [(p.num_output,)] if p.bias_term else shapes

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [convolution(inputs[0], layer)] * len(layer.tops)

    def absorb_affine(self, layer: ir.Layer, factor: np.ndarray, offset: np.ndarray) -> None:
        absorb_affine(layer, factor.reshape(-1, 1, 1, 1), factor, offset)


    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        return (DENSE, GROUPED)

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        _choose_q7(self.site(net, layer), forced)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        site = self.site(ctx.net, layer)
        kernel, function = _choose_q7(site, ctx.forced.get(layer.name))
        lq = ctx.quant.layers[layer.name]
        weights = layout.conv_weights_hwc(lq.weights)
        args = {"ch_im_in": site.in_ch, "ch_im_out": site.out_ch, "dim_im_in_x": site.in_w, "dim_im_in_y": site.in_h,
                "dim_kernel_x": site.kernel_w, "dim_kernel_y": site.kernel_h, "padding_x": site.pad_w,
                "padding_y": site.pad_h, "stride_x": site.stride_w, "stride_y": site.stride_h,
                "dim_im_out_x": site.out_w, "dim_im_out_y": site.out_h}
        taps = site.kernel_h * site.kernel_w
        common = dict(stem(layer), kernel=kernel, function=function, inputs=ctx.bottoms,
                      in_shape=hwc(ctx.shape(layer.bottoms[0])), bias=lq.bias, formats=weighted_formats(ctx, layer, lq),
                      macs=site.out_h * site.out_w * site.out_ch * (site.in_ch // site.group) * taps)
        if kernel is NN_CONV:
            return Op(**common, args=own_conv_args(site), weights=weights, weight_data=weights.reshape(-1),
                      weight_bytes=weights.size + lq.bias.size)
        if kernel is CONV:
            return Op(**common, args=args, weights=weights, weight_data=weights.reshape(-1),
                      weight_bytes=weights.size + lq.bias.size, scratch_bytes=2 * 2 * site.in_ch * taps,
                      reads_past_end=RGB_READS_PAST_END if function == "arm_convolve_HWC_q7_RGB" else 0)
        if kernel is DEPTHWISE:
            dw = np.ascontiguousarray(weights[:, :, :, 0].transpose(1, 2, 0))  # [O, kh, kw, 1] -> [kh, kw, C]
            return Op(**common, args=args, weights=dw, weight_data=dw.reshape(-1), weight_bytes=dw.size + lq.bias.size,
                      scratch_bytes=2 * site.in_ch * taps)
        return _group_op(common, site, args, weights, lq.bias.size)


def _choose_q7(site: Site, forced: Optional[str]) -> tuple[Kernel, str]:
    """(kernel, function) of a convolution: a dense one takes the first fitting dense function,
    a grouped one a depthwise function when one fits, else one dense call per group with the
    function the dense list picks for one group's channel slice. ``forced`` (--kernel) may
    name a grouped candidate or, for the per-group calls, a dense function."""
    if site.group == 1:
        function = choose(DENSE, site, forced)
        return (NN_CONV if function == OWN_CONV else CONV), function
    per_group_function = forced if forced is not None and forced not in GROUPED.functions() else None
    function = choose(GROUPED, site, PER_GROUP if per_group_function else forced)
    if function == OWN_CONV:
        return NN_CONV, function
    if function != PER_GROUP:
        return DEPTHWISE, function
    one_group = dataclasses.replace(site, in_ch=site.in_ch // site.group, out_ch=site.out_ch // site.group, group=1)
    function = choose(DENSE, one_group, per_group_function)
    return (NN_CONV if function == OWN_CONV else GROUP_CONV), function


def _group_op(common: dict, site: Site, args: dict, weights: np.ndarray, bias_size: int) -> Op:
    """One dense call per group: nn.c gathers the group's input channels into scratch, runs
    the dense function there into a second scratch area, then copies the result into the
    group's output channels; so scratch holds the function's im2col buffer, the gathered
    input (plus the byte arm_convolve_HWC_q7_RGB reads past its input) and the group's
    output, each 4-byte aligned (parameters.h gives the same offsets)."""
    in_g, out_g = site.in_ch // site.group, site.out_ch // site.group
    group_args = dict(args, groups=site.group, ch_in_group=in_g, ch_out_group=out_g,
                      im2col_bytes=_align4(2 * 2 * in_g * site.kernel_h * site.kernel_w),
                      group_in_bytes=_align4(site.in_h * site.in_w * in_g + RGB_READS_PAST_END),
                      group_out_bytes=_align4(site.out_h * site.out_w * out_g))
    scratch = group_args["im2col_bytes"] + group_args["group_in_bytes"] + group_args["group_out_bytes"]
    return Op(**common, args=group_args, weights=weights, weight_data=weights.reshape(-1),
              weight_bytes=weights.size + bias_size, scratch_bytes=scratch)


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Caffe ConvolutionLayer: floor((in + 2p - (d(k-1)+1)) / s) + 1."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def convolution(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Cross-correlation with zero padding, as Caffe's im2col + GEMM computes it.

    The columns (HWC tap order, :func:`cmsisgen.im2col.im2col`) are multiplied in float32
    BLAS a cache-sized chunk of images at a time, straight into the NHWC output (returned as
    its NCHW view: no transposing copy, and the next convolution reads NHWC); the groups of a
    grouped convolution are one batched product. A depthwise convolution (one channel per
    group) sums its taps as whole-tensor products instead: no columns, no per-channel Python
    loop. A dilated convolution, or one padded by as much as its kernel (where a padded copy
    could be huge), takes the general path (:func:`_general_convolution`).
    """
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    n, c, h, w = x.shape
    if (p.dilation_h, p.dilation_w) != (1, 1) or p.pad_h >= p.kernel_h or p.pad_w >= p.kernel_w:
        return _general_convolution(x, layer)
    oh = conv_out(h, p.kernel_h, p.stride_h, p.pad_h)
    ow = conv_out(w, p.kernel_w, p.stride_w, p.pad_w)
    weights = layer.blobs[0].astype(np.float32)
    bias = layer.blobs[1].astype(np.float32) if p.bias_term else None
    if p.group != c or c != p.num_output:
        return _im2col_gemm(x.transpose(0, 2, 3, 1), weights, bias, p, oh, ow).transpose(0, 3, 1, 2)
    padded = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (p.pad_h, p.pad_h), (p.pad_w, p.pad_w), (0, 0)))
    out = _depthwise(padded, weights, p, oh, ow)
    if bias is not None:
        out += bias
    return out.transpose(0, 3, 1, 2)


def _general_convolution(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Any dilation and padding: im2col one kernel tap at a time by index arithmetic (no
    padded copy, so a padding of tens of thousands costs nothing), in float32 BLAS a chunk
    of images at a time."""
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    n, c, h, w = x.shape
    oh = conv_out(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
    ow = conv_out(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)
    kh, kw, sh, sw, dh, dw = p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    weights = layer.blobs[0].astype(np.float32)
    in_g, out_g = c // p.group, p.num_output // p.group
    out = np.empty((n, oh, ow, p.num_output), dtype=np.float32)
    chunk = max(1, (32 << 20) // max(1, oh * ow * kh * kw * c))
    for start in range(0, n, chunk):
        xb = xh[start:start + chunk]
        cols = np.empty((xb.shape[0], oh, ow, kh, kw, c), dtype=np.float32)
        for ky in range(kh):
            for kx in range(kw):
                cols[:, :, :, ky, kx, :] = window(xb, (oh, ow), (ky * dh, kx * dw), (sh, sw), (p.pad_h, p.pad_w))
        for g in range(p.group):
            wg = weights[g * out_g:(g + 1) * out_g].transpose(0, 2, 3, 1).reshape(out_g, -1)
            cg = cols[..., g * in_g:(g + 1) * in_g].reshape(-1, kh * kw * in_g)
            out[start:start + chunk, :, :, g * out_g:(g + 1) * out_g] = (cg @ wg.T).reshape(xb.shape[0], oh, ow, out_g)
    if p.bias_term:
        out += layer.blobs[1].astype(np.float32)
    return out.transpose(0, 3, 1, 2)


def _taps(padded: np.ndarray, p: ir.ConvParams, oh: int, ow: int):
    """(ky, kx, the input pixels every output pixel reads at that tap): strided NHWC views."""
    sh, sw = p.stride_h, p.stride_w
    for ky in range(p.kernel_h):
        for kx in range(p.kernel_w):
            yield ky, kx, padded[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]


def _depthwise(padded: np.ndarray, weights: np.ndarray, p: ir.ConvParams, oh: int, ow: int) -> np.ndarray:
    """NHWC output of a convolution with one input and one output channel per group."""
    out = np.zeros((padded.shape[0], oh, ow, padded.shape[3]), dtype=np.float32)
    term = np.empty_like(out)  # one buffer for every tap's products: no fresh pages per tap
    for ky, kx, pixels in _taps(padded, p, oh, ow):
        np.multiply(pixels, weights[:, 0, ky, kx], out=term)
        out += term
    return out


def _im2col_gemm(x: np.ndarray, weights: np.ndarray, bias: Optional[np.ndarray], p: ir.ConvParams,
                 oh: int, ow: int) -> np.ndarray:
    """NHWC output of NHWC ``x``: im2col columns (HWC tap order) times the filters, plus the
    bias, one GEMM per chunk of images into the output; the chunk's zero-padded images and
    columns live in buffers reused from chunk to chunk (no fresh pages)."""
    n, h, w, c = x.shape
    kh, kw, groups = p.kernel_h, p.kernel_w, p.group
    in_g, out_g = c // groups, p.num_output // groups
    # (groups, kh*kw*in_g, out_g): each group's filters as contiguous GEMM columns, taps in HWC order
    filters = np.ascontiguousarray(weights.reshape(groups, out_g, in_g, kh, kw).transpose(0, 3, 4, 2, 1)
                                   .reshape(groups, -1, out_g))
    out = np.empty((n, oh, ow, p.num_output), dtype=np.float32)
    chunk = max(1, min(n, images_per_chunk(oh * ow * kh * kw * c)))
    padded = np.zeros((chunk, h + 2 * p.pad_h, w + 2 * p.pad_w, c), dtype=np.float32)
    buffer = np.empty((chunk * oh * ow, kh * kw * c), dtype=np.float32)
    for start in range(0, n, chunk):
        images = min(chunk, n - start)
        padded[:images, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + w] = x[start:start + images]
        rows = images * oh * ow
        cols = im2col(padded[:images], kh, kw, p.stride_h, p.stride_w, oh, ow, out=buffer)
        target = out[start:start + images].reshape(rows, p.num_output)
        if groups == 1:
            np.matmul(cols, filters[0], out=target)
        else:  # (groups, rows, taps) @ (groups, taps, out_g) -> (rows, groups, out_g)
            grouped = cols.reshape(rows, kh * kw, groups, in_g).transpose(2, 0, 1, 3).reshape(groups, rows, -1)
            target[...] = np.matmul(grouped, filters).transpose(1, 0, 2).reshape(rows, p.num_output)
        if bias is not None:
            target += bias
    return out
