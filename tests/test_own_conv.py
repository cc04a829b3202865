"""nn_conv_q7 and nn_deconv_q7 (firmware/cmsisgen_kernels/nn_conv_q7.c) against their models.

The models in cmsisgen.ops.own_conv are first checked against independent references: the
CMSIS-NN convolution models (kernels.conv_hwc_q7, group_conv_hwc_q7, depthwise_conv_hwc_q7)
where the geometry allows, and a scalar loop written from Caffe's definitions for dilation
and the transposed convolution. The C, built with host gcc plain and with UBSan trapping,
must then equal the models on random inputs and edge cases (every input and weight -128 or
127, accumulators that wrap, shifts 0 and 31). (The Cortex-M7 and upstream-header compiles
of the file are in tests/test_own_kernels.py, which builds every file of the folder.)
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from test_kernels import PORTABLE, P, rand8, shared_library
from cmsisgen.ops.own_conv import conv_q7, deconv_q7
from cmsisgen.simulator import kernels as K

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"
FIELDS = ("in_h", "in_w", "in_ch", "out_h", "out_w", "out_ch", "kernel_h", "kernel_w", "stride_h", "stride_w",
          "pad_h", "pad_w", "dilation_h", "dilation_w", "groups", "bias_lshift", "out_rshift")


class ConvShape(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in FIELDS]


@pytest.fixture(scope="module", params=["plain", "ubsan"])
def lib(request, tmp_path_factory):
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("own_conv") / f"libconv_{request.param}.so"
    return shared_library(out, [OWN / "nn_conv_q7.c"], [OWN, PORTABLE / "Include"], flags)


def out_size(size, k, s, p, d, transposed):
    if transposed:
        return s * (size - 1) + d * (k - 1) + 1 - 2 * p
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def reference(x, w, b, g, s, p, d, out_hw, ls, rs, transposed):
    """Scalar loops from the definitions: a convolution reads input row oy*s - p + ky*d; a
    transposed one adds input row iy to output row iy*s - p + ky*d. Wrapped int32 sum."""
    n, h, wd, c = x.shape
    o_ch, kh, kw, in_g = w.shape
    out_g = o_ch // g
    acc = np.zeros((n, *out_hw, o_ch), dtype=np.int64)
    for o in range(o_ch):
        first = (o // out_g) * in_g
        for ky in range(kh):
            for kx in range(kw):
                tap = w[o, ky, kx].astype(np.int64)
                for a in range(h if transposed else out_hw[0]):
                    for bb in range(wd if transposed else out_hw[1]):
                        y, z = a * s[0] - p[0] + ky * d[0], bb * s[1] - p[1] + kx * d[1]
                        if transposed and 0 <= y < out_hw[0] and 0 <= z < out_hw[1]:
                            acc[:, y, z, o] += x[:, a, bb, first:first + in_g].astype(np.int64) @ tap
                        elif not transposed and 0 <= y < h and 0 <= z < wd:
                            acc[:, a, bb, o] += x[:, y, z, first:first + in_g].astype(np.int64) @ tap
    total = K._wrap_int32(acc + (b.astype(np.int64) << ls) + K.nn_round(rs))
    return K.saturate_q7(total >> rs)


def run_c(lib, x, w, b, g, s, p, d, out_hw, ls, rs, transposed):
    _, h, wd, c = x.shape
    o_ch, kh, kw, _ = w.shape
    shape = ConvShape(h, wd, c, *out_hw, o_ch, kh, kw, *s, *p, *d, g, ls, rs)
    outs = []
    for image in x:
        out = np.full((*out_hw, o_ch), 0x55, dtype=np.int8)
        function = lib.nn_deconv_q7 if transposed else lib.nn_conv_q7
        function(P(np.ascontiguousarray(image)), ctypes.byref(shape), P(w), P(b), P(out))
        outs.append(out)
    return np.stack(outs)


# (h, w, c, o, g, kh, kw, stride, pad, dilation)
CASES = [
    (6, 5, 4, 6, 1, 3, 3, (1, 1), (1, 1), (1, 1)),
    (7, 9, 3, 5, 1, 3, 3, (2, 1), (2, 1), (2, 1)),
    (8, 6, 6, 6, 6, 3, 3, (1, 2), (2, 2), (2, 3)),
    (5, 5, 6, 4, 2, 2, 3, (3, 2), (0, 1), (1, 2)),
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0), (1, 1)),
    (4, 3, 8, 8, 4, 4, 4, (2, 2), (1, 1), (1, 1)),
    (3, 4, 2, 3, 1, 3, 2, (1, 3), (2, 0), (2, 2)),
]


def geometry(case, transposed):
    h, w, c, o, g, kh, kw, s, p, d = case
    return (out_size(h, kh, s[0], p[0], d[0], transposed), out_size(w, kw, s[1], p[1], d[1], transposed))


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_model_matches_the_definition(case, transposed):
    h, w, c, o, g, kh, kw, s, p, d = case
    out_hw = geometry(case, transposed)
    if min(out_hw) < 1:
        pytest.skip("no output")
    rng = np.random.default_rng(len(str(case)))
    x, wt, b = rand8(rng, 2, h, w, c), rand8(rng, o, kh, kw, c // g), rand8(rng, o)
    model = deconv_q7 if transposed else conv_q7
    got = model(x, wt, b, groups=g, stride=s, pad=p, dilation=d, out_hw=out_hw, bias_lshift=3, out_rshift=9)
    np.testing.assert_array_equal(got, reference(x, wt, b, g, s, p, d, out_hw, 3, 9, transposed))


def test_undilated_model_is_the_cmsis_nn_models():
    rng = np.random.default_rng(5)
    x, wt, b = rand8(rng, 2, 7, 6, 8), rand8(rng, 6, 3, 2, 4), rand8(rng, 6)
    geo = dict(stride=(2, 1), pad=(1, 1), out_hw=(4, 7), bias_lshift=2, out_rshift=8)
    np.testing.assert_array_equal(conv_q7(x, wt, b, groups=2, dilation=(1, 1), **geo),
                                  K.group_conv_hwc_q7(x, wt, b, groups=2, **geo))
    dw = rand8(rng, 8, 3, 2, 1)
    np.testing.assert_array_equal(conv_q7(x, dw, b[:1].repeat(8), groups=8, dilation=(1, 1), **geo),
                                  K.depthwise_conv_hwc_q7(x, dw[:, :, :, 0].transpose(1, 2, 0), b[:1].repeat(8), **geo))


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_c_matches_the_model(lib, case, transposed):
    h, w, c, o, g, kh, kw, s, p, d = case
    out_hw = geometry(case, transposed)
    if min(out_hw) < 1:
        pytest.skip("no output")
    rng = np.random.default_rng(len(str(case)) + 1)
    model = deconv_q7 if transposed else conv_q7
    wt, b = rand8(rng, o, kh, kw, c // g), rand8(rng, o)
    for ls, rs in ((0, 0), (3, 9), (23, 23), (0, 31)):
        for x in [rand8(rng, 2, h, w, c), np.full((1, h, w, c), -128, np.int8), np.full((1, h, w, c), 127, np.int8)]:
            want = model(x, wt, b, groups=g, stride=s, pad=p, dilation=d, out_hw=out_hw, bias_lshift=ls,
                         out_rshift=rs)
            np.testing.assert_array_equal(run_c(lib, x, wt, b, g, s, p, d, out_hw, ls, rs, transposed), want)


@pytest.mark.parametrize("transposed", [False, True])
def test_accumulator_wraps_as_cmsis_nn(lib, transposed):
    """Extreme weights, a bias shifted to 2^30 and more: the 32-bit sum wraps, the same in C and model."""
    h, w, c, o = 5, 5, 16, 2
    x, wt = np.full((1, h, w, c), -128, np.int8), np.full((o, 5, 5, c), -128, np.int8)
    b = np.array([127, -128], dtype=np.int8)
    s, p, d = (1, 1), (2, 2), (1, 1)
    out_hw = (out_size(h, 5, 1, 2, 1, transposed),) * 2
    model = deconv_q7 if transposed else conv_q7
    for ls, rs in ((24, 31), (31, 24), (25, 0)):
        want = model(x, wt, b, groups=1, stride=s, pad=p, dilation=d, out_hw=out_hw, bias_lshift=ls, out_rshift=rs)
        np.testing.assert_array_equal(want, reference(x, wt, b, 1, s, p, d, out_hw, ls, rs, transposed))
        np.testing.assert_array_equal(run_c(lib, x, wt, b, 1, s, p, d, out_hw, ls, rs, transposed), want)
