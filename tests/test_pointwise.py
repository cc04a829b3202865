"""Element-wise layers (ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold: nn_lookup_q7) and
ArgMax as the last layer (nn_argmax_q7): parsing and refusals, shapes, the float forward
against real Caffe blob for blob (pycaffe has every type but Clip), the tables, the Q
formats the quantizer gives, and evaluate's top-1 on an ArgMax output.

The kernels' C against their models is tests/test_pointwise_kernels.py; the catalogue nets
``pointwise_lookup`` and ``argmax_*`` (tests/random_nets.py) run them on host and QEMU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import build_net, layer, write_model, write_prototxt
from test_caffe_oracle import _inputs, check_model, pycaffe  # noqa: F401 (pycaffe is a fixture)
from cmsisgen.cli import main
from cmsisgen.errors import CmsisgenError
from cmsisgen.loader import load_net
from cmsisgen.ops.argmax import argmax_q7
from cmsisgen.ops.lookup_activation import lookup_q7, lookup_table
from cmsisgen.quantizer import quantize

# --------------------------------------------------------------------------- float forward vs Caffe

ORACLE_MODELS = {
    # every lookup type pycaffe has, on signed conv outputs; brocolli's relu6_param; Power's
    # constant case (power 0), a fractional power of a positive base, an inverse
    "lookups": ((3, 7, 6), [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("r6", "ReLU6", bottom="conv1", top="r6"),
        layer("r6p", "ReLU6", bottom="conv1", top="r6p", threshold=0.3, negative_slope=0.2),
        layer("abs", "AbsVal", bottom="conv1", top="abs"),
        layer("elu", "ELU", bottom="conv1", top="elu", alpha=0.7),
        layer("bnll", "BNLL", bottom="conv1", top="bnll"),
        layer("th", "Threshold", bottom="conv1", top="th", threshold=0.05),
        layer("sq", "Power", bottom="conv1", top="sq", power=2.0, scale=-1.5, shift=0.5),
        layer("sqrt", "Power", bottom="abs", top="sqrt", power=0.5, scale=2.0, shift=0.1),
        layer("inv", "Power", bottom="bnll", top="inv", power=-1.0, shift=1.0),
        layer("one", "Power", bottom="conv1", top="one", power=0.0, scale=3.0),
        layer("lin", "Power", bottom="conv1", top="lin", scale=0.5, shift=-0.25),
        layer("cat", "Concat", bottom=["r6", "r6p", "th", "elu", "sq", "sqrt", "inv", "one", "lin"], top="cat"),
        layer("conv2", "Convolution", num_output=5, kernel_size=1),
        layer("relu6", "ReLU6", inplace=True),
        layer("am", "ArgMax", axis=1),
    ]),
    "argmax_whole": ((3, 5, 4), [
        layer("conv1", "Convolution", num_output=6, kernel_size=3),
        layer("am", "ArgMax"),
    ]),
    "argmax_classifier": ((3, 5, 5), [
        layer("ip1", "InnerProduct", num_output=9),
        layer("am", "ArgMax"),
    ]),
}


@pytest.mark.caffe
@pytest.mark.parametrize("model", sorted(ORACLE_MODELS))
def test_float_forward_matches_caffe(pycaffe, tmp_path, model):  # noqa: F811
    shape, layers = ORACLE_MODELS[model]
    proto, weights = write_model(tmp_path, layers, input_shape=shape, seed=4)
    check_model(pycaffe, proto, weights, _inputs(shape, n=4) * 3, tmp_path / "run")


@pytest.mark.caffe
def test_a_caffemodel_saved_by_the_fork_loads_without_unknown_fields(pycaffe, tmp_path):  # noqa: F811
    """Caffe's own save of a net with relu6_param (and every other new type's parameters):
    the schema knows each field by its number, so nothing is skipped."""
    shape, layers = ORACLE_MODELS["lookups"]
    proto, weights = write_model(tmp_path, layers, input_shape=shape, seed=4)
    check_model(pycaffe, proto, weights, _inputs(shape, n=1), tmp_path / "run", upgraded=True)
    saved = tmp_path / "run" / "caffe_upgraded.prototxt.caffemodel"
    from cmsisgen.proto import schema

    param = schema.NetParameter.FromString(saved.read_bytes())
    assert [lay.relu6_param.threshold for lay in param.layer if lay.name == "r6p"] == [pytest.approx(0.3)]
    net = load_net(proto, saved)
    assert net.warnings == []


@pytest.mark.caffe
@pytest.mark.parametrize("axis", [None, 1])
def test_argmax_ties_go_to_the_highest_index_as_in_caffe(pycaffe, tmp_path, axis):  # noqa: F811
    params = {} if axis is None else {"axis": axis}
    proto, weights = write_model(tmp_path, [layer("am", "ArgMax", **params)], input_shape=(4, 2, 3))
    x = np.zeros((3, 4, 2, 3), np.float32)
    x[1, :, 0, 0] = [1, 3, 3, 2]  # a tie between channels 1 and 2
    x[2] = np.round(_inputs((4, 2, 3), n=1)[0])  # many ties
    net, blobs, ours, _ = check_model(pycaffe, proto, weights, x, tmp_path / "run")
    if axis is None:
        assert ours["am"].reshape(-1).tolist()[:2] == [23, 12]  # all zero: the last; (channel 2, pixel 0): 2 * 6


@pytest.mark.caffe
def test_v1_net_with_lookup_types_matches_caffe(pycaffe, tmp_path):  # noqa: F811
    """AbsVal, BNLL, Power, Threshold and ArgMax are V1 types too (ABSVAL, BNLL, POWER, THRESHOLD, ARGMAX)."""
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3),
              layer("abs", "AbsVal", bottom="conv1", top="abs"),
              layer("bnll", "BNLL", bottom="conv1", top="bnll"),
              layer("pw", "Power", bottom="abs", top="pw", power=3.0, scale=0.5),
              layer("th", "Threshold", bottom="bnll", top="th", threshold=0.7),
              layer("cat", "Concat", bottom=["pw", "th"], top="cat"),
              layer("am", "ArgMax", axis=1)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 6, 6), generation="v1")
    assert "ABSVAL" in proto.read_text()
    check_model(pycaffe, proto, weights, _inputs((3, 6, 6)), tmp_path / "run")


# --------------------------------------------------------------------------- parsing and refusals


def _load(tmp_path: Path, layers, shape=(3, 4, 4)):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proto, _ = write_model(tmp_path, layers, input_shape=shape)
    return proto, load_net(proto)


REFUSED = [
    (layer("am", "ArgMax", top_k=2), "argmax_param.top_k 2 is not supported: only top_k 1 (the index of the "
                                     "largest value)"),
    (layer("am", "ArgMax", out_max_val=True), "argmax_param.out_max_val true is not supported: the output is "
                                              "the index only"),
    (layer("am", "ArgMax", axis=2), "argmax_param.axis 2 is not supported: only axis 1 (per pixel, over channels) "
                                    "or no axis (over the whole blob)"),
    (layer("am", "ArgMax", axis=0), "argmax_param.axis 0 is not supported: only axis 1 (per pixel, over channels) "
                                    "or no axis (over the whole blob)"),
    (layer("c", "Clip", max=1.0), "clip_param needs min and max (Caffe requires both); min not given"),
    (layer("c", "Clip"), "clip_param needs min and max (Caffe requires both); min and max not given"),
    (layer("c", "Clip", min=2.0, max=1.5), "clip_param min 2 is greater than max 1.5"),
]


@pytest.mark.parametrize("spec, message", REFUSED, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(REFUSED)])
def test_refused_settings_name_the_field(tmp_path, spec, message):
    # (write_model would load the net to size its weights: the prototxt alone)
    proto = write_prototxt(tmp_path / "model.prototxt", build_net([spec], (3, 4, 4)))
    with pytest.raises(CmsisgenError) as info:
        load_net(proto)
    assert str(info.value) == f"{proto}: layer '{spec['name']}' ({spec['type']}): {message}"


def _refused_by_cli(tmp_path, layers, shape, *options):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    result = CliRunner().invoke(main, ["compile", str(proto), str(weights), "-o", str(tmp_path / "out"), *options])
    assert result.exit_code == 2, result.output
    return result.output.strip().splitlines()[-1]


def test_argmax_must_be_the_last_layer(tmp_path):
    line = _refused_by_cli(tmp_path, [layer("conv1", "Convolution", num_output=4, kernel_size=1),
                                      layer("am", "ArgMax", axis=1),
                                      layer("ip", "InnerProduct", num_output=3)], (3, 4, 4))
    assert line == (f"cmsisgen: error: {tmp_path / 'model.prototxt'}: layer 'am' (ArgMax): no kernel "
                    "fits: nn_argmax_q7: The index of the largest value (Q7.0) is the network output: ArgMax must be "
                    "the last layer, its output read by no other layer (read by 'ip' (InnerProduct)).")
    assert not (tmp_path / "out").exists()


def test_argmax_of_more_than_128_values_is_refused(tmp_path):
    line = _refused_by_cli(tmp_path, [layer("conv1", "Convolution", num_output=129, kernel_size=1),
                                      layer("am", "ArgMax", axis=1)], (3, 2, 2))
    assert line == (f"cmsisgen: error: {tmp_path / 'model.prototxt'}: layer 'am' (ArgMax): no kernel "
                    "fits: nn_argmax_q7: Each index is written as a q7 value (0..127): at most 128 values may compete "
                    "(the channels with axis 1, the whole blob without axis) (2x2x129 input, 2x2 output).")
    line = _refused_by_cli(tmp_path / "whole", [layer("conv1", "Convolution", num_output=9, kernel_size=1),
                                                layer("am", "ArgMax")], (3, 5, 3))
    assert line.endswith("(5x3x9 input, 1x1 output).")


def test_shapes_and_params(tmp_path):
    _, net = _load(tmp_path, [layer("conv1", "Convolution", num_output=5, kernel_size=1),
                              layer("r6", "ReLU6", inplace=True),
                              layer("am", "ArgMax", bottom="conv1", top="am", axis=-3)], (3, 4, 6))
    assert net.shapes["conv1@1"] == (5, 4, 6) and net.shapes["am"] == (1, 4, 6)
    assert net.layers[1].params.threshold == 6.0 and net.layers[1].params.negative_slope == 0.0
    _, net = _load(tmp_path / "b", [layer("am", "ArgMax")], (3, 4, 6))
    assert net.shapes["am"] == (1, 1, 1)


def test_relu6_param_is_brocolli_caffes_field_503(tmp_path):
    """The fork's number, so a .caffemodel saved by that Caffe carries no unknown field."""
    from cmsisgen.proto import schema

    field = schema.LayerParameter.DESCRIPTOR.fields_by_name["relu6_param"]
    assert field.number == 503
    assert [(f.name, f.number, f.default_value) for f in field.message_type.fields] == [
        ("negative_slope", 1, 0.0), ("threshold", 2, 6.0)]
    proto, net = _load(tmp_path, [layer("r6", "ReLU6", threshold=6.0)])
    assert net.warnings == [f"{proto}: threshold: 6.0 in layer 'r6' changes nothing (threshold is a field of "
                            "brocolli-caffe (ReLU6 with parameters), not of BVLC Caffe; ReLU6 clamps at threshold; "
                            "6 is the ReLU6 of the forks without parameters)"]


