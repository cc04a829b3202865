"""Caffe Pooling (MAX, AVE, global) onto arm_maxpool_q7_HWC / arm_avepool_q7_HWC where they
run the layer as Caffe does, else the project's own nn_pool_q7 (:mod:`cmsisgen.ops.pooling_nn`),
which pools any geometry (global pooling of a non-square image included).

Caffe's semantics: ceil-mode output sizes (floor with ``round_mode: FLOOR`` / the fork's
``ceil_mode: false``), a last window that would start in the padding clipped, and AVE
dividing by the window clipped to the *padded* image. The CMSIS-NN DSP build pools rows in
place (square images and windows, padding < stride) and divides by the cells inside the
image: an average pooling with padding therefore runs as nn_pool_q7 unless
``--kernel`` forces arm_avepool_q7_HWC (then an advisory warns that border outputs depart
from Caffe).

An average pooling that nn_pool_q7 runs has its own output format (:meth:`Pooling.own_format`),
chosen from its calibrated range like any other tensor: nn_pool_q7 folds the extra fractional
bits into its division, while arm_avepool_q7_HWC writes its input's format, so a pool whose
output format is finer than its input's takes nn_pool_q7 (rule :func:`avepool_keeps_format`).
MAX pooling keeps its input's format (its output is one of its input values).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import ir
from ..mapper.calls import Op
from ..mapper.rules import Site, rule, sizes_fit_int16, square_geometry
from ..simulator import kernels
from ..simulator.separable_pool import reduce_taps
from . import pooling_nn
from .base import (Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, choose, fail, formats,
                   generic_site, in_place, one_input, stem)
from .caffe_params import ErrorMaker, optional, spatial
from .pooling_nn import pool_windows

#: The DSP average pool sums a row window in saturating q15: at most 256 cells wide.
AVEPOOL_MAX_WINDOW = 256


@rule("pooling {method}")
def max_or_average(site: Site) -> bool:
    """Max and average pooling only: STOCHASTIC pooling is not supported."""
    return site.method in ("max", "ave")


@rule("padding {pad_w} >= stride {stride_w}")
def pooling_padding_below_stride(site: Site) -> bool:
    """The Cortex-M DSP pooling kernels pool rows in place: with padding >= stride a window reads columns it already overwrote, so padding must be smaller than the stride (or the output a single column)."""
    return site.out_w <= 1 or site.pad_w < site.stride_w


@rule("input {in_h}x{in_w}, output {out_h}x{out_w}")
def pooling_output_within_input(site: Site) -> bool:
    """The DSP pooling kernels store output column i in column i of the input row: the output may not be larger than the input."""
    return site.out_h <= site.in_h and site.out_w <= site.in_w


@rule("input {in_h}x{in_w}, kernel {kernel_h}x{kernel_w}, stride {stride_h}x{stride_w}, padding {pad_h}x{pad_w}")
def pooling_windows_start_inside(site: Site) -> bool:
    """Every pooling window must start inside the image: without padding, a kernel smaller than the stride can leave Caffe's last ceil-mode window outside it, where Caffe writes -FLT_MAX (MAX) or NaN (AVE); round_mode: FLOOR (ceil_mode: false) drops that window."""
    return ((site.out_h - 1) * site.stride_h - site.pad_h < site.in_h
            and (site.out_w - 1) * site.stride_w - site.pad_w < site.in_w)


@rule("kernel {kernel_h}x{kernel_w}")
def avepool_window_fits_q15(site: Site) -> bool:
    """The DSP average pool sums a row window in saturating q15: the kernel may be at most 256 wide."""
    return site.kernel_w <= AVEPOOL_MAX_WINDOW and site.kernel_h <= AVEPOOL_MAX_WINDOW


@rule("input {in_h}x{in_w}, kernel {kernel_h}, stride {stride_h}, padding {pad_h}")
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


@rule("padding {pad_h}x{pad_w}")
def avepool_matches_caffe(site: Site) -> bool:
    """Caffe divides a padded border window by its size including padding, CMSIS-NN by the cells inside the image: with padding, border outputs of average pooling differ from Caffe; nn_pool_q7, taken for such a layer unless --kernel says otherwise, divides as Caffe does."""
    return site.pad_h == 0 and site.pad_w == 0


