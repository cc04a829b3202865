"""The q7 pools' whole-tensor path (cmsisgen.simulator.separable_pool) against the
window-by-window model of the DSP passes (itself checked against a transliteration of
upstream's C in test_kernels), over every small geometry the kernels take."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from cmsisgen.simulator import kernels as K
from test_kernels import rand8, ref_pool_dsp


def geometries():
    for dim, k, stride in itertools.product(range(1, 10), range(1, 6), range(1, 5)):
        for pad in range(0, k + 1):
            for out in range(1, dim + 1):
                if (out - 1) * stride - pad < dim and k <= dim + 2 * pad:
                    yield dim, k, pad, stride, out


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_whole_tensor_pool_equals_the_dsp_passes(mode):
    fn = K.maxpool_q7_hwc if mode == "max" else K.avepool_q7_hwc
    rng = np.random.default_rng(7)
    fast = 0
    for dim, k, pad, stride, out in geometries():
        x = rand8(rng, 3, dim, dim, 2)
        x[0] = -128                 # ties at the bottom of the range
        x[1, ..., 0] = 127
        got = fn(x, kernel=k, pad=pad, stride=stride, out_dim=out)
        model, _ = fn(x, kernel=k, pad=pad, stride=stride, out_dim=out, return_im_in=True)
        np.testing.assert_array_equal(got, model, err_msg=f"dim {dim} k {k} pad {pad} stride {stride} out {out}")
        fast += K.pool_dsp_matches_plain_c_windows(dim, k, pad, stride, out) and pad < k
    assert fast > 500  # most geometries take the whole-tensor path


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_example_pools_equal_the_transliteration(mode):
    """The example's pools (32 -> 16 max, 16 -> 8 and 8 -> 4 average: kernel 3, stride 2,
    Caffe's ceil mode) against upstream's C algorithm, negative sums included."""
    fn = K.maxpool_q7_hwc if mode == "max" else K.avepool_q7_hwc
    rng = np.random.default_rng(8)
    for dim in (32, 16, 8):
        x = rand8(rng, 2, dim, dim, 3)
        x[1] = -rng.integers(0, 129, size=x[1].shape)
        out = dim // 2
        got = fn(x, kernel=3, pad=0, stride=2, out_dim=out)
        for b in range(2):
            np.testing.assert_array_equal(got[b], ref_pool_dsp(x[b], dim, 3, 3, 0, 2, out, mode)[0])
