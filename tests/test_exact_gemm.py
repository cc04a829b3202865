"""The simulator's q7 products as float GEMMs (cmsisgen.simulator.exact_gemm): float32 only
where its proof holds, float64 beyond, the wrapping int path where the 32-bit accumulator
could wrap; every regime bit-exact against integer references and the portable C kernels."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from cmsisgen.simulator import kernels as K
from cmsisgen.simulator.exact_gemm import FLOAT32_EXACT, QuantizedProduct
from test_kernels import PORTABLE, P, rand8, ref_conv, shared_library


def int_reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """``__SSAT(wrap32((bias << bl) + NN_ROUND(s) + x @ w.T) >> s, 8)`` in Python integers."""
    out = np.empty((x.shape[0], w.shape[0]), dtype=np.int8)
    for r, row in enumerate(x.tolist()):
        for c, weights in enumerate(w.tolist()):
            acc = (int(bias[c]) << bias_lshift) + ((1 << out_rshift) >> 1) + sum(a * b for a, b in zip(row, weights))
            acc = (acc + 2**31) % 2**32 - 2**31
            out[r, c] = max(-128, min(127, acc >> out_rshift))
    return out


def extreme_inputs(rng, n: int, k: int) -> np.ndarray:
    """Rows at both ends of the q7 range and random ones."""
    x = rand8(rng, n, k)
    x[0], x[1] = -128, 127
    return x


def test_float32_exactly_below_its_bound():
    """float32 while 128 * sum|w| + |start + 128 * 2**s| < 2**24, float64 from there on."""
    k = 1024
    w = np.full((1, k), -128, dtype=np.int8)
    w[0, 0] = -2
    zero = np.zeros(1, dtype=np.int8)
    # 128 * (1023 * 128 + 2) + 128 (offset of shift 0) = 2**24 - 16384 + 384 < 2**24
    assert QuantizedProduct(w, zero, 0, 0).dtype == np.float32
    full = np.full((1, k), -128, dtype=np.int8)  # 128 * 2**17 + 128 >= 2**24
    assert QuantizedProduct(full, zero, 0, 0).dtype == np.float64
    # the start counts too: the same weights, a bias shifted up to just past the bound
    bound = 128 * (1023 * 128 + 2)
    bias_lshift = 17
    assert bound + (127 << bias_lshift) + 128 >= FLOAT32_EXACT
    assert QuantizedProduct(w, np.array([127], np.int8), bias_lshift, 0).dtype == np.float64
    rng = np.random.default_rng(0)
    x = extreme_inputs(rng, 6, k)
    for weights in (w, full):
        for bl, s in [(0, 0), (0, 7), (bias_lshift, 12)]:
            b = np.array([127], np.int8)
            np.testing.assert_array_equal(K.fully_connected_q7(x, weights, b, bias_lshift=bl, out_rshift=s),
                                          int_reference(x, weights, b, bl, s))


def test_float64_where_float32_would_round():
    """A sum of 2**25 - 1 (odd: float32 holds only even integers there) shifted by 24 is 1;
    rounded to float32 it would be 2. The bound sends it to float64, which is exact."""
    k = 1562
    w = np.full((1, k), 127, dtype=np.int8)
    w[0, -1] = 1
    x = np.full((1, k), 127, dtype=np.int8)
    x[0, -2], x[0, -1] = 36, 11          # 127 * (1560 * 127 + 36) + 11 = 2**25 - 1 - 2**23
    bias = np.zeros(1, dtype=np.int8)     # start = NN_ROUND(24) = 2**23
    total = int((x.astype(np.int64) @ w[0].astype(np.int64))[0]) + (1 << 23)
    assert total == 2**25 - 1 and int(np.float32(total)) == 2**25
    product = QuantizedProduct(w, bias, 0, 24)
    assert product.fused and product.dtype == np.float64
    assert K.fully_connected_q7(x, w, bias, bias_lshift=0, out_rshift=24).tolist() == [[1]]
    assert int_reference(x, w, bias, 0, 24).tolist() == [[1]]


def test_wrapping_accumulator_takes_the_integer_path():
    """A start of 127 << 31 (and sums that push past int32) wraps as SMLAD's register does."""
    rng = np.random.default_rng(1)
    x = extreme_inputs(rng, 5, 1100)
    w = rand8(rng, 3, 1100)
    bias = np.array([127, -128, 64], dtype=np.int8)
    product = QuantizedProduct(w, bias, 24, 20)
    assert not product.fused and product.dtype == np.float64
    np.testing.assert_array_equal(K.fully_connected_q7(x, w, bias, bias_lshift=24, out_rshift=20),
                                  int_reference(x, w, bias, 24, 20))
    # 127 << 24 plus a sum of -128 * -128 * 1100: past 2**31, wrapped to a negative accumulator
    big = np.full((1, 1100), -128, np.int8)
    assert (127 << 24) + 2**14 * 1100 + (1 << 19) >= 2**31
    np.testing.assert_array_equal(K.fully_connected_q7(big, big, np.array([127], np.int8), bias_lshift=24,
                                                       out_rshift=20),
                                  int_reference(big, big, np.array([127], np.int8), 24, 20))


