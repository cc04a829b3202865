"""--calib-method statistics (issue 13, item 1): the |x| histogram and the format each method picks."""
from __future__ import annotations

import numpy as np
import pytest

from cmsisgen.calibration_methods import BINS, AbsHistogram, MinMse, statistic_for
from cmsisgen.errors import CmsisgenError
from cmsisgen.qformat import frac_bits_for


def _gaussian_with_outlier() -> np.ndarray:
    x = np.random.default_rng(0).normal(0, 1, 200_000).astype(np.float32)
    x[0] = 20.0
    return x


def _fed(method: str, x: np.ndarray, pieces: int = 7):
    statistic = statistic_for(method)()
    for part in np.array_split(x, pieces):
        statistic.update(part)
    return statistic


def test_histogram_built_in_growing_batches_equals_a_direct_one():
    rng = np.random.default_rng(1)
    batches = [rng.normal(0, scale, 5000).astype(np.float32) for scale in (0.01, 0.5, 3.0, 40.0)]
    histogram = AbsHistogram()
    for batch in batches:
        histogram.update(batch)
    everything = np.abs(np.concatenate(batches))
    assert histogram.max_abs == float(everything.max())
    assert histogram.max_abs < BINS * histogram.width <= 2 * histogram.max_abs
    direct, _ = np.histogram(everything, bins=BINS, range=(0, BINS * histogram.width))
    assert np.array_equal(histogram.counts, direct)


def test_mse_matches_the_error_of_quantizing_the_values():
    x = _gaussian_with_outlier()
    statistic = _fed("mse", x)
    for frac in range(2, 7):
        q = np.clip(np.sign(x) * np.floor(np.abs(x) * 2.0 ** frac + 0.5), -128, 127) / 2.0 ** frac
        assert statistic.error(frac) == pytest.approx(float(np.sum((np.abs(x) - np.abs(q)) ** 2)), rel=0.03)


@pytest.mark.parametrize("method, frac", [("max", 2), ("percentile", 5), ("percentile=99.9", 5),
                                          ("percentile=100", 2), ("mse", 4), ("kl", 6)])
def test_each_method_on_a_gaussian_with_one_outlier(method, frac):
    """max keeps room for the outlier; the others clip it for resolution."""
    assert frac_bits_for(_fed(method, _gaussian_with_outlier()).range()) == frac


@pytest.mark.parametrize("method", ["max", "percentile", "mse", "kl"])
def test_zeros_and_empty_batches(method):
    statistic = statistic_for(method)()
    statistic.update(np.zeros((0, 3), dtype=np.float32))
    statistic.update(np.zeros((4, 3), dtype=np.float32))
    assert statistic.range() == 0.0
    statistic.update(np.full(5, 0.25, dtype=np.float32))
    assert frac_bits_for(statistic.range()) == frac_bits_for(0.25)  # one value: no reason to clip it


@pytest.mark.parametrize("value", ["median", "percentile=0", "percentile=101", "percentile=x", "mse=3", ""])
def test_bad_method_values(value):
    with pytest.raises(CmsisgenError, match=r"^--calib-method "):
        statistic_for(value)


def test_mse_prefers_resolution_when_nothing_is_far_out():
    x = np.random.default_rng(2).uniform(-0.7, 0.7, 100_000).astype(np.float32)
    statistic = MinMse()
    statistic.update(x)
    assert frac_bits_for(statistic.range()) == frac_bits_for(float(np.abs(x).max()))
