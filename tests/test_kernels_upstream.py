"""Optional cross-check against the real CMSIS-NN, built on the host from a user's copy.

Set CMSIS_NN_PATH to .../CMSIS/NN (CMSIS_5 5.9.0 / CMSIS-NN 3.1). CMSIS-DSP's Include folder
(for arm_math_types.h) comes from CMSIS_DSP_INCLUDE or defaults to CMSIS_NN_PATH/../DSP/Include.
Upstream's host build (-D__GNUC_PYTHON__, no ARM_MATH_DSP) runs the PLAIN-C paths, so:
every kernel must match the simulator, except average pooling, which must match the
plain-C model (avepool_q7_hwc_plain_c), and max pooling, which matches the plain-C window
model (equal to the DSP model when pad < stride). Nothing from upstream is stored in the
project: it is compiled into pytest's tmp_path. The few CMSIS core intrinsics the plain-C
paths still call (__SSAT, __USAT) and __RESTRICT are supplied by a tiny shim written here.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import test_kernels as tk
from cmsisgen.mapper.layout import interleave_fc_opt
from cmsisgen.simulator import kernels as K

SOURCES = [
    "ConvolutionFunctions/arm_convolve_HWC_q7_RGB.c",
    "ConvolutionFunctions/arm_convolve_HWC_q7_basic.c",
    "ConvolutionFunctions/arm_convolve_HWC_q7_fast.c",
    "ConvolutionFunctions/arm_convolve_HWC_q7_basic_nonsquare.c",
    "ConvolutionFunctions/arm_convolve_HWC_q7_fast_nonsquare.c",
    "ConvolutionFunctions/arm_convolve_1x1_HWC_q7_fast_nonsquare.c",
    "ConvolutionFunctions/arm_depthwise_separable_conv_HWC_q7.c",
    "ConvolutionFunctions/arm_depthwise_separable_conv_HWC_q7_nonsquare.c",
    "PoolingFunctions/arm_pool_q7_HWC.c",
    "ActivationFunctions/arm_relu_q7.c",
    "FullyConnectedFunctions/arm_fully_connected_q7.c",
    "FullyConnectedFunctions/arm_fully_connected_q7_opt.c",
    "SoftmaxFunctions/arm_softmax_q7.c",
]

SHIM = """#include <stdint.h>
#define __RESTRICT __restrict
static inline int32_t __SSAT(int32_t v, uint32_t bits)
{ int32_t hi = (int32_t)((1u << (bits - 1)) - 1); int32_t lo = -hi - 1; return v > hi ? hi : (v < lo ? lo : v); }
static inline uint32_t __USAT(int32_t v, uint32_t bits)
{ int32_t hi = (int32_t)((1u << bits) - 1); return (uint32_t)(v > hi ? hi : (v < 0 ? 0 : v)); }
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    nn = os.environ.get("CMSIS_NN_PATH")
    if not nn:
        pytest.skip("CMSIS_NN_PATH not set (…/CMSIS/NN of CMSIS_5 5.9.0): upstream cross-check skipped")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found on PATH")
    nn = Path(nn)
    dsp = Path(os.environ.get("CMSIS_DSP_INCLUDE", nn.parent / "DSP" / "Include"))
    work = tmp_path_factory.mktemp("upstream")
    (work / "shim.h").write_text(SHIM)
    out = work / "libupstream.so"
    subprocess.run([gcc, "-O1", "-shared", "-fPIC", "-D__GNUC_PYTHON__", "-include", str(work / "shim.h"),
                    "-I", str(nn / "Include"), "-I", str(dsp), *[str(nn / "Source" / s) for s in SOURCES],
                    "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


@pytest.mark.parametrize("case", tk.C_CONV_CASES)
def test_upstream_conv(up, case):
    name, nonsq, h, wd, cin, cout, kh, kw, sh, sw, ph, pw, bs, os_ = case
    rng = np.random.default_rng(abs(hash(case)) & 0xFFFF)
    x, w, b = tk.rand8(rng, h, wd, cin), tk.rand8(rng, cout, kh, kw, cin), tk.rand8(rng, cout)
    oh, ow = tk.out_dim(h, kh, ph, sh), tk.out_dim(wd, kw, pw, sw)
    rc, out = tk.run_conv_c(up, name, x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_, nonsq)
    assert rc == 0
    sim = K.conv_hwc_q7(x[None], w, b, stride=(sh, sw), pad=(ph, pw), out_hw=(oh, ow), bias_lshift=bs, out_rshift=os_)
    np.testing.assert_array_equal(out, sim[0])


@pytest.mark.parametrize("name,nonsq,cin,cout", [
    ("arm_convolve_HWC_q7_fast", False, 6, 4),
    ("arm_convolve_HWC_q7_fast_nonsquare", True, 4, 5),
    ("arm_convolve_HWC_q7_RGB", False, 4, 2),
])
def test_upstream_conv_precondition_failure(up, name, nonsq, cin, cout):
    rng = np.random.default_rng(5)
    x, w, b = tk.rand8(rng, 5, 5, cin), tk.rand8(rng, cout, 3, 3, cin), tk.rand8(rng, cout)
    rc, out = tk.run_conv_c(up, name, x, w, b, (1, 1), (1, 1), (5, 5), 0, 7, nonsq)
    assert rc == -3 and (out == 0x5A).all()


@pytest.mark.parametrize("case", tk.POOL_CASES)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_upstream_pool_plain_c(up, case, mode):
    dim, ch, k, pad, stride = case
    dout = min(tk.out_dim(dim, k, pad, stride) + (1 if (dim + 2 * pad - k) % stride else 0), dim)
    while (dout - 1) * stride - pad >= dim:
        dout -= 1
    rng = np.random.default_rng(dim * 7 + ch)
    x = tk.rand8(rng, dim, dim, ch)
    out = np.zeros((dout, dout, ch), dtype=np.int8)
    buf_a = np.zeros(2 * dout * ch, dtype=np.int8)
    fn = up.arm_maxpool_q7_HWC if mode == "max" else up.arm_avepool_q7_HWC
    u = ctypes.c_uint16
    fn(tk.P(x.copy()), u(dim), u(ch), u(k), u(pad), u(stride), u(dout), tk.P(buf_a), tk.P(out))
    plain = (K.maxpool_q7_hwc_plain_c if mode == "max" else K.avepool_q7_hwc_plain_c)(
        x[None], kernel=k, pad=pad, stride=stride, out_dim=dout)
    np.testing.assert_array_equal(out, plain[0])
    if mode == "max" and K.pool_dsp_matches_plain_c_windows(dim, k, pad, stride, dout):
        np.testing.assert_array_equal(out, K.maxpool_q7_hwc(x[None], kernel=k, pad=pad, stride=stride,
                                                            out_dim=dout)[0])


def test_upstream_relu_softmax_fc(up):
    rng = np.random.default_rng(11)
    x = tk.rand8(rng, 37)
    y = x.copy()
    up.arm_relu_q7(tk.P(y), ctypes.c_uint16(37))
    np.testing.assert_array_equal(y, K.relu_q7(x))
    for v in [tk.rand8(rng, 10), tk.rand8(rng, 7, lo=-3, hi=3), np.full(5, -128, np.int8), np.array([9], np.int8)]:
        out = np.zeros_like(v)
        up.arm_softmax_q7(tk.P(v), ctypes.c_uint16(v.size), tk.P(out))
        np.testing.assert_array_equal(out, K.softmax_q7(v[None])[0])
    u = ctypes.c_uint16
    for dim_out, dim_vec in [(6, 7), (5, 7), (4, 8), (3, 2), (9, 13), (10, 64)]:
        v, w, b = tk.rand8(rng, dim_vec), tk.rand8(rng, dim_out, dim_vec), tk.rand8(rng, dim_out)
        sim = K.fully_connected_q7(v[None], w, b, bias_lshift=2, out_rshift=9)[0]
        for name, weights in [("arm_fully_connected_q7", w.reshape(-1).copy()),
                              ("arm_fully_connected_q7_opt", interleave_fc_opt(w))]:
            out = np.zeros(dim_out, dtype=np.int8)
            fn = getattr(up, name)
            fn.restype = ctypes.c_int
            assert fn(tk.P(v), tk.P(weights), u(dim_vec), u(dim_out), u(2), u(9), tk.P(b), tk.P(out),
                      tk.P(np.zeros(dim_vec, np.int16))) == 0
            np.testing.assert_array_equal(out, sim, err_msg=name)


@pytest.mark.parametrize("case", tk.DEPTHWISE_CASES)
def test_upstream_depthwise(up, case):
    name, h, wd, c, kh, kw, sh, sw, ph, pw, bs, os_ = case
    rng = np.random.default_rng(abs(hash(case)) & 0xFFFF)
    x, w, b = tk.rand8(rng, h, wd, c), tk.rand8(rng, kh, kw, c), tk.rand8(rng, c)
    oh, ow = tk.out_dim(h, kh, ph, sh), tk.out_dim(wd, kw, pw, sw)
    rc, out = tk.run_depthwise_c(up, name, x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_)
    assert rc == 0
    sim = K.depthwise_conv_hwc_q7(x[None], w, b, stride=(sh, sw), pad=(ph, pw), out_hw=(oh, ow), bias_lshift=bs,
                                  out_rshift=os_)
    np.testing.assert_array_equal(out, sim[0])


def test_upstream_1x1(up):
    rng = np.random.default_rng(4)
    x, w, b = tk.rand8(rng, 5, 7, 8), tk.rand8(rng, 6, 1, 1, 8), tk.rand8(rng, 6)
    rc, out = tk.run_conv_c(up, "arm_convolve_1x1_HWC_q7_fast_nonsquare", x, w, b, (1, 1), (0, 0), (5, 7), 1, 8,
                            True)
    assert rc == 0
    np.testing.assert_array_equal(out, K.conv_1x1_hwc_q7(x[None], w, b, bias_lshift=1, out_rshift=8)[0])
    rc, out = tk.run_conv_c(up, "arm_convolve_1x1_HWC_q7_fast_nonsquare", x, w, b, (1, 1), (1, 1), (7, 9), 1, 8,
                            True)
    assert rc == -3 and (out == 0x5A).all()
