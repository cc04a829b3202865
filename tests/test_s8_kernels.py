"""The s8 kernels: numpy models (cmsisgen.s8.kernels) == portable C == upstream CMSIS-NN v7.0.0.

Every case is one C call (tests/s8_harness.py) with an expected (return code, output) per
build: ``dsp`` (Cortex-M4/M7: the portable kernels everywhere, upstream on QEMU) and
``plain`` (upstream built for this machine, no DSP extension). Runs:

* always: portable kernels on host gcc, plain and with -fsanitize=undefined;
* with arm-none-eabi-gcc and qemu-system-arm: portable kernels on QEMU's Cortex-M7;
* with CMSIS_NN_PATH at CMSIS-NN v4.1+ (e.g. v7.0.0): upstream on the host (plain C) and,
  with the cross tools, on QEMU's Cortex-M7 (DSP paths).

Outputs start as 0x5A: a kernel that fails its argument checks must leave them so (or
have written exactly what the case expects).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

import s8_harness as H
from cmsisgen.s8 import cpu
from cmsisgen.s8 import kernels as K
from cmsisgen.s8 import scratch
from cmsisgen.s8.quantization import TensorQuant, add_params, mul_params, quantize_multiplier, softmax_params

UNTOUCHED = H.SENTINEL


@dataclass
class Expect:
    case: H.Case
    dsp: tuple[int, np.ndarray]
    plain: tuple[int, np.ndarray] | None = None   # None: same as dsp
    upstream_bug: str = ""                          # why upstream is not compared on this case
    mve: tuple[int, np.ndarray] | None = None     # the Helium build (Cortex-M55); None: same as dsp

    def for_build(self, build: str) -> tuple[int, np.ndarray]:
        if build == "mve":
            return self.dsp if self.mve is None else self.mve
        return self.dsp if build == "dsp" or self.plain is None else self.plain


def rand8(rng, *shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def untouched(n: int) -> np.ndarray:
    return np.full(n, UNTOUCHED, dtype=np.int8)


def multipliers(rng, count: int, depth: int, spread: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) that map a typical accumulator onto about +-spread."""
    reals = spread / (np.sqrt(depth) * 128 * 70) * rng.uniform(0.5, 2.0, count)
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def out_size(size: int, k: int, pad: int, stride: int, dil: int = 1) -> int:
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


# ----------------------------------------------------------------------------- convolution


def conv_rc(n, h, cin, cg, kh, kw, cout, stride, pad, dil, has_buf, direct=False) -> int:
    """What arm_convolve_wrapper_s8 (or, ``direct``, arm_convolve_s8) returns in both builds."""
    if direct:
        pass
    elif pad == (0, 0) and (kh, kw) == (1, 1) and dil == (1, 1) and cin == cg:
        return 0
    elif h == 1 and dil[1] == 1 and kh == 1 and (stride[1] * cin) % 4 == 0 and cin == cg and not has_buf:
        return -1
    groups = cin // cg
    return -1 if not has_buf or cin % groups or cout % groups else 0


def conv_case(rng, *, n=1, h=6, w=7, cin=3, cout=5, k=(3, 3), stride=(1, 1), pad=(1, 1), dil=(1, 1), groups=1,
              zp=(-3, 5), act=(-128, 127), has_buf=True, bias=True, spread=60.0, direct=False) -> Expect:
    """arm_convolve_wrapper_s8, or with ``direct`` arm_convolve_s8 (upscale_dims NULL)."""
    cg = cin // groups
    oh, ow = out_size(h, k[0], pad[0], stride[0], dil[0]), out_size(w, k[1], pad[1], stride[1], dil[1])
    x, wt = rand8(rng, n, h, w, cin), rand8(rng, cout, k[0], k[1], cg, lo=-127)
    b = rng.integers(-5000, 5000, cout).astype(np.int32)
    mult, shift = multipliers(rng, cout, k[0] * k[1] * cg, spread)
    (in_zp, out_zp), (amin, amax) = zp, act
    call = (f"cmsis_nn_conv_params p = {{{-in_zp}, {out_zp}, {{{stride[1]}, {stride[0]}}}, {{{pad[1]}, {pad[0]}}}, "
            f"{{{dil[1]}, {dil[0]}}}, {{{amin}, {amax}}}}};\n"
            "  cmsis_nn_per_channel_quant_params q = {mult, shift};\n"
            f"  cmsis_nn_dims id = {{{n}, {h}, {w}, {cin}}}, fd = {{{cout}, {k[0]}, {k[1]}, {cg}}}, "
            f"bd = {{1, 1, 1, {cout}}}, od = {{{n}, {oh}, {ow}, {cout}}};\n"
            f"  rc = arm_convolve_{'s8' if direct else 'wrapper_s8'}(&ctx, &p, &q, &id, x, &fd, w, &bd, "
            f"{'bias' if bias else 'NULL'}, {'NULL, ' if direct else ''}&od, out);")
    rc = conv_rc(n, h, cin, cg, k[0], k[1], cout, stride, pad, dil, has_buf, direct)
    length = n * oh * ow * cout
    want = untouched(length) if rc else K.conv_s8(
        x, wt, b if bias else None, mult=mult, shift=shift, input_offset=-in_zp, output_offset=out_zp, act=act,
        stride=stride, pad=pad, dilation=dil, out_hw=(oh, ow)).reshape(-1)
    case = H.Case(f"{'direct ' if direct else ''}conv n{n} {h}x{w}x{cin}->{cout} k{k} s{stride} p{pad} d{dil} g{groups} zp{zp} act{act}",
                  call, length, {"x": x, "w": wt, "bias": b, "mult": mult, "shift": shift}, scratch=has_buf)
    mve_fails = (not direct and rc == 0 and cpu.takes_1xn_path((h, w, cin), k, stride, pad, dil, groups > 1)
                 and cpu.mve_1xn_fails(w, k[1], stride[1], pad[1], ow))
    return Expect(case, (rc, want), mve=(-3, untouched(length)) if mve_fails else None)