@rule("input Q{in_frac}, output Q{out_frac} fractional bits")
def avepool_keeps_format(site: Site) -> bool:
    """arm_avepool_q7_HWC writes its input's Q format: an average pooling whose output has a finer format of its own (its calibrated range is smaller than its input's) runs as nn_pool_q7, which shifts the sum into it before dividing."""
    return site.in_frac is None or site.out_frac is None or site.in_frac == site.out_frac


#: Fractional bits an average pooling's own format must gain to move it off arm_avepool_q7_HWC.
MIN_GAIN_OFF_CMSIS_NN = 2

_DSP_POOLING = (max_or_average, sizes_fit_int16, square_geometry, pooling_padding_below_stride,
                pooling_windows_start_inside, pooling_output_within_input)
_ANY = Candidate("nn_pool_q7", (max_or_average, pooling_windows_start_inside, pooling_nn.any_geometry))
MAX = Choice("Pooling/max", (Candidate("arm_maxpool_q7_HWC", _DSP_POOLING, in_place=pooling_output_fits_over_input),
                             _ANY))
AVE = Choice("Pooling/ave", (Candidate("arm_avepool_q7_HWC", _DSP_POOLING + (avepool_window_fits_q15,
                                                                               avepool_keeps_format),
                                       advisories=(avepool_matches_caffe,), in_place=pooling_output_fits_over_input),
                             _ANY),
             note="a function whose warning applies is passed over for the next one that runs the layer as Caffe "
                  "does: with padding, average pooling runs as nn_pool_q7 unless --kernel forces "
                  "arm_avepool_q7_HWC")


