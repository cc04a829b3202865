"""The byte-moving kernels (firmware nn_copy_q7.c) against their simulator models and numpy.

nn_copy_strided_q7 and nn_upsample_nearest_q7 are built with host gcc, plain and with UBSan
(tests/test_own_kernels.py compiles every kernel file for the Cortex-M7, against the portable
and the upstream CMSIS-NN headers) and called through ctypes on the gathers the layers emit:
Slice windows along each axis, Crop windows, ShuffleChannel, every Permute order, upsampling
by several factors. Each result must equal the simulator model, and the model must equal the
numpy indexing that says what the layer means.
"""
from __future__ import annotations

import ctypes
import itertools
from pathlib import Path

import numpy as np
import pytest

from test_kernels import PORTABLE, P, rand8, shared_library
from cmsisgen.ops.copy_kernels import (copy_strided_q7, merge_axes, upsample_nearest_q7, window_axes,
                                       window_offset)

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"
u32 = ctypes.c_uint32


@pytest.fixture(scope="module", params=["plain", "ubsan"])
def own(request, tmp_path_factory):
    """nn_copy_q7.c alone, plain and with UBSan trapping on undefined behaviour."""
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("copy") / f"libcopy_{request.param}.so"
    return shared_library(out, [OWN / "nn_copy_q7.c"], [OWN, PORTABLE / "Include"], flags)


def run_strided(lib, x: np.ndarray, offset: int, axes) -> np.ndarray:
    """nn_copy_strided_q7 on ``x`` from byte ``offset`` with the merged ``axes``, as run_nn() calls it."""
    (n0, s0), (n1, s1), (n2, s2) = merge_axes(axes)
    x = np.ascontiguousarray(x)
    out = np.full(n0 * n1 * n2 + 4, 0x55, dtype=np.int8)  # 4 guard bytes must stay untouched
    lib.nn_copy_strided_q7(P(x[..., :].reshape(-1)[offset:]), u32(n0), u32(s0), u32(n1), u32(s1), u32(n2),
                           u32(s2), P(out))
    assert (out[-4:] == 0x55).all()
    model = copy_strided_q7(x[None], offset, merge_axes(axes))[0]
    np.testing.assert_array_equal(out[:-4], model)
    return model


WINDOWS = [  # (C, H, W) input, (c, y, x) start, (C, H, W) window
    ((5, 4, 3), (0, 0, 0), (5, 4, 3)),  # everything: one memcpy
    ((5, 4, 3), (2, 0, 0), (2, 4, 3)),  # a channel slice: a memcpy per pixel
    ((5, 4, 3), (0, 1, 0), (5, 2, 3)),  # a slice of rows: one memcpy
    ((5, 4, 3), (0, 0, 1), (5, 4, 1)),  # a slice of columns: a memcpy per row
    ((6, 7, 8), (1, 2, 3), (4, 3, 2)),  # a crop along every axis
    ((1, 1, 1), (0, 0, 0), (1, 1, 1)),  # one byte
    ((9, 1, 1), (8, 0, 0), (1, 1, 1)),  # the last channel of a vector
]


@pytest.mark.parametrize("shape, start, size", WINDOWS)
def test_window_copy(own, shape, start, size):
    c, h, w = shape
    x = rand8(np.random.default_rng(c * h * w), h, w, c)
    got = run_strided(own, x, window_offset(shape, start), window_axes(shape, size))
    (c0, y0, x0), (oc, oh, ow) = start, size
    np.testing.assert_array_equal(got, x[y0:y0 + oh, x0:x0 + ow, c0:c0 + oc].reshape(-1))


@pytest.mark.parametrize("channels, group", [(8, 2), (12, 3), (12, 4), (6, 6), (2, 1)])
def test_shuffle_channel(own, channels, group):
    h, w = 3, 2
    x = rand8(np.random.default_rng(channels + group), h, w, channels)
    got = run_strided(own, x, 0, [(h * w, channels), (channels // group, 1), (group, channels // group)])
    want = x.reshape(h, w, group, channels // group).transpose(0, 1, 3, 2)  # the fork's channel transpose
    np.testing.assert_array_equal(got, want.reshape(-1))


@pytest.mark.parametrize("order", [o for o in itertools.permutations((1, 2, 3))])
def test_permute_every_order(own, order):
    c, h, w = 3, 4, 5
    x = rand8(np.random.default_rng(sum(order)), h, w, c)
    count, stride = {1: c, 2: h, 3: w}, {1: 1, 2: w * c, 3: c}
    got = run_strided(own, x, 0, [(count[order[i]], stride[order[i]]) for i in (1, 2, 0)])
    caffe = x.transpose(2, 0, 1)[None].transpose(0, *order)[0]  # Caffe's permuted (C', H', W')
    np.testing.assert_array_equal(got, caffe.transpose(1, 2, 0).reshape(-1))  # held HWC


def test_merge_axes_makes_runs_as_long_as_the_bytes_allow():
    assert merge_axes(window_axes((5, 4, 3), (5, 4, 3))) == [(1, 0), (1, 0), (60, 1)]
    assert merge_axes(window_axes((5, 4, 3), (2, 4, 3))) == [(1, 0), (12, 5), (2, 1)]
    assert merge_axes(window_axes((5, 4, 3), (5, 4, 1))) == [(1, 0), (4, 15), (5, 1)]
    assert merge_axes([(1, 7), (1, 1), (1, 1)]) == [(1, 0), (1, 0), (1, 0)]


@pytest.mark.parametrize("h, w, c, scale_h, scale_w", [(2, 3, 4, 2, 2), (1, 1, 1, 3, 3), (3, 1, 5, 1, 4),
                                                       (2, 2, 1, 5, 1), (4, 3, 7, 1, 1)])
def test_upsample_nearest(own, h, w, c, scale_h, scale_w):
    x = rand8(np.random.default_rng(h * w * c), h, w, c)
    size = h * scale_h * w * scale_w * c
    out = np.full(size + 4, 0x55, dtype=np.int8)
    own.nn_upsample_nearest_q7(P(x), u32(h), u32(w), u32(c), u32(scale_h), u32(scale_w), P(out))
    assert (out[-4:] == 0x55).all()
    model = upsample_nearest_q7(x[None], scale_h, scale_w)[0]
    np.testing.assert_array_equal(out[:-4], model.reshape(-1))
    np.testing.assert_array_equal(model, np.kron(x.transpose(2, 0, 1), np.ones((scale_h, scale_w), np.int8))
                                  .transpose(1, 2, 0))


def test_edges_move_unchanged(own):
    for value in (-128, 127):
        x = np.full((3, 3, 4), value, np.int8)
        assert (run_strided(own, x, 5, [(2, 12), (2, 4), (3, 1)]) == value).all()