def conv_cases() -> list[Expect]:
    rng = np.random.default_rng(150)
    return [
        conv_case(rng),
        conv_case(rng, n=2, h=5, w=5, cin=4, cout=6, stride=(2, 2), pad=(1, 1)),
        conv_case(rng, h=9, w=8, cin=5, cout=7, k=(5, 3), stride=(2, 1), pad=(2, 0)),      # non-square, odd
        conv_case(rng, h=8, w=8, cin=3, cout=4, k=(3, 3), pad=(2, 2), dil=(2, 2)),          # dilation
        conv_case(rng, h=5, w=6, cin=8, cout=9, k=(1, 1), pad=(0, 0)),                      # 1x1 fast
        conv_case(rng, n=2, h=7, w=7, cin=6, cout=3, k=(1, 1), pad=(0, 0), stride=(2, 2)),  # 1x1 strided
        conv_case(rng, h=1, w=12, cin=4, cout=5, k=(1, 3), pad=(0, 1)),                     # 1xN
        conv_case(rng, h=1, w=12, cin=4, cout=5, k=(1, 3), pad=(0, 1), has_buf=False),      # 1xN without buffer
        conv_case(rng, h=4, w=4, cin=3, cout=2, has_buf=False),                             # im2col without buffer
        conv_case(rng, h=5, w=5, cin=6, cout=4, groups=2),                                  # grouped
        conv_case(rng, h=5, w=5, cin=6, cout=6, groups=3, k=(1, 1), pad=(0, 0)),             # grouped 1x1
        conv_case(rng, h=4, w=4, cin=6, cout=5, groups=2),                                   # cout % groups: refused
        conv_case(rng, h=5, w=5, cin=3, cout=4, zp=(-128, 127), act=(-128, 127)),            # extreme zero points
        conv_case(rng, h=5, w=5, cin=3, cout=4, zp=(127, -128), act=(-128, -100), spread=400.0),  # saturating
        conv_case(rng, h=5, w=5, cin=3, cout=4, zp=(0, -128), act=(-128, -128 + 6 * 20), bias=False),  # ReLU6-like
        conv_case(rng, h=3, w=3, cin=1, cout=1, k=(3, 3), pad=(0, 0)),
        conv_case(rng, n=2, h=5, w=6, cin=3, cout=4, direct=True),
        conv_case(rng, h=5, w=6, cin=8, cout=4, k=(1, 1), pad=(0, 0), direct=True),
        conv_case(rng, h=5, w=6, cin=8, cout=4, k=(1, 1), pad=(0, 0), direct=True, has_buf=False),
    ]


# ----------------------------------------------------------------------------- depthwise


def dw_rc(n, cin, cout, ch_mult, k, pad, dil, has_buf) -> int:
    if ch_mult == 1 and n == 1 and dil == (1, 1):
        if cin != cout:
            return -1
        if not (k == (3, 3) and max(pad) <= 1) and not has_buf:
            return -1
    return 0


def dw_case(rng, *, n=1, h=6, w=7, c=5, ch_mult=1, k=(3, 3), stride=(1, 1), pad=(1, 1), dil=(1, 1), zp=(4, -7),
            act=(-128, 127), has_buf=True, spread=60.0) -> Expect:
    cout = c * ch_mult
    oh, ow = out_size(h, k[0], pad[0], stride[0], dil[0]), out_size(w, k[1], pad[1], stride[1], dil[1])
    x, wt = rand8(rng, n, h, w, c), rand8(rng, k[0], k[1], cout, lo=-127)
    b = rng.integers(-3000, 3000, cout).astype(np.int32)
    mult, shift = multipliers(rng, cout, k[0] * k[1], spread)
    (in_zp, out_zp), (amin, amax) = zp, act
    call = (f"cmsis_nn_dw_conv_params p = {{{-in_zp}, {out_zp}, {ch_mult}, {{{stride[1]}, {stride[0]}}}, "
            f"{{{pad[1]}, {pad[0]}}}, {{{dil[1]}, {dil[0]}}}, {{{amin}, {amax}}}}};\n"
            "  cmsis_nn_per_channel_quant_params q = {mult, shift};\n"
            f"  cmsis_nn_dims id = {{{n}, {h}, {w}, {c}}}, fd = {{1, {k[0]}, {k[1]}, {cout}}}, "
            f"bd = {{1, 1, 1, {cout}}}, od = {{{n}, {oh}, {ow}, {cout}}};\n"
            "  rc = arm_depthwise_conv_wrapper_s8(&ctx, &p, &q, &id, x, &fd, w, &bd, bias, &od, out);")
    rc = dw_rc(n, c, cout, ch_mult, k, pad, dil, has_buf)
    plain_rc = dw_rc(n, c, cout, ch_mult, k, pad, dil, True)      # plain C asks for no buffer
    length = n * oh * ow * cout
    model = K.depthwise_conv_s8(x, wt, b, mult=mult, shift=shift, input_offset=-in_zp, output_offset=out_zp,
                                act=act, ch_mult=ch_mult, stride=stride, pad=pad, dilation=dil,
                                out_hw=(oh, ow)).reshape(-1)
    case = H.Case(f"dw n{n} {h}x{w}x{c} m{ch_mult} k{k} s{stride} p{pad} d{dil} zp{zp} act{act} buf{has_buf}",
                  call, length, {"x": x, "w": wt, "bias": b, "mult": mult, "shift": shift}, scratch=has_buf)
    mve_rc = dw_mve_rc(n, h, w, c, cout, ch_mult, k, stride, pad, dil, has_buf, ow)
    return Expect(case, (rc, untouched(length) if rc else model),
                  (plain_rc, untouched(length) if plain_rc else model), mve=(mve_rc, untouched(length) if mve_rc else model))


def dw_mve_rc(n, h, w, cin, cout, ch_mult, k, stride, pad, dil, has_buf, ow) -> int:
    """The Helium build: one input channel runs as a convolution; no 3x3 kernel (the im2col
    kernel always needs the buffer)."""
    if cin == 1 and cout > 1:
        rc = conv_rc(n, h, 1, 1, k[0], k[1], cout, stride, pad, dil, has_buf)
        if rc == 0 and cpu.takes_1xn_path((h, w, 1), k, stride, pad, dil, False) and cpu.mve_1xn_fails(
                w, k[1], stride[1], pad[1], ow):
            return -3
        return rc
    if ch_mult == 1 and n == 1 and dil == (1, 1):
        return -1 if cin != cout or not has_buf else 0
    return 0