def _simulate_dsp(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    pool = kernels.maxpool_q7_hwc if op.kind == "maxpool" else kernels.avepool_q7_hwc
    a = op.args
    return pool(inputs[0], kernel=a["dim_kernel"], pad=a["padding"], stride=a["stride"], out_dim=a["dim_im_out"])


def _pool_over_input(op: Op, mem: np.ndarray, offset: int, size: int) -> None:
    """The DSP kernels with Im_out == Im_in, on the planned memory ``mem`` (what the simulator of
    planned memory runs for an in-place pooling): the x pass in place, then output row after
    output row, max pooling copying (memmove) the first input row of its window into the row
    and comparing the later ones into it element by element, average pooling summing all of
    its rows (bufferA) before writing the row."""
    a = op.args
    c, d = a["ch_im_in"], a["dim_im_in"]
    k, p, s, o = a["dim_kernel"], a["padding"], a["stride"], a["dim_im_out"]
    pool = kernels.maxpool_q7_hwc if op.kind == "maxpool" else kernels.avepool_q7_hwc
    x = mem[:, offset:offset + size].reshape(-1, d, d, c)
    _, after_x_pass = pool(x, kernel=k, pad=p, stride=s, out_dim=o, return_im_in=True)
    buf = after_x_pass.reshape(len(x), -1).astype(np.int32)  # Im_in == Im_out from here on
    row_in, row_out = d * c, o * c
    for i, (start, stop) in enumerate(kernels._dsp_windows(d, k, p, s, o, first_pass=False)):
        target = i * row_out
        if op.kind == "maxpool":
            buf[:, target:target + row_out] = buf[:, start * row_in:start * row_in + row_out].copy()  # memmove
            for j in range(start + 1, stop):
                source = j * row_in
                if source >= target + row_out or source + row_out <= target:
                    buf[:, target:target + row_out] = np.maximum(buf[:, target:target + row_out],
                                                                 buf[:, source:source + row_out])
                    continue
                for e in range(row_out):  # element by element: a source byte is also a target byte
                    buf[:, target + e] = np.maximum(buf[:, target + e], buf[:, source + e])
        else:
            acc = sum(buf[:, j * row_in:j * row_in + row_out].copy() for j in range(start, stop))
            buf[:, target:target + row_out] = kernels._trunc_div(acc, stop - start)
    mem[:, offset:offset + size] = buf.astype(np.int8)


DSP_PARAMETERS = """\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_IN_DIM {{ a.dim_im_in }}
#define {{ prefix }}_IN_CH {{ a.ch_im_in }}
#define {{ prefix }}_KERNEL_DIM {{ a.dim_kernel }}
#define {{ prefix }}_PADDING {{ a.padding }}
#define {{ prefix }}_STRIDE {{ a.stride }}
#define {{ prefix }}_OUT_DIM {{ a.dim_im_out }}
"""
_DSP_CALL = """\
    /* {{ op.layer }}: the DSP build pools rows in place, overwriting its input{{ "; the output goes over it" if op.in_place }} */
    {{ op.function }}({{ buf[op.inputs[0]] }}, {{ prefix }}_IN_DIM, {{ prefix }}_IN_CH, {{ prefix }}_KERNEL_DIM,
            {{ prefix }}_PADDING, {{ prefix }}_STRIDE, {{ prefix }}_OUT_DIM, BUFFER_A, {{ out }});
"""
MAXPOOL = Kernel("maxpool", _simulate_dsp, _DSP_CALL.replace("BUFFER_A", "NULL"), DSP_PARAMETERS,
                 over_input=_pool_over_input)
AVEPOOL = Kernel("avepool", _simulate_dsp, _DSP_CALL.replace("BUFFER_A", "(q7_t *)nn_scratch"), DSP_PARAMETERS,
                 over_input=_pool_over_input)


class Pooling(LayerKind):
    types = ("Pooling",)
    keeps_format = True
    forward_any_layout = True  # strided maxima and tap-by-tap sums; global and wide windows take C order

    def parse(self, layer: Any, err: ErrorMaker) -> ir.PoolParams:
        pp = layer.pooling_param
        method = {0: "max", 1: "ave"}.get(pp.pool)
        if method is None:
            raise err("STOCHASTIC pooling is not supported")
        ks = [pp.kernel_size] if pp.HasField("kernel_size") else []
        if pp.global_pooling:
            if ks or pp.HasField("kernel_h") or pp.HasField("kernel_w"):
                raise err("global_pooling cannot be combined with a kernel size")
            kh = kw = 0  # set to the input size by the shape rule
        else:
            kh, kw = spatial(ks, optional(pp, "kernel_h"), optional(pp, "kernel_w"), 0, "kernel", err)
            if kh == 0 or kw == 0:
                raise err("pooling_param needs kernel_size, kernel_h/kernel_w or global_pooling")
        pad = [pp.pad] if pp.HasField("pad") else []
        ph, pw = spatial(pad, optional(pp, "pad_h"), optional(pp, "pad_w"), 0, "pad", err)
        stride = [pp.stride] if pp.HasField("stride") else []
        sh, sw = spatial(stride, optional(pp, "stride_h"), optional(pp, "stride_w"), 1, "stride", err)
        ceil_mode = pp.round_mode != 1 and pp.ceil_mode  # FLOOR = 1; the fork's bool defaults to true
        return ir.PoolParams(method=method, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw,
                             global_pooling=pp.global_pooling, ceil_mode=bool(ceil_mode))

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        p: ir.PoolParams = layer.params  # type: ignore[assignment]
        c, h, w = one_input(net, layer)
        if p.global_pooling:
            if p.pad_h or p.pad_w or p.stride_h != 1 or p.stride_w != 1:
                raise fail(net, layer, "global pooling needs pad 0 and stride 1")
            # Caffe sets the kernel to the input size; record it so later stages see real sizes.
            layer.params = p = dataclasses.replace(p, kernel_h=h, kernel_w=w)
        if p.stride_h <= 0 or p.stride_w <= 0:
            raise fail(net, layer, "stride must be positive")
        if p.kernel_h <= 0 or p.kernel_w <= 0 or p.kernel_h > h + 2 * p.pad_h or p.kernel_w > w + 2 * p.pad_w:
            raise fail(net, layer, f"kernel {p.kernel_h}x{p.kernel_w} does not fit the padded "
                                   f"input {h}x{w} (pad {p.pad_h},{p.pad_w})")
        if p.pad_h >= p.kernel_h or p.pad_w >= p.kernel_w:
            raise fail(net, layer, "pad must be smaller than the kernel")
        oh, ow = pool_out_hw(h, w, p)
        return c, oh, ow

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [pooling(inputs[0], layer.params)]  # type: ignore[arg-type]

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        p: ir.PoolParams = layer.params  # type: ignore[assignment]
        return generic_site(net, layer, kernel_h=p.kernel_h, kernel_w=p.kernel_w, stride_h=p.stride_h,
                            stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w, method=p.method)

    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        return (MAX, AVE)

    def own_format(self, net: ir.Net, layer: ir.Layer, forced: Optional[str]) -> bool:
        """An average pooling nn_pool_q7 can run (and that is not forced onto another function)
        gets its output's own format: its average is usually far below its input's largest
        values, and nn_pool_q7 shifts the sum into a finer format as it divides. MAX pooling
        keeps its input's values, so their format too."""
        p: ir.PoolParams = layer.params  # type: ignore[assignment]
        return (p.method == "ave" and forced in (None, _ANY.function)
                and all(r(self.site(net, layer)) for r in _ANY.rules))

    def own_format_min_gain(self, net: ir.Net, layer: ir.Layer) -> int:
        """Leaving CMSIS-NN's arm_avepool_q7_HWC for nn_pool_q7 costs instructions (about 30,000
        on the example's pool3, +0.13 %, which would put Arm's own CIFAR-10 models above Arm's
        generated code): worth it for :data:`MIN_GAIN_OFF_CMSIS_NN` fractional bits or more, not
        for one. A pool that runs on nn_pool_q7 anyway keeps any gain."""
        site = self.site(net, layer)
        dsp = AVE.candidates[0]
        runs_on_dsp = all(r(site) for r in dsp.rules + dsp.advisories)
        return MIN_GAIN_OFF_CMSIS_NN if runs_on_dsp else 1

    def output_frac_bound(self, layer: ir.Layer, frac: Callable[[str], int], weight_frac: dict[str, int],
                          bias_frac: dict[str, int]) -> Optional[int]:
        """An own format has at most :func:`pooling_nn.max_shift` more fractional bits than the
        input's (the scaled sum fits int32); a tied format equals the input's anyway."""
        p: ir.PoolParams = layer.params  # type: ignore[assignment]
        return frac(layer.bottoms[0]) + pooling_nn.max_shift(p.kernel_h, p.kernel_w)

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        _choose_q7(self.site(net, layer), forced)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        fracs = formats(ctx, layer)
        site = dataclasses.replace(self.site(ctx.net, layer), **fracs)
        choice, function = _choose_q7(site, ctx.forced.get(layer.name))
        c, h, w = ctx.shape(layer.bottoms[0])
        common = dict(stem(layer), function=function, inputs=ctx.bottoms, in_shape=(h, w, c), formats=fracs)
        macs = site.out_h * site.out_w * c * site.kernel_h * site.kernel_w
        if function == _ANY.function:
            shift = fracs["out_frac"] - fracs["in_frac"]
            return Op(**common, kernel=pooling_nn.POOL, args=pooling_nn.pool_args(site, shift), macs=macs)
        args = {"dim_im_in": h, "ch_im_in": c, "dim_kernel": site.kernel_h, "padding": site.pad_h,
                "stride": site.stride_h, "dim_im_out": site.out_h}
        return Op(**common, kernel=MAXPOOL if choice is MAX else AVEPOOL, args=args,
                  scratch_bytes=2 * site.out_h * c if choice is AVE else 0, clobbers_input=True,
                  in_place=in_place(choice, function, site), macs=macs)


def _choose_q7(site: Site, forced: Optional[str]) -> tuple[Choice, str]:
    """The forced function (checked), else the first one that runs the layer as Caffe does
    (its rules and its advisories hold), else the first one that runs it at all (with the
    advisories' warnings), else an error naming each function's failed rule."""
    choice = AVE if site.method == "ave" else MAX
    if forced is None:
        for candidate in choice.candidates:
            if all(r(site) for r in candidate.rules + candidate.advisories):
                return choice, candidate.function
    return choice, choose(choice, site, forced)


def pool_out(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool = True) -> int:
    """Caffe PoolingLayer for one axis, *without* the padding clip (see pool_out_hw)."""
    span = size + 2 * pad - kernel
    return (-(-span // stride) if ceil_mode else span // stride) + 1


def pool_out_hw(h: int, w: int, p: ir.PoolParams) -> tuple[int, int]:
    """Pooled (H, W). Caffe clips a last window that starts inside the padding, and does
    so on both axes whenever any pad is non-zero."""
    oh = pool_out(h, p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode)
    ow = pool_out(w, p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode)
    if p.pad_h or p.pad_w:
        if (oh - 1) * p.stride_h >= h + p.pad_h:
            oh -= 1
        if (ow - 1) * p.stride_w >= w + p.pad_w:
            ow -= 1
    return oh, ow


def pooling(x: np.ndarray, p: ir.PoolParams) -> np.ndarray:
    """Max or average pooling with Caffe's ceil-mode output size and window clipping."""
    n, c, h, w = x.shape
    if p.global_pooling:
        reduce = np.max if p.method == "max" else np.mean
        return reduce(np.ascontiguousarray(x), axis=(2, 3), keepdims=True).astype(np.float32)
    out_h, out_w = pool_out_hw(h, w, p)
    if p.kernel_w >= PAIRWISE_SUM_FROM:
        return _pooling_by_window(np.ascontiguousarray(x), p, out_h, out_w)
    rows = _reduce_taps(x, 2, p.kernel_h, p.stride_h, p.pad_h, out_h, p.method)
    out = _reduce_taps(rows, 3, p.kernel_w, p.stride_w, p.pad_w, out_w, p.method)
    if p.method != "max":
        _, _, hsize = pool_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h)
        _, _, wsize = pool_windows(w, out_w, p.kernel_w, p.stride_w, p.pad_w)
        out /= (hsize[:, None] * wsize[None, :]).astype(np.float32)
    return out


#: Window width from which numpy sums a row pairwise (its unrolled blocks of 8), not one by one.
PAIRWISE_SUM_FROM = 8


def _reduce_taps(x: np.ndarray, axis: int, kernel: int, stride: int, pad: int, size: int, method: str) -> np.ndarray:
    """Windows along one axis reduced one tap at a time over whole strided views, first tap
    first (the order numpy's slice reduction adds in, so sums are the same floats); a tap in
    the padding or past the image adds nothing (0 for the sum, never the maximum). The result
    keeps ``x``'s memory order."""
    if method == "max":
        return reduce_taps(x, size, axis, kernel, stride, pad, np.maximum, -np.inf)
    return reduce_taps(x, size, axis, kernel, stride, pad, np.add, 0.0)


def _pooling_by_window(x: np.ndarray, p: ir.PoolParams, out_h: int, out_w: int) -> np.ndarray:
    """Window by window (rows, then columns): for windows wide enough that the tap order
    would not add as numpy's reduction does."""
    n, c, h, w = x.shape
    hs, he, hsize = pool_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h)
    ws, we, wsize = pool_windows(w, out_w, p.kernel_w, p.stride_w, p.pad_w)
    out = np.empty((n, c, out_h, out_w), dtype=np.float32)
    if p.method == "max":
        # Reduce rows then columns: each separable step is a vectorized slice max.
        rows = np.stack([x[:, :, hs[i]:he[i], :].max(axis=2) for i in range(out_h)], axis=2)
        for j in range(out_w):
            out[:, :, :, j] = rows[:, :, :, ws[j]:we[j]].max(axis=3)
    else:
        rows = np.stack([x[:, :, hs[i]:he[i], :].sum(axis=2) for i in range(out_h)], axis=2)
        for j in range(out_w):
            out[:, :, :, j] = rows[:, :, :, ws[j]:we[j]].sum(axis=3)
        out /= (hsize[:, None] * wsize[None, :]).astype(np.float32)
    return out
