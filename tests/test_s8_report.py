"""compile --report / --json on the s8 backend: int8 tensors have no Q format, so each layer
shows its input's and output's scale and zero point and its weights' scales per output channel
(min..max and how many), and each output its scale and zero point; the q7 report is unchanged."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen.cli import main
from cmsisgen.pipeline import compile_model

NET = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), L("relu1", "ReLU", inplace=True),
       L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2), L("ip1", "InnerProduct", num_output=5),
       L("prob", "Softmax")]


def _model(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    data = tmp_path / "calib.npz"
    np.savez(data, x=np.random.default_rng(3).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8), y=np.arange(8) % 5)
    return proto, weights, data


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_report_gives_scales_and_zero_points(tmp_path):
    proto, weights, data = _model(tmp_path)
    report = json.loads(_run("compile", proto, weights, "--calib", data, "-o", tmp_path / "out", "--backend", "s8",
                             "--report", "-"))
    program = compile_model(proto, weights, calib_images=np.load(data)["x"], backend="s8").program
    quant = {name: {"scale": info.quant.scale, "zero_point": info.quant.zero_point}
             for name, info in program.tensors.items()}
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert [name for name in layers] == ["data", "conv1", "pool1", "ip1", "prob"]
    for layer in layers.values():
        assert [layer[key] for key in ("input_format", "weight_format", "bias_format", "output_format",
                                       "bias_lshift", "out_rshift")] == [None] * 6
    assert layers["data"]["input_quant"] is None and layers["data"]["output_quant"] == quant["data"]
    assert (layers["conv1"]["input_quant"], layers["conv1"]["output_quant"]) == (quant["data"], quant["conv1"])
    assert layers["pool1"]["input_quant"] == layers["pool1"]["output_quant"] == quant["conv1"]  # (equal in and out)
    assert layers["prob"]["output_quant"] == {"scale": 0.00390625, "zero_point": -128}
    conv = program.ops[1].params["weight_scales"]
    assert layers["conv1"]["weight_scales"] == {"channels": 4, "min": float(conv.min()), "max": float(conv.max())}
    assert conv.min() < conv.max()  # one scale per output channel
    ip1 = layers["ip1"]["weight_scales"]
    assert ip1["channels"] == 5 and ip1["min"] == ip1["max"]  # one scale for the whole matrix
    assert layers["pool1"]["weight_scales"] is None and layers["prob"]["weight_scales"] is None
    assert [(out["name"], out["format"], out["quant"]) for out in report["outputs"]] == \
        [("prob", None, {"scale": 0.00390625, "zero_point": -128})]


def test_table_shows_scales_and_zero_points(tmp_path):
    proto, weights, data = _model(tmp_path)
    table = _run("compile", proto, weights, "--calib", data, "-o", tmp_path / "out", "--backend", "s8").splitlines()
    report = json.loads(_run("compile", proto, weights, "--calib", data, "-o", tmp_path / "out", "--backend", "s8",
                             "--report", "-"))
    layers = {layer["name"]: layer for layer in report["layers"]}
    q_in, q_out = layers["conv1"]["input_quant"], layers["conv1"]["output_quant"]
    w = layers["conv1"]["weight_scales"]
    header = next(line for line in table if line.startswith("step"))
    assert header.split() == ["step", "layer", "function", "in", "out", "in", "scale/zp", "out", "scale/zp", "w",
                              "scales", "MACs", "weights", "act"]
    row = {line.split()[1]: line.split() for line in table if line[:4].strip().isdigit()}
    assert row["conv1"][5:8] == [f"{q_in['scale']:.4g}/{q_in['zero_point']}",
                                 f"{q_out['scale']:.4g}/{q_out['zero_point']}",
                                 f"{w['min']:.3g}..{w['max']:.3g}"] and row["conv1"][8] == "(4)"
    assert row["prob"][5:8] == [f"{layers['ip1']['output_quant']['scale']:.4g}/"
                                f"{layers['ip1']['output_quant']['zero_point']}", "0.003906/-128", "-"]
    assert row["data"][2:8] == ["nn_input_s8", "3x8x8", "3x8x8", "-", f"{q_in['scale']:.4g}/{q_in['zero_point']}", "-"]
    assert "run_nn() output: prob (scores, 5x1x1, 5 bytes, scale 0.00390625, zero point -128)" in table
    assert not any("Q7" in line or "Q0.7" in line for line in table)


def test_q7_table_keeps_its_formats(tmp_path):
    proto, weights, data = _model(tmp_path)
    table = _run("compile", proto, weights, "--calib", data, "-o", tmp_path / "out").splitlines()
    assert next(line for line in table if line.startswith("step")).split() == [
        "step", "layer", "function", "in", "out", "Q", "in/w/b/out", "lsh", "rsh", "MACs", "weights", "act"]
    assert any(line.startswith("run_nn() output: prob (scores, 5x1x1, 5 bytes, Q") for line in table)
