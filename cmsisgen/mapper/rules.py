"""The hardware rules behind every kernel choice, one predicate per rule.

Each predicate's docstring is the reason shown to the user when it fails and the line
printed for it in docs/supported-operators.md (``python -m cmsisgen.mapper.rules``).
A function is chosen only when all of its rules hold; the mapper tries the functions of
a layer type in the order listed in :data:`FUNCTIONS` and takes the first that fits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

UINT16_MAX = 65535
#: Some q7 kernels count image rows and columns in int16_t loop variables.
INT16_MAX = 32767


@dataclass(frozen=True)
class Site:
    """What the rules look at: one layer's geometry in CMSIS-NN terms (HWC)."""

    layer: str
    type: str
    in_ch: int
    in_h: int
    in_w: int
    out_ch: int
    out_h: int
    out_w: int
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    group: int = 1
    dilation: int = 1
    method: str = ""
    negative_slope: float = 0.0
    inputs: int = 1


Rule = Callable[[Site], bool]


def dense(site: Site) -> bool:
    """CMSIS-NN q7 convolutions are dense: group must be 1."""
    return site.group == 1


def undilated(site: Site) -> bool:
    """CMSIS-NN q7 convolutions have no dilation: dilation must be 1."""
    return site.dilation == 1


def sizes_fit_uint16(site: Site) -> bool:
    """CMSIS-NN passes sizes, kernel, stride and padding as uint16_t and counts some loops in int16_t: each must be at most 32767 (an inner product's input length at most 65535)."""
    if site.type == "InnerProduct":
        return site.in_ch <= UINT16_MAX and site.out_ch <= UINT16_MAX
    dims = (site.in_ch, site.in_h, site.in_w, site.out_ch, site.out_h, site.out_w,
            site.kernel_h, site.kernel_w, site.stride_h, site.stride_w, site.pad_h, site.pad_w)
    return all(d <= INT16_MAX for d in dims)


def square_geometry(site: Site) -> bool:
    """The square variants take one size for input, kernel, stride and padding: height and width must match in each."""
    return (site.in_h == site.in_w and site.kernel_h == site.kernel_w
            and site.stride_h == site.stride_w and site.pad_h == site.pad_w)


def three_input_channels(site: Site) -> bool:
    """arm_convolve_HWC_q7_RGB is written for exactly 3 input channels."""
    return site.in_ch == 3


def input_channels_multiple_of_4(site: Site) -> bool:
    """The _fast convolutions read input channels four at a time: input channels must be a multiple of 4."""
    return site.in_ch % 4 == 0


def output_channels_even(site: Site) -> bool:
    """The _fast convolutions compute two output channels at a time: output channels must be even."""
    return site.out_ch % 2 == 0


def im2col_column_fits_uint16(site: Site) -> bool:
    """The q7 convolutions count one im2col column (in_ch * kernel_h * kernel_w) in a uint16_t: it must be at most 65535."""
    return site.in_ch * site.kernel_h * site.kernel_w <= UINT16_MAX


def one_by_one_kernel(site: Site) -> bool:
    """arm_convolve_1x1_HWC_q7_fast_nonsquare is written for a 1x1 kernel with stride 1 and no padding."""
    return (site.kernel_h == site.kernel_w == 1 and site.stride_h == site.stride_w == 1
            and site.pad_h == site.pad_w == 0)


def depthwise(site: Site) -> bool:
    """The depthwise functions filter each channel on its own: group must equal both the input and the output channel count."""
    return site.group == site.in_ch == site.out_ch


def depthwise_column_fits_uint16(site: Site) -> bool:
    """The depthwise functions count the kernel taps (kernel_h * kernel_w) in a uint16_t: at most 65535."""
    return site.kernel_h * site.kernel_w <= UINT16_MAX


def lrn_across_channels(site: Site) -> bool:
    """nn_lrn_across_q7 (the project's own kernel) sums squares over neighbouring channels: norm_region ACROSS_CHANNELS."""
    return site.method == "across"


def lrn_within_channel(site: Site) -> bool:
    """nn_lrn_within_q7 (the project's own kernel) sums squares over a square of neighbouring pixels: norm_region WITHIN_CHANNEL."""
    return site.method == "within"


def padding_within_output(site: Site) -> bool:
    """The _fast convolutions split the output into padded border and inner regions: padding must not exceed the output size."""
    return site.pad_h <= site.out_h and site.pad_w <= site.out_w