def dw_cases() -> list[Expect]:
    rng = np.random.default_rng(151)
    return [
        dw_case(rng),                                                        # 3x3 kernel
        dw_case(rng, h=7, w=7, c=6, stride=(2, 2), pad=(1, 1)),              # 3x3 strided
        dw_case(rng, h=6, w=6, c=7, k=(3, 3), pad=(0, 0)),
        dw_case(rng, h=8, w=9, c=9, k=(5, 5), pad=(2, 2)),                   # opt (im2col)
        dw_case(rng, h=8, w=9, c=9, k=(5, 5), pad=(2, 2), has_buf=False),    # opt without buffer
        dw_case(rng, h=6, w=5, c=3, k=(3, 3), pad=(2, 2)),                   # pad 2: opt
        dw_case(rng, h=6, w=6, c=3, ch_mult=2, k=(3, 3), pad=(1, 1)),        # generic
        dw_case(rng, h=6, w=6, c=2, ch_mult=4, k=(3, 3), pad=(1, 1)),        # generic, ch_mult % 4 == 0
        dw_case(rng, n=2, h=5, w=5, c=4, k=(3, 3), pad=(1, 1)),              # batches: generic
        dw_case(rng, h=9, w=9, c=4, k=(3, 3), pad=(2, 2), dil=(2, 2)),       # dilation
        dw_case(rng, h=7, w=5, c=5, k=(3, 2), stride=(2, 1), pad=(1, 0)),    # non-square
        dw_case(rng, h=5, w=5, c=4, zp=(-128, 127)),
        dw_case(rng, h=5, w=5, c=5, zp=(127, -128), act=(-128, -120), spread=300.0),
    ]


# ----------------------------------------------------------------------------- fully connected


def fc_case(rng, *, n=1, depth=13, rows=7, zp=(3, -4), act=(-128, 127), filter_offset=0, bias=True,
            real=None, span=128, bias_base=0, bias_span=20000) -> Expect:
    """``real``: the rescale (default: one fitting the accumulators); ``span``: inputs and weights
    within +-span of the zero point; ``bias_base``: added to every bias (to reach the wrap)."""
    x = np.clip(rng.integers(-span, span + 1, (n, depth)) + zp[0], -128, 127).astype(np.int8)
    wt = rand8(rng, rows, depth, lo=max(-127, -span), hi=min(127, span))
    b = (rng.integers(-bias_span, bias_span + 1, rows) + bias_base).astype(np.int32)
    (m,), (s,) = multipliers(rng, 1, depth) if real is None else ([quantize_multiplier(real)[0]],
                                                                 [quantize_multiplier(real)[1]])
    (in_zp, out_zp), (amin, amax) = zp, act
    call = (f"cmsis_nn_fc_params p = {{{-in_zp}, {filter_offset}, {out_zp}, {{{amin}, {amax}}}}};\n"
            f"  cmsis_nn_per_tensor_quant_params q = {{{m}, {s}}};\n"
            f"  cmsis_nn_dims id = {{{n}, 1, 1, {depth}}}, fd = {{{depth}, 1, 1, {rows}}}, bd = {{1, 1, 1, {rows}}}, "
            f"od = {{{n}, 1, 1, {rows}}};\n"
            "#if defined(ARM_MATH_MVEI)\n"  # the MVE build reads the kernel sums from ctx.buf
            f"  arm_vector_sum_s8(ctx.buf, {depth}, {rows}, w, {-in_zp}, {filter_offset}, {'bias' if bias else 'NULL'});\n"
            "#endif\n"
            f"  rc = arm_fully_connected_s8(&ctx, &p, &q, &id, x, &fd, w, &bd, {'bias' if bias else 'NULL'}, &od, out);")
    want = K.fully_connected_s8(x, wt, b if bias else None, mult=int(m), shift=int(s), input_offset=-in_zp,
                                output_offset=out_zp, filter_offset=filter_offset, act=act).reshape(-1)
    return Expect(H.Case(f"fc n{n} {depth}->{rows} zp{zp} act{act} woff{filter_offset}", call, n * rows,
                         {"x": x, "w": wt, "bias": b}), (0, want))


def fc_cases() -> list[Expect]:
    rng = np.random.default_rng(152)
    return [fc_case(rng), fc_case(rng, n=3, depth=64, rows=10), fc_case(rng, depth=1, rows=1),
            fc_case(rng, depth=7, rows=2, zp=(-128, 127)), fc_case(rng, depth=17, rows=5, zp=(127, -128)),
            fc_case(rng, depth=9, rows=3, act=(-20, 20)), fc_case(rng, depth=6, rows=4, filter_offset=3),
            fc_case(rng, depth=5, rows=9, bias=False),
            fc_case(rng, depth=11, rows=6, real=3.7, span=2, bias_span=5),       # multiplier > 1: left shift
            fc_case(rng, depth=40, rows=6, real=2.0**-25, bias_base=2**31 - 30000),  # accumulator wraps
            *[vector_sum_case(rng, *args) for args in [(9, 5, 3, 0, True), (16, 4, -128, 2, False),
                                                       (7, 3, 0, 1, True), (300, 2, 127, -1, True)]]]


def vector_sum_case(rng, cols: int, rows: int, lhs_offset: int, rhs_offset: int, bias: bool) -> Expect:
    """arm_vector_sum_s8's int32 sums, compared as their little-endian bytes."""
    wt, b = rand8(rng, rows, cols), rng.integers(-2**31, 2**31, rows).astype(np.int32)
    call = (f"int32_t sums[{rows}];\n"
            f"  rc = arm_vector_sum_s8(sums, {cols}, {rows}, w, {lhs_offset}, {rhs_offset}, {'bias' if bias else 'NULL'});\n"
            "  memcpy(out, sums, sizeof(sums));")
    want = K.vector_sum_s8(wt, lhs_offset=lhs_offset, rhs_offset=rhs_offset, bias=b if bias else None)
    return Expect(H.Case(f"vector_sum {cols}x{rows} lhs{lhs_offset} rhs{rhs_offset}", call, 4 * rows,
                         {"w": wt, "bias": b}), (0, want.astype("<i4").view(np.int8)))


