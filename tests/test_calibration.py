"""Calibration streams: running statistics per tensor, batches sized to memory, no activation
kept past its last reader; the big-net paths (grouped/depthwise float convolution, weight
formatting, the _opt interleave, block-wise quantization) giving exactly what the simple
formulations give; evaluate's BLAS thread setting restored."""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer, write_model
from cmsisgen.calibration import MaxAbs, RunningStatistics, batch_size, calibrate, image_bytes
from cmsisgen.codegen import C_ARRAY_BLOCK, ROW, c_array
from cmsisgen.float_forward import forward
from cmsisgen.loader import load_net
from cmsisgen.mapper.layout import _fc_opt_order, interleave_fc_opt
from cmsisgen.qformat import QUANTIZE_BLOCK, quantize_array

LAYERS = [
    layer("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("dw", "Convolution", num_output=8, kernel_size=3, pad=1, stride=2, group=8),
    layer("grouped", "Convolution", num_output=6, kernel_size=3, pad=1, group=2),
    layer("pool", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("ip", "InnerProduct", num_output=5),
]


@pytest.fixture
def net(tmp_path):
    proto, weights = write_model(tmp_path, LAYERS, input_shape=(3, 12, 10))
    return load_net(proto, weights)


def test_streamed_ranges_are_the_maxima_over_every_tensor_and_image(net):
    x = np.random.default_rng(0).standard_normal((7, 3, 12, 10)).astype(np.float32)
    every = forward(net, x)
    expected = {name: float(np.abs(value).max()) for name, value in every.items()}
    assert calibrate(net, [x[:3], x[3:4], x[4:]]) == expected


def test_forward_releases_what_it_does_not_keep_and_shows_every_tensor(net):
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 10)).astype(np.float32)
    seen = []
    out = forward(net, x, keep=(), observe=lambda name, value: seen.append(name))
    assert list(out) == net.outputs
    assert seen == list(forward(net, x))


def test_running_statistics_take_any_statistic():
    class Count:
        def __init__(self):
            self.n = 0

        def update(self, values):
            self.n += values.size

        def range(self):
            return float(self.n)

    stats = RunningStatistics(Count)
    stats.observe("a", np.zeros((2, 3)))
    stats.observe("a", np.zeros(4))
    stats.observe("b", np.zeros(1))
    assert stats.ranges() == {"a": 10.0, "b": 1.0}
    maxabs = MaxAbs()
    maxabs.update(np.array([1.5, -3.25], dtype=np.float32))
    maxabs.update(np.zeros(0, dtype=np.float32))
    assert maxabs.range() == 3.25


def test_batches_shrink_to_the_memory_budget(net):
    per_image = image_bytes(net)
    assert per_image >= 4 * (3 * 12 * 10 + 8 * 12 * 10)  # the input and conv1's output at least
    assert batch_size(net) == 250
    assert batch_size(net, memory=10 * per_image) == 10
    assert batch_size(net, memory=1) == 1


@pytest.mark.parametrize("group, channels, outputs", [(1, 4, 6), (2, 4, 6), (4, 4, 4), (4, 4, 8), (3, 6, 3)])
def test_grouped_and_depthwise_float_convolution_are_per_group_products(tmp_path, group, channels, outputs):
    proto, weights = write_model(tmp_path, [layer("c", "Convolution", num_output=outputs, kernel_size=3, pad=1,
                                                  stride=2, group=group)], input_shape=(channels, 9, 7))
    net = load_net(proto, weights)
    x = np.random.default_rng(2).standard_normal((3, channels, 9, 7)).astype(np.float64)
    w, b = (blob.astype(np.float64) for blob in net.layers[0].blobs)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    in_g, out_g = channels // group, outputs // group
    expected = np.zeros((3, outputs, 5, 4))
    for o in range(outputs):
        g = o // out_g
        for y in range(5):
            for xx in range(4):
                patch = padded[:, g * in_g:(g + 1) * in_g, 2 * y:2 * y + 3, 2 * xx:2 * xx + 3]
                expected[:, o, y, xx] = (patch * w[o]).sum(axis=(1, 2, 3)) + b[o]
    got = forward(net, x.astype(np.float32))["c"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _plain_c_array(values) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    return ",\n".join("    " + ", ".join(flat[i:i + ROW]) for i in range(0, len(flat), ROW))


@pytest.mark.parametrize("size", [0, 1, ROW, ROW + 1, C_ARRAY_BLOCK, C_ARRAY_BLOCK + 3])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32])
def test_c_array_formats_blocks_as_one_value_at_a_time(size, dtype):
    info = np.iinfo(dtype)
    values = np.random.default_rng(size).integers(max(info.min, -40000), min(info.max, 40000), size, dtype=dtype)
    assert c_array(values) == _plain_c_array(values)


@pytest.mark.parametrize("rows", [0, 1, 4, 7, 9])
@pytest.mark.parametrize("cols", [0, 3, 4, 9])
def test_fc_opt_interleave_is_the_documented_order(rows, cols):
    w = np.random.default_rng(rows * 10 + cols).integers(-128, 128, (rows, cols), dtype=np.int8)
    assert interleave_fc_opt(w).tolist() == w.reshape(-1)[_fc_opt_order(rows, cols)].tolist()


def test_quantize_array_in_blocks_equals_one_pass():
    values = np.random.default_rng(4).standard_normal(QUANTIZE_BLOCK + 5).astype(np.float32) * 3
    scaled = values.astype(np.float64) * 2.0**5
    expected = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -128, 127).astype(np.int8)
    assert np.array_equal(quantize_array(values, 5), expected)


def test_blas_threads_are_set_for_the_block_and_restored():
    from cmsisgen.blas import _openblas, blas_threads

    api = _openblas()
    if api is None:
        pytest.skip("numpy's BLAS is not OpenBLAS")
    _, get_threads = api
    before = get_threads()
    with blas_threads(1):
        assert get_threads() == 1
    assert get_threads() == before


def test_min_max_streams_the_s8_bounds_with_zero_included(net):
    """The s8 backend's statistic: each tensor's (min, max) over every image, 0 included,
    whatever the batching."""
    from cmsisgen.calibration_bounds import calibrate_bounds

    x = np.random.default_rng(2).normal(size=(7, 3, 12, 10)).astype(np.float32)
    whole = forward(net, x)
    bounds = calibrate_bounds(net, [x[:3], x[3:]])
    assert set(bounds) == set(whole)
    for name, value in whole.items():
        assert bounds[name] == (min(0.0, float(value.min())), max(0.0, float(value.max())))
