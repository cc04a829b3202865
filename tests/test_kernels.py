"""Simulator kernels vs naive integer references, and portable C kernels vs the simulator.

The references below are deliberately naive (Python ints, explicit loops, flat buffers)
and written from the upstream CMSIS-NN 3.1 DSP-path behaviour, independently of
cmsisgen.simulator.kernels.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cmsisgen.mapper.layout import (
    conv_weights_hwc,
    deinterleave_fc_opt,
    fc_columns_chw_to_hwc,
    interleave_fc_opt,
)
from cmsisgen.simulator import kernels as K

ROOT = Path(__file__).resolve().parents[1]
PORTABLE = ROOT / "firmware" / "cmsis_nn_portable"


# ----------------------------------------------------------------------------- naive refs


def ssat8(v: int) -> int:
    return max(-128, min(127, v))


def ref_conv(x, w, bias, stride, pad, out_hw, bias_lshift, out_rshift):
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    sh, sw = stride
    ph, pw = pad
    oh, ow = out_hw
    out = np.zeros((n, oh, ow, cout), dtype=np.int8)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for o in range(cout):
                    acc = (int(bias[o]) << bias_lshift) + ((1 << out_rshift) >> 1)
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                            if 0 <= iy < h and 0 <= ix < wd:
                                for c in range(cin):
                                    acc += int(x[b, iy, ix, c]) * int(w[o, ky, kx, c])
                    out[b, oy, ox, o] = ssat8(acc >> out_rshift)
    return out


def ref_fc(v, w, bias, bias_lshift, out_rshift):
    out = np.zeros((v.shape[0], w.shape[0]), dtype=np.int8)
    for b in range(v.shape[0]):
        for r in range(w.shape[0]):
            acc = (int(bias[r]) << bias_lshift) + ((1 << out_rshift) >> 1)
            for c in range(w.shape[1]):
                acc += int(v[b, c]) * int(w[r, c])
            out[b, r] = ssat8(acc >> out_rshift)
    return out


def c_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def ref_pool_dsp(img, dim, ch, k, pad, stride, dout, mode):
    """Transliteration of the upstream DSP pool algorithm on one flat HWC image."""
    buf = [int(v) for v in img.reshape(-1)]
    out = [0] * (dout * dout * ch)
    for y in range(dim):
        for i in range(dout):
            target = (y * dim + i) * ch
            t = i * stride - pad
            ws = target if t < 0 else (y * dim + t) * ch
            we = (y * dim + dim) * ch if t + k >= dim else (y * dim + t + k) * ch
            if mode == "max":
                buf[target : target + ch] = buf[ws : ws + ch]  # memmove
                p = ws + ch
                while p < we:
                    for c in range(ch):
                        if buf[p + c] > buf[target + c]:
                            buf[target + c] = buf[p + c]
                    p += ch
            else:
                acc = buf[ws : ws + ch]
                cnt = 1
                p = ws + ch
                while p < we:
                    for c in range(ch):
                        acc[c] += buf[p + c]
                    cnt += 1
                    p += ch
                buf[target : target + ch] = [c_div(a, cnt) for a in acc]
    row = dim * ch
    for j in range(dout):
        target = j * dout * ch
        t = j * stride - pad
        rs = 0 if t < 0 else t * row
        re = dim * row if t + k >= dim else (t + k) * row
        acc = buf[rs : rs + dout * ch]
        cnt = 1
        p = rs + row
        while p < re:
            for c in range(dout * ch):
                acc[c] = max(acc[c], buf[p + c]) if mode == "max" else acc[c] + buf[p + c]
            cnt += 1
            p += row
        out[target : target + dout * ch] = acc if mode == "max" else [c_div(a, cnt) for a in acc]
    return np.array(out, dtype=np.int8).reshape(dout, dout, ch), np.array(buf, dtype=np.int8).reshape(img.shape)


def ref_pool_plain(img, dim, ch, k, pad, stride, dout, mode):
    out = np.zeros((dout, dout, ch), dtype=np.int8)
    for c in range(ch):
        for oy in range(dout):
            for ox in range(dout):
                vals = [
                    int(img[y, x, c])
                    for y in range(oy * stride - pad, oy * stride - pad + k)
                    for x in range(ox * stride - pad, ox * stride - pad + k)
                    if 0 <= y < dim and 0 <= x < dim
                ]
                out[oy, ox, c] = max(vals) if mode == "max" else c_div(sum(vals), len(vals))
    return out


def ref_softmax(v):
    out = []
    base = -128
    for x in v:
        base = max(base, int(x))
    base -= 8
    total = 0
    for x in v:
        total += 1 << min(max(int(x) - base, 0), 7)
    ob = (1 << 20) // total
    for x in v:
        out.append(ssat8(ob >> min(max(13 + base - int(x), 0), 31)))
    return np.array(out, dtype=np.int8)


def rand8(rng, *shape, lo=-128, hi=128):
    return rng.integers(lo, hi, size=shape, dtype=np.int8)


def out_dim(n, k, p, s):
    return (n + 2 * p - k) // s + 1


# (h, w, cin, cout, kh, kw, sh, sw, ph, pw, bias_lshift, out_rshift)
CONV_CASES = [
    (5, 5, 3, 4, 3, 3, 1, 1, 1, 1, 0, 7),
    (6, 6, 3, 5, 5, 5, 2, 2, 2, 2, 2, 9),
    (7, 5, 5, 3, 3, 2, 2, 1, 1, 0, 1, 8),
    (4, 9, 4, 6, 1, 3, 1, 3, 0, 1, 0, 5),
    (8, 8, 8, 2, 3, 3, 2, 2, 0, 0, 3, 10),
    (3, 3, 1, 1, 3, 3, 1, 1, 2, 2, 0, 0),
]


# ----------------------------------------------------------------------------- simulator


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_naive(case):
    h, wd, cin, cout, kh, kw, sh, sw, ph, pw, bs, os_ = case
    rng = np.random.default_rng(hash(case) & 0xFFFF)
    x, w, b = rand8(rng, 2, h, wd, cin), rand8(rng, cout, kh, kw, cin), rand8(rng, cout)
    oh, ow = out_dim(h, kh, ph, sh), out_dim(wd, kw, pw, sw)
    got = K.conv_hwc_q7(x, w, b, stride=(sh, sw), pad=(ph, pw), out_hw=(oh, ow), bias_lshift=bs, out_rshift=os_)
    np.testing.assert_array_equal(got, ref_conv(x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_))


def test_conv_rounding_half_up_and_saturation():
    # 1x1 conv, one channel, weight 1: acc = x + NN_ROUND(1), out = acc >> 1
    x = np.array([1, -1, -3, 3, 127, -128], dtype=np.int8).reshape(1, 1, 6, 1)
    w = np.ones((1, 1, 1, 1), dtype=np.int8)
    b = np.zeros(1, dtype=np.int8)
    got = K.conv_hwc_q7(x, w, b, stride=1, pad=0, out_hw=(1, 6), bias_lshift=0, out_rshift=1)
    # 0.5 -> 1, -0.5 -> 0, -1.5 -> -1, 1.5 -> 2, 63.5 -> 64, -64 -> -64
    assert got.reshape(-1).tolist() == [1, 0, -1, 2, 64, -64]
    # saturation at both ends
    w2 = np.full((2, 1, 1, 1), 127, dtype=np.int8)
    w2[1] = -128
    b2 = np.array([127, -128], dtype=np.int8)
    got2 = K.conv_hwc_q7(np.full((1, 1, 1, 1), 127, np.int8), w2, b2, stride=1, pad=0, out_hw=(1, 1),
                         bias_lshift=4, out_rshift=0)
    assert got2.reshape(-1).tolist() == [127, -128]


def test_fc_matches_naive_and_rounds():
    rng = np.random.default_rng(1)
    for dim_out, dim_vec in [(5, 7), (4, 8), (1, 3), (10, 33)]:
        v, w, b = rand8(rng, 3, dim_vec), rand8(rng, dim_out, dim_vec), rand8(rng, dim_out)
        for bs, os_ in [(0, 0), (2, 7), (5, 11)]:
            np.testing.assert_array_equal(
                K.fully_connected_q7(v, w, b, bias_lshift=bs, out_rshift=os_), ref_fc(v, w, b, bs, os_))
    got = K.fully_connected_q7(np.array([[1], [-1], [-3]], np.int8), np.ones((1, 1), np.int8),
                               np.zeros(1, np.int8), bias_lshift=0, out_rshift=1)
    assert got.reshape(-1).tolist() == [1, 0, -1]


POOL_CASES = [  # (dim, ch, k, pad, stride)
    (6, 3, 2, 0, 2),
    (7, 2, 3, 0, 2),  # remainder column/row clipped
    (8, 5, 3, 1, 2),
    (5, 4, 3, 1, 1),  # pad >= stride: DSP in-place quirks
    (9, 1, 5, 2, 1),
    (6, 3, 3, 2, 2),
    (4, 2, 4, 0, 1),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_dsp_matches_transliteration(case, mode):
    dim, ch, k, pad, stride = case
    dout = -(-(dim + 2 * pad - k) // stride) + 1  # Caffe pooling uses ceil
    dout = min(dout, dim)
    while (dout - 1) * stride - pad >= dim:
        dout -= 1
    rng = np.random.default_rng(dim * 100 + k)
    x = rand8(rng, 3, dim, dim, ch)
    fn = K.maxpool_q7_hwc if mode == "max" else K.avepool_q7_hwc
    got, im_in = fn(x, kernel=k, pad=pad, stride=stride, out_dim=dout, return_im_in=True)
    for b in range(x.shape[0]):
        ref, ref_in = ref_pool_dsp(x[b], dim, ch, k, pad, stride, dout, mode)
        np.testing.assert_array_equal(got[b], ref)
        np.testing.assert_array_equal(im_in[b], ref_in)
    plain_fn = K.maxpool_q7_hwc_plain_c if mode == "max" else K.avepool_q7_hwc_plain_c
    plain = plain_fn(x, kernel=k, pad=pad, stride=stride, out_dim=dout)
    for b in range(x.shape[0]):
        np.testing.assert_array_equal(plain[b], ref_pool_plain(x[b], dim, ch, k, pad, stride, dout, mode))
    if mode == "max" and K.pool_dsp_matches_plain_c_windows(dim, k, pad, stride, dout):
        np.testing.assert_array_equal(got, plain)
    assert K.pool_dsp_matches_plain_c_windows(dim, k, pad, stride, dout) == (pad < stride or dout == 1)


def test_avepool_dsp_two_step_differs_from_plain_c():
    x = np.array([[1, 0], [1, 2]], dtype=np.int8).reshape(1, 2, 2, 1)
    # DSP: rows (1+0)/2 = 0 and (1+2)/2 = 1, then (0+1)/2 = 0. Plain C: 4/4 = 1.
    assert K.avepool_q7_hwc(x, kernel=2, pad=0, stride=2, out_dim=1).item() == 0
    assert K.avepool_q7_hwc_plain_c(x, kernel=2, pad=0, stride=2, out_dim=1).item() == 1
    xn = -x
    # DSP: rows -1/2 = 0 (truncation) and -3/2 = -1, then -1/2 = 0. Plain C: -4/4 = -1.
    assert K.avepool_q7_hwc(xn, kernel=2, pad=0, stride=2, out_dim=1).item() == 0
    assert K.avepool_q7_hwc_plain_c(xn, kernel=2, pad=0, stride=2, out_dim=1).item() == -1
    # the DSP path leaves the row averages in Im_in
    _, im_in = K.avepool_q7_hwc(x, kernel=2, pad=0, stride=2, out_dim=1, return_im_in=True)
    assert im_in.reshape(-1).tolist() == [0, 0, 1, 2]


def test_relu_and_softmax():
    x = np.array([[-128, -1, 0, 1, 127]], dtype=np.int8)
    assert K.relu_q7(x).tolist() == [[0, 0, 0, 1, 127]]
    rng = np.random.default_rng(7)
    vecs = [rand8(rng, 10), rand8(rng, 10, lo=-5, hi=5), np.full(10, -128, np.int8), np.full(10, 127, np.int8),
            np.array([127, -128, 0, 5, 126, 120, 119, 118, 100, 3], np.int8), np.array([3], np.int8)]
    for v in vecs:
        np.testing.assert_array_equal(K.softmax_q7(v[None, :])[0], ref_softmax(v))
    assert K.softmax_q7(np.array([[5]], np.int8)).item() == 127


# ----------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("dim_out,dim_vec", [(6, 7), (5, 7), (3, 2), (8, 12), (4, 3), (1, 1), (7, 5), (4, 4)])
def test_fc_interleave_round_trip(dim_out, dim_vec):
    rng = np.random.default_rng(dim_out * 31 + dim_vec)
    w = rand8(rng, dim_out, dim_vec)
    flat = interleave_fc_opt(w)
    assert flat.shape == (dim_out * dim_vec,)
    assert sorted(flat.tolist()) == sorted(w.reshape(-1).tolist())
    np.testing.assert_array_equal(deinterleave_fc_opt(flat, dim_out, dim_vec), w)


def test_fc_interleave_matches_upstream_example():
    w = np.array([[10 * (r + 1) + (c + 1) for c in range(7)] for r in range(6)])
    expect = [11, 21, 13, 23, 31, 41, 33, 43, 12, 22, 14, 24, 32, 42, 34, 44, 15, 25, 35, 45, 16, 26,
              36, 46, 17, 27, 37, 47, 51, 52, 53, 54, 55, 56, 57, 61, 62, 63, 64, 65, 66, 67]
    assert interleave_fc_opt(w).tolist() == expect


def test_conv_and_fc_column_layouts():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 2, 5)).astype(np.float32)
    hwc = conv_weights_hwc(w)
    assert hwc.shape == (4, 2, 5, 3) and hwc[1, 0, 4, 2] == w[1, 2, 0, 4]
    c, h, wd = 3, 2, 4
    fc = rng.standard_normal((5, c * h * wd))
    act = rng.standard_normal((c, h, wd))
    np.testing.assert_allclose(fc_columns_chw_to_hwc(fc, c, h, wd) @ act.transpose(1, 2, 0).reshape(-1),
                               fc @ act.reshape(-1))


# ----------------------------------------------------------------------------- portable C


def shared_library(out: Path, sources, includes, flags=()) -> ctypes.CDLL:
    """Build C sources with host gcc (-std=c99 -Wall -Wextra -Werror) into ``out`` and load it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found on PATH: cannot build the C kernels")
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", *flags,
                    *(f"-I{d}" for d in includes), *map(str, sources), "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