# ----------------------------------------------------------------------------- pooling


def pool_case(rng, mode, *, n=1, h=6, w=6, c=5, k=(2, 2), stride=(2, 2), pad=(0, 0), out_hw=None,
              act=(-128, 127), has_buf=True) -> Expect:
    oh, ow = out_hw or (out_size(h, k[0], pad[0], stride[0]), out_size(w, k[1], pad[1], stride[1]))
    x = rand8(rng, n, h, w, c)
    fn = "arm_max_pool_s8" if mode == "max" else "arm_avgpool_s8"
    call = (f"cmsis_nn_pool_params p = {{{{{stride[1]}, {stride[0]}}}, {{{pad[1]}, {pad[0]}}}, "
            f"{{{act[0]}, {act[1]}}}}};\n"
            f"  cmsis_nn_dims id = {{{n}, {h}, {w}, {c}}}, fd = {{1, {k[0]}, {k[1]}, 1}}, od = {{{n}, {oh}, {ow}, {c}}};\n"
            f"  rc = {fn}(&ctx, &p, &id, x, &fd, &od, out);")
    length = n * oh * ow * c
    case = H.Case(f"{mode}pool n{n} {h}x{w}x{c} k{k} s{stride} p{pad} out{(oh, ow)} act{act} buf{has_buf}", call,
                  length, {"x": x}, scratch=has_buf)
    kw = dict(kernel=k, stride=stride, pad=pad, out_hw=(oh, ow), act=act)
    if mode == "max":
        prior = np.full((n, oh, ow, c), UNTOUCHED)
        return Expect(case, (0, K.max_pool_s8(x, prior=prior, **kw).reshape(-1)))
    if not K.pool_windows_nonempty((h, w), k, stride, pad, (oh, ow)):
        return Expect(case, (-1, None), (-1, None))      # partial output: only the code is compared
    want = K.avgpool_s8(x, **kw).reshape(-1)
    return Expect(case, ((0, want) if has_buf else (-1, untouched(length))), (0, want), mve=(0, want))


def pool_cases() -> list[Expect]:
    rng = np.random.default_rng(153)
    cases = []
    for mode in ("max", "avg"):
        cases += [
            pool_case(rng, mode),
            pool_case(rng, mode, n=2, h=7, w=7, c=3, k=(3, 3), stride=(2, 2), pad=(1, 1)),
            pool_case(rng, mode, h=5, w=8, c=7, k=(3, 2), stride=(1, 2), pad=(1, 0)),
            pool_case(rng, mode, h=7, w=7, c=4, k=(3, 3), stride=(2, 2), out_hw=(4, 4)),   # Caffe's ceil: clipped
            pool_case(rng, mode, h=6, w=6, c=16, k=(6, 6), stride=(1, 1)),                  # global
            pool_case(rng, mode, h=5, w=5, c=3, k=(3, 3), stride=(1, 1), pad=(1, 1), act=(-10, 30)),
            pool_case(rng, mode, h=4, w=4, c=2, k=(2, 2), stride=(2, 2), out_hw=(3, 3)),   # a window wholly outside
        ]
    cases.append(pool_case(rng, "avg", h=4, w=4, c=3, has_buf=False))                      # DSP needs the buffer
    return cases


# ----------------------------------------------------------------------------- softmax, elementwise, misc


def softmax_case(rng, rows: int, size: int, scale: float, lo=-128, hi=127) -> Expect:
    x = rand8(rng, rows, size, lo=lo, hi=hi)
    p = softmax_params(scale)
    call = f"arm_softmax_s8(x, {rows}, {size}, {p.mult}, {p.shift}, {p.diff_min}, out);"
    want = K.softmax_s8(x, mult=p.mult, shift=p.shift, diff_min=p.diff_min).reshape(-1)
    return Expect(H.Case(f"softmax {rows}x{size} scale {scale}", call, rows * size, {"x": x}), (0, want))


def softmax_cases() -> list[Expect]:
    rng = np.random.default_rng(154)
    return [softmax_case(rng, 1, 10, 0.1), softmax_case(rng, 3, 10, 1 / 16), softmax_case(rng, 2, 7, 0.5),
            softmax_case(rng, 1, 1, 0.2), softmax_case(rng, 2, 33, 0.02), softmax_case(rng, 2, 10, 2.0 ** -20),
            softmax_case(rng, 1, 16, 100.0), softmax_case(rng, 4, 9, 0.05, lo=120), softmax_case(rng, 1, 300, 0.01),
            softmax_case(rng, 2, 6, 0.3, lo=-128, hi=-128), softmax_case(rng, 4, 10, 0.1, lo=-30, hi=30),
            softmax_case(rng, 3, 12, 0.25, lo=-10, hi=10)]


def _rescale(rng, lo, hi):
    m, s = quantize_multiplier(float(rng.uniform(lo, hi)))
    return m, s