# --------------------------------------------------------------------------- tables and formats


def test_lookup_table_is_the_rounded_function():
    table = lookup_table(lambda x: np.minimum(np.maximum(x, 0), 6), in_frac=4, out_frac=4)
    x = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(lookup_q7(x, table), np.clip(x, 0, 96))
    # half away from zero, saturated, NaN -> 0
    table = lookup_table(lambda x: np.where(x < 0, np.nan, x * 1.5), in_frac=0, out_frac=0)
    got = lookup_q7(np.array([-5, 0, 1, 3, 100], np.int8), table)
    assert got.tolist() == [0, 0, 2, 5, 127]


def test_argmax_model():
    x = np.array([[[[1, 5, 5], [-3, -3, -4]], [[7, 7, 7], [0, 1, -1]]]], np.int8)  # (1, 2, 2, 3) NHWC
    assert argmax_q7(x, per_pixel=True).reshape(-1).tolist() == [2, 1, 2, 1]
    # whole blob, C, H, W order: the 7s are channel 0/1/2 of pixel 2 -> indices 2, 6, 10: the highest
    assert argmax_q7(x, per_pixel=False).item() == 10


def _formats(tmp_path, layers, shape, ranges):
    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    net = load_net(proto, weights)
    return net, quantize(net, {name: ranges.get(name, 1.0) for name in net.shapes})


