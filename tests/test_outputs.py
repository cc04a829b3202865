"""Several network outputs and --output BLOB (issue 12, items 2 and 5): where the net stops,
what run_nn() writes, and the errors on the way (exact messages)."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from caffe_models import build_net, layer as L, write_model, write_prototxt
from cli_run import run
from random_nets import CATALOGUE, write_random_net

from cmsisgen.errors import SettingError
from cmsisgen.loader import load_net
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.execute import run_program
from cmsisgen.verify import build_and_run, format_result, parse_output

TRUNK = [
    L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    L("relu1", "ReLU", inplace=True),
    L("mbox_loc", "Convolution", "conv1", "mbox_loc", num_output=8, kernel_size=1),
    L("mbox_conf", "Convolution", "conv1", "mbox_conf", num_output=6, kernel_size=1),
]
HEAD = [
    L("mbox_priorbox", "PriorBox", ["conv1", "data"], "mbox_priorbox"),
    L("detection_out", "DetectionOutput", ["mbox_loc", "mbox_conf", "mbox_priorbox"], "detection_out"),
]
#: The same heads as an SSD prototxt writes them, with the fork's parameters.
SSD_HEAD = """
layer { name: "mbox_priorbox" type: "PriorBox" bottom: "conv1" bottom: "data" top: "mbox_priorbox"
  prior_box_param { min_size: 4.0 aspect_ratio: 2.0 flip: true clip: false
    variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 1.0 offset: 0.5 } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc" bottom: "mbox_conf"
  bottom: "mbox_priorbox" top: "detection_out" include { phase: TEST }
  detection_output_param { num_classes: 2 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 400 } code_type: CENTER_SIZE keep_top_k: 200
    confidence_threshold: 0.01 save_output_param { label_map_file: "labelmap.prototxt" } } }