def add_case(rng, size: int, *, zps=(5, -9, 2), left_shift=20, act=(-128, 127), scales=None) -> Expect:
    """Random rescales, or TFLite's for ``scales`` (s1, s2, s_out)."""
    a, b = rand8(rng, size), rand8(rng, size)
    in1 = (-zps[0], *_rescale(rng, 0.2, 0.5))
    in2 = (-zps[1], *_rescale(rng, 0.2, 0.5))
    out = (zps[2], *quantize_multiplier(2.0 ** -left_shift * rng.uniform(1.0, 4.0)))
    if scales is not None:
        p = add_params(*scales)
        in1, in2, out = (-zps[0], *p.input_1), (-zps[1], *p.input_2), (zps[2], *p.output)
    call = (f"rc = arm_elementwise_add_s8(a, b, {in1[0]}, {in1[1]}, {in1[2]}, {in2[0]}, {in2[1]}, {in2[2]}, "
            f"{left_shift}, out, {out[0]}, {out[1]}, {out[2]}, {act[0]}, {act[1]}, {size});")
    kw = dict(input_1=in1, input_2=in2, output=out, left_shift=left_shift, act=act)
    dsp = K.elementwise_add_s8(a[None], b[None], **kw).reshape(-1)
    plain = K.elementwise_add_s8(a[None], b[None], dsp=False, **kw).reshape(-1)
    return Expect(H.Case(f"add {size} zps{zps} ls{left_shift} act{act}", call, size, {"a": a, "b": b}),
                  (0, dsp), (0, plain), mve=(0, plain))


def mul_case(rng, size: int, *, zps=(3, -2, -5), act=(-128, 127)) -> Expect:
    a, b = rand8(rng, size), rand8(rng, size)
    m, s = quantize_multiplier(float(rng.uniform(0.002, 0.02)))
    call = (f"rc = arm_elementwise_mul_s8(a, b, {-zps[0]}, {-zps[1]}, out, {zps[2]}, {m}, {s}, {act[0]}, {act[1]}, "
            f"{size});")
    want = K.elementwise_mul_s8(a, b, input_1_offset=-zps[0], input_2_offset=-zps[1], output=(zps[2], m, s),
                                act=act)
    return Expect(H.Case(f"mul {size} zps{zps} act{act}", call, size, {"a": a, "b": b}), (0, want))


def misc_cases() -> list[Expect]:
    rng = np.random.default_rng(155)
    cases = [add_case(rng, 1), add_case(rng, 7), add_case(rng, 16), add_case(rng, 13, zps=(-128, 127, -128)),
             add_case(rng, 13, zps=(127, -128, 127), act=(-128, 0)), add_case(rng, 11, left_shift=10),
             add_case(rng, 9, left_shift=0), add_case(rng, 37, scales=(0.05, 0.02, 0.06)),
             add_case(rng, 12, zps=(-128, -128, -128), scales=(0.1, 0.1, 0.2)),
             mul_case(rng, 1), mul_case(rng, 10), mul_case(rng, 13, zps=(-128, 127, 0)),
             mul_case(rng, 9, zps=(127, -128, 100), act=(0, 127))]
    for shape in [(1, 2, 3, 5), (2, 1, 1, 7)]:
        a, b = rand8(rng, *shape), rand8(rng, *shape)
        dims = "{%d, %d, %d, %d}" % shape
        call = (f"cmsis_nn_dims d1 = {dims}, d2 = {dims}, od = {dims};\n"
                "  rc = arm_maximum_s8(&ctx, a, &d1, b, &d2, out, &od);")
        cases.append(Expect(H.Case(f"maximum {shape}", call, a.size, {"a": a, "b": b}),
                            (0, K.maximum_s8(a, b).reshape(-1))))
    for s1, s2 in [((1, 1, 1, 1), (2, 3, 1, 4)), ((1, 2, 3, 4), (1, 2, 1, 4)), ((1, 1, 3, 4), (1, 2, 3, 4)),
                   ((2, 2, 3, 1), (2, 2, 3, 4)), ((2, 1, 1, 4), (1, 3, 2, 4)), ((1, 2, 1, 1), (1, 2, 3, 4))]:
        a, b = rand8(rng, *s1), rand8(rng, *s2)
        od = np.broadcast_shapes(s1, s2)
        call = ("cmsis_nn_dims d1 = {%d, %d, %d, %d}, d2 = {%d, %d, %d, %d}, od = {%d, %d, %d, %d};\n"
                "  rc = arm_maximum_s8(&ctx, a, &d1, b, &d2, out, &od);" % (*s1, *s2, *od))
        bug = ("upstream v7.0.0 advances input 1 twice per row when its w*c is 1 and its h > 1 "
               "(reads past it)" if s1 == (1, 2, 1, 1) else "")
        cases.append(Expect(H.Case(f"maximum {s1} {s2}", call, int(np.prod(od)), {"a": a, "b": b}),
                            (0, K.maximum_s8(a, b).reshape(-1)), upstream_bug=bug))
    x = rand8(rng, 23)
    cases.append(Expect(H.Case("relu6", "memcpy(out, x, 23); arm_relu6_s8(out, 23);", 23, {"x": x}),
                        (0, K.relu6_s8(x))))
    return cases + concat_cases(rng)


def concat_cases(rng) -> list[Expect]:
    """Two inputs [w][z][y][x] joined along each axis (the later one written second)."""
    shape = (2, 3, 2, 4)     # w, z, y, x
    cases = []
    for axis, fn in enumerate(["w", "z", "y", "x"]):
        a, b = rand8(rng, *shape), rand8(rng, *shape)
        joined = np.concatenate([a, b], axis=axis)
        w_, z_, y_, x_ = shape
        size = {"x": f"{2 * x_}, ", "y": f"{2 * y_}, ", "z": f"{2 * z_}, ", "w": ""}[fn]
        args = f"{x_}, {y_}, {z_}, {w_}, out, {size}"
        call = (f"arm_concatenation_s8_{fn}(a, {args}0);\n"
                f"  arm_concatenation_s8_{fn}(b, {args}{shape[axis]});")
        cases.append(Expect(H.Case(f"concat {fn}", call, joined.size, {"a": a, "b": b}), (0, joined.reshape(-1))))
    return cases