def test_formats(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=1),
              layer("r6", "ReLU6", bottom="conv1", top="r6"),
              layer("th", "Threshold", bottom="conv1", top="th"),
              layer("elu", "ELU", bottom="r6", top="elu"),
              layer("cat", "Concat", bottom=["th", "elu"], top="cat"),
              layer("am", "ArgMax", axis=1)]
    net, q = _formats(tmp_path, layers, (3, 4, 4), {"conv1": 40.0, "r6": 6.0, "th": 0.0, "elu": 6.0, "cat": 6.0})
    f = q.tensor_frac
    assert f["r6"] == 4  # from calibration: 6 in Q3.4
    assert f["conv1"] == 1  # read by the ReLU6 and the Threshold: its own range (40)
    assert f["th"] == f["cat"] == f["elu"] == 4  # the Concat group
    assert f["am"] == 0  # the index, Q7.0
    np.testing.assert_array_equal(q.params["th"], lookup_table(lambda x: (x > 0).astype(float), 1, 4))


def test_threshold_output_holds_one_and_relu6_input_is_sized_by_its_output(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=1),
              layer("r6", "ReLU6", inplace=True),
              layer("conv2", "Convolution", num_output=4, kernel_size=1),
              layer("th", "Threshold", threshold=0.5)]
    net, q = _formats(tmp_path, layers, (3, 4, 4), {"conv1": 40.0, "conv1@1": 6.0, "conv2": 0.9, "th": 0.0})
    f = q.tensor_frac
    assert f["conv1"] == 4 and f["conv1@1"] == 4  # only the ReLU6 reads conv1: its output's 6
    assert f["th"] == 6  # calibration saw only zeros (Q0.7); 1 needs Q1.6
    assert f["conv2"] == 7  # 0.9: Q0.7
    assert lookup_q7(np.array([65, 64], np.int8), q.params["th"]).tolist() == [64, 0]  # 0.508 -> 1.0 in Q1.6; 0.5 -> 0