def pooling_padding_below_stride(site: Site) -> bool:
    """The Cortex-M DSP pooling kernels pool rows in place: with padding >= stride a window reads columns it already overwrote, so padding must be smaller than the stride (or the output a single column)."""
    return site.out_w <= 1 or site.pad_w < site.stride_w


def pooling_output_within_input(site: Site) -> bool:
    """The DSP pooling kernels store output column i in column i of the input row: the output may not be larger than the input."""
    return site.out_h <= site.in_h and site.out_w <= site.in_w


def pooling_windows_start_inside(site: Site) -> bool:
    """Every pooling window must start inside the image (a kernel smaller than the stride leaves Caffe's last ceil-mode window outside it)."""
    return ((site.out_h - 1) * site.stride_h - site.pad_h < site.in_h
            and (site.out_w - 1) * site.stride_w - site.pad_w < site.in_w)


def avepool_window_fits_q15(site: Site) -> bool:
    """The DSP average pool sums a row window in saturating q15: the kernel may be at most 256 wide."""
    return site.kernel_w <= 256 and site.kernel_h <= 256


def pooling_output_fits_over_input(site: Site) -> bool:
    """The output may be written over its own input (same first byte) when no output row lands on input bytes still to be read: an output row may only overlap the first input row its window reads, starting at or before it (max pooling copies that row with memmove, average pooling reads it before writing), and no row that a later window reads; always so when padding < stride."""
    d, o = site.in_h, site.out_h
    rows = [_pool_window_rows(i, d, site.kernel_h, site.pad_h, site.stride_h) for i in range(o)]
    # In units of one pixel's channels: output row i is [i*o, (i+1)*o); the y pass reads
    # the first o columns of input row j, [j*d, j*d + o), after the in-place x pass (which
    # stays inside the input). Output rows are written in order.
    for i in range(o):
        for later in range(i, o):
            start, stop = rows[later]
            for j in range(start, stop):
                if j * d + o <= i * o or (i + 1) * o <= j * d:
                    continue  # disjoint
                if later == i and j == start and i * o <= j * d:
                    continue  # its own first input row, read before (or as) it is overwritten
                return False
    return True


def _pool_window_rows(i: int, dim_in: int, kernel: int, pad: int, stride: int) -> tuple[int, int]:
    """Input rows [start, stop) the DSP pooling's y pass reads for output row ``i``."""
    t = i * stride - pad
    start = max(t, 0)
    stop = dim_in if t + kernel >= dim_in else t + kernel
    return start, max(stop, start + 1)


def max_or_average(site: Site) -> bool:
    """CMSIS-NN has q7 max and average pooling only: STOCHASTIC pooling is not supported."""
    return site.method in ("max", "ave")


def plain_relu(site: Site) -> bool:
    """arm_relu_q7 clamps at zero: a leaky ReLU (negative_slope != 0) is not supported."""
    return site.negative_slope == 0.0


def vector_input(site: Site) -> bool:
    """arm_softmax_q7 works on a vector: its input must be 1x1 spatially (a softmax over channels of a 1x1 tensor)."""
    return site.in_h == 1 and site.in_w == 1


def softmax_length(site: Site) -> bool:
    """arm_softmax_q7 counts with an int16_t: the vector must have at most 32767 elements."""
    return site.in_ch <= 32767


def avepool_matches_caffe(site: Site) -> bool:
    """Caffe divides a padded border window by its size including padding, CMSIS-NN by the cells inside the image: with padding, border outputs of average pooling differ from Caffe."""
    return site.pad_h == 0 and site.pad_w == 0


#: The "Convolution/group" entry that runs one dense convolution per group.
PER_GROUP = "per-group dense convolution"


def two_inputs(site: Site) -> bool:
    """nn_eltwise_prod_q7 (generated with the network) multiplies two q7 inputs into one int32 product: an Eltwise PROD must have exactly 2 inputs."""
    return site.inputs == 2


def eltwise_sum_any_inputs(site: Site) -> bool:
    """nn_eltwise_sum_q7 (generated with the network) shifts each input into one int32 accumulator format, multiplies it by its integer coefficient and sums: any number of inputs, in any Q formats."""
    return site.inputs >= 2


def eltwise_max_any_inputs(site: Site) -> bool:
    """nn_eltwise_max_q7 (generated with the network) shifts each input into one int32 format and keeps the largest: any number of inputs, in any Q formats."""
    return site.inputs >= 2


def whole_image_window(site: Site) -> bool:
    """nn_global_pool_q7 (generated with the network) pools each channel's whole image, of any height and width (global pooling, or one window covering the image without padding); the average is rounded to nearest."""
    return (site.kernel_h == site.in_h and site.kernel_w == site.in_w and site.pad_h == 0 and site.pad_w == 0
            and site.out_h == 1 and site.out_w == 1)