"""


@pytest.fixture
def ssd(tmp_path):
    """An SSD-like net: trained trunk and heads, then PriorBox and DetectionOutput."""
    trunk, weights = write_model(tmp_path, TRUNK, input_shape=(3, 8, 8))
    proto = tmp_path / "ssd.prototxt"
    proto.write_text(trunk.read_text() + SSD_HEAD)
    return proto, weights


def test_detection_heads_are_refused_by_name_suggesting_output(ssd):
    proto, weights = ssd
    result = run("compile", proto, weights, "-o", proto.parent / "out")
    assert result.exit_code == 2
    assert result.output == (
        f"cmsisgen: error: {proto}: layer 'mbox_priorbox' (PriorBox), layer 'detection_out' (DetectionOutput): "
        "detection heads (PriorBox, DetectionOutput) are not supported by cmsisgen; compile the network before "
        "them with --output BLOB (here --output mbox_loc,mbox_conf)\n")
    assert not (proto.parent / "out").exists()


def test_detection_heads_beside_other_unsupported_types_name_them_all(tmp_path):
    layers = TRUNK + [L("norm", "Normalize", "conv1", "norm")] + HEAD
    proto = write_prototxt(tmp_path / "ssd.prototxt", build_net(layers, input_shape=(3, 8, 8)))
    result = run("inspect", proto)
    assert result.exit_code == 2
    assert result.output.startswith(
        f"cmsisgen: error: {proto}: layer 'mbox_priorbox' (PriorBox), layer 'detection_out' (DetectionOutput): "
        "detection heads (PriorBox, DetectionOutput) are not supported by cmsisgen; compile the network before "
        "them with --output BLOB (here --output mbox_loc,mbox_conf); layer 'norm' (Normalize): not supported by "
        "cmsisgen; supported layer types: ")
    assert result.output.count("\n") == 1


def test_output_cuts_the_net_before_the_detection_heads(ssd, tmp_path):
    proto, weights = ssd
    result = run("inspect", proto, weights, "--output", "mbox_loc", "--output", "mbox_conf")
    assert result.exit_code == 0, result.output
    assert "PriorBox" not in result.output and result.output.endswith("  outputs: mbox_loc, mbox_conf\n")
    out = tmp_path / "out"
    result = run("compile", proto, weights, "-o", out, "--output", "mbox_conf,mbox_loc", "--test-vectors", "2")
    assert result.exit_code == 0, result.output
    header = (out / "nn.h").read_text()
    # prototxt order of the layers, not the order given
    assert "arm_status run_nn(uint8_t *image, q7_t *mbox_loc, q7_t *mbox_conf);" in header
    assert "#define NN_OUTPUT_MBOX_LOC_SIZE 512\n#define NN_OUTPUT_MBOX_LOC_FRAC_BITS" in header
    assert '#define NN_OUTPUT_MBOX_CONF_NAME "mbox_conf"' in header
    assert "a 8x8x8 tensor (HWC)" in header and "#define NN_OUTPUT_SIZE" not in header


def test_an_unknown_output_blob_lists_the_blobs(ssd):
    proto, weights = ssd
    for command in (["inspect", proto, weights], ["compile", proto, weights, "-o", proto.parent / "o"],
                    ["evaluate", proto, weights, "--data", proto], ["verify", proto, weights]):
        result = run(*command, "--output", "mbox_lo")
        assert result.exit_code == 2, command
        assert result.output == (f"cmsisgen: error: {proto}: --output mbox_lo: the network has no blob 'mbox_lo' "
                                 "(blobs: data, conv1, mbox_loc, mbox_conf, mbox_priorbox, detection_out)\n"), command


def test_the_input_is_no_output(ssd):
    proto, weights = ssd
    result = run("inspect", proto, weights, "--output", "data")
    assert result.exit_code == 2
    assert result.output == (f"cmsisgen: error: {proto}: --output data: 'data' is an input of the network; "
                             "name a blob that a layer computes\n")


def test_an_empty_output_name_is_refused(ssd):
    proto, weights = ssd
    result = run("inspect", proto, weights, "--output", "mbox_loc,")
    assert result.exit_code == 2
    assert result.output == "cmsisgen: error: --output 'mbox_loc,': a blob name is empty\n"


def test_an_output_before_an_in_place_layer_is_its_last_version(tmp_path):
    """--output conv1 names the blob as pycaffe shows it after a forward: after relu1 (in place)."""
    proto, weights = write_model(tmp_path, TRUNK, input_shape=(3, 8, 8))
    net = load_net(proto, weights, outputs=["conv1"])
    assert [layer.name for layer in net.layers] == ["conv1", "relu1"] and net.outputs == ["conv1@1"]


def _compile(tmp_path, name, **options):
    files = write_random_net(tmp_path, name, seed=5)
    data = np.load(files.calib)
    return compile_model(files.prototxt, files.weights, calib_images=data["x"], **{**files.compile_kwargs(),
                                                                                     **options})


def test_an_output_read_by_later_layers_survives_to_the_end(tmp_path):
    compiled = _compile(tmp_path, "output_read_later")
    program, plan = compiled.program, compiled.plan
    assert [(out.blob, out.size) for out in program.outputs] == [("conv2", 8 * 8 * 8), ("prob", 6)]
    conv2 = plan.tensors["conv2"]
    assert conv2.last == len(program.ops) - 1  # kept alive until run_nn() copies it out
    assert [op.function for op in program.ops if op.layer == "relu2"] == ["memcpy", "arm_relu_q7"]
    images = compiled.pre.prepare_images(np.load(write_random_net(tmp_path, "output_read_later").calib)["x"], 8, 8)
    every = run_program(program, images[:4], keep_all=True)
    parts = program.split_outputs(run_program(program, images[:4]))
    np.testing.assert_array_equal(parts["conv2"], every["conv2"].transpose(0, 3, 1, 2).reshape(4, -1))
    np.testing.assert_array_equal(parts["prob"], every["prob"].reshape(4, -1))


def test_a_head_cut_alone_computes_what_it_computes_in_the_whole_net(tmp_path):
    whole = _compile(tmp_path, "face_onet_3heads")
    alone = _compile(tmp_path, "face_onet_3heads", output="conv6-2")
    assert [out.blob for out in whole.program.outputs] == ["prob1", "conv6-2", "conv6-3"]
    assert [out.blob for out in alone.program.outputs] == ["conv6-2"]
    images = whole.pre.prepare_images(np.random.default_rng(0).integers(0, 256, (8, 12, 12, 3), dtype=np.uint8), 12, 12)
    np.testing.assert_array_equal(whole.program.split_outputs(run_program(whole.program, images))["conv6-2"],
                                  run_program(alone.program, images))


@pytest.fixture
def onet(tmp_path):
    files = write_random_net(tmp_path, "face_onet_3heads", seed=2, calib_images=20)
    y = np.load(files.calib)["y"] % 2
    data = tmp_path / "data.npz"
    np.savez(data, x=np.load(files.calib)["x"][..., :3][:, :12, :12], y=y)
    return files, data


def test_evaluate_scores_the_single_classifier_output_or_the_one_named(onet):
    files, data = onet
    default = run("evaluate", files.prototxt, files.weights, "--data", data, "--calib", files.calib, "--json")
    assert default.exit_code == 0, default.output
    named = run("evaluate", files.prototxt, files.weights, "--data", data, "--calib", files.calib,
                "--output", "prob1", "--json")
    assert named.exit_code == 0, named.output
    assert json.loads(default.stdout)["n"] == 20
    assert json.loads(default.stdout) == json.loads(named.stdout)


def test_evaluate_without_a_classifier_names_the_outputs(tmp_path):
    files = write_random_net(tmp_path, "face_pnet_2heads")
    result = run("evaluate", files.prototxt, files.weights, "--data", files.calib, "--mean", "0,0,0")
    assert result.exit_code == 2
    assert result.output == (f"cmsisgen: error: {files.prototxt}: the network has 2 outputs (conv4-1, conv4-2) and "
                             "no classifier (Softmax, ArgMax) among them; name the one to score with --output NAME\n")


def test_compile_report_lists_every_output(tmp_path):
    files = write_random_net(tmp_path, "face_pnet_2heads")
    result = run("compile", files.prototxt, files.weights, "-o", tmp_path / "out", "--report", "-",
                 *files.options())
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["outputs"]
    assert [(o["name"], o["argument"], o["shape"], o["bytes"], o["order"]) for o in outputs] == [
        ("conv4-1", "conv4_1", [2, 4, 3], 24, "HWC"), ("conv4-2", "conv4_2", [4, 4, 3], 48, "HWC")]
    table = run("compile", files.prototxt, files.weights, "-o", tmp_path / "out", *files.options())
    assert "run_nn() outputs, in argument order: conv4-1 (conv4_1, 2x4x3, 24 bytes, " in table.stdout


def test_arguments_that_c_already_uses_are_renamed():
    from cmsisgen.network_outputs import _argument

    assert [_argument(name, {"arm_relu_q7"}) for name in ("IMAGE", "INT", "Q7_T", "ARM_RELU_Q7", "PROB")] == [
        "image_out", "int_out", "q7_t_out", "arm_relu_q7_out", "prob"]


def test_verify_says_every_output_was_compared():
    text = ("cmsisgen selftest: 1 vectors, input 12x12x3, output 16, outputs 3, steps checked 12, counter ns\n"
            "vector 0: class 1 expected 1 label -1 PASS ns 100\nsummary: 1/1 PASS, ns per inference 100\n")
    result = parse_output(text)
    assert result.outputs == 3
    assert format_result(result).splitlines()[-2:] == [
        "checked: the scores of all 3 outputs and the output checksum of each of 12 steps", "1/1 vectors bit-exact"]


def test_catalogue_has_nets_with_several_outputs():
    assert {"face_pnet_2heads", "face_onet_3heads", "output_read_later"} <= set(CATALOGUE)


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
def test_the_self_test_checks_the_last_output_and_names_it(tmp_path):
    """A wrong value in the last element of the last output fails its vector, naming the output."""
    files = write_random_net(tmp_path, "face_onet_3heads", seed=2)
    out = tmp_path / "model"
    result = run("compile", files.prototxt, files.weights, "-o", out, "--test-vectors", "2", *files.options())
    assert result.exit_code == 0, result.output
    path = out / "test_vectors.h"
    text = path.read_text()
    start = text.index("static const q7_t nn_test_expected[NN_TEST_VECTOR_COUNT][NN_TEST_OUTPUT_SIZE] = {")
    rows = list(re.finditer(r"\{ ([^{}]*) \}", text[start:]))
    values = rows[1][1].split(", ")
    want = int(values[-1])
    values[-1] = str(want - 1 if want > -128 else want + 1)
    path.write_text(text[:start + rows[1].start(1)] + ", ".join(values) + text[start + rows[1].end(1):])
    verdict = build_and_run(out, "host", tmp_path / "build")
    assert [v.passed for v in verdict.vectors] == [True, False]
    assert verdict.vectors[1].detail.endswith(f'mismatch 15 got {want} want {values[-1]} in output "conv6-3" element 9')


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("g++") is None, reason="needs gcc and g++")
def test_awkward_output_names_compile_in_c_and_cpp(tmp_path):
    """Blobs named like a run_nn() argument, a C++ keyword, or two names with one C spelling:
    each output still gets its own argument and macros, and nn.c / nn.h compile."""
    import subprocess

    from cmsisgen.codegen import render
    from cmsisgen.verify import firmware_dir

    layers = [L("conv1", "Convolution", num_output=4, kernel_size=3),
              L("a", "Convolution", "conv1", "image", num_output=2, kernel_size=1),
              L("b", "Convolution", "conv1", "class", num_output=2, kernel_size=1),
              L("c", "Convolution", "conv1", "conv-1", num_output=2, kernel_size=1),
              L("d", "Convolution", "conv1", "conv_1", num_output=2, kernel_size=1)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 6, 6))
    compiled = compile_model(proto, weights)
    files = render(compiled.program, compiled.plan, "model.prototxt")
    assert "arm_status run_nn(uint8_t *image, q7_t *image_out, q7_t *class_out, q7_t *conv_1, q7_t *conv1);" \
        in files["nn.h"]
    assert '#define NN_OUTPUT_CONV1_NAME "conv_1"' in files["nn.h"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    include = ["-I", str(tmp_path), "-I", str(firmware_dir() / "cmsis_nn_portable" / "Include")]
    c = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *include, "-c", str(tmp_path / "nn.c"),
                        "-o", str(tmp_path / "nn.o")], capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    (tmp_path / "user.cpp").write_text('#include "nn.h"\nint main() { return NN_OUTPUT_COUNT == 4 ? 0 : 1; }\n')
    cpp = subprocess.run(["g++", "-Wall", "-Wextra", "-Werror", *include, "-fsyntax-only", str(tmp_path / "user.cpp")],
                         capture_output=True, text=True)
    assert cpp.returncode == 0, cpp.stderr


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
def test_verify_with_output_checks_every_output(tmp_path, monkeypatch):
    """compile, verify and evaluate all take --output: a blob that later layers read plus the softmax.
    The host build uses the portable kernels: upstream CMSIS-NN built for the host takes its
    plain-C paths, whose average pool rounds unlike the Cortex-M DSP build the simulator models."""
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    files = write_random_net(tmp_path, "output_read_later", seed=1)
    result = run("-q", "verify", files.prototxt, files.weights, *files.options(), "--vectors", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        "checked: the scores of all 2 outputs and the output checksum of each of 9 steps", "2/2 vectors bit-exact"]
    scored = run("-q", "evaluate", files.prototxt, files.weights, *files.options(), "--data", files.calib, "--json")
    assert scored.exit_code == 2  # the one classifier (prob) beside conv2 is scored: 6 classes
    assert scored.output == (f"cmsisgen: error: {files.calib}: label 9 (class '9') is out of range: output 'prob' "
                             "has 6 values, so labels must be 0..5\n")
    data = tmp_path / "six.npz"
    np.savez(data, x=np.load(files.calib)["x"], y=np.arange(16) % 6)
    scored = run("-q", "evaluate", files.prototxt, files.weights, *files.options(), "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["n"] == 16


def test_an_argmax_head_is_the_classifier_a_per_pixel_one_is_not(tmp_path):
    from cmsisgen.evaluate import scored_output

    trunk = [L("conv1", "Convolution", num_output=5, kernel_size=3),
             L("box", "Convolution", "conv1", "box", num_output=4, kernel_size=1)]
    proto, _ = write_model(tmp_path, trunk + [L("cls", "ArgMax", "conv1", "cls")], input_shape=(3, 6, 6))
    assert scored_output(load_net(proto)) == "cls"
    proto, _ = write_model(tmp_path, trunk + [L("seg", "ArgMax", "conv1", "seg", axis=1)], input_shape=(3, 6, 6))
    with pytest.raises(SettingError) as error:
        scored_output(load_net(proto))
    assert str(error.value).endswith("the network has 2 outputs (box, seg) and no classifier (Softmax, ArgMax) "
                                     "among them; name the one to score with output NAME")


def test_an_input_field_blob_is_no_output(tmp_path):
    """The example declares its input with `input:` fields (no layer): --output data says it is
    the network's input, on every command, and writes nothing."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "cifar10"
    proto, weights = example / "cifar10.prototxt", example / "cifar10.caffemodel"
    for command in (["inspect", proto, weights], ["compile", proto, weights, "-o", tmp_path / "o"],
                    ["evaluate", proto, weights, "--data", proto], ["verify", proto, weights]):
        result = run(*command, "--output", "data")
        assert result.exit_code == 2, command
        assert result.output == (f"cmsisgen: error: {proto}: --output data: 'data' is an input of the network; "
                                 "name a blob that a layer computes\n"), command
    assert not (tmp_path / "o").exists()
