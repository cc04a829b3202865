"""The project's own C kernels (firmware/cmsisgen_kernels) against their simulator models.

Each kernel is built with host gcc (-std=c99 -Wall -Wextra -Werror, once plain and once with
UBSan trapping on any undefined behaviour) and called through ctypes on seeded random inputs
and edge cases (-128/127 everywhere, shifts 0 and the largest the quantizer allows, one
channel, one pixel, many Eltwise inputs, the LRN table's edge indices); every output must
equal the bit-exact model in cmsisgen.simulator. Each file also compiles alone for the
Cortex-M7, with the portable kernels' headers and (CMSIS_NN_PATH set) upstream's. Last,
`compile` copies exactly the files a network calls into OUT, and keeps them in step.
"""
from __future__ import annotations

import ctypes
import dataclasses
import itertools
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model
from test_kernels import PORTABLE, P, compile_for_cortex_m7, rand8, run_conv_c, shared_library
from cmsisgen import ir, own_kernels
from cmsisgen.cli import main
from cmsisgen.mapper.rules import Site
from cmsisgen.ops import lrn
from cmsisgen.ops.eltwise import PROD_MAX_RSHIFT, eltwise_max_q7, eltwise_prod_q7, eltwise_sum_q7
from cmsisgen.ops.pooling import pool_out_hw, pooling, pooling_windows_start_inside
from cmsisgen.ops.pooling_nn import max_shift, pool_q7
from cmsisgen.ops.prelu import MAX_SLOPE_FRAC, prelu_q7
from cmsisgen.ops.scale import scale_q7
from cmsisgen.quantizer import MAX_BIAS_LSHIFT, MAX_OUT_RSHIFT
from cmsisgen.simulator import kernels as K
from cmsisgen.sizereport import parse_map, size_report
from cmsisgen.verify import build

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"
SOURCES = sorted(OWN.glob("*.c"))
u32, i32 = ctypes.c_uint32, ctypes.c_int32
#: Largest Eltwise accumulator shift the quantizer emits (quantize_eltwise refuses more than 30).
ELTWISE_MAX_RSHIFT = 30
#: Largest input shift of a one-input Eltwise SUM or MAX: 128 << 23 is the accumulator bound 2**30.
ELTWISE_MAX_LSHIFT = 23


@pytest.fixture(scope="module", params=["plain", "ubsan"])
def own(request, tmp_path_factory):
    """The own kernels with the portable CMSIS-NN kernels (the group convolution test needs both)."""
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("own") / f"libown_{request.param}.so"
    return shared_library(out, SOURCES + sorted((PORTABLE / "Source").glob("*.c")), [OWN, PORTABLE / "Include"],
                          flags)


def pointers(arrays) -> ctypes.Array:
    return (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))


def edges(shape) -> list[np.ndarray]:
    """The extreme inputs: all -128, all 127, and alternating."""
    alternating = np.resize(np.array([-128, 127], dtype=np.int8), shape)
    return [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8), alternating]


# ----------------------------------------------------------------------------- channel slices


@pytest.mark.parametrize("pixels, channels", [(1, [1]), (1, [3, 1, 4]), (12, [2, 5]), (35, [1, 1, 1, 7])])
def test_concat_channels(own, pixels, channels):
    rng = np.random.default_rng(pixels * 10 + len(channels))
    inputs = [rand8(rng, 1, 1, pixels, c) for c in channels]
    out = np.full((1, 1, pixels, sum(channels)), 0x55, dtype=np.int8)
    offset = 0
    for x in inputs:
        own.nn_concat_channels_q7(P(x), u32(x.shape[3]), P(out), u32(out.shape[3]), u32(offset), u32(pixels))
        offset += x.shape[3]
    np.testing.assert_array_equal(out, np.concatenate(inputs, axis=3))  # the simulator's concat