def per_channel_affine(site: Site) -> bool:
    """nn_scale_q7 (generated with the network) multiplies each channel by its q7 factor and adds its bias, with the convolutions' shifts: a BatchNorm/Scale that cannot be folded into the convolution or inner product before it runs standalone on any shape."""
    return site.in_ch >= 1


def negative_slopes_in_q7(site: Site) -> bool:
    """nn_prelu_q7 (generated with the network) keeps non-negative values and multiplies negative ones by a per-channel int8 slope with up to 23 fractional bits: leaky ReLU and PReLU, output in the input's format."""
    return site.in_ch >= 1


def table_activation_formats(site: Site) -> bool:
    """arm_nn_activations_direct_q7 looks the input up in a 256-entry table over [-8, 8) and writes Q0.7, in place: the input gets at most 3 integer bits (larger values saturate where sigmoid and tanh are flat) and the output is Q0.7 (refused when a Concat or pooling ties it to wider values)."""
    return site.in_ch >= 1


#: Candidate functions per layer type, in order of preference, with the rules each needs.
#: Where two fit, the one that ran fewer instructions on the emulated Cortex-M7 comes first
#: (benchmarks/kernel_choice.py; table in docs/design.md). arm_convolve_HWC_q7_basic and
#: arm_depthwise_separable_conv_HWC_q7 are left out: their _nonsquare twins take every
#: geometry they take and ran fewer instructions (0.4-3%) wherever they would be chosen.
FUNCTIONS: dict[str, Sequence[tuple[str, Sequence[Rule]]]] = {
    "Convolution": (
        ("arm_convolve_1x1_HWC_q7_fast_nonsquare", (dense, undilated, sizes_fit_uint16, im2col_column_fits_uint16,
                                                    one_by_one_kernel, input_channels_multiple_of_4,
                                                    output_channels_even)),
        ("arm_convolve_HWC_q7_RGB", (dense, undilated, sizes_fit_uint16, im2col_column_fits_uint16, three_input_channels, square_geometry)),
        ("arm_convolve_HWC_q7_fast", (dense, undilated, sizes_fit_uint16, im2col_column_fits_uint16,
                                      input_channels_multiple_of_4, output_channels_even, padding_within_output,
                                      square_geometry)),
        ("arm_convolve_HWC_q7_fast_nonsquare", (dense, undilated, sizes_fit_uint16, im2col_column_fits_uint16,
                                                input_channels_multiple_of_4, output_channels_even,
                                                padding_within_output)),
        ("arm_convolve_HWC_q7_basic_nonsquare", (dense, undilated, sizes_fit_uint16, im2col_column_fits_uint16)),
    ),
    # group > 1: a depthwise function, else one dense convolution per group (on a gathered
    # channel slice) with the function the "Convolution" list picks for one group.
    "Convolution/group": (
        ("arm_depthwise_separable_conv_HWC_q7_nonsquare", (depthwise, undilated, sizes_fit_uint16,
                                                           depthwise_column_fits_uint16)),
        (PER_GROUP, (undilated, sizes_fit_uint16)),
    ),
    "LRN": (
        ("nn_lrn_across_q7", (lrn_across_channels, sizes_fit_uint16)),
        ("nn_lrn_within_q7", (lrn_within_channel, sizes_fit_uint16)),
    ),
    "Pooling/max": (("arm_maxpool_q7_HWC", (max_or_average, sizes_fit_uint16, square_geometry,
                                            pooling_padding_below_stride, pooling_windows_start_inside,
                                            pooling_output_within_input)),),
    "Pooling/ave": (("arm_avepool_q7_HWC", (max_or_average, sizes_fit_uint16, square_geometry,
                                            pooling_padding_below_stride, pooling_windows_start_inside,
                                            pooling_output_within_input, avepool_window_fits_q15)),),
    # a pooling window covering the whole image that the CMSIS-NN kernels above cannot take
    "Pooling/global": (("nn_global_pool_q7", (max_or_average, whole_image_window)),),
    "ReLU": (("arm_relu_q7", (plain_relu,)), ("nn_prelu_q7", (negative_slopes_in_q7,))),
    "PReLU": (("nn_prelu_q7", (negative_slopes_in_q7,)),),
    "Sigmoid": (("arm_nn_activations_direct_q7", (table_activation_formats,)),),
    "TanH": (("arm_nn_activations_direct_q7", (table_activation_formats,)),),
    "InnerProduct": (("arm_fully_connected_q7_opt", (sizes_fit_uint16,)),),
    "InnerProduct/plain": (("arm_fully_connected_q7", (sizes_fit_uint16,)),),
    "Softmax": (("arm_softmax_q7", (vector_input, softmax_length)),),
    "Scale": (("nn_scale_q7", (per_channel_affine,)),),
    "Eltwise/sum": (("nn_eltwise_sum_q7", (eltwise_sum_any_inputs,)),),
    "Eltwise/prod": (("nn_eltwise_prod_q7", (two_inputs,)),),
    "Eltwise/max": (("nn_eltwise_max_q7", (eltwise_max_any_inputs,)),),
}