# --------------------------------------------------------------------------- evaluate


def _npz(path: Path, n: int, shape, labels):
    rng = np.random.default_rng(1)
    np.savez(path, x=rng.integers(0, 256, size=(n, shape[1], shape[2], shape[0]), dtype=np.uint8),
             y=np.asarray(labels))
    return path


def test_evaluate_takes_an_argmax_output_as_the_class(tmp_path):
    layers = [layer("ip1", "InnerProduct", num_output=12), layer("am", "ArgMax")]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4))
    data = _npz(tmp_path / "data.npz", 20, (3, 4, 4), np.arange(20) % 12)
    run = ["evaluate", str(proto), str(weights), "--data", str(data), "--calib", str(data), "--json"]
    result = CliRunner().invoke(main, run)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    # the same as evaluating the scores before the ArgMax
    scores = [layer("ip1", "InnerProduct", num_output=12)]
    (tmp_path / "scores").mkdir()
    proto2, weights2 = write_model(tmp_path / "scores", scores, input_shape=(3, 4, 4))
    result2 = CliRunner().invoke(main, ["evaluate", str(proto2), str(weights2), "--data", str(data),
                                        "--calib", str(data), "--json"])
    assert json.loads(result2.output[result2.output.index("{"):])["float_top1"] == summary["float_top1"]
    # labels up to 11 are fine (12 classes, though the output is one value); 12 is not
    _npz(data, 20, (3, 4, 4), np.arange(20) % 13)
    result = CliRunner().invoke(main, run)
    assert result.exit_code == 2
    assert "label 12 (class '12') is out of range: the network has 12 outputs, so labels must be 0..11" in result.output