def random_cases(count: int = 24) -> list[Expect]:
    """Random shapes through every dispatch path: odd channel counts, strides, paddings, dilations."""
    rng = np.random.default_rng(160)
    cases = []
    for _ in range(count):
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride, dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3))), (int(rng.integers(1, 3)), 1)
        pad = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
        h, w = int(rng.integers(k[0] * dil[0], 9)), int(rng.integers(k[1], 9))
        zp = (int(rng.integers(-128, 128)), int(rng.integers(-128, 128)))
        groups = int(rng.choice([1, 1, 2]))
        cin = groups * int(rng.integers(1, 6))
        cases.append(conv_case(rng, n=int(rng.integers(1, 3)), h=h, w=w, cin=cin, cout=groups * int(rng.integers(1, 6)),
                               k=k, stride=stride, pad=pad, dil=dil, groups=groups, zp=zp))
        cases.append(dw_case(rng, n=int(rng.integers(1, 3)), h=h, w=w, c=int(rng.integers(1, 10)),
                             ch_mult=int(rng.choice([1, 1, 2, 3])), k=k, stride=stride, pad=pad, dil=dil, zp=zp))
        mode = str(rng.choice(["max", "avg"]))
        cases.append(pool_case(rng, mode, n=int(rng.integers(1, 3)), h=h, w=w, c=int(rng.integers(1, 10)), k=k,
                               stride=stride, pad=pad))
    return cases


def all_cases() -> list[Expect]:
    return (conv_cases() + dw_cases() + fc_cases() + pool_cases() + softmax_cases() + misc_cases()
            + random_cases())


# ----------------------------------------------------------------------------- runs


def _compare(expects: list[Expect], results, build: str, upstream: bool = False) -> None:
    bad = []
    for e, (rc, out) in zip(expects, results):
        if upstream and e.upstream_bug:
            continue
        want_rc, want = e.for_build(build)
        if rc != want_rc or (want is not None and not np.array_equal(out, want)):
            bad.append(f"{e.case.name}: rc {rc} (want {want_rc})"
                       + ("" if want is None else f", {int((out != want).sum())} bytes differ"))
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def expects() -> list[Expect]:
    return all_cases()


@pytest.mark.parametrize("sanitize", [False, True], ids=["O2", "ubsan"])
def test_portable_on_host_equals_model(expects, tmp_path, sanitize):
    _compare(expects, H.run_host([e.case for e in expects], "portable", tmp_path, sanitize), "dsp")


@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_portable_on_cortex_m7_equals_model(expects, tmp_path):
    _compare(expects, H.run_qemu([e.case for e in expects], "portable", tmp_path), "dsp")