def test_gather_channels_takes_a_slice(own):
    x = rand8(np.random.default_rng(3), 7, 6)
    for offset, width in [(0, 6), (0, 1), (5, 1), (2, 3)]:
        out = np.zeros((7, width), dtype=np.int8)
        own.nn_gather_channels_q7(P(x), u32(6), u32(offset), P(out), u32(width), u32(7))
        np.testing.assert_array_equal(out, x[:, offset:offset + width])


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_conv_gather_convolve_scatter(own, groups):
    """As run_nn() runs a grouped convolution: per group, gather its input channels, convolve
    (portable arm_convolve_HWC_q7_basic_nonsquare), scatter its outputs; kernels.group_conv_hwc_q7."""
    rng = np.random.default_rng(groups)
    cin, cout, h, w = 8, 4 * groups, 6, 5
    x, wt, b = rand8(rng, h, w, cin), rand8(rng, cout, 3, 3, cin // groups), rand8(rng, cout)
    out = np.zeros((h, w, cout), dtype=np.int8)
    in_g, out_g = cin // groups, cout // groups
    for g in range(groups):
        part = np.zeros((h, w, in_g), dtype=np.int8)
        own.nn_gather_channels_q7(P(x), u32(cin), u32(g * in_g), P(part), u32(in_g), u32(h * w))
        rc, conv = run_conv_c(own, "arm_convolve_HWC_q7_basic_nonsquare", part, wt[g * out_g:(g + 1) * out_g],
                              b[g * out_g:(g + 1) * out_g], (1, 1), (1, 1), (h, w), 1, 9, True)
        assert rc == 0
        own.nn_concat_channels_q7(P(conv), u32(out_g), P(out), u32(cout), u32(g * out_g), u32(h * w))
    want = K.group_conv_hwc_q7(x[None], wt, b, groups=groups, stride=(1, 1), pad=(1, 1), out_hw=(h, w),
                               bias_lshift=1, out_rshift=9)[0]
    np.testing.assert_array_equal(out, want)


# ----------------------------------------------------------------------------- LRN


def run_lrn(own, x, table, local_size, region, mantissa_bits, out_shift):
    _, h, w, c = x.shape
    x = np.ascontiguousarray(x)
    out = np.full(x.shape, 0x55, dtype=np.int8)
    table = np.ascontiguousarray(table, dtype=np.int32)
    tail = (P(table), u32(table.size), u32(mantissa_bits), u32(out_shift))
    if region == "across":
        own.nn_lrn_across_q7(P(x), P(out), u32(h * w), u32(c), u32(local_size), *tail)
    else:
        own.nn_lrn_within_q7(P(x), P(out), u32(h), u32(w), u32(c), u32(local_size), *tail)
    return out


LRN_CASES = [  # (h, w, c, local_size, region, out_shift)
    (4, 5, 7, 5, "across", 30),
    (1, 1, 1, 1, "across", 0),
    (1, 1, 9, 3, "across", 62),
    (3, 3, 1, 5, "across", 17),
    (5, 4, 3, 3, "within", 31),
    (1, 1, 2, 5, "within", 0),
    (6, 1, 1, 3, "within", 62),
    (7, 6, 2, 1, "within", 20),
]


@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_matches_simulator(own, case):
    h, w, c, local_size, region, out_shift = case
    rng = np.random.default_rng(h * 100 + w * 10 + c)
    window = local_size if region == "across" else local_size * local_size
    size = int(lrn.table_index(np.array([window * 128 * 128]))[0]) + 1  # as lrn.lrn_table sizes it
    for table in (rng.integers(0, 2**31, size=size, dtype=np.int64).astype(np.int32),
                  rng.integers(-2**31, 2**31, size=size, dtype=np.int64).astype(np.int32),
                  np.full(size, 2**31 - 1, dtype=np.int32), np.full(3, -2**31, dtype=np.int32)):
        for x in [rand8(rng, 1, h, w, c), *edges((1, h, w, c))]:
            want = lrn.lrn_q7(x, table, local_size=local_size, region=region, mantissa_bits=lrn.MANTISSA_BITS,
                            out_rshift=out_shift)
            got = run_lrn(own, x, table, local_size, region, lrn.MANTISSA_BITS, out_shift)
            np.testing.assert_array_equal(got, want)


def test_lrn_with_the_compilers_table(own):
    made = lrn.lrn_table("norm", ir.LRNParams(local_size=5, alpha=1e-4, beta=0.75), in_frac=3, out_frac=4)
    x = rand8(np.random.default_rng(9), 2, 3, 3, 16)
    want = lrn.lrn_q7(x, made.table, local_size=5, region="across", mantissa_bits=made.mantissa_bits,
                    out_rshift=made.out_rshift)
    got = np.concatenate([run_lrn(own, x[i:i + 1], made.table, 5, "across", made.mantissa_bits, made.out_rshift)
                          for i in range(2)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mantissa_bits", [1, 4, 8, 12])
def test_lrn_table_index_edges(own, mantissa_bits):
    """Every sum where the index changes step (2^M - 1, 2^M, 2^(M+1) - 1, ...) up to 2^32 - 1,
    with a table that reaches the index and one that caps it at its last entry."""
    own.nn_lrn_scale_q7.restype = ctypes.c_int8
    top = 1 << mantissa_bits
    sums = sorted({0, 1, top - 1, top, top + 1, 2**32 - 1}
                  | {v for e in range(mantissa_bits, 32) for v in ((1 << e) - 1, 1 << e, (1 << e) + (1 << (e - 1)))})
    index = lrn.table_index(np.array(sums), mantissa_bits)
    rng = np.random.default_rng(mantissa_bits)
    for size in (int(index.max()) + 1, max(1, int(index.max()) // 3), 1):
        table = rng.integers(-2**31, 2**31, size=size, dtype=np.int64).astype(np.int32)
        for x in (-128, -1, 0, 1, 127):
            for out_shift in (0, 31, 62):
                got = [own.nn_lrn_scale_q7(ctypes.c_int8(x), u32(s), P(table), u32(size), u32(mantissa_bits),
                                           u32(out_shift)) for s in sums]
                acc = x * table.astype(np.int64)[np.minimum(index, size - 1)] + K.nn_round(out_shift)
                np.testing.assert_array_equal(got, K.saturate_q7(acc >> out_shift))


# ----------------------------------------------------------------------------- Eltwise


def run_eltwise(own, function, inputs, coeffs, lshifts, out_rshift):
    inputs = [np.ascontiguousarray(x) for x in inputs]
    out = np.full(inputs[0].shape, 0x55, dtype=np.int8)
    shifts = np.array(lshifts, dtype=np.uint8)
    n, size = u32(len(inputs)), u32(inputs[0].size)
    if function == "sum":
        c = np.array(coeffs, dtype=np.int32)
        own.nn_eltwise_sum_q7(pointers(inputs), P(c), P(shifts), n, u32(out_rshift), P(out), size)
    else:
        own.nn_eltwise_max_q7(pointers(inputs), P(shifts), n, u32(out_rshift), P(out), size)
    return out


def eltwise_cases(rng, inputs: int):
    """(coeffs, lshifts, out_rshift) within the quantizer's bounds for ``inputs`` inputs."""
    lshifts = [int(v) for v in rng.integers(0, 8, size=inputs)]
    coeffs = [int(v) for v in rng.integers(-300, 301, size=inputs)]
    yield coeffs, lshifts, int(rng.integers(0, 20))
    yield [1] * inputs, [0] * inputs, 0
    yield [1] * inputs, [0] * inputs, ELTWISE_MAX_RSHIFT
    yield [-1] * inputs, [0] * inputs, 1


@pytest.mark.parametrize("inputs", [1, 2, 3, 7, 16])
@pytest.mark.parametrize("function", ["sum", "max"])
def test_eltwise_sum_and_max(own, function, inputs):
    rng = np.random.default_rng(inputs + (100 if function == "max" else 0))
    shape = (1, 3, 5, 7)
    for coeffs, lshifts, out_rshift in eltwise_cases(rng, inputs):
        data = [[rand8(rng, *shape) for _ in range(inputs)]] + [[e] * inputs for e in edges(shape)]
        for xs in data:
            got = run_eltwise(own, function, xs, coeffs, lshifts, out_rshift)
            want = (eltwise_sum_q7(xs, coeffs, lshifts, out_rshift) if function == "sum"
                    else eltwise_max_q7(xs, lshifts, out_rshift))
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("function", ["sum", "max"])
def test_eltwise_largest_shifts(own, function):
    """One input shifted by the most the accumulator bound allows, then the largest right shift."""
    for x in edges((1, 1, 1, 5)):
        for lshift, out_rshift in [(ELTWISE_MAX_LSHIFT, ELTWISE_MAX_RSHIFT), (ELTWISE_MAX_LSHIFT, 0)]:
            got = run_eltwise(own, function, [x], [1], [lshift], out_rshift)
            want = (eltwise_sum_q7([x], [1], [lshift], out_rshift) if function == "sum"
                    else eltwise_max_q7([x], [lshift], out_rshift))
            np.testing.assert_array_equal(got, want)


def test_eltwise_sum_in_place(own):
    rng = np.random.default_rng(5)
    a, b = rand8(rng, 40), rand8(rng, 40)
    want = eltwise_sum_q7([a, b], [3, -2], [1, 0], 2)
    c, s = np.array([3, -2], np.int32), np.array([1, 0], np.uint8)
    own.nn_eltwise_sum_q7(pointers([a, b]), P(c), P(s), u32(2), u32(2), P(a), u32(40))
    np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("out_rshift", range(PROD_MAX_RSHIFT + 1))
def test_eltwise_prod(own, out_rshift):
    rng = np.random.default_rng(out_rshift)
    pairs = [(rand8(rng, 50), rand8(rng, 50))] + [(e, f) for e in edges(50) for f in edges(50)]
    for a, b in pairs:
        out = np.full(50, 0x55, dtype=np.int8)
        own.nn_eltwise_prod_q7(P(a), P(b), u32(out_rshift), P(out), u32(50))
        np.testing.assert_array_equal(out, eltwise_prod_q7(a, b, out_rshift))


# ----------------------------------------------------------------------------- per-channel kernels


#: nn_pool_q7 geometries (h, w, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, ceil_mode): the
#: real nets' non-square images (30x14, 66x16), inception's 3x3/s1/p1, padding >= stride, kernels
#: smaller than the stride, one-pixel images and windows, a whole-image window, floor mode, and
#: more than one block of 16 channels.
POOL_GEOMETRIES = [
    (30, 14, 3, 2, 2, 2, 2, 0, 0, True),
    (66, 16, 5, 3, 3, 2, 2, 0, 0, True),
    (9, 9, 4, 3, 3, 1, 1, 1, 1, True),
    (7, 5, 17, 3, 3, 1, 1, 1, 1, True),
    (8, 6, 2, 3, 2, 1, 2, 2, 1, True),
    (5, 5, 3, 3, 3, 2, 2, 2, 2, True),
    (6, 7, 3, 1, 1, 2, 2, 0, 0, False),
    (7, 10, 2, 1, 2, 3, 3, 0, 0, True),
    (10, 3, 6, 4, 3, 3, 1, 1, 0, True),
    (11, 8, 33, 3, 2, 2, 3, 1, 1, False),
    (1, 1, 1, 1, 1, 1, 1, 0, 0, True),
    (1, 9, 2, 1, 3, 1, 2, 0, 1, True),
    (6, 11, 8, 6, 11, 1, 1, 0, 0, True),
    (4, 4, 3, 4, 4, 3, 3, 3, 3, True),
]


def pool_geometry(h, w, c, kh, kw, sh, sw, ph, pw, ceil_mode):
    params = ir.PoolParams(method="max", kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw,
                           ceil_mode=ceil_mode)
    oh, ow = pool_out_hw(h, w, params)
    site = Site(layer="p", type="Pooling", in_ch=c, in_h=h, in_w=w, out_ch=c, out_h=oh, out_w=ow, kernel_h=kh,
                kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw)
    assert pooling_windows_start_inside(site), "a geometry nn_pool_q7 is never asked to run"
    return params, (oh, ow)


def run_pool(own, x, params, out_hw, average, shift=0):
    _, h, w, c = x.shape
    out = np.full((1, *out_hw, c), 0x55, dtype=np.int8)
    own.nn_pool_q7(P(np.ascontiguousarray(x)), u32(h), u32(w), u32(c), u32(params.kernel_h), u32(params.kernel_w),
                   u32(params.stride_h), u32(params.stride_w), u32(params.pad_h), u32(params.pad_w), u32(out_hw[0]),
                   u32(out_hw[1]), u32(average), u32(shift), P(out))
    return out


def geometry_id(g) -> str:
    return "x".join(map(str, g[:3])) + "_k%dx%d_s%dx%d_p%dx%d" % g[3:9] + ("" if g[9] else "_floor")


@pytest.mark.parametrize("geometry", POOL_GEOMETRIES, ids=geometry_id)
@pytest.mark.parametrize("average", [0, 1])
def test_pool_matches_model(own, geometry, average):
    """nn_pool_q7 against pool_q7 on random and extreme inputs; its model against Caffe's float
    pooling (cmsisgen's forward, checked against pycaffe): the same maximum, and the float
    average rounded half away from zero."""
    params, out_hw = pool_geometry(*geometry)
    h, w, c = geometry[:3]
    rng = np.random.default_rng(sum(geometry) + average)
    kernel, stride, pad = (params.kernel_h, params.kernel_w), (params.stride_h, params.stride_w), (params.pad_h,
                                                                                                  params.pad_w)
    for x in [rand8(rng, 1, h, w, c), *edges((1, h, w, c))]:
        want = pool_q7(x, kernel, stride, pad, out_hw, bool(average))
        np.testing.assert_array_equal(run_pool(own, x, params, out_hw, average), want)
        caffe = pooling(x.transpose(0, 3, 1, 2).astype(np.float64),
                        dataclasses.replace(params, method="ave" if average else "max")).transpose(0, 2, 3, 1)
        if not average:
            np.testing.assert_array_equal(want, caffe)
        else:
            away = np.sign(caffe) * np.floor(np.abs(caffe) + 0.5 + 1e-9)
            np.testing.assert_array_equal(want, away)


@pytest.mark.parametrize("geometry", POOL_GEOMETRIES, ids=geometry_id)
@pytest.mark.parametrize("shift", [1, 3, 7])
def test_pool_average_with_shift_matches_model(own, geometry, shift):
    """The average into a format with ``shift`` more fractional bits: C == model on random and
    extreme inputs, and the model is Caffe's float average times 2^shift rounded half away from
    zero, saturated to q7 (the extremes saturate)."""
    params, out_hw = pool_geometry(*geometry)
    h, w, c = geometry[:3]
    rng = np.random.default_rng(sum(geometry) + 100 * shift)
    kernel, stride, pad = (params.kernel_h, params.kernel_w), (params.stride_h, params.stride_w), (params.pad_h,
                                                                                                  params.pad_w)
    small = rng.integers(-3, 4, size=(1, h, w, c)).astype(np.int8)  # averages that fit after the shift
    for x in [rand8(rng, 1, h, w, c), small, *edges((1, h, w, c))]:
        want = pool_q7(x, kernel, stride, pad, out_hw, True, shift)
        np.testing.assert_array_equal(run_pool(own, x, params, out_hw, 1, shift), want)
        caffe = pooling(x.transpose(0, 3, 1, 2).astype(np.float64),
                        dataclasses.replace(params, method="ave")).transpose(0, 2, 3, 1) * 2.0 ** shift
        away = np.clip(np.sign(caffe) * np.floor(np.abs(caffe) + 0.5 + 1e-9), -128, 127)
        np.testing.assert_array_equal(want, away)


def test_pool_average_shift_rounds_and_saturates(own):
    """Global average of [1, 0, 0] with shift 1: 2/3 -> 1; [-1, 0, 0, 0] with shift 1: -2/4 -> -1
    (half away from zero); [100, 100] with shift 1: 200 saturates to 127, [-100, -100] to -128."""
    for values, shift, want in [([1, 0, 0], 1, 1), ([-1, 0, 0, 0], 1, -1), ([1, 0, 0, 0], 2, 1),
                                ([100, 100], 1, 127), ([-100, -100], 1, -128), ([-3, 0, 0, 0, 0], 3, -5)]:
        x = np.array(values, dtype=np.int8).reshape(1, 1, -1, 1)
        params = ir.PoolParams(method="ave", kernel_h=1, kernel_w=len(values))
        got = run_pool(own, x, params, (1, 1), 1, shift).item()
        assert got == want == pool_q7(x, (1, len(values)), (1, 1), (0, 0), (1, 1), True, shift).item()


@pytest.mark.parametrize("h, w", [(40, 40), (1, 1), (2, 3), (256, 256)])
def test_pool_average_largest_shift_does_not_overflow(own, h, w):
    """max_shift(kernel): the scaled sum of a window of -128s or 127s stays inside int32 (UBSan
    traps on overflow); the result saturates; two more bits would not fit."""
    shift = max_shift(h, w)
    assert 128 * h * w * 2 ** shift + h * w // 2 < 2 ** 31 <= 128 * h * w * 2 ** (shift + 2)
    params = ir.PoolParams(method="ave", kernel_h=h, kernel_w=w)
    for value, want in [(-128, -128), (127, 127), (0, 0)]:
        x = np.full((1, h, w, 1), value, dtype=np.int8)
        assert run_pool(own, x, params, (1, 1), 1, shift).item() == want
        assert pool_q7(x, (h, w), (1, 1), (0, 0), (1, 1), True, shift).item() == want


def sweep_geometries(count: int, seed: int) -> list[tuple]:
    """``count`` seeded geometries from every combination of small sizes, kernels, strides and
    pads per axis (pad < kernel <= size + 2 * pad, as Caffe requires), ceil and floor mode,
    that leave no window outside the image."""
    axes = [(size, k, s, p) for size in (1, 2, 3, 5, 8) for k in (1, 2, 3, 4) for s in (1, 2, 3) for p in range(k)
            if k <= size + 2 * p]
    every = []
    for (h, kh, sh, ph), (w, kw, sw, pw) in itertools.product(axes, axes):
        for ceil_mode in (True, False):
            params = ir.PoolParams(method="max", kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph,
                                   pad_w=pw, ceil_mode=ceil_mode)
            oh, ow = pool_out_hw(h, w, params)
            if oh >= 1 and ow >= 1 and (oh - 1) * sh - ph < h and (ow - 1) * sw - pw < w:
                every.append((h, w, 3, kh, kw, sh, sw, ph, pw, ceil_mode))
    rng = np.random.default_rng(seed)
    return [every[i] for i in rng.choice(len(every), size=count, replace=False)]


def test_pool_sweep_of_small_geometries(own):
    """400 of the small geometries, both methods: C == model, and the model is Caffe's float pooling
    (the maximum; the average rounded half away from zero)."""
    rng = np.random.default_rng(12)
    for geometry in sweep_geometries(400, seed=12):
        params, out_hw = pool_geometry(*geometry)
        x = rand8(rng, 1, *geometry[:3])
        floats = x.transpose(0, 3, 1, 2).astype(np.float64)
        for average in (0, 1):
            want = pool_q7(x, (params.kernel_h, params.kernel_w), (params.stride_h, params.stride_w),
                           (params.pad_h, params.pad_w), out_hw, bool(average))
            np.testing.assert_array_equal(run_pool(own, x, params, out_hw, average), want, err_msg=str(geometry))
            caffe = pooling(floats, dataclasses.replace(params, method="ave" if average else "max"))
            caffe = caffe.transpose(0, 2, 3, 1)
            expected = np.sign(caffe) * np.floor(np.abs(caffe) + 0.5 + 1e-9) if average else caffe
            np.testing.assert_array_equal(want, expected, err_msg=str(geometry))


def test_pool_average_divides_by_the_padded_window(own):
    """2x2 image, kernel 2, stride 2, pad 1: each window holds one pixel and three padding
    cells, so Caffe divides by 4; 2/4 and -2/4 round away from zero, 1/4 and 6/4 to nearest."""
    params = ir.PoolParams(method="ave", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2, pad_h=1, pad_w=1)
    assert pool_out_hw(2, 2, params) == (2, 2)
    x = np.array([2, -2, 1, 6], dtype=np.int8).reshape(1, 2, 2, 1)
    got = run_pool(own, x, params, (2, 2), 1)
    assert got.reshape(-1).tolist() == [1, -1, 0, 2]
    np.testing.assert_array_equal(got, pool_q7(x, (2, 2), (2, 2), (1, 1), (2, 2), True))


def run_global_pool(own, x, average):
    """nn_pool_q7 with one window covering the image (what global pooling compiles to)."""
    _, h, w, c = x.shape
    return run_pool(own, x, ir.PoolParams(method="max", kernel_h=h, kernel_w=w), (1, 1), average).reshape(-1)


@pytest.mark.parametrize("h, w, c", [(1, 1, 1), (1, 1, 6), (1, 13, 1), (9, 7, 5), (40, 40, 3)])
@pytest.mark.parametrize("average", [0, 1])
def test_global_pool(own, h, w, c, average):
    """Each channel's maximum, or its sum divided by the pixel count rounded half away from zero."""
    rng = np.random.default_rng(h * w * c + average)
    for x in [rand8(rng, 1, h, w, c), *edges((1, h, w, c))]:
        flat = x.reshape(-1, c).astype(np.int64)
        total, count = flat.sum(axis=0), h * w
        want = flat.max(axis=0) if not average else [int(np.sign(t) * ((abs(t) + count // 2) // count)) for t in total]
        np.testing.assert_array_equal(run_global_pool(own, x, average), want)
        np.testing.assert_array_equal(pool_q7(x, (h, w), (1, 1), (0, 0), (1, 1), bool(average)).reshape(-1), want)


def test_global_average_rounds_half_away_from_zero(own):
    for values, want in [([1, 0], 1), ([-1, 0], -1), ([1, 0, 0], 0), ([-2, 0, 0], -1), ([3, 0, 0, 0], 1)]:
        x = np.array(values, dtype=np.int8).reshape(1, 1, -1, 1)
        assert run_global_pool(own, x, 1).item() == want == pool_q7(x, (1, len(values)), (1, 1), (0, 0), (1, 1),
                                                                     True).item()


@pytest.mark.parametrize("slope_shift", [0, 1, 7, 13, MAX_SLOPE_FRAC])
@pytest.mark.parametrize("pixels, channels", [(1, 1), (1, 8), (17, 1), (12, 5)])
def test_prelu(own, slope_shift, pixels, channels):
    rng = np.random.default_rng(slope_shift * 1000 + pixels * channels)
    for slopes in (rand8(rng, channels), np.full(channels, -128, np.int8), np.full(channels, 127, np.int8)):
        for x in [rand8(rng, 1, 1, pixels, channels), *edges((1, 1, pixels, channels))]:
            want = prelu_q7(x, slopes, slope_shift)
            out = np.full(x.shape, 0x55, dtype=np.int8)
            own.nn_prelu_q7(P(x), P(slopes), u32(channels), u32(pixels), u32(slope_shift), P(out))
            np.testing.assert_array_equal(out, want)
            own.nn_prelu_q7(P(x), P(slopes), u32(channels), u32(pixels), u32(slope_shift), P(x))  # in place
            np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("bias_lshift, out_rshift", [(0, 0), (0, 7), (3, 9), (MAX_BIAS_LSHIFT, MAX_OUT_RSHIFT),
                                                     (0, MAX_OUT_RSHIFT), (MAX_BIAS_LSHIFT, 0)])
@pytest.mark.parametrize("pixels, channels", [(1, 1), (1, 6), (20, 1), (11, 4)])
def test_scale(own, bias_lshift, out_rshift, pixels, channels):
    rng = np.random.default_rng(bias_lshift * 100 + out_rshift + pixels * channels)
    params = [(rand8(rng, channels), rand8(rng, channels))] + [(m, b) for m in edges(channels) for b in edges(channels)]
    for mult, bias in params:
        for x in [rand8(rng, 1, 1, pixels, channels), *edges((1, 1, pixels, channels))]:
            want = scale_q7(x, mult, bias, bias_lshift, out_rshift)
            out = np.full(x.shape, 0x55, dtype=np.int8)
            own.nn_scale_q7(P(x), P(mult), P(bias), u32(channels), u32(pixels), u32(bias_lshift), u32(out_rshift),
                            P(out))
            np.testing.assert_array_equal(out, want)


# ----------------------------------------------------------------------------- builds for the target


def test_each_file_compiles_for_cortex_m7(tmp_path):
    compile_for_cortex_m7(tmp_path, SOURCES, [OWN, PORTABLE / "Include"])


def test_each_file_compiles_against_upstream_cmsis_nn(tmp_path):
    """With upstream's headers instead of the portable ones (CMSIS_5 5.9.0's arm_nn_math_types.h
    takes its types from CMSIS-DSP's arm_math_types.h and needs cmsis_compiler.h)."""
    nn = os.environ.get("CMSIS_NN_PATH")
    if not nn:
        pytest.skip("CMSIS_NN_PATH not set (…/CMSIS/NN of CMSIS_5 5.9.0): upstream build skipped")
    includes = [Path(nn) / "Include"]
    for variable, default in (("CMSIS_DSP_INCLUDE", "DSP/Include"), ("CMSIS_CORE_PATH", "Core/Include")):
        folder = Path(os.environ.get(variable) or Path(nn).parent / default)
        if folder.is_dir():
            includes.append(folder)
    compile_for_cortex_m7(tmp_path, SOURCES, [OWN, *includes])


def defined_functions(source: Path) -> set[str]:
    """The functions a C file defines with external linkage."""
    return set(re.findall(r"(?m)^(?!static)\w[\w ]*\b(nn_\w+_(?:q7|s8))\(", source.read_text()))


def test_header_declares_every_kernel_and_every_kernel_names_its_file():
    header = (OWN / own_kernels.HEADER).read_text()
    for source in SOURCES:
        assert defined_functions(source), source
        for function in defined_functions(source):
            assert re.search(rf"\b{function}\(", header), function
    assert set(own_kernels.ALL_FILES) == {p.name for p in OWN.iterdir() if p.suffix in (".c", ".h")}
    from cmsisgen.ops import concat, convolution, eltwise, lrn as lrn_op, pooling_nn, prelu, scale

    for kernel in (concat.CONCAT, convolution.GROUP_CONV, eltwise.ELTWISE, lrn_op.LRN_Q7, pooling_nn.POOL,
                   prelu.PRELU, scale.SCALE_Q7):
        assert (OWN / kernel.source).is_file(), kernel.kind
    from cmsisgen.ops.base import Kernel
    from cmsisgen.s8 import calls as s8_calls

    s8_sources = {k.source for k in vars(s8_calls).values() if isinstance(k, Kernel) and k.source}
    assert {"nn_deconv_s8.c", "nn_eltwise_add_s8.c"} <= s8_sources and all((OWN / f).is_file() for f in s8_sources)


# ----------------------------------------------------------------------------- compile copies them


def compile_net(folder: Path, layers, out: Path, *options: str):
    folder.mkdir(parents=True)
    prototxt, weights = write_model(folder, layers, input_shape=(3, 8, 8))
    result = CliRunner().invoke(main, ["compile", str(prototxt), str(weights), "-o", str(out), *options])
    assert result.exit_code == 0, result.output
    return prototxt, weights


BRANCHES = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("norm", "LRN", "conv1", "norm", local_size=3, alpha=1.0, beta=0.75),
    layer("conv2", "Convolution", "conv1", "conv2", num_output=2, kernel_size=1),
    layer("cat", "Concat", ["norm", "conv2"], "cat"),
    layer("ip", "InnerProduct", num_output=3),
]
PLAIN = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), layer("ip", "InnerProduct", num_output=3)]


def test_compile_copies_the_kernels_a_net_calls(tmp_path):
    out = tmp_path / "out"
    prototxt, weights = compile_net(tmp_path / "model", BRANCHES, out)
    copied = sorted(p.name for p in out.iterdir() if p.name.startswith("nn_"))
    assert copied == ["nn_concat_q7.c", "nn_kernels.h", "nn_lrn_q7.c"]
    for name in copied:
        assert (out / name).read_bytes() == (OWN / name).read_bytes(), name
    nn_c = (out / "nn.c").read_text()
    assert '#include "nn_kernels.h"' in nn_c
    # nn.c defines only the input conversion and run_nn(); every kernel it calls is copied
    assert re.findall(r"(?m)^(?:static )?\w+ (\w+)\(.*\)$", nn_c) == ["nn_input_q7", "run_nn"]
    called = set(re.findall(r"\b(nn_\w+_q7)\(", nn_c)) - {"nn_input_q7"}
    assert called == {"nn_lrn_across_q7", "nn_concat_channels_q7"}
    assert all(any(f in defined_functions(OWN / name) for name in copied if name.endswith(".c")) for f in called)

    (out / "nn_lrn_q7.c").write_text("/* edited */\n")
    result = CliRunner().invoke(main, ["compile", str(prototxt), str(weights), "-o", str(out), "--check"])
    assert result.exit_code != 0 and "generated files are stale: nn_lrn_q7.c " in result.output


def test_a_later_compile_removes_kernels_no_longer_called(tmp_path):
    out = tmp_path / "out"
    compile_net(tmp_path / "model", BRANCHES, out)
    (out / "notes.txt").write_text("mine\n")
    prototxt, weights = compile_net(tmp_path / "plain", PLAIN, out)
    assert sorted(p.name for p in out.iterdir()) == [".cmsisgen-manifest", "nn.c", "nn.h", "notes.txt", "parameters.h",
                                                     "weights.c", "weights.h"]
    assert "nn_kernels.h" not in (out / "nn.c").read_text()
    (out / "nn_scale_q7.c").write_text("/* left over */\n")
    check = ["compile", str(prototxt), str(weights), "-o", str(out), "--check"]
    assert CliRunner().invoke(main, check).exit_code == 0  # not in the manifest: the user's own file
    with open(out / ".cmsisgen-manifest", "a") as manifest:  # as a compile that called it lists it
        manifest.write("nn_scale_q7.c\n")
    result = CliRunner().invoke(main, check)
    assert result.exit_code != 0 and "generated files are stale: nn_scale_q7.c " in result.output


def test_kernel_option_names_nn_pool_q7(tmp_path):
    """`compile --kernel pool=nn_pool_q7` on a pooling arm_maxpool_q7_HWC would run: nn.c calls the
    own kernel with its parameters, and nn_pool_q7.c is copied; without the option it is not."""
    out = tmp_path / "out"
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2), layer("ip", "InnerProduct", num_output=3)]
    prototxt, weights = compile_net(tmp_path / "model", layers, out, "--kernel", "pool=nn_pool_q7")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("nn_")) == ["nn_kernels.h", "nn_pool_q7.c"]
    nn_c, parameters = (out / "nn.c").read_text(), (out / "parameters.h").read_text()
    assert re.search(r"nn_pool_q7\(CONV1_OUT, POOL_IN_H, POOL_IN_W, POOL_CH,\s+POOL_KERNEL_H, POOL_KERNEL_W, "
                     r"POOL_STRIDE_H, POOL_STRIDE_W,\s+POOL_PAD_H, POOL_PAD_W, POOL_OUT_H, POOL_OUT_W, 0u, 0u, POOL_OUT\);",
                     nn_c), nn_c
    assert "#define POOL_OUT_H 4\n#define POOL_OUT_W 4\n" in parameters
    result = CliRunner().invoke(main, ["compile", str(prototxt), str(weights), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "arm_maxpool_q7_HWC(" in (out / "nn.c").read_text() and not (out / "nn_pool_q7.c").exists()


def test_size_report_counts_the_kernels_in_out_as_model_code(tmp_path):
    """The firmware Makefiles build every .c of OUT; the size report counts the copied
    kernels with nn.c (by folder with --model-dir, by file name without)."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
        pytest.skip("arm-none-eabi-gcc and make needed")
    out = tmp_path / "out"
    compile_net(tmp_path / "model", BRANCHES, out, "--test-vectors", "2")
    elf = build(out, "qemu", tmp_path / "build")
    map_file = elf.with_suffix(".map")
    log = (tmp_path / "build" / "build.log").read_text()
    assert all(str(out.resolve() / name) in log for name in ("nn.c", "nn_concat_q7.c", "nn_lrn_q7.c"))
    inputs, _ = parse_map(map_file.read_text())
    weights = set(size_report(elf, map_file, out)["symbols"]["weights"])
    code = [sec for sec in inputs if re.search(r"/out/nn(_concat_q7|_lrn_q7)?\.o$", sec.obj)
            and sec.name.startswith((".text", ".rodata")) and sec.symbol not in weights]
    assert {".text.nn_lrn_across_q7", ".text.nn_concat_channels_q7", ".text.run_nn"} <= {sec.name for sec in code}
    assert size_report(elf, map_file, out)["flash"]["code_model"] == sum(sec.size for sec in code)
    # without the folder every .rodata array of nn.o counts as weights: the code is the same
    text = sum(sec.size for sec in code if sec.name.startswith(".text"))
    assert size_report(elf, map_file)["flash"]["code_model"] == text
