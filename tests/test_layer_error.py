"""evaluate --per-layer / --plot: the per-layer error report (issue 13, items 3 and 4)."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from cli_run import run
from random_nets import CATALOGUE, write_random_net
from cmsisgen import evaluate as evaluate_module
from cmsisgen.dataset import Dataset
from cmsisgen.evaluate import evaluate
from cmsisgen.float_forward import forward
from cmsisgen.layer_error import LayerErrors, worst_layer
from cmsisgen.mapper.buffers import plan_buffers
from cmsisgen.mapper.lowering import map_network
from cmsisgen.pipeline import Compiled, compile_model, float_batches, load_model
from cmsisgen.quantizer import calibrate, quantize
from cmsisgen.simulator.execute import run_program


def _compiled(tmp_path, name, images=12, backend="q7"):
    files = write_random_net(tmp_path, name, calib_images=images)
    calib = np.load(files.calib)
    kwargs = dict(files.compile_kwargs(), **({"backend": "s8", "fc_variant": "opt"} if backend == "s8" else {}))
    compiled = compile_model(files.prototxt, files.weights, calib_images=calib["x"], **kwargs)
    c = compiled.program.input_shape[0]
    x = calib["x"][..., :1] if c == 1 else calib["x"]
    return files, compiled, Dataset(x=calib["x"], y=calib["y"], classes=tuple("0123456789")), x


def _with_range_scaled(files, tensor: str, factor: float, images: np.ndarray) -> Compiled:
    """The net compiled with ``tensor``'s calibrated range multiplied by ``factor``: a
    deliberately wrong format for one layer output (factor < 1: clipping)."""
    model = load_model(files.prototxt, files.weights, **files.compile_kwargs())
    ranges = calibrate(model.net, float_batches(model.pre, images, model.input_shape))
    ranges[tensor] *= factor
    quant = quantize(model.net, ranges)
    program = map_network(model.net, quant, model.pre, fc_variant=model.fc_variant)
    return Compiled(net=model.net, pre=model.pre, quant=quant, program=program, plan=plan_buffers(program), notes=[])


def side_by_side(compiled: Compiled, dataset: Dataset) -> tuple[list, dict, dict, list]:
    """The per-layer rows of ``compiled`` on ``dataset``, and what they are computed from at
    once: every float tensor, every int8 tensor and the reported tensors' names."""
    rows = evaluate(compiled, dataset, per_layer=True)["layers"]
    c, h, w = compiled.program.input_shape
    images = compiled.pre.prepare_images(dataset.x, h, w)
    floats = forward(compiled.net, compiled.pre.to_float(images))
    ints = run_program(compiled.program, images, keep_all=True)
    names = [op.output for op in compiled.program.ops if op.output in compiled.net.shapes]
    assert [row["tensor"] for row in rows] == [name.split("@")[0] for name in names]
    return rows, floats, ints, names


def test_figures_match_a_direct_numpy_computation(tmp_path, monkeypatch):
    """Summed batch by batch (3 images a batch) = computed at once on every activation."""
    monkeypatch.setattr(evaluate_module, "BATCH", 3)
    files, compiled, dataset, _ = _compiled(tmp_path, "cifar10_full_style", images=10)
    rows, floats, q7s, names = side_by_side(compiled, dataset)
    assert "conv2" in names and "norm1" in names
    for row, name in zip(rows, names):
        frac = compiled.program.tensors[name].frac
        f = floats[name].transpose(0, 2, 3, 1).astype(np.float64)  # NCHW -> the simulator's NHWC
        q = q7s[name].astype(np.float64) / 2 ** frac
        assert row["format"] == f"Q{7 - frac}.{frac}"
        assert row["sqnr_db"] == pytest.approx(10 * np.log10(np.sum(f ** 2) / np.sum((q - f) ** 2)), rel=1e-6)
        assert row["cosine"] == pytest.approx(np.sum(f * q) / np.sqrt(np.sum(f ** 2) * np.sum(q ** 2)), rel=1e-6)
        beyond = (f * 2 ** frac >= 127.5) | (f * 2 ** frac < -128.5)
        assert row["clipped"] == pytest.approx(np.mean(beyond), abs=1e-9)
        assert row["saturated"] == int(np.sum(beyond & ((q7s[name] == 127) | (q7s[name] == -128))))
        assert row["range"] == [pytest.approx(float(f.min())), pytest.approx(float(f.max()))]
    assert worst_layer(rows) is not None


def test_worst_layer_is_the_one_given_a_bad_format(tmp_path):
    files, good, dataset, x = _compiled(tmp_path, "cifar10_full_style")
    bad = _with_range_scaled(files, "ip1", 1 / 32, x)
    assert bad.quant.tensor_frac["ip1"] == good.quant.tensor_frac["ip1"] + 5
    good_rows = {row["name"]: row for row in evaluate(good, dataset, per_layer=True)["layers"]}
    rows = evaluate(bad, dataset, per_layer=True)["layers"]
    worst = worst_layer(rows)
    assert worst["name"] == "ip1"
    assert worst["clipped"] > 0.05 and worst["saturated"] > 0
    assert worst["sqnr_db"] < good_rows["ip1"]["sqnr_db"] - 10
    assert good_rows["ip1"]["saturated"] == 0


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_per_layer_on_every_catalogue_net(tmp_path, name):
    checked_rows(tmp_path, name)