def test_evaluate_refuses_a_per_pixel_argmax(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=1), layer("seg", "ArgMax", axis=1)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4))
    data = _npz(tmp_path / "data.npz", 4, (3, 4, 4), [0, 1, 2, 3])
    result = CliRunner().invoke(main, ["evaluate", str(proto), str(weights), "--data", str(data)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "cmsisgen: error: layer 'seg' (ArgMax): its output is one class per pixel (4x4), so it has no top-1 per "
        "image to evaluate")


# --------------------------------------------------------------------------- ReLU6 / Clip as arm_relu_q7


def _clamp_net(tmp_path: Path, weight: float, act):
    """A 1x1 convolution with every weight ``weight`` (inputs in [-1, 1): outputs within 3 * |weight|), then ``act``."""
    from cmsisgen.pipeline import compile_model

    layers = [layer("conv1", "Convolution", num_output=2, kernel_size=1,
                    weights=[np.full((2, 3, 1, 1), weight), np.zeros(2)]), act]
    tmp_path.mkdir()
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4))
    calib = np.random.default_rng(0).integers(0, 256, size=(8, 4, 4, 3), dtype=np.uint8)
    return lambda **kw: compile_model(proto, weights, calib_images=calib, scale=1 / 128, mean="128,128,128", **kw)


@pytest.mark.parametrize("act", [layer("act", "ReLU6", inplace=True), layer("act", "Clip", inplace=True, min=0.0,
                                                                            max=6.0)])
def test_relu6_and_clip_run_as_arm_relu_q7_where_the_table_is_max_x_0(tmp_path, act):
    small = _clamp_net(tmp_path / "small", 1.0, act)  # outputs below 3: Q2.5 holds at most 3.97, below 6
    compiled = small()
    (op,) = [op for op in compiled.program.ops if op.layer == "act"]
    assert (op.function, op.formats, op.weight_bytes) == ("arm_relu_q7", {"in_frac": 5, "out_frac": 5}, 0)
    forced = small(kernels={"act": "nn_lookup_q7"})
    (op,) = [op for op in forced.program.ops if op.layer == "act"]
    assert op.function == "nn_lookup_q7" and op.weight_bytes == 256
    images = np.random.default_rng(2).integers(0, 256, size=(5, 4, 4, 3), dtype=np.uint8)
    from cmsisgen.simulator.execute import run_program

    np.testing.assert_array_equal(run_program(compiled.program, images), run_program(forced.program, images))

    big = _clamp_net(tmp_path / "big", 3.0, act)  # outputs reach 6: the table clamps them
    (op,) = [op for op in big().program.ops if op.layer == "act"]
    assert op.function == "nn_lookup_q7" and op.formats == {"in_frac": 4, "out_frac": 4}
    with pytest.raises(CmsisgenError) as info:
        big(kernels={"act": "arm_relu_q7"})
    assert str(info.value) == (
        f"{tmp_path / 'big' / 'model.prototxt'}: layer 'act' ({act['type']}): arm_relu_q7 cannot run it: arm_relu_q7 only clamps at zero: it runs a ReLU6 "
        "or Clip whose table is max(x, 0), i.e. input and output in one format whose largest value is within the "
        "upper bound (min 0 for Clip, no negative slope for ReLU6) (input 4 and output 4 fractional bits).")


@pytest.mark.parametrize("spec, field", [(layer("r6", "ReLU6", threshold=float("nan")), "relu6_param.threshold"),
                                         (layer("c", "Clip", min=float("-inf"), max=1.0), "clip_param.min"),
                                         (layer("e", "ELU", alpha=float("inf")), "elu_param.alpha")])
def test_non_finite_parameters_are_refused(tmp_path, spec, field):
    proto = write_prototxt(tmp_path / "model.prototxt", build_net([spec], (3, 4, 4)))
    with pytest.raises(CmsisgenError) as info:
        load_net(proto)
    value = "nan" if spec["type"] == "ReLU6" else "-inf" if spec["type"] == "Clip" else "inf"
    assert str(info.value) == (f"{proto}: layer '{spec['name']}' ({spec['type']}): {field} is {value}; "
                               "parameters must be finite numbers")
