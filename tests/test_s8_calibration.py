"""--calib-method and evaluate --per-layer on the s8 backend (issue 15: activations "from the
calibration ranges (reuse the calibration methods)").

Each method picks both bounds of a tensor, each side with the q7 method's statistic
(cmsisgen.calibration_bounds); ``max`` stays the exact min and max, so the default output is
unchanged. Every method stays bit-exact (only scales and zero points move, never kernels),
checked with the host build of the portable s8 kernels on the example and catalogue nets.
The per-layer report's figures are those of the dequantized int8 tensors against the float
forward, recomputed here directly.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cli_run import run
from random_nets import CATALOGUE, write_random_net
from test_layer_error import checked_rows, side_by_side
from cmsisgen.calibration import MinMax
from cmsisgen.calibration_bounds import TwoSided, bounds_statistic_for
from cmsisgen.calibration_methods import Percentile
from cmsisgen.dataset import Dataset
from cmsisgen.pipeline import compile_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
EXAMPLE_ARGS = [EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel", "--mean", EXAMPLE / "mean.binaryproto",
                "--scale", "0.015625", "--calib", EXAMPLE / "images" / "train-2000.zip", "--calib-limit", "100"]
METHODS = ("percentile", "percentile=99.9", "mse", "kl")


def _fed(method: str, x: np.ndarray, pieces: int = 5):
    statistic = bounds_statistic_for(method)()
    for part in np.array_split(x, pieces):
        statistic.update(part)
    return statistic


def _skewed() -> np.ndarray:
    """Mostly positive values with a thin negative tail and one outlier on each side."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.exponential(2.0, 90_000), -rng.exponential(0.3, 10_000)]).astype(np.float32)
    x[0], x[1] = 80.0, -9.0
    return x


def test_max_is_the_exact_min_and_max():
    assert bounds_statistic_for("max") is MinMax
    x = _skewed()
    assert _fed("max", x).bounds() == (float(x.min()), float(x.max()))


def test_percentile_clips_each_side_at_its_share_of_all_values():
    """percentile=P: at most (100 - P) % of the values lie above the high bound, as many
    below the low one; each bound is the upper edge of its histogram bin (the q7 Percentile
    of that side's values, the others counting as zeros)."""
    x = _skewed()
    low, high = _fed("percentile=99.9", x).bounds()
    assert 0 < np.mean(x > high) <= 0.001 < np.mean(x > 0.9 * high)
    assert 0 < np.mean(x < low) <= 0.001 < np.mean(x < 0.9 * low)
    side = Percentile(99.9)
    side.update(np.maximum(x, 0))
    assert high == side.range()


@pytest.mark.parametrize("method", METHODS)
def test_each_method_bounds_both_sides_inside_the_extremes(method):
    x = _skewed()
    low, high = _fed(method, x).bounds()
    assert x.min() <= low < 0 < high <= x.max()
    assert (low, high) != (float(x.min()), float(x.max()))  # the outliers are clipped


@pytest.mark.parametrize("method", METHODS)
def test_a_side_without_values_stays_at_zero(method):
    statistic = _fed(method, np.abs(_skewed()))
    assert statistic.bounds()[0] == 0.0 and isinstance(statistic, TwoSided)


def test_bad_method_is_refused_on_s8_as_on_q7(tmp_path):
    files = write_random_net(tmp_path, "fc_only_opt")
    result = run("compile", files.prototxt, files.weights, "-o", tmp_path / "o", "--backend", "s8",
                 "--calib", tmp_path / "missing.npz", "--calib-method", "median")
    assert result.exit_code == 2
    assert result.output.startswith("cmsisgen: error: --calib-method median: expected one of max, percentile[=P]")
    assert not (tmp_path / "o").exists()


# --- bit-exact with every method ----------------------------------------------------------------
def _catalogue_args(directory: Path, name: str) -> list:
    files = write_random_net(directory, name, calib_images=24)
    return [files.prototxt, files.weights, *files.options()]


def _verify(args, method: str) -> None:
    result = run("verify", *args, "--backend", "s8", "--calib-method", method, "--vectors", 3, "--target", "host")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "3/3 vectors bit-exact"


def _scales(directory: Path, args, method: str) -> str:
    out = directory / method.replace("=", "_")
    result = run("-q", "compile", *args[:2], "-o", out, "--backend", "s8", "--calib-method", method, *args[2:])
    assert result.exit_code == 0, result.output
    return (out / "parameters.h").read_text()