def compile_for_cortex_m7(out_dir: Path, sources, includes, flags=("-std=c99",)) -> None:
    """Compile each source alone for the Cortex-M7 (DSP path) with warnings as errors."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc not found on PATH")
    for src in sources:
        subprocess.run([cc, *flags, "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m7", "-mthumb",
                        "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-O2", *(f"-I{d}" for d in includes),
                        "-c", str(src), "-o", str(out_dir / (Path(src).stem + ".o"))], check=True)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("pnn") / "libpnn.so"
    return shared_library(out, sorted((PORTABLE / "Source").glob("*.c")), [PORTABLE / "Include"])


def P(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def test_portable_compiles_for_cortex_m7(tmp_path):
    compile_for_cortex_m7(tmp_path, sorted((PORTABLE / "Source").glob("*.c")), [PORTABLE / "Include"])


def run_conv_c(lib, name, x, w, b, stride, pad, out_hw, bs, os_, nonsquare):
    h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    oh, ow = out_hw
    out = np.full((oh, ow, cout), 0x5A, dtype=np.int8)
    buf_a = np.zeros(2 * cin * kh * kw, dtype=np.int16)
    xc, wc, bc = (np.ascontiguousarray(a) for a in (x, w, b))
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    u = ctypes.c_uint16
    if nonsquare:
        rc = fn(P(xc), u(wd), u(h), u(cin), P(wc), u(cout), u(kw), u(kh), u(pad[1]), u(pad[0]), u(stride[1]),
                u(stride[0]), P(bc), u(bs), u(os_), P(out), u(ow), u(oh), P(buf_a), None)
    else:
        rc = fn(P(xc), u(h), u(cin), P(wc), u(cout), u(kh), u(pad[0]), u(stride[0]), P(bc), u(bs), u(os_), P(out),
                u(oh), P(buf_a), None)
    return rc, out


C_CONV_CASES = [  # (name, nonsquare, h, w, cin, cout, kh, kw, sh, sw, ph, pw, bs, os)
    ("arm_convolve_HWC_q7_RGB", False, 9, 9, 3, 5, 5, 5, 1, 1, 2, 2, 0, 8),
    ("arm_convolve_HWC_q7_RGB", False, 8, 8, 3, 4, 3, 3, 2, 2, 1, 1, 1, 7),
    ("arm_convolve_HWC_q7_basic", False, 7, 7, 5, 3, 3, 3, 2, 2, 1, 1, 2, 9),
    ("arm_convolve_HWC_q7_basic", False, 6, 6, 1, 1, 3, 3, 1, 1, 0, 0, 0, 0),
    ("arm_convolve_HWC_q7_fast", False, 8, 8, 8, 6, 3, 3, 1, 1, 1, 1, 0, 9),
    ("arm_convolve_HWC_q7_fast", False, 9, 9, 4, 2, 5, 5, 2, 2, 2, 2, 3, 10),
    ("arm_convolve_HWC_q7_basic_nonsquare", True, 7, 5, 3, 3, 3, 1, 2, 1, 1, 0, 1, 7),
    ("arm_convolve_HWC_q7_basic_nonsquare", True, 5, 9, 7, 5, 2, 4, 1, 2, 0, 2, 0, 8),
    ("arm_convolve_HWC_q7_fast_nonsquare", True, 6, 10, 4, 4, 3, 5, 1, 2, 1, 2, 2, 9),
    ("arm_convolve_HWC_q7_fast_nonsquare", True, 8, 4, 8, 2, 1, 3, 2, 1, 0, 1, 0, 6),
]


@pytest.mark.parametrize("case", C_CONV_CASES)
def test_portable_conv_matches_simulator(lib, case):
    name, nonsq, h, wd, cin, cout, kh, kw, sh, sw, ph, pw, bs, os_ = case
    rng = np.random.default_rng(abs(hash(case)) & 0xFFFF)
    x, w, b = rand8(rng, h, wd, cin), rand8(rng, cout, kh, kw, cin), rand8(rng, cout)
    oh, ow = out_dim(h, kh, ph, sh), out_dim(wd, kw, pw, sw)
    rc, out = run_conv_c(lib, name, x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_, nonsq)
    assert rc == 0
    sim = K.conv_hwc_q7(x[None], w, b, stride=(sh, sw), pad=(ph, pw), out_hw=(oh, ow), bias_lshift=bs, out_rshift=os_)
    np.testing.assert_array_equal(out, sim[0])


@pytest.mark.parametrize("name,nonsq,cin,cout", [
    ("arm_convolve_HWC_q7_fast", False, 6, 4),
    ("arm_convolve_HWC_q7_fast", False, 8, 3),
    ("arm_convolve_HWC_q7_fast_nonsquare", True, 3, 2),
    ("arm_convolve_HWC_q7_fast_nonsquare", True, 4, 5),
    ("arm_convolve_HWC_q7_RGB", False, 4, 2),
])
def test_portable_conv_precondition_failure(lib, name, nonsq, cin, cout):
    rng = np.random.default_rng(5)
    x, w, b = rand8(rng, 5, 5, cin), rand8(rng, cout, 3, 3, cin), rand8(rng, cout)
    rc, out = run_conv_c(lib, name, x, w, b, (1, 1), (1, 1), (5, 5), 0, 7, nonsq)
    assert rc == -3  # ARM_MATH_SIZE_MISMATCH
    assert (out == 0x5A).all()  # nothing written


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_portable_pool_matches_simulator(lib, case, mode):
    dim, ch, k, pad, stride = case
    dout = min(out_dim(dim, k, pad, stride) + (1 if (dim + 2 * pad - k) % stride else 0), dim)
    while (dout - 1) * stride - pad >= dim:
        dout -= 1
    rng = np.random.default_rng(dim * 7 + ch)
    x = rand8(rng, dim, dim, ch)
    fn = K.maxpool_q7_hwc if mode == "max" else K.avepool_q7_hwc
    sim, sim_in = fn(x[None], kernel=k, pad=pad, stride=stride, out_dim=dout, return_im_in=True)
    im_in = x.copy()
    out = np.zeros((dout, dout, ch), dtype=np.int8)
    buf_a = np.zeros(2 * dout * ch, dtype=np.int8)
    cfn = lib.arm_maxpool_q7_HWC if mode == "max" else lib.arm_avepool_q7_HWC
    u = ctypes.c_uint16
    cfn(P(im_in), u(dim), u(ch), u(k), u(pad), u(stride), u(dout), P(buf_a), P(out))
    np.testing.assert_array_equal(out, sim[0])
    np.testing.assert_array_equal(im_in, sim_in[0])


def test_portable_relu_softmax(lib):
    rng = np.random.default_rng(11)
    x = rand8(rng, 37)
    y = x.copy()
    lib.arm_relu_q7(P(y), ctypes.c_uint16(37))
    np.testing.assert_array_equal(y, K.relu_q7(x))
    for v in [rand8(rng, 10), rand8(rng, 7, lo=-3, hi=3), np.full(5, -128, np.int8), np.array([9], np.int8)]:
        out = np.zeros_like(v)
        lib.arm_softmax_q7(P(v), ctypes.c_uint16(v.size), P(out))
        np.testing.assert_array_equal(out, K.softmax_q7(v[None])[0])


@pytest.mark.parametrize("dim_out,dim_vec", [(6, 7), (5, 7), (4, 8), (3, 2), (9, 13), (1, 1), (10, 64)])
def test_portable_fc_matches_simulator(lib, dim_out, dim_vec):
    rng = np.random.default_rng(dim_out * 100 + dim_vec)
    v, w, b = rand8(rng, dim_vec), rand8(rng, dim_out, dim_vec), rand8(rng, dim_out)
    u = ctypes.c_uint16
    for bs, os_ in [(0, 7), (3, 10)]:
        sim = K.fully_connected_q7(v[None], w, b, bias_lshift=bs, out_rshift=os_)[0]
        buf = np.zeros(dim_vec, dtype=np.int16)
        for name, weights in [("arm_fully_connected_q7", w.reshape(-1).copy()),
                              ("arm_fully_connected_q7_opt", interleave_fc_opt(w))]:
            out = np.zeros(dim_out, dtype=np.int8)
            fn = getattr(lib, name)
            fn.restype = ctypes.c_int
            rc = fn(P(v), P(weights), u(dim_vec), u(dim_out), u(bs), u(os_), P(b), P(out), P(buf))
            assert rc == 0
            np.testing.assert_array_equal(out, sim, err_msg=name)


# ----------------------------------------------------------------------------- 1x1, depthwise, group


def run_depthwise_c(lib, name, x, w, b, stride, pad, out_hw, bs, os_, cout=None):
    """arm_depthwise_separable_conv_HWC_q7[_nonsquare]: w is [kh, kw, C]."""
    h, wd, c = x.shape
    kh, kw, _ = w.shape
    oh, ow = out_hw
    cout = c if cout is None else cout
    out = np.full((oh, ow, c), 0x5A, dtype=np.int8)
    buf_a = np.zeros(c * kh * kw, dtype=np.int16)
    xc, wc, bc = (np.ascontiguousarray(a) for a in (x, w, b))
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    u = ctypes.c_uint16
    if name.endswith("_nonsquare"):
        rc = fn(P(xc), u(wd), u(h), u(c), P(wc), u(cout), u(kw), u(kh), u(pad[1]), u(pad[0]), u(stride[1]),
                u(stride[0]), P(bc), u(bs), u(os_), P(out), u(ow), u(oh), P(buf_a), None)
    else:
        rc = fn(P(xc), u(h), u(c), P(wc), u(cout), u(kh), u(pad[0]), u(stride[0]), P(bc), u(bs), u(os_), P(out),
                u(oh), P(buf_a), None)
    return rc, out


DEPTHWISE_CASES = [  # (name, h, w, c, kh, kw, sh, sw, ph, pw, bs, os)
    ("arm_depthwise_separable_conv_HWC_q7", 7, 7, 8, 3, 3, 1, 1, 1, 1, 0, 7),
    ("arm_depthwise_separable_conv_HWC_q7", 9, 9, 6, 3, 3, 2, 2, 1, 1, 2, 8),
    ("arm_depthwise_separable_conv_HWC_q7", 5, 5, 3, 5, 5, 1, 1, 2, 2, 1, 6),
    ("arm_depthwise_separable_conv_HWC_q7", 4, 4, 5, 1, 1, 1, 1, 0, 0, 0, 0),
    ("arm_depthwise_separable_conv_HWC_q7_nonsquare", 6, 9, 7, 3, 1, 1, 2, 1, 0, 3, 9),
    ("arm_depthwise_separable_conv_HWC_q7_nonsquare", 8, 5, 4, 2, 4, 2, 1, 0, 2, 0, 5),
]


def ref_depthwise(x, w, b, stride, pad, out_hw, bs, os_):
    """One channel at a time through the naive dense reference (a 1-channel convolution)."""
    c = x.shape[2]
    chans = [ref_conv(x[None, :, :, ch:ch + 1], w[None, :, :, ch:ch + 1], b[ch:ch + 1], stride, pad, out_hw, bs,
                      os_)[0] for ch in range(c)]
    return np.concatenate(chans, axis=2)


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_simulator_and_portable(lib, case):
    name, h, wd, c, kh, kw, sh, sw, ph, pw, bs, os_ = case
    rng = np.random.default_rng(abs(hash(case)) & 0xFFFF)
    x, w, b = rand8(rng, h, wd, c), rand8(rng, kh, kw, c), rand8(rng, c)
    oh, ow = out_dim(h, kh, ph, sh), out_dim(wd, kw, pw, sw)
    sim = K.depthwise_conv_hwc_q7(x[None], w, b, stride=(sh, sw), pad=(ph, pw), out_hw=(oh, ow), bias_lshift=bs,
                                  out_rshift=os_)[0]
    np.testing.assert_array_equal(sim, ref_depthwise(x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_))
    rc, out = run_depthwise_c(lib, name, x, w, b, (sh, sw), (ph, pw), (oh, ow), bs, os_)
    assert rc == 0
    np.testing.assert_array_equal(out, sim)


@pytest.mark.parametrize("name", ["arm_depthwise_separable_conv_HWC_q7",
                                  "arm_depthwise_separable_conv_HWC_q7_nonsquare"])
def test_portable_depthwise_needs_equal_channels(lib, name):
    rng = np.random.default_rng(3)
    x, w, b = rand8(rng, 5, 5, 4), rand8(rng, 3, 3, 4), rand8(rng, 4)
    rc, out = run_depthwise_c(lib, name, x, w, b, (1, 1), (1, 1), (5, 5), 0, 7, cout=8)
    assert rc == -3 and (out == 0x5A).all()


@pytest.mark.parametrize("h,w,cin,cout,bs,os_", [(5, 7, 8, 6, 1, 8), (1, 1, 4, 2, 0, 0), (3, 3, 12, 10, 3, 9)])
def test_1x1_simulator_and_portable(lib, h, w, cin, cout, bs, os_):
    rng = np.random.default_rng(h * 100 + cin)
    x, wt, b = rand8(rng, h, w, cin), rand8(rng, cout, 1, 1, cin), rand8(rng, cout)
    sim = K.conv_1x1_hwc_q7(x[None], wt, b, bias_lshift=bs, out_rshift=os_)[0]
    np.testing.assert_array_equal(sim, ref_conv(x[None], wt, b, (1, 1), (0, 0), (h, w), bs, os_)[0])
    rc, out = run_conv_c(lib, "arm_convolve_1x1_HWC_q7_fast_nonsquare", x, wt, b, (1, 1), (0, 0), (h, w), bs, os_,
                         True)
    assert rc == 0
    np.testing.assert_array_equal(out, sim)


@pytest.mark.parametrize("cin,cout,k,stride,pad", [(6, 4, 1, 1, 0), (8, 3, 1, 1, 0), (8, 4, 3, 1, 1),
                                                   (8, 4, 1, 2, 0), (8, 4, 1, 1, 1)])
def test_portable_1x1_refuses_other_geometry(lib, cin, cout, k, stride, pad):
    rng = np.random.default_rng(9)
    x, w, b = rand8(rng, 5, 5, cin), rand8(rng, cout, k, k, cin), rand8(rng, cout)
    oh = out_dim(5, k, pad, stride)
    rc, out = run_conv_c(lib, "arm_convolve_1x1_HWC_q7_fast_nonsquare", x, w, b, (stride, stride), (pad, pad),
                         (oh, oh), 0, 7, True)
    assert rc == -3 and (out == 0x5A).all()


def test_group_conv_is_per_group_dense():
    rng = np.random.default_rng(21)
    x, w, b = rand8(rng, 6, 5, 8), rand8(rng, 6, 3, 3, 4), rand8(rng, 6)
    sim = K.group_conv_hwc_q7(x[None], w, b, groups=2, stride=(1, 2), pad=(1, 1), out_hw=(6, 3), bias_lshift=1,
                              out_rshift=8)[0]
    halves = [ref_conv(x[None, :, :, 4 * g:4 * g + 4], w[3 * g:3 * g + 3], b[3 * g:3 * g + 3], (1, 2), (1, 1),
                       (6, 3), 1, 8)[0] for g in range(2)]
    np.testing.assert_array_equal(sim, np.concatenate(halves, axis=2))
