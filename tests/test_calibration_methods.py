"""--calib-method statistics (issue 13, item 1): the |x| histogram and the format each method picks."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from random_nets import write_random_net

from cmsisgen.calibration_methods import BINS, AbsHistogram, MinMse, statistic_for
from cmsisgen.errors import CmsisgenError
from cmsisgen.qformat import frac_bits_for
from cmsisgen.verify import build_and_run


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
                                          ("percentile=100", 2), ("mse", 4), ("kl", 5)])
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


# ----------------------------------------------------------------------- whole nets

BIT_EXACT_NET = "inception"  # branches, concat (tied formats), pooling, 1x1 and 3x3 convolutions, softmax


def _compile(tmp_path, method: str, name: str = BIT_EXACT_NET):
    from click.testing import CliRunner

    from cmsisgen.cli import main

    files = write_random_net(tmp_path / "net", name, calib_images=48)
    out = tmp_path / method.replace("=", "_")
    report = tmp_path / f"{out.name}.json"
    result = CliRunner().invoke(main, ["-q", "compile", str(files.prototxt), str(files.weights), "-o", str(out),
                                       "--test-vectors", "4", "--report", str(report), "--calib-method", method,
                                       *files.options()])
    assert result.exit_code == 0, result.output
    return out, json.loads(report.read_text())


def _formats(report: dict) -> list:
    return [(row["name"], row["output_format"]) for row in report["layers"]]


HAVE_HOST = shutil.which("gcc") is not None and shutil.which("make") is not None
HAVE_QEMU = HAVE_HOST and shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
TARGETS = [pytest.param("host", marks=pytest.mark.skipif(not HAVE_HOST, reason="host gcc and make needed")),
           pytest.param("qemu", marks=[pytest.mark.qemu, pytest.mark.skipif(
               not HAVE_QEMU, reason="arm-none-eabi-gcc and qemu-system-arm needed")])]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("method", ["max", "percentile=99", "percentile=99.9", "mse", "kl"])
def test_every_method_stays_bit_exact(tmp_path, monkeypatch, method, target):
    """The method changes formats, never kernels: simulator == generated C (host gcc, QEMU
    Cortex-M7, portable kernels), every step checksummed."""
    for name in ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE", "CMSIS_NN_PORTABLE"):
        monkeypatch.delenv(name, raising=False)
    out, report = _compile(tmp_path, method)
    if method != "max":
        _, plain = _compile(tmp_path / "max", "max")
        assert _formats(report) != _formats(plain)  # the method did change something
    result = build_and_run(out, target=target, build_dir=tmp_path / "build")
    assert result.passed == result.total == 4 and result.exit_code == 0, result.output
    assert result.steps_checked and result.steps_checked >= 2


def test_the_default_method_is_percentile_99_9(tmp_path):
    """What the README says and measures (the example, Arm's models, the trained catalogue
    nets): a compile without --calib-method is a percentile=99.9 compile, file for file."""
    from click.testing import CliRunner

    from cmsisgen.calibration_methods import DEFAULT_METHOD
    from cmsisgen.cli import main

    assert DEFAULT_METHOD == "percentile=99.9"
    files = write_random_net(tmp_path / "net", BIT_EXACT_NET, calib_images=48)
    outs = []
    for name, options in (("default", []), ("explicit", ["--calib-method", "percentile=99.9"])):
        outs.append(tmp_path / name)
        result = CliRunner().invoke(main, ["-q", "compile", str(files.prototxt), str(files.weights), "-o", str(outs[-1]),
                                           *options, *files.options()])
        assert result.exit_code == 0, result.output
    names = sorted(f.name for f in outs[0].iterdir())
    assert names == sorted(f.name for f in outs[1].iterdir()) and "parameters.h" in names
    assert all((outs[0] / n).read_bytes() == (outs[1] / n).read_bytes() for n in names)


def test_bad_method_is_refused_before_any_image_is_read(tmp_path):
    from click.testing import CliRunner

    from cmsisgen.cli import main

    files = write_random_net(tmp_path, "fc_only_opt")
    result = CliRunner().invoke(main, ["compile", str(files.prototxt), str(files.weights), "-o", str(tmp_path / "o"),
                                       "--calib", str(tmp_path / "missing.npz"), "--calib-method", "median"])
    assert result.exit_code == 2
    assert result.output.startswith("cmsisgen: error: --calib-method median: expected one of max, percentile[=P]")
    assert not (tmp_path / "o").exists()