def test_s8_default_is_max_whatever_q7_default(tmp_path):
    """s8's own default (cmsisgen.calibration_methods.DEFAULT_METHODS): a compile without
    --calib-method is a ``max`` compile, not q7's percentile=99.9."""
    files = write_random_net(tmp_path / "net", "inception", calib_images=24)
    args = [files.prototxt, files.weights, *files.options()]
    outs = []
    for name, options in (("default", []), ("max", ["--calib-method", "max"])):
        outs.append(tmp_path / name)
        result = run("-q", "compile", *args[:2], "-o", outs[-1], "--backend", "s8", *options, *args[2:])
        assert result.exit_code == 0, result.output
    names = sorted(f.name for f in outs[0].iterdir())
    assert names == sorted(f.name for f in outs[1].iterdir()) and "parameters.h" in names
    assert all((outs[0] / n).read_bytes() == (outs[1] / n).read_bytes() for n in names)
    assert _scales(tmp_path, args, "percentile=99.9") != (outs[0] / "parameters.h").read_text()


@pytest.mark.parametrize("method", METHODS)
def test_example_bit_exact_with_each_method(tmp_path, monkeypatch, method):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    assert _scales(tmp_path, EXAMPLE_ARGS, method) != _scales(tmp_path, EXAMPLE_ARGS, "max")  # a change
    _verify(EXAMPLE_ARGS, method)


@pytest.mark.parametrize("name", ["inception", "residual_sum", "fcn_deconv"])
@pytest.mark.parametrize("method", ["percentile=99", "kl"])
def test_catalogue_bit_exact_with_a_method(tmp_path, monkeypatch, name, method):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    _verify(_catalogue_args(tmp_path, name), method)


# --- evaluate --per-layer ----------------------------------------------------------------------
def test_per_layer_figures_are_the_dequantized_s8_tensors_against_float(tmp_path):
    files = write_random_net(tmp_path, "cifar10_full_style", calib_images=10)
    calib = np.load(files.calib)
    compiled = compile_model(files.prototxt, files.weights, calib_images=calib["x"], backend="s8",
                             calib_method="percentile=99", **files.compile_kwargs())
    dataset = Dataset(x=calib["x"], y=calib["y"], classes=tuple("0123456789"))
    rows, floats, ints, names = side_by_side(compiled, dataset)
    for row, name in zip(rows, names):
        tq = compiled.quant.tensors[name]
        f = floats[name].transpose(0, 2, 3, 1).astype(np.float64)
        if tq.zero_point == -128:  # a grid from 0 up holds max(x, 0) by design
            f = np.maximum(f, 0.0)
        q = (ints[name].astype(np.float64) - tq.zero_point) * tq.scale
        assert row["format"] == f"s{tq.scale:.3g} z{tq.zero_point}"
        assert row["format_range"] == [pytest.approx((-128 - tq.zero_point) * tq.scale),
                                       pytest.approx((127 - tq.zero_point) * tq.scale)]
        error = np.sum((q - f) ** 2)
        assert row["sqnr_db"] is None if error == 0 else row["sqnr_db"] == pytest.approx(
            10 * math.log10(np.sum(f ** 2) / error), rel=1e-6)
        beyond = (f / tq.scale + tq.zero_point >= 127.5) | (f / tq.scale + tq.zero_point < -128.5)
        assert row["clipped"] == pytest.approx(np.mean(beyond), abs=1e-9)
        assert row["saturated"] == int(np.sum(beyond & ((ints[name] == 127) | (ints[name] == -128))))
        assert row["matches_float"]  # arm_softmax_s8 computes e^x, unlike arm_softmax_q7


def test_cli_per_layer_on_s8(tmp_path):
    files = write_random_net(tmp_path, "cifar10_full_style", calib_images=12)
    result = run("evaluate", files.prototxt, files.weights, "--data", files.calib, *files.options(), "--backend", "s8",
                 "--per-layer")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    assert lines[header].split() == ["layer", "format", "float", "range", "SQNR", "dB", "clipped", "saturated",
                                     "cosine"]
    assert lines[header + 1].split()[0] == "data" and lines[header + 1].split()[1].startswith("s")
    assert lines[-1].startswith("largest SQNR drop: ") or lines[-1] == "no layer loses SQNR"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_per_layer_on_every_catalogue_net_on_s8(tmp_path, name):
    """Finite figures for every s8 layer output of every catalogue net; the per-layer pass
    scores as the plain one (checked_rows)."""
    rows = checked_rows(tmp_path, name, backend="s8")
    assert all(row["format"].startswith("s") for row in rows)