def test_conv_past_the_float32_bound_matches_naive():
    """A 5x5 convolution over 64 channels of extreme weights: K = 1600, float64 columns."""
    rng = np.random.default_rng(2)
    x = extreme_inputs(rng, 2, 4 * 4 * 64).reshape(2, 4, 4, 64)
    w = np.where(rand8(rng, 3, 5, 5, 64) < 0, -128, 127).astype(np.int8)
    b = rand8(rng, 3)
    assert QuantizedProduct(w.reshape(3, -1), b, 3, 13).dtype == np.float64
    got = K.conv_hwc_q7(x, w, b, stride=1, pad=2, out_hw=(4, 4), bias_lshift=3, out_rshift=13)
    np.testing.assert_array_equal(got, ref_conv(x, w, b, (1, 1), (2, 2), (4, 4), 3, 13))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("pnn") / "libpnn.so"
    return shared_library(out, sorted((PORTABLE / "Source").glob("*.c")), [PORTABLE / "Include"])


@pytest.mark.parametrize("fill, bias_lshift, out_rshift, regime", [
    (None, 2, 9, np.float32),      # random weights: float32
    (-128, 0, 16, np.float64),     # extreme weights, K = 2000: float64
    (-128, 24, 20, None),          # the start near 2**31: wrapping int path
])
def test_portable_fc_in_every_regime(lib, fill, bias_lshift, out_rshift, regime):
    """arm_fully_connected_q7 (portable C) and the simulator agree in each regime."""
    rng = np.random.default_rng(3)
    dim_vec, dim_out = 2000, 4
    w = rand8(rng, dim_out, dim_vec, lo=-32, hi=32) if fill is None else np.full((dim_out, dim_vec), fill, np.int8)
    if fill is not None:
        w[1, ::3] = 127
    v = extreme_inputs(rng, 3, dim_vec)
    b = np.array([127, -128, 5, -7], dtype=np.int8)
    product = QuantizedProduct(w, b, bias_lshift, out_rshift)
    assert (product.dtype if product.fused else None) == regime
    sim = K.fully_connected_q7(v, w, b, bias_lshift=bias_lshift, out_rshift=out_rshift)
    fn = lib.arm_fully_connected_q7
    fn.restype = ctypes.c_int
    u = ctypes.c_uint16
    for row in range(len(v)):
        out = np.zeros(dim_out, dtype=np.int8)
        vec = np.ascontiguousarray(v[row])
        assert fn(P(vec), P(w), u(dim_vec), u(dim_out), u(bias_lshift), u(out_rshift), P(b), P(out),
                  P(np.zeros(dim_vec, np.int16))) == 0
        np.testing.assert_array_equal(out, sim[row])
