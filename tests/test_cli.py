"""The command-line interface: outputs, reports, determinism and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model, write_train_test
from cmsisgen.cli import main

LAYERS = [
    layer("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
    layer("conv2", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("relu2", "ReLU", inplace=True),
    layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def model(tmp_path: Path):
    return write_model(tmp_path, LAYERS, input_shape=(3, 16, 16))


@pytest.fixture()
def npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8), y=rng.integers(0, 10, size=40))
    return path


@pytest.mark.parametrize("command", [[], ["compile"], ["evaluate"], ["inspect"], ["verify"]])
def test_help_on_every_command(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_compile_writes_sources_table_and_report(tmp_path, model, npz):
    proto, weights = model
    out = tmp_path / "out"
    result = run("compile", proto, weights, "-o", out, "--calib", npz, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".cmsisgen-manifest", "nn.c", "nn.h", "parameters.h", "weights.c",
                                                     "weights.h"]
    assert "arm_convolve_HWC_q7_RGB" in result.output and "arm_fully_connected_q7_opt" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    names = [entry["name"] for entry in report["layers"]]
    # relu1 runs after the max pool that reads it (cmsisgen/mapper/commute.py); pool2 averages
    assert names == ["data", "conv1", "pool1", "relu1", "conv2", "relu2", "pool2", "ip1"]
    conv1 = report["layers"][1]
    assert conv1["function"] == "arm_convolve_HWC_q7_RGB"
    assert conv1["input_shape"] == [3, 16, 16] and conv1["output_shape"] == [8, 16, 16]
    assert conv1["macs"] == 16 * 16 * 8 * 3 * 9
    assert conv1["weight_bytes"] == 8 * 3 * 9 + 8
    assert set(report["totals"]) == {"weight_bytes", "activation_bytes", "scratch_bytes", "macs", "arena_bytes",
                                     "input_buffer_bytes"}
    assert report["totals"]["input_buffer_bytes"] == 3 * 16 * 16 + 1  # RGB conv reads one byte past the image
    assert report["layers"][0]["output_region"] == "image" and report["buffers"][0]["name"] == "data"
    assert "buffer plan" in result.output and "conv1 (scratch)" in result.output
    assert report["totals"]["macs"] == sum(entry["macs"] for entry in report["layers"])
    params = (out / "parameters.h").read_text()
    assert f"#define CONV1_OUT_RSHIFT {conv1['out_rshift']}" in params


def test_compile_is_byte_identical(tmp_path, model, npz):
    proto, weights = model
    for name in ("a", "b"):
        assert run("compile", proto, weights, "-o", tmp_path / name, "--calib", npz, "--test-vectors", "3").exit_code == 0
    for file in ("nn.c", "nn.h", "parameters.h", "weights.h", "weights.c", "test_vectors.h"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_compile_without_calib_warns_once(tmp_path, model):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o")
    assert result.exit_code == 0
    text = result.output  # click >= 8.2: stdout and stderr as the terminal shows them
    assert text.count("no --calib given") == 1
    assert "random uniform images" in text


def test_missing_model_is_one_line_error_and_no_output(tmp_path):
    out = tmp_path / "out"
    result = run("compile", tmp_path / "nope.prototxt", tmp_path / "nope.caffemodel", "-o", out)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("cmsisgen: error:")]
    assert len(lines) == 1 and "nope.prototxt" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unsupported_layer_leaves_no_output(tmp_path):
    proto, weights = write_model(tmp_path, [
        layer("conv1", "Convolution", num_output=4, kernel_size=3),
        layer("conv2", "Convolution", num_output=4, kernel_size=2, dilation=2),
    ], input_shape=(3, 8, 8))
    out = tmp_path / "out"
    result = run("compile", proto, weights, "-o", out, "--kernel", "conv2=arm_convolve_HWC_q7_basic")
    assert result.exit_code == 2
    assert f"cmsisgen: error: {proto}: layer 'conv2' (Convolution): arm_convolve_HWC_q7_basic cannot run" in result.output
    assert "dilation must be 1" in result.output
    assert not out.exists()


def test_evaluate_prints_and_writes_json(tmp_path, model, npz):
    proto, weights = model
    result = run("evaluate", proto, weights, "--data", npz, "--calib", npz, "--limit", "30", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == {"n", "float_top1", "q7_top1", "agreement"}
    assert data["n"] == 30
    assert all(0.0 <= data[key] <= 1.0 for key in ("float_top1", "q7_top1", "agreement"))
    assert "q7 top-1" in result.output


def test_inspect_prints_shapes(model):
    proto, weights = model
    result = run("inspect", proto, weights)
    assert result.exit_code == 0, result.output
    assert "pool2" in result.output and "4x4x4" in result.output
    assert "blobs (10,64) (10)" in result.output.replace(", ", ",")


def test_non_image_input_names_the_file(tmp_path):
    proto, weights = write_model(tmp_path, [layer("ip1", "InnerProduct", num_output=3)], input_shape=(4, 8, 8))
    result = run("compile", proto, weights, "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert f"cmsisgen: error: {proto}: the network input has 4 channels; image input needs 1 or 3" in result.output


def test_prototxt_mean_file_missing_is_error_unless_mean_given(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3), layer("ip1", "InnerProduct", num_output=3)]
    _, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    train_test = write_train_test(tmp_path, layers, crop_size=8, mean_file="missing_mean.binaryproto")
    result = run("compile", train_test, weights, "-o", tmp_path / "o1")
    assert result.exit_code == 2
    assert "mean_file 'missing_mean.binaryproto' does not exist" in result.output
    result = run("compile", train_test, weights, "-o", tmp_path / "o2", "--mean", "120,110,100")
    assert result.exit_code == 0, result.output


def test_unwritable_report_leaves_no_output(tmp_path, model):
    proto, weights = model
    out = tmp_path / "out"
    (tmp_path / "a_file").write_text("not a folder")
    result = run("compile", proto, weights, "-o", out, "--report", tmp_path / "a_file" / "r.json")
    assert result.exit_code == 2
    assert f"cmsisgen: error: {tmp_path / 'a_file' / 'r.json'}: cannot write the report" in result.output
    assert not out.exists()


def test_recompiling_removes_files_of_the_previous_model(tmp_path, model):
    proto, weights = model
    out = tmp_path / "out"
    assert run("compile", proto, weights, "-o", out, "--test-vectors", "2").exit_code == 0
    assert (out / "test_vectors.h").exists()
    assert run("compile", proto, weights, "-o", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".cmsisgen-manifest", "nn.c", "nn.h", "parameters.h", "weights.c",
                                                     "weights.h"]


def test_more_test_vectors_than_images_is_an_error(tmp_path, model, npz):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--calib", npz, "--test-vectors", "50")
    assert result.exit_code == 2
    assert f"cmsisgen: error: --test-vectors 50: {npz} holds only 40 images" in result.output
    assert "calibrating" not in result.output  # found out before calibration


@pytest.mark.parametrize("option, message", [
    (["--scale", "0"], "cmsisgen: error: --scale 0.0: must be a positive, finite number"),
    (["--scale", "nan"], "cmsisgen: error: --scale nan: must be a positive, finite number"),
    (["--mean", "1,2"], "cmsisgen: error: --mean: 2 mean values given for a 3-channel input"),
])
def test_bad_preprocessing_options_name_the_option(tmp_path, model, option, message):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o", *option)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_layer_names_that_clash_as_c_identifiers(tmp_path):
    proto, weights = write_model(tmp_path, [
        layer("conv-1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("conv_1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("conv_1_2", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("nn_output", "ReLU", inplace=True),
        layer("conv*/1", "Convolution", num_output=4, kernel_size=1),
        layer("ip", "InnerProduct", num_output=3),
    ], input_shape=(3, 6, 6))
    out = tmp_path / "out"
    assert run("compile", proto, weights, "-o", out).exit_code == 0
    nn_c = (out / "nn.c").read_text()
    params = (out / "parameters.h").read_text()
    macros = [line.split()[1] for text in (nn_c, params) for line in text.splitlines() if line.startswith("#define")]
    assert len(macros) == len(set(macros))
    assert "#define L_NN_OUTPUT_SIZE" in params and "#define NN_OUTPUT_SIZE" not in params
    assert "conv*/1" not in nn_c and "conv* /1" in nn_c


def test_softmax_must_be_the_output(tmp_path):
    proto, weights = write_model(tmp_path, [
        layer("ip1", "InnerProduct", num_output=4), layer("prob", "Softmax"),
        layer("ip2", "InnerProduct", num_output=3)], input_shape=(3, 4, 4))
    result = run("compile", proto, weights, "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr == (f"cmsisgen: error: {proto}: layer 'prob' (Softmax): no kernel fits: "
                             "arm_softmax_q7: arm_softmax_q7 writes Q0.7 whatever follows, so a Softmax is supported "
                             "only as a network output: no layer may read it (read by 'ip2').\n")


def test_pooling_window_outside_the_image_is_refused(tmp_path):
    proto, weights = write_model(tmp_path, [
        layer("c", "Convolution", num_output=4, kernel_size=1),
        layer("p", "Pooling", pool="MAX", kernel_size=1, stride=2)], input_shape=(3, 8, 8))
    result = run("compile", proto, weights, "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert (f"cmsisgen: error: {proto}: layer 'p' (Pooling): no kernel fits: "
            "Every pooling window must start inside the image") in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--calib-limit", "0"], "cmsisgen: error: compile: Invalid value for '--calib-limit': 0 is not in the range x>=1 "
                             "(see 'main compile --help')"),
    (["--test-vectors", "-1"], "cmsisgen: error: compile: Invalid value for '--test-vectors': -1 is not in the range 0<=x<=2147483647"),
    (["--fc", "fast"], "cmsisgen: error: compile: Invalid value for '--fc': 'fast' is not one of 'opt', 'plain'"),
    (["--bogus"], "cmsisgen: error: compile: No such option '--bogus'"),
    (["-o"], "cmsisgen: error: command line: Option '-o' requires an argument"),
])
def test_option_errors_are_one_line(tmp_path, model, args, message):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o", *args)
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "o").exists()


def test_usage_errors_are_one_line(tmp_path, model):
    proto, weights = model
    (tmp_path / "file").write_text("x")
    for args, message in [
        (["compile", proto, weights, "-o", tmp_path / "file"],
         f"cmsisgen: error: {tmp_path / 'file'}: exists and is not a folder (-o names the output folder)"),
        (["compile", proto, weights], "cmsisgen: error: compile: Missing option '-o' / '--out'"),
        (["compile", proto, weights, "--output", tmp_path / "out"],
         "cmsisgen: error: compile: Missing option '-o' / '--out' (--output names a blob where the network stops; "
         "the output folder is -o/--out, which --output was before cmsisgen 0.2) (see 'cmsisgen compile --help')"),
        (["verify", proto, weights, "--vectors", "0"], "cmsisgen: error: verify: Invalid value for '--vectors'"),
        (["inspect"], "cmsisgen: error: inspect: Missing argument 'MODEL'"),
        (["nosuch"], "cmsisgen: error: command line: No such command 'nosuch'"),
    ]:
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.output.startswith(message) and result.output.count("\n") == 1, result.output


def test_no_command_prints_the_help():
    result = run()
    assert result.exit_code == 0
    assert result.output.startswith("Usage:") and "compile" in result.output


@pytest.mark.parametrize("layers, message", [
    ([layer("ip1", "InnerProduct", num_output=4), layer("prob", "Softmax"), layer("ip2", "InnerProduct", num_output=3)],
     "model.prototxt: layer 'prob' (Softmax): no kernel fits: arm_softmax_q7: arm_softmax_q7 writes Q0.7 whatever follows"),
    ([layer("c", "Convolution", num_output=4, kernel_size=3), layer("flat", "Flatten"),
      layer("cat", "Concat", ["flat", "flat"], "cat")],
     "model.prototxt: layer 'flat' (Flatten): A Flatten output, or a Reshape that reorders the HWC bytes"),
])
def test_unsupported_wiring_is_refused_before_reading_images(tmp_path, npz, layers, message):
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 16, 16))
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--calib", npz)
    assert result.exit_code == 2
    assert message in result.output
    assert "reading" not in result.output and "calibrating" not in result.output


def test_images_of_the_wrong_size_name_the_data_set(tmp_path, model):
    proto, weights = model
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((4, 12, 12, 3), dtype=np.uint8), y=np.zeros(4, dtype=int))
    for args in (["--calib", small], ["--test-vectors", "2", "--data", small]):
        result = run("compile", proto, weights, "-o", tmp_path / "o", *args)
        assert result.exit_code == 2
        assert f"cmsisgen: error: {small}: images are 12x12, the network input is 16x16" in result.output
        assert "calibrating" not in result.output and not (tmp_path / "o").exists()
    result = run("evaluate", proto, weights, "--data", small)
    assert result.exit_code == 2 and f"cmsisgen: error: {small}: images are 12x12" in result.output


def test_data_without_test_vectors_is_an_error(tmp_path, model, npz):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--data", npz)
    assert result.exit_code == 2
    assert result.stderr == "cmsisgen: error: --data: only used with --test-vectors N\n"


def test_table_marks_the_copies(tmp_path):
    proto, weights = write_model(tmp_path, [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("pool", "Pooling", "conv1", "pool", pool="MAX", kernel_size=2, stride=2),
        layer("pool2", "Pooling", "conv1", "pool2", pool="AVE", kernel_size=2, stride=2),
        layer("cat", "Concat", ["pool", "pool2"], "cat")], input_shape=(3, 8, 8))
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert any(line.split()[1:4] == ["pool", "(copy)", "memcpy"] for line in result.output.splitlines())
    names = [(entry["name"], entry["type"]) for entry in json.loads((tmp_path / "r.json").read_text())["layers"]]
    assert ("pool", "Copy") in names and ("pool", "Pooling") in names


def test_help_names_the_values():
    text = run("compile", "--help").output
    for usage in ("-o, --out OUT", "--calib-limit N", "--test-vectors N", "--report FILE.json"):
        assert usage in text, usage
    assert "INTEGER RANGE" not in text and "DIRECTORY" not in run("verify", "--help").output


def test_evaluate_lines_are_aligned(tmp_path, model, npz):
    proto, weights = model
    result = run("evaluate", proto, weights, "--data", npz, "--calib", npz)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.split(":")[0] in
             ("images", "float top-1", "q7 top-1", "agreement")]
    assert len(lines) == 4 and len({line.index(line.split()[-1]) for line in lines}) == 1, lines


def test_unwritable_output_is_refused_before_any_work(tmp_path, model, npz):
    proto, weights = model
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run("compile", proto, weights, "-o", blocker / "out", "--calib", npz)
    assert result.exit_code == 2
    assert f"cmsisgen: error: {blocker / 'out'}: cannot write the output folder ({blocker} is not a writable folder)" in result.output
    assert "calibrating" not in result.output and "reading calibration images" not in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output == "cmsisgen, version 0.2.0\n"


def test_quiet_prints_nothing_on_success(tmp_path, model):
    proto, weights = model
    result = run("--quiet", "compile", proto, weights, "-o", tmp_path / "o")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "o" / "nn.c").is_file()


def test_quiet_still_prints_errors_and_results(tmp_path, model, npz):
    proto, weights = model
    result = run("-q", "compile", proto, "nope.caffemodel", "-o", tmp_path / "o")
    assert result.exit_code == 2 and result.stderr == "cmsisgen: error: nope.caffemodel: weights file not found\n"
    result = run("-q", "evaluate", proto, weights, "--data", npz, "--calib", npz)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines()[0] == "images:      40"


def test_verbose_prints_stage_timings(tmp_path, model, npz):
    proto, weights = model
    result = run("--verbose", "compile", proto, weights, "-o", tmp_path / "o", "--calib", npz)
    assert result.exit_code == 0, result.output
    stages = [line.split(": ")[1] for line in result.stderr.splitlines()
              if line.startswith("cmsisgen: ") and line.endswith(" s") and line.count(": ") == 2]
    assert stages == ["loading and checking the model", "reading calibration images",
                      "calibrating, quantizing, mapping", "rendering C", "writing the output"], result.stderr
    assert f"cmsisgen: {proto}: 7 layers, input 3x16x16, output 10x1x1" in result.stderr
    lines = result.stderr.splitlines()
    after = lines[lines.index(next(line for line in lines if line.startswith("cmsisgen: calibrating"))) + 1]
    assert after.startswith("cmsisgen: ") and "arena" in after, result.stderr  # the buffer plan's size


def test_compile_json_summary(tmp_path, model):
    proto, weights = model
    out = tmp_path / "o"
    result = run("compile", proto, weights, "-o", out, "--json", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the whole of stdout is the JSON (no table)
    assert list(summary) == ["model", "weights", "out", "files", "report", "backend", "cpu", "calib_method", "layers",
                             "totals", "memory", "warnings", "outputs"]
    assert (summary["backend"], summary["cpu"], summary["calib_method"]) == ("q7", None, "percentile=99.9")
    assert summary["out"] == str(out)  # the -o folder ("outputs": the network's)
    assert summary["files"] == [str(out / name) for name in ("nn.c", "nn.h", "parameters.h", "weights.c", "weights.h")]
    assert summary["report"] == str(tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert summary["layers"] == report["layers"] and summary["totals"] == report["totals"]
    assert summary["outputs"] == report["outputs"] == [{
        "name": "ip1", "argument": "scores", "shape": [10, 1, 1], "bytes": 10, "format": "Q3.4", "order": "vector",
        "tensor": "ip1", "region": "arena", "offset": 128}]
    memory = summary["memory"]
    assert 0 < memory["ram_bytes"] < 64 * 1024 and memory["flash_bytes"] == report["totals"]["weight_bytes"]
    assert (memory["ram_limit_bytes"], memory["flash_limit_bytes"], memory["fits"]) == (320 * 1024, 1024 * 1024, True)
    assert len(summary["warnings"]) == 2  # as printed on stderr: the guessed preprocessing, then no --calib
    assert summary["warnings"][0].endswith("no transform_param and no --mean/--scale: the input is the image as read, "
                                           "mean 0, scale 1, RGB (give --mean and --scale if the model was trained "
                                           "otherwise)")
    assert summary["warnings"][1].startswith("no --calib given")


def test_no_progress_bars_or_colour_off_a_terminal(tmp_path, model, npz):
    proto, weights = model
    result = CliRunner().invoke(main, ["evaluate", str(proto), str(weights), "--data", str(npz)], color=True)
    assert result.exit_code == 0, result.output
    assert "calibrating" not in result.output and "evaluating" not in result.output
    assert "\x1b[" not in result.output


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    import io

    from cmsisgen import cli

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._colour(_Terminal()) and not cli._colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._colour(_Terminal())


def test_error_prefix_is_coloured_on_a_terminal(monkeypatch, tmp_path):
    from cmsisgen import cli

    monkeypatch.setattr(cli, "_colour", lambda stream: True)
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.prototxt")], color=True)
    assert result.exit_code == 2
    assert result.stderr.startswith("\x1b[31m\x1b[1mcmsisgen: error:\x1b[0m ")


def test_layer_warnings_name_the_prototxt(tmp_path):
    """A warning about a layer is located like an error: the prototxt, then the layer."""
    proto, weights = write_model(tmp_path, [layer("p", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
                                            layer("ip1", "InnerProduct", num_output=3)], input_shape=(3, 8, 8))
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--kernel", "p=arm_avepool_q7_HWC", "--json")
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    padded = [w for w in warnings if "Caffe divides a padded border window" in w]
    assert len(padded) == 1 and padded[0].startswith(f"{proto}: layer 'p': ")
    assert f"cmsisgen: warning: {padded[0]}" in result.stderr.splitlines()


def test_closed_stdout_is_not_an_error(model):
    """`cmsisgen inspect ... | head`: a reader that stops early gets no error line, no traceback."""
    import os
    import subprocess
    import sys

    prototxt, weights = model
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-c", "from cmsisgen.cli import main; main()", "inspect",
                               str(prototxt), str(weights)], stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_inspect_columns_follow_the_longest_layer_name(tmp_path):
    long = "a_rather_long_layer_name_for_a_convolution"
    proto, weights = write_model(tmp_path, [layer(long, "Convolution", num_output=4, kernel_size=3),
                                            layer("ip", "InnerProduct", num_output=3)], input_shape=(3, 6, 6))
    output = run("inspect", proto, weights).output
    lines = [line for line in output.splitlines() if line.startswith("  ") and "->" in line]
    starts = {line.index("Convolution" if line.startswith("  " + long) else "InnerProduct") for line in lines}
    assert len(lines) == 2 and starts == {2 + len(long) + 1}


CPU_UNUSED = ("cmsisgen: warning: --cpu {cpu}: has no effect on the q7 backend (the legacy q7 API has no Helium "
              "build: its code is the same on every core); --cpu plans the s8 code")


def test_cpu_with_the_q7_backend_is_a_warning_and_changes_nothing(tmp_path, model, npz):
    proto, weights = model
    plain = run("-q", "compile", proto, weights, "-o", tmp_path / "plain", "--calib", npz)
    assert plain.exit_code == 0 and plain.stderr == ""
    result = run("compile", proto, weights, "-o", tmp_path / "m55", "--calib", npz, "--cpu", "cortex-m55", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == CPU_UNUSED.format(cpu="cortex-m55")
    assert json.loads(result.stdout)["warnings"][0] == CPU_UNUSED.format(cpu="cortex-m55")[len("cmsisgen: warning: "):]
    for name in ("nn.c", "nn.h", "parameters.h", "weights.c", "weights.h"):
        assert (tmp_path / "m55" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    quiet = run("-q", "compile", proto, weights, "-o", tmp_path / "quiet", "--calib", npz, "--cpu", "cortex-m55")
    assert quiet.exit_code == 0 and quiet.stderr == ""  # -q: errors only
    evaluated = run("evaluate", proto, weights, "--data", npz, "--calib", npz, "--cpu", "cortex-m7")
    assert evaluated.exit_code == 0 and evaluated.stderr.splitlines()[0] == CPU_UNUSED.format(cpu="cortex-m7")


def test_cpu_with_the_s8_backend_is_no_warning(tmp_path, model, npz):
    proto, weights = model
    result = run("compile", proto, weights, "-o", tmp_path / "o", "--calib", npz, "--backend", "s8", "--cpu", "cortex-m55")
    assert result.exit_code == 0, result.output
    assert "--cpu" not in result.stderr


def test_verify_with_cpu_on_the_q7_backend_warns_and_runs(tmp_path, model, npz):
    """verify's --target still decides where the q7 code runs (qemu-m55 with the portable kernels:
    tests/test_qemu_m55.py); a --cpu that matches it is only the warning."""
    proto, weights = model
    result = run("verify", proto, weights, "--calib", npz, "--vectors", "2", "--cpu", "cortex-m7")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == CPU_UNUSED.format(cpu="cortex-m7")
    assert result.stdout.splitlines()[-1] == "2/2 vectors bit-exact"


@pytest.mark.parametrize("options, recorded", [
    ([], ("q7", None, "percentile=99.9")),  # q7's default method
    (["--cpu", "cortex-m55"], ("q7", None, "percentile=99.9")),  # q7 code is planned for no core
    (["--calib-method", "percentile"], ("q7", None, "percentile=99.99")),  # P spelled out
    (["--calib-method", "percentile=99.90"], ("q7", None, "percentile=99.9")),
    (["--calib-method", "kl"], ("q7", None, "kl")),
    (["--backend", "s8"], ("s8", "cortex-m7", "max")),  # s8's default method and core
    (["--backend", "s8", "--cpu", "cortex-m55", "--calib-method", "percentile=100"], ("s8", "cortex-m55", "percentile=100")),
])
def test_report_and_summary_record_backend_cpu_and_calibration_method(tmp_path, model, npz, options, recorded):
    """A report read apart from its command says what made it: the backend, the core the s8 code
    is planned for and the calibration method actually used (the backend's default if none given)."""
    proto, weights = model
    result = run("-q", "compile", proto, weights, "-o", tmp_path / "o", "--calib", npz, "--report", tmp_path / "r.json",
                 "--json", *options)
    assert result.exit_code == 0, result.output
    report, summary = json.loads((tmp_path / "r.json").read_text()), json.loads(result.stdout)
    for document in (report, summary):
        assert (document["backend"], document["cpu"], document["calib_method"]) == recorded