#: Rules that do not block a function but warn that the result departs from Caffe.
ADVISORIES: dict[str, Sequence[Rule]] = {
    "arm_avepool_q7_HWC": (avepool_matches_caffe,),
}


#: Functions whose output may share its input's bytes (same start), when the rule holds;
#: the buffer planner then places the output over the input (see cmsisgen.mapper.buffers).
IN_PLACE: dict[str, Rule] = {
    "arm_maxpool_q7_HWC": pooling_output_fits_over_input,
    "arm_avepool_q7_HWC": pooling_output_fits_over_input,
}


def works_in_place(function: str, site: Site) -> bool:
    """True when ``function`` may write its output over its input for this layer (:data:`IN_PLACE`)."""
    rule = IN_PLACE.get(function)
    return rule is not None and rule(site)


def reason(rule: Rule) -> str:
    """The user-facing sentence of a rule (its docstring, on one line)."""
    return " ".join((rule.__doc__ or rule.__name__).split())


def choose(key: str, site: Site) -> str:
    """The first function for ``key`` whose rules all hold, or raise with the failed rules."""
    from ..errors import CmsisgenError

    failures: list[tuple[str, str]] = []
    for function, rules in FUNCTIONS[key]:
        failed = [rule for rule in rules if not rule(site)]
        if not failed:
            return function
        failures.append((function, reason(failed[0])))
    reasons = {why for _, why in failures}
    # A reason every candidate shares (no dilation, ...) is said once, not once per function.
    text = (reasons.pop() if len(failures) > 1 and len(reasons) == 1
            else "; ".join(f"{function}: {why}" for function, why in failures))
    raise CmsisgenError(f"layer '{site.layer}' ({site.type}): no CMSIS-NN function fits: {text}")


def advisories(function: str, site: Site) -> list[str]:
    """Warnings for a chosen function (rules in :data:`ADVISORIES` that fail)."""
    return [f"layer '{site.layer}': {reason(rule)}" for rule in ADVISORIES.get(function, ()) if not rule(site)]


def supported_operators_markdown() -> str:
    """The generated supported-operators document."""
    lines = ["# Supported operators", "",
             "Generated by `python -m cmsisgen.mapper.rules` from the rules in `cmsisgen/mapper/rules.py`.",
             "For each Caffe layer, cmsisgen takes the first CMSIS-NN function whose rules all hold.", ""]
    for key, candidates in FUNCTIONS.items():
        lines.append(f"## {key}")
        lines.append("")
        for function, rules in candidates:
            lines.append(f"- `{function}`")
            lines.extend(f"  - {reason(rule)}" for rule in rules)
            lines.extend(f"  - (warning only) {reason(rule)}" for rule in ADVISORIES.get(function, ()))
            if function in IN_PLACE:
                lines.append(f"  - (in place) {reason(IN_PLACE[function])}")
        lines.append("")
    lines += ["## Layers without a kernel", "",
              "- Dropout, Flatten and Split are aliases: no code, the buffer is shared.",
              "- Reshape is an alias too when the HWC byte order allows it: a reshape to (N, K) (an inner "
              "product reading it gets its weight columns permuted, as after a Flatten) or one that keeps "
              "the channel count; any other Reshape may only feed inner products (their weight columns "
              "are permuted to the bytes' order).",
              "- Concat (channels) is a generated copy loop; its inputs and output share one Q format "
              "(the quantizer ties them), so where branches meet nothing needs rescaling.",
              "- BatchNorm and Scale are folded into the Convolution or InnerProduct before them when "
              "that layer's output has no other reader; otherwise they run as `nn_scale_q7` (a BatchNorm "
              "followed by its Scale as one).",
              "- Eltwise inputs may be in different Q formats: each is shifted into one accumulator "
              "format (see the Eltwise entries above).",
              "- Any other layer type is rejected with the layer's name.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(supported_operators_markdown(), end="")