needs_upstream = pytest.mark.skipif(H.upstream_path() is None,
                                    reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS-NN v4.1+ (e.g. v7.0.0)")


@needs_upstream
def test_upstream_on_host_equals_plain_c_model(expects, tmp_path):
    _compare(expects, H.run_host([e.case for e in expects], "upstream", tmp_path), "plain", upstream=True)


@needs_upstream
@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_upstream_on_cortex_m7_equals_model(expects, tmp_path):
    _compare(expects, H.run_qemu([e.case for e in expects], "upstream", tmp_path), "dsp", upstream=True)


@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_portable_on_cortex_m55_equals_mve_model(expects, tmp_path):
    """Built for Helium the portable kernels keep the MVE build's contract (return codes,
    kernel sums, sizes) and results."""
    _compare(expects, H.run_qemu([e.case for e in expects], "portable", tmp_path, cpu="cortex-m55"), "mve")


@needs_upstream
@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_upstream_on_cortex_m55_equals_mve_model(expects, tmp_path):
    """Upstream's MVE (Helium) paths: the same integers as the DSP build, except where the
    Expect says (:mod:`cmsisgen.s8.cpu`)."""
    _compare(expects, H.run_qemu([e.case for e in expects], "upstream", tmp_path, cpu="cortex-m55"), "mve",
             upstream=True)


# ----------------------------------------------------------------------------- buffer sizes


def size_cases() -> list[tuple[str, str, dict]]:
    """(C call with {sfx} for the per-core suffix, kind, keyword arguments of cmsisgen.s8.scratch)."""
    out = []
    for ind, fd, od, stride, pad, dil in [
        ((1, 8, 8, 3), (4, 3, 3, 3), (1, 8, 8, 4), (1, 1), (1, 1), (1, 1)),
        ((1, 8, 8, 5), (4, 3, 3, 5), (1, 8, 8, 4), (1, 1), (1, 1), (1, 1)),
        ((1, 8, 8, 16), (8, 1, 1, 16), (1, 8, 8, 8), (1, 1), (0, 0), (1, 1)),
        ((1, 8, 8, 16), (8, 1, 1, 16), (1, 4, 4, 8), (2, 2), (0, 0), (1, 1)),
        ((1, 1, 16, 4), (6, 1, 3, 4), (1, 1, 16, 6), (1, 1), (0, 1), (1, 1)),
        ((1, 1, 15, 4), (6, 1, 4, 4), (1, 1, 7, 6), (1, 2), (0, 1), (1, 1)),
        ((1, 1, 16, 3), (6, 1, 3, 3), (1, 1, 16, 6), (1, 1), (0, 1), (1, 1)),
        ((1, 9, 9, 6), (6, 3, 3, 3), (1, 9, 9, 6), (1, 1), (1, 1), (1, 1)),
        ((1, 9, 9, 7), (5, 5, 3, 7), (1, 5, 9, 5), (2, 1), (2, 1), (2, 1)),
    ]:
        call = ("cmsis_nn_conv_params p = {0, 0, {%d, %d}, {%d, %d}, {%d, %d}, {-128, 127}};\n"
                "  cmsis_nn_dims id = {%d, %d, %d, %d}, fd = {%d, %d, %d, %d}, od = {%d, %d, %d, %d};\n"
                "  rc = arm_convolve_wrapper_s8_get_buffer_size{sfx}(&p, &id, &fd, &od);"
                % (stride[1], stride[0], pad[1], pad[0], dil[1], dil[0], *ind, *fd, *od))
        out.append((call, "conv", dict(input_dims=ind, filter_dims=fd, output_dims=od, stride=stride, pad=pad,
                                       dilation=dil)))
    for ind, fd, od, pad, dil in [
        ((1, 8, 8, 6), (1, 3, 3, 6), (1, 8, 8, 6), (1, 1), (1, 1)),
        ((1, 8, 8, 6), (1, 5, 5, 6), (1, 8, 8, 6), (2, 2), (1, 1)),
        ((1, 8, 8, 3), (1, 3, 3, 6), (1, 8, 8, 6), (1, 1), (1, 1)),
        ((2, 8, 8, 6), (1, 3, 3, 6), (2, 8, 8, 6), (2, 2), (1, 1)),
        ((1, 8, 8, 6), (1, 3, 3, 6), (1, 6, 6, 6), (2, 2), (2, 2)),
        ((1, 8, 8, 1), (1, 3, 3, 8), (1, 8, 8, 8), (1, 1), (1, 1)),
    ]:
        call = ("cmsis_nn_dw_conv_params p = {0, 0, %d, {1, 1}, {%d, %d}, {%d, %d}, {-128, 127}};\n"
                "  cmsis_nn_dims id = {%d, %d, %d, %d}, fd = {%d, %d, %d, %d}, od = {%d, %d, %d, %d};\n"
                "  rc = arm_depthwise_conv_wrapper_s8_get_buffer_size{sfx}(&p, &id, &fd, &od);"
                % (od[3] // ind[3], pad[1], pad[0], dil[1], dil[0], *ind, *fd, *od))
        out.append((call, "dw", dict(input_dims=ind, filter_dims=fd, output_dims=od, pad=pad, dilation=dil)))
    # No per-core variants of this one: the build it runs in answers (mve on the Cortex-M55).
    out.append(("cmsis_nn_dims id = {1, 9, 9, 7}, fd = {5, 3, 2, 7};\n"
                "  rc = arm_convolve_s8_get_buffer_size(&id, &fd);", "conv_s8",
                dict(input_dims=(1, 9, 9, 7), filter_dims=(5, 3, 2, 7))))
    for fd in [(64, 1, 1, 10), (7, 1, 1, 3)]:
        call = "cmsis_nn_dims fd = {%d, %d, %d, %d};\n  rc = arm_fully_connected_s8_get_buffer_size{sfx}(&fd);" % fd
        out.append((call, "fc", dict(filter_dims=fd)))
    for ow, ch in [(4, 16), (1, 3)]:
        out.append((f"rc = arm_avgpool_s8_get_buffer_size{{sfx}}({ow}, {ch});", "avg",
                    dict(output_w=ow, channels=ch)))
    return out


def expected_size(kind: str, kwargs: dict, core: str, built_for: str) -> int:
    """``built_for``: the build the program runs (conv_s8 has no _dsp/_mve variants; plain C
    answers as the DSP build)."""
    if kind == "conv_s8":
        return scratch.convolve_s8(**kwargs, core="mve" if built_for == "mve" else "dsp")
    fn = {"conv": scratch.convolve_wrapper_s8, "dw": scratch.depthwise_conv_wrapper_s8,
          "fc": scratch.fully_connected_s8, "avg": scratch.avgpool_s8}[kind]
    return fn(**kwargs, core=core)


def _size_run(run, suffix: str, core: str, tmp_path) -> None:
    cases = size_cases()
    results = run([H.Case(f"{kind} {kw}", call.replace("{sfx}", suffix), 0) for call, kind, kw in cases])
    got = [rc for rc, _ in results]
    want = [expected_size(kind, kw, core, core if not suffix else "plain") for _, kind, kw in cases]
    assert got == want, [(c[1], c[2], g, w) for c, g, w in zip(cases, got, want) if g != w]


def test_portable_buffer_sizes_are_the_dsp_builds(tmp_path):
    _size_run(lambda cases: H.run_host(cases, "portable", tmp_path), "", "dsp", tmp_path)


@needs_upstream
@pytest.mark.parametrize("suffix, core", [("", "plain"), ("_dsp", "dsp"), ("_mve", "mve")])
def test_upstream_buffer_sizes_per_core(tmp_path, suffix, core):
    """Upstream on a host is the plain build; its _dsp/_mve variants are public functions."""
    _size_run(lambda cases: H.run_host(cases, "upstream", tmp_path), suffix, core, tmp_path)


@needs_upstream
@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_upstream_buffer_sizes_on_cortex_m7(tmp_path):
    _size_run(lambda cases: H.run_qemu(cases, "upstream", tmp_path), "", "dsp", tmp_path)


@pytest.mark.skipif(not H.qemu_available(), reason="arm-none-eabi-gcc and qemu-system-arm needed")
@pytest.mark.parametrize("library", ["portable", pytest.param("upstream", marks=needs_upstream)])
def test_buffer_sizes_on_cortex_m55_are_the_mve_builds(tmp_path, library):
    _size_run(lambda cases: H.run_qemu(cases, library, tmp_path, cpu="cortex-m55"), "", "mve", tmp_path)


def test_grouped_pointwise_convolution_needs_the_im2col_buffer():
    """The size functions take a grouped 1x1 convolution for a pointwise one (0 bytes), but the
    wrapper runs arm_convolve_s8 for it: plan convolve_s8's size (the conv cases above show the
    NULL-buffer refusal of that path)."""
    dims = dict(input_dims=(1, 5, 5, 6), filter_dims=(6, 1, 1, 2), output_dims=(1, 5, 5, 6), pad=(0, 0))
    assert scratch.convolve_wrapper_s8(**dims) == 0
    assert scratch.convolve_s8((1, 5, 5, 6), (6, 1, 1, 2)) == 2 * 8 * 2


def test_unknown_core_is_refused():
    with pytest.raises(ValueError, match="unknown core 'm55'"):
        scratch.fully_connected_s8((1, 1, 1, 1), core="m55")


# ----------------------------------------------------------------------------- parameters, builds


@pytest.mark.parametrize("scale, beta, expected", [
    (1 / 16, 1.0, (2**30, 23, -248)),          # 2**22 exactly: mantissa 0.5
    (0.1, 1.0, (1717986918, 23, -248)),
    (2.0**-20, 1.0, (2**30, 7, -(31 << 19))),
    (100.0, 1.0, (2**31 - 1, 31, 0)),          # capped at 2**31 - 1: only the maximum survives
    (0.05, 2.0, (1717986918, 23, -248)),       # beta folds into the scale
])
def test_softmax_params_as_tflite_prepares_them(scale, beta, expected):
    p = softmax_params(scale, beta)
    assert (p.mult, p.shift, p.diff_min) == expected


def test_softmax_params_refuse_a_scale_below_one_step():
    with pytest.raises(ValueError, match="too small"):
        softmax_params(2.0**-27)


@pytest.mark.parametrize("source", sorted((H.PORTABLE_S8 / "Source").glob("*.c")), ids=lambda p: p.name)
@pytest.mark.parametrize("compiler, cpu", [("gcc", None), ("arm-none-eabi-gcc", "cortex-m7"),
                                         ("arm-none-eabi-gcc", "cortex-m55")])
def test_portable_file_compiles_warning_free(source, compiler, cpu, tmp_path):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not found")
    arch = H.QEMU_CPUS[cpu][1] if cpu else []
    subprocess.run([compiler, *arch, "-std=c99", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                    "-Wconversion", f"-I{H.PORTABLE_S8 / 'Include'}", "-c", str(source), "-o",
                    str(tmp_path / "x.o")], check=True)


def test_add_and_mul_params_as_tflite_prepares_them_give_the_float_result():
    """With TFLite's parameters the kernels compute a + b and a * b to within one output step."""
    rng = np.random.default_rng(7)
    qa, qb, qo = TensorQuant(0.05, -3), TensorQuant(0.02, 10), TensorQuant(0.06, 4)
    a, b = rand8(rng, 1, 200), rand8(rng, 1, 200)
    p = add_params(qa.scale, qb.scale, qo.scale)
    assert p.input_1 == quantize_multiplier(0.5) and p.left_shift == 20
    assert p.input_2 == quantize_multiplier(0.2)
    assert p.output == quantize_multiplier(0.1 / (2**20 * 0.06))
    got = K.elementwise_add_s8(a, b, input_1=(3, *p.input_1), input_2=(-10, *p.input_2), output=(4, *p.output))
    real = qa.dequantize(a) + qb.dequantize(b)
    inside = np.abs(real) < 7.0
    assert np.abs(qo.dequantize(got) - real)[inside].max() <= qo.scale * 1.01
    m, s = mul_params(qa.scale, qb.scale, qo.scale)
    assert (m, s) == quantize_multiplier(0.05 * 0.02 / 0.06)
    got = K.elementwise_mul_s8(a, b, input_1_offset=3, input_2_offset=-10, output=(4, m, s))
    real = qa.dequantize(a) * qb.dequantize(b)
    inside = np.abs(real) < 7.0
    assert np.abs(qo.dequantize(got) - real)[inside].max() <= qo.scale * 0.51
    with pytest.raises(ValueError, match="add output rescale"):
        add_params(1.0, 1.0, 2.0**-22)


# ----------------------------------------------------------------------------- the API itself

_STRUCTS = {
    "cmsis_nn_tile": ["w", "h"], "cmsis_nn_context": ["buf", "size"], "cmsis_nn_dims": ["n", "h", "w", "c"],
    "cmsis_nn_per_channel_quant_params": ["multiplier", "shift"],
    "cmsis_nn_per_tensor_quant_params": ["multiplier", "shift"], "cmsis_nn_activation": ["min", "max"],
    "cmsis_nn_conv_params": ["input_offset", "output_offset", "stride", "padding", "dilation", "activation"],
    "cmsis_nn_dw_conv_params": ["input_offset", "output_offset", "ch_mult", "stride", "padding", "dilation",
                                "activation"],
    "cmsis_nn_pool_params": ["stride", "padding", "activation"],
    "cmsis_nn_fc_params": ["input_offset", "filter_offset", "output_offset", "activation"],
}


def _portable_functions() -> list[str]:
    header = (H.PORTABLE_S8 / "Include" / "arm_nnfunctions.h").read_text()
    return re.findall(r"^\w[\w ]*?\b(arm_\w+)\(", header, flags=re.M)


@needs_upstream
def test_portable_prototypes_are_upstreams(tmp_path):
    """Upstream's own declarations of every portable function compile after the portable header
    (gcc refuses conflicting types), and upstream declares each of them."""
    upstream = (H.upstream_path() / "Include" / "arm_nnfunctions.h").read_text()
    declarations = []
    for name in _portable_functions():
        found = re.search(rf"^[\w ]+\b{name}\([^;]*\);", upstream, flags=re.M)
        assert found, f"{name} is not declared by upstream"
        declarations.append(found.group(0))
    source = tmp_path / "protos.c"
    source.write_text('#include "arm_nnfunctions.h"\n' + "\n".join(declarations) + "\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{H.PORTABLE_S8 / 'Include'}", "-c", str(source),
                    "-o", str(tmp_path / "protos.o")], check=True)


@needs_upstream
def test_portable_structs_and_status_codes_are_laid_out_as_upstreams(tmp_path):
    body = ['#include <stdio.h>', '#include <stddef.h>', '#include "arm_nnfunctions.h"', "int main(void) {"]
    for struct, members in _STRUCTS.items():
        body.append(f'  printf("{struct} %zu\\n", sizeof({struct}));')
        body += [f'  printf("{struct}.{m} %zu\\n", offsetof({struct}, {m}));' for m in members]
    for code in ["ARM_CMSIS_NN_SUCCESS", "ARM_CMSIS_NN_ARG_ERROR", "ARM_CMSIS_NN_NO_IMPL_ERROR",
                 "ARM_CMSIS_NN_FAILURE", "NN_Q7_MIN", "NN_Q7_MAX", "NN_Q15_MIN", "NN_Q31_MAX"]:
        body.append(f'  printf("{code} %ld\\n", (long){code});')
    (tmp_path / "layout.c").write_text("\n".join(body + ["  return 0; }"]) + "\n")
    outputs = []
    for include in (H.PORTABLE_S8 / "Include", H.upstream_path() / "Include"):
        exe = tmp_path / f"layout_{len(outputs)}"
        subprocess.run(["gcc", f"-I{include}", str(tmp_path / "layout.c"), "-o", str(exe)], check=True)
        outputs.append(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    assert outputs[0] == outputs[1]