def checked_rows(tmp_path, name, backend="q7") -> list:
    """The per-layer rows of catalogue net ``name`` on ``backend``, checked."""
    _, compiled, dataset, x = _compiled(tmp_path, name, images=6, backend=backend)
    output = compiled.net.outputs[0]
    if name == "argmax_pixels":  # a class map has no top-1 (evaluate refuses it): the report alone
        errors = LayerErrors(compiled.program, compiled.net, compiled.quant)
        c, h, w = compiled.program.input_shape
        images = compiled.pre.prepare_images(x, h, w)
        errors.add(forward(compiled.net, compiled.pre.to_float(images)),
                   run_program(compiled.program, images, keep_all=True))
        result = {"layers": errors.rows()}
    else:
        result = evaluate(compiled, dataset, output=output, per_layer=True)
        plain = evaluate(compiled, dataset, output=output)
        assert {k: result[k] for k in plain} == plain  # the per-layer pass scores the same
    rows = result["layers"]
    assert [row["tensor"] for row in rows] == [op.output.split("@")[0] for op in compiled.program.ops
                                               if op.output in compiled.net.shapes]
    for row in rows:
        assert row["sqnr_db"] is None or math.isfinite(row["sqnr_db"])
        assert 0.0 <= row["clipped"] <= 1.0 and row["saturated"] >= 0
        assert -1.0 - 1e-9 <= row["cosine"] <= 1.0 + 1e-9
    json.dumps(result, allow_nan=False)
    return rows


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_plot_on_every_catalogue_net(tmp_path, name):
    pytest.importorskip("matplotlib")
    from cmsisgen.layer_plot import plot_layers

    rows = checked_rows(tmp_path, name)
    plot_layers(rows, tmp_path / "layers.png", name)
    assert (tmp_path / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cli_files(tmp_path):
    files = write_random_net(tmp_path, "cifar10_full_style", calib_images=12)
    return [files.prototxt, files.weights, "--data", files.calib, "--calib", files.calib]


def test_cli_per_layer_table_and_json(tmp_path):
    args = _cli_files(tmp_path)
    result = run("evaluate", *args, "--per-layer")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    assert lines[header].split() == ["layer", "format", "float", "range", "SQNR", "dB", "clipped", "saturated",
                                     "cosine"]
    assert lines[header + 1].split()[:2] == ["data", lines[header + 1].split()[1]]
    assert lines[-1].startswith("largest SQNR drop: ")
    data = json.loads(run("-q", "evaluate", *args, "--per-layer", "--json").output)
    assert {"name", "tensor", "format", "sqnr_db", "clipped", "saturated", "cosine"} <= set(data["layers"][0])
    assert "layers" not in json.loads(run("-q", "evaluate", *args, "--json").output)


def test_cli_plot_needs_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result = run("evaluate", *_cli_files(tmp_path), "--plot", tmp_path / "p.png")
    assert result.exit_code == 2
    assert result.output == "cmsisgen: error: --plot: matplotlib is not installed (python3 -m pip install matplotlib, or cmsisgen's extra: python3 -m pip install '.[plot]')\n"
    assert not (tmp_path / "p.png").exists()


def test_cli_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("evaluate", *_cli_files(tmp_path), "--plot", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "largest SQNR drop" in result.output  # --plot implies --per-layer


def test_plot_legend_names_each_backends_range(tmp_path, monkeypatch):
    """The bar is a Q format's range on q7, a scale and zero point's on s8."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    labels, bar = [], Axes.bar
    monkeypatch.setattr(Axes, "bar", lambda self, *a, **k: (labels.append(k.get("label")), bar(self, *a, **k))[1])
    for backend in ("q7", "s8"):
        result = run("-q", "evaluate", *_cli_files(tmp_path), "--backend", backend, "--plot", tmp_path / "p.png")
        assert result.exit_code == 0, result.output
    assert [label for label in labels if label] == ["Q format range", "int8 range (scale, zero point)"]


def test_cli_plot_refuses_stdout(tmp_path):
    result = run("evaluate", *_cli_files(tmp_path), "--plot", "-")
    assert result.exit_code == 2
    assert result.output == "cmsisgen: error: --plot -: the plot is a PNG image, not text for stdout (name a file)\n"


def test_softmax_is_not_blamed(tmp_path):
    """arm_softmax_q7 computes 2**x: its SQNR says nothing about the formats."""
    _, compiled, dataset, _ = _compiled(tmp_path, "fc_only_plain")
    rows = evaluate(compiled, dataset, per_layer=True)["layers"]
    prob = next(row for row in rows if row["name"] == "prob")
    assert not prob["matches_float"] and all(row["matches_float"] for row in rows if row is not prob)
    assert worst_layer(rows) is None or worst_layer(rows)["name"] != "prob"
    assert worst_layer([dict(prob, sqnr_drop_db=50.0)]) is None
