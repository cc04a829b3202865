"""Hostile inputs get honest errors: every failure is exactly one line on stderr,
``cmsisgen: error: <where>: <what>``, with exit status 2 and no traceback; a failed run
leaves an existing output folder exactly as it was.

Every test runs the real CLI (click's CliRunner) in a temporary working folder, so paths
in the messages are short and the expected line is spelled out in full.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import build_net, layer, make_weights, write_caffemodel, write_model, write_prototxt
from cmsisgen import codegen, output
from cmsisgen.cli import main
from cmsisgen.errors import CmsisgenError

LAYERS = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
]
NO_CALIB = ("cmsisgen: warning: no --calib given: activation ranges were estimated from 64 random uniform "
            "images; give --calib with real images for a better quantization")
GUESSED = ("cmsisgen: warning: model.prototxt: no transform_param and no --mean/--scale: the input is the image "
           "as read, mean 0, scale 1, RGB (give --mean and --scale if the model was trained otherwise)")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def expect_error(args, message: str, *, alone: bool = True):
    """Exit status 2, nothing on stdout, and the error as the one error line on stderr
    (``alone``: the only line at all; data-set errors follow a 'reading ...' line)."""
    result = run(*args)
    print(result.stderr)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("cmsisgen: error")] == [f"cmsisgen: error: {message}"]
    assert lines[-1] == f"cmsisgen: error: {message}"
    if alone:
        assert lines == [f"cmsisgen: error: {message}"]
    assert result.stdout == ""
    return result


@pytest.fixture()
def model():
    return write_model(Path("."), LAYERS, input_shape=(3, 8, 8))


def compile_args(proto, weights, *extra):
    return ["compile", proto, weights, "-o", "out", *extra]


# ----------------------------------------------------------------------------- files


def test_missing_prototxt(model):
    _, weights = model
    expect_error(compile_args("nope.prototxt", weights), "nope.prototxt: cannot read prototxt (No such file or directory)")


def test_a_real_process_exits_2_with_one_line(model):
    """The installed entry point, not only click's test runner: exit status 2, one line."""
    import subprocess
    import sys

    _, weights = model
    proc = subprocess.run([sys.executable, "-m", "cmsisgen.cli", *map(str, compile_args("nope.prototxt", weights))],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "cmsisgen: error: nope.prototxt: cannot read prototxt (No such file or directory)\n"


def test_missing_weights(model):
    proto, _ = model
    expect_error(compile_args(proto, "nope.caffemodel"), "nope.caffemodel: weights file not found")


def test_directory_as_prototxt(model):
    _, weights = model
    Path("adir").mkdir()
    expect_error(compile_args("adir", weights), "adir: is a directory, expected a .prototxt file")


def test_directory_as_weights(model):
    proto, _ = model
    Path("adir").mkdir()
    expect_error(compile_args(proto, "adir"), "adir: is a directory, expected a .caffemodel or .caffemodel.h5 file")


def test_directory_as_mean_file(model):
    proto, weights = model
    Path("adir").mkdir()
    expect_error(compile_args(proto, weights, "--mean", "adir"),
                 "--mean 'adir': is a directory; give a mean.binaryproto file or per-channel values such as 104,117,123")


def test_file_as_output_folder(model):
    proto, weights = model
    Path("out").write_text("a file")
    expect_error(compile_args(proto, weights), "out: exists and is not a folder (-o names the output folder)")


def test_empty_prototxt(model):
    _, weights = model
    Path("empty.prototxt").write_text("\n  \n")
    expect_error(compile_args("empty.prototxt", weights), "empty.prototxt: empty file, expected a Caffe prototxt")


def test_empty_caffemodel(model):
    proto, _ = model
    Path("empty.caffemodel").write_bytes(b"")
    expect_error(compile_args(proto, "empty.caffemodel"), "empty.caffemodel: not a readable .caffemodel (empty file)")


def test_prototxt_syntax_error_has_line_and_column(model):
    _, weights = model
    Path("bad.prototxt").write_text('name: "x"\ninput: "data"\ninput_dim: 1\nlayer {\n  name: "ip1" type: "InnerProduct"\n'
                                    '  inner_product_param { num_output: ten }\n}\n')
    expect_error(compile_args("bad.prototxt", weights),
                 "bad.prototxt:6:37: syntax error: '  inner_product_param { num_output: ten }': "
                 "Couldn't parse integer: ten")


def test_prototxt_unclosed_brace(model):
    _, weights = model
    Path("bad.prototxt").write_text('name: "x"\nlayer {\n  name: "ip1"\n')
    expect_error(compile_args("bad.prototxt", weights), 'bad.prototxt:3:9: syntax error: Expected "}".')


def test_deeply_nested_prototxt(model):
    _, weights = model
    # Caffe's schema nests no message in itself, so deep nesting needs unknown fields: the
    # first one stops the parse before any recursion.
    Path("deep.prototxt").write_text("foo " + "{ foo " * 5000 + "}" * 5000 + "\n")
    expect_error(compile_args("deep.prototxt", weights), "deep.prototxt:1:1: unknown field 'foo' in NetParameter")


def test_binary_file_as_prototxt(model):
    _, weights = model
    Path("blob.prototxt").write_bytes(b'name: "x"\n\x08\x01\x12\x03abc\xff\n')
    expect_error(compile_args("blob.prototxt", weights), r"blob.prototxt: not a text prototxt (line 2: \x08\x01\x12\x03abc\xff)")


def test_caffemodel_given_as_prototxt(model):
    _, weights = model
    expect_error(compile_args(weights, weights), r"model.caffemodel: not a text prototxt (line 2: \x07testnet\xa2\x06\x81\x04); "
                 "is this the weights file? give the prototxt first, then the weights")


def test_truncated_caffemodel(model):
    proto, weights = model
    raw = weights.read_bytes()
    Path("cut.caffemodel").write_bytes(raw[:len(raw) // 2])
    expect_error(compile_args(proto, "cut.caffemodel"),
                 "cut.caffemodel: not a readable .caffemodel (Error parsing message with type "
                 "'cmsisgen.caffe.NetParameter': Wire format was corrupt)")


def test_random_bytes_caffemodel(model):
    proto, _ = model
    Path("noise.caffemodel").write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    expect_error(compile_args(proto, "noise.caffemodel"),
                 "noise.caffemodel: not a readable .caffemodel (Error parsing message with type "
                 "'cmsisgen.caffe.NetParameter': Wire format was corrupt)")


def test_hdf5_without_the_data_group(model):
    import h5py

    proto, _ = model
    with h5py.File("w.caffemodel.h5", "w") as f:
        f.create_group("weights").create_dataset("0", data=np.zeros(3, np.float32))
    expect_error(compile_args(proto, "w.caffemodel.h5"), "w.caffemodel.h5: not a Caffe HDF5 model (no 'data' group)")


def test_hdf5_layer_that_is_not_a_group(model):
    import h5py

    proto, _ = model
    with h5py.File("w.caffemodel.h5", "w") as f:
        f.create_group("data").create_dataset("conv1", data=np.zeros(3, np.float32))
    expect_error(compile_args(proto, "w.caffemodel.h5"),
                 "w.caffemodel.h5: not a Caffe HDF5 model ('data/conv1' is not a group of blobs)")


# ----------------------------------------------------------------------------- weights


def test_weights_of_another_network_by_name(model):
    proto, _ = model
    other = [layer("c1", "Convolution", num_output=4, kernel_size=3, pad=1), layer("fc", "InnerProduct", num_output=10)]
    write_model(Path("."), other, input_shape=(3, 8, 8), stem="other")
    expect_error(compile_args(proto, "other.caffemodel"),
                 "other.caffemodel: no weights for layer 'conv1' (Convolution), which needs 2 blobs")


def test_weights_of_another_network_by_shape(model):
    proto, _ = model
    other = [layer("conv1", "Convolution", num_output=6, kernel_size=3, pad=1), layer("relu1", "ReLU", inplace=True),
             layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2), layer("ip1", "InnerProduct", num_output=10)]
    write_model(Path("."), other, input_shape=(3, 8, 8), stem="other", weights_format="h5")
    expect_error(compile_args(proto, "other.caffemodel.h5"),
                 "other.caffemodel.h5: layer 'conv1' (Convolution) blob 0 has shape (6, 3, 3, 3), "
                 "the prototxt needs (4, 3, 3, 3)")


@pytest.mark.parametrize("value, blob, count", [(np.nan, 0, 1), (np.inf, 1, 2)])
def test_nan_or_inf_in_weights(model, value, blob, count):
    proto, _ = model
    blobs = make_weights(proto, LAYERS)
    blobs["ip1"][blob].flat[:count] = value
    write_caffemodel(Path("bad.caffemodel"), LAYERS, blobs)
    kind = "weights" if blob == 0 else "bias"
    expect_error(compile_args(proto, "bad.caffemodel"),
                 f"bad.caffemodel: layer 'ip1' (InnerProduct) blob {blob} ({kind}) holds {count} NaN/Inf "
                 f"value{'s' if count > 1 else ''}")


def test_nan_or_inf_mean_value_in_the_prototxt():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    text = proto.read_text()
    train = ('name: "tt"\nlayer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }\n'
             '  transform_param { crop_size: 8 mean_value: 104 mean_value: nan mean_value: 123 } }\n')
    body = text.split("layer {", 2)[2]  # the seed's layers after its Input layer
    Path("tt.prototxt").write_text(train + "layer {" + body)
    expect_error(compile_args("tt.prototxt", weights),
                 "tt.prototxt: layer 'd' (Data): transform_param.mean_value[1] is nan; parameters must be finite numbers")


# ----------------------------------------------------------------------------- graph


def write_net(layers, input_shape=(3, 8, 8)):
    """A prototxt and weights for ``layers`` without shape inference (for broken graphs):
    the weights file holds no blobs, so the error can only come from the prototxt."""
    proto = write_prototxt(Path("net.prototxt"), build_net(layers, input_shape))
    write_caffemodel(Path("net.caffemodel"), [], {})
    return proto, Path("net.caffemodel")


def test_unknown_layer_type():
    proto, weights = write_net([layer("conv1", "Convolution", num_output=4, kernel_size=3),
                                dict(layer("warp", "Convolution"), type="Warp")])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'warp' (Warp): not supported by cmsisgen; supported layer types: AbsVal, "
                 "ArgMax, BNLL, BatchNorm, Clip, Concat, Convolution, ConvolutionDepthwise, Crop, Deconvolution, "
                 "Dropout, ELU, Eltwise, Flatten, InnerProduct, LRN, PReLU, Permute, Pooling, Power, ReLU, ReLU6, "
                 "Reshape, Scale, ShuffleChannel, Sigmoid, Slice, Softmax, Split, TanH, Threshold, Upsample (plus "
                 "Input and data layers; Accuracy and loss layers are dropped)")


def test_dangling_bottom():
    proto, weights = write_net([layer("conv1", "Convolution", num_output=4, kernel_size=3),
                                layer("ip1", "InnerProduct", "conv9", num_output=10)])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'ip1' (InnerProduct): input 'conv9' is not produced by any earlier layer")


def test_cycle_back_to_an_earlier_blob():
    """A Caffe net is a list: a layer that writes an earlier layer's top (not in place) would
    close a cycle, and is refused naming both."""
    proto, weights = write_net([layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
                                layer("conv2", "Convolution", "conv1", "conv2", num_output=4, kernel_size=3, pad=1),
                                layer("back", "Convolution", "conv2", "conv1", num_output=4, kernel_size=3, pad=1)])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'back' (Convolution): top 'conv1' is already produced by an earlier layer")


def test_layer_reading_its_own_output():
    proto, weights = write_net([layer("loop", "Convolution", "loop", "loop", num_output=4, kernel_size=3)])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'loop' (Convolution): input 'loop' is not produced by any earlier layer")


# ----------------------------------------------------------------------------- parameters


def test_dilation_is_refused_by_the_cmsis_nn_functions():
    """A dilated convolution runs on nn_conv_q7; forced onto a CMSIS-NN function, it is refused."""
    proto, weights = write_model(Path("."), [layer("conv1", "Convolution", num_output=4, kernel_size=3,
                                                   dilation=[2, 1]),
                                             layer("ip1", "InnerProduct", num_output=10)], input_shape=(3, 8, 8))
    expect_error(compile_args(proto, weights, "--kernel", "conv1=arm_convolve_HWC_q7_basic_nonsquare"),
                 "model.prototxt: layer 'conv1' (Convolution): arm_convolve_HWC_q7_basic_nonsquare cannot run it: "
                 "CMSIS-NN q7 convolutions have no dilation: dilation must be 1 (dilation 2x1).")


def test_padding_beyond_what_cmsis_nn_can_take():
    """Caffe allows any padding; CMSIS-NN takes it as uint16_t (and loops in int16_t), so such a
    layer runs on nn_conv_q7, and forced onto a CMSIS-NN function it is refused."""
    proto, weights = write_model(Path("."), [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=40000,
                                                   stride=40000), layer("ip1", "InnerProduct", num_output=10)],
                                 input_shape=(3, 8, 8))
    assert run(*compile_args(proto, weights)).exit_code == 0
    assert "nn_conv_q7(" in Path("out/nn.c").read_text()
    expect_error(compile_args(proto, weights, "--kernel", "conv1=arm_convolve_HWC_q7_basic_nonsquare"),
                 "model.prototxt: layer 'conv1' (Convolution): arm_convolve_HWC_q7_basic_nonsquare cannot run it: "
                 "CMSIS-NN passes sizes, kernel, "
                 "stride and padding as uint16_t and counts some loops in int16_t: each must be at most 32767 (input "
                 "8x8x3, output 3x3x4, kernel 3x3, stride 40000x40000, padding 40000x40000).")


def test_pooling_pad_not_below_kernel():
    proto, weights = write_net([layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2, pad=2),
                                layer("ip1", "InnerProduct", num_output=10)])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'pool' (Pooling): pad must be smaller than the kernel")


def test_group_not_dividing_the_channels():
    proto, weights = write_net([layer("conv1", "Convolution", num_output=6, kernel_size=3, group=2),
                                layer("ip1", "InnerProduct", num_output=10)])
    expect_error(compile_args(proto, weights),
                 "net.prototxt: layer 'conv1' (Convolution): group 2 does not divide input channels 3 and num_output 6")


def test_non_square_input_to_a_square_only_function():
    """Pooled by nn_pool_q7 unless the square CMSIS-NN function is forced, which is refused with its rule."""
    proto, weights = write_model(Path("."), [layer("conv1", "Convolution", num_output=4, kernel_size=3),
                                             layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2),
                                             layer("ip1", "InnerProduct", num_output=10)], input_shape=(3, 8, 12))
    assert run(*compile_args(proto, weights)).exit_code == 0
    expect_error([*compile_args(proto, weights), "--kernel", "pool=arm_maxpool_q7_HWC"],
                 "model.prototxt: layer 'pool' (Pooling): arm_maxpool_q7_HWC cannot run it: The square "
                 "variants take one size for input, kernel, stride and padding: height and width must match in each "
                 "(input 6x10, kernel 2x2, stride 2x2, padding 0x0).")


# ----------------------------------------------------------------------------- target size


def test_network_too_big_for_the_flash_warns():
    """1.2 MB of inner-product weights: more than the STM32F746's 1 MB of flash."""
    proto, weights = write_model(Path("."), [layer("ip1", "InnerProduct", num_output=400)], input_shape=(3, 32, 32))
    result = run(*compile_args(proto, weights), "--json")
    assert result.exit_code == 0, result.output
    memory = json.loads(result.stdout)["memory"]
    flash, ram = memory["flash_bytes"], memory["ram_bytes"]
    assert flash == 400 * 3072 + 400 + 256  # weights, biases, the input conversion's q7 table (one row)
    assert ram < 320 * 1024 and not memory["fits"]
    assert result.stderr.splitlines() == [
        GUESSED, NO_CALIB,
        f"cmsisgen: warning: model.prototxt: too big for the target: needs {ram / 1024:.1f} KB RAM for buffers "
        f"(limit 320 KB) and {flash / 1024:.1f} KB flash for weights (limit 1024 KB); the default limits are the "
        "STM32F746's, see --ram-limit/--flash-limit"]
    assert Path("out/nn.c").is_file()


def test_network_over_a_given_ram_limit_warns():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 16, 16))
    result = run(*compile_args(proto, weights), "--ram-limit", "1", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    memory = summary["memory"]
    ram = memory["ram_bytes"]
    assert ram > 1024 and not memory["fits"] and memory["ram_limit_bytes"] == 1024
    line = ("model.prototxt: too big for the target: needs "
            f"{ram / 1024:.1f} KB RAM for buffers (limit 1 KB) and "
            f"{memory['flash_bytes'] / 1024:.1f} KB flash for weights (limit 1024 KB); the default limits are the "
            "STM32F746's, see --ram-limit/--flash-limit")
    assert result.stderr.splitlines()[-1] == f"cmsisgen: warning: {line}"
    assert summary["warnings"][-1] == line


def test_network_within_the_limits_does_not_warn(model):
    proto, weights = model
    result = run(*compile_args(proto, weights))
    assert result.exit_code == 0 and result.stderr.splitlines() == [GUESSED, NO_CALIB]


# ----------------------------------------------------------------------------- data


def test_calibration_data_that_is_not_images(model):
    proto, weights = model
    (Path("calib") / "cat").mkdir(parents=True)
    Path("calib/cat/a.jpg").write_text("this is a text file")
    expect_error(compile_args(proto, weights, "--calib", "calib"), "calib/cat/a.jpg: not an image Pillow can decode",
                 alone=False)


def test_calibration_file_that_is_not_a_data_set(model):
    proto, weights = model
    Path("notes.txt").write_text("hello")
    expect_error(compile_args(proto, weights, "--calib", "notes.txt"),
                 "notes.txt: not a dataset (expected an image folder, a .zip of one, or an .npz)", alone=False)


def small_npz(name="small.npz", size=6, labels=None):
    rng = np.random.default_rng(5)
    y = np.zeros(4, np.int64) if labels is None else np.asarray(labels)
    np.savez(name, x=rng.integers(0, 256, size=(len(y), size, size, 3), dtype=np.uint8), y=y)
    return name


def test_images_of_another_size_are_an_error(model):
    proto, weights = model
    expect_error(compile_args(proto, weights, "--calib", small_npz()),
                 "small.npz: images are 6x6, the network input is 8x8 (give --resize to resize them)", alone=False)
    assert not Path("out").exists()


def test_images_of_another_size_with_resize(model):
    proto, weights = model
    result = run(*compile_args(proto, weights, "--calib", small_npz(), "--resize", "--test-vectors", "2"))
    assert result.exit_code == 0, result.output
    assert "nn_test_inputs" in Path("out/test_vectors.h").read_text()


def test_labels_out_of_range(model):
    proto, weights = model
    expect_error(["evaluate", proto, weights, "--data", small_npz("labels.npz", 8, [0, 3, 12, 9])],
                 "labels.npz: label 12 (class '12') is out of range: the network has 10 outputs, so labels "
                 "must be 0..9", alone=False)


def test_labels_in_range_evaluate(model):
    proto, weights = model
    result = run("evaluate", proto, weights, "--data", small_npz("labels.npz", 8, [0, 3, 9, 9]))
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- options


def test_bad_option_value_is_a_usage_error(model):
    proto, weights = model
    expect_error(compile_args(proto, weights, "--fc", "fast"),
                 "compile: Invalid value for '--fc': 'fast' is not one of 'opt', 'plain' (see 'main compile --help')")


def test_unexpected_exception_is_an_internal_error(model, monkeypatch):
    """A bug (here: a mapper that raises KeyError) is exit status 1, one line, no traceback;
    --debug adds the traceback."""
    proto, weights = model

    def broken(*args, **kwargs):
        raise KeyError("conv1@2")

    monkeypatch.setattr("cmsisgen.pipeline.map_network", broken)
    result = run(*compile_args(proto, weights))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == ("cmsisgen: internal error: KeyError: 'conv1@2' "
                                              "(run with --debug for the traceback)")
    assert "Traceback" not in result.output
    result = run("--debug", *compile_args(proto, weights))
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1] == "cmsisgen: internal error: KeyError: 'conv1@2'"


def test_out_of_memory_is_a_user_error(model, monkeypatch):
    proto, weights = model

    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr("cmsisgen.pipeline.calibrate", exhausted)
    expect_error(compile_args(proto, weights), "out of memory: the network, its input size or the data set "
                 "(--calib-limit, --limit) is too large for this machine", alone=False)


def test_library_warnings_only_with_debug(model, monkeypatch):
    """A numpy/h5py warning is several lines of developer noise: hidden unless --debug."""
    import warnings

    import cmsisgen.pipeline

    proto, weights = model
    real = cmsisgen.pipeline.map_network

    def noisy(*args, **kwargs):
        warnings.warn("overflow encountered in multiply", RuntimeWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(cmsisgen.pipeline, "map_network", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(*compile_args(proto, weights))
    assert result.exit_code == 0 and result.stderr.splitlines() == [GUESSED, NO_CALIB]
    assert not [w for w in caught if "overflow" in str(w.message)]
    with pytest.warns(RuntimeWarning, match="overflow encountered in multiply"):
        result = run("--debug", *compile_args(proto, weights))
    assert result.exit_code == 0


def test_debug_shows_the_traceback_of_a_user_error(model):
    _, weights = model
    result = run("--debug", *compile_args("nope.prototxt", weights))
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1] == "cmsisgen: error: nope.prototxt: cannot read prototxt (No such file or directory)"


# ----------------------------------------------------------------------------- nothing half-written


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def previous_output(model):
    """OUT from an earlier successful compile with vectors and a report, plus a user's file."""
    proto, weights = model
    np.savez("calib.npz", x=np.random.default_rng(1).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8),
             y=np.arange(8) % 10)
    result = run(*compile_args(proto, weights, "--calib", "calib.npz", "--test-vectors", "3", "--report", "r.json"))
    assert result.exit_code == 0, result.output
    (Path("out") / "build").mkdir()
    Path("out/build/notes.txt").write_text("mine")
    before = tree(Path("out"))
    assert set(before) == {"nn.c", "nn.h", "parameters.h", "weights.h", "weights.c", "test_vectors.h", "build/notes.txt",
                           ".cmsisgen-manifest"}
    return before, Path("r.json").read_bytes()


def unchanged(previous) -> bool:
    """OUT and the report byte-identical to ``previous``, and no staging files left."""
    files, report = previous
    leftovers = [p.name for p in Path(".").iterdir() if p.name.startswith(".cmsisgen-")]
    return tree(Path("out")) == files and Path("r.json").read_bytes() == report and not leftovers


def test_failed_write_leaves_the_output_folder_as_it_was(model, previous_output, monkeypatch):
    """The third file move fails: the two already moved are rolled back and the old files
    set aside come back (test_vectors.h, which this compile would remove, was never touched)."""
    proto, weights = model
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len([c for c in calls if Path(c).parent.name == "out"]) == 3:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", failing_replace)
    expect_error(["-q", *compile_args(proto, weights, "--scale", "0.5", "--report", "r.json")],
                 "out: cannot write the generated files (No space left on device)")
    monkeypatch.setattr(output.os, "replace", real_replace)
    assert sum(Path(c).name.startswith("previous-") for c in calls) == 3  # the old files were set aside
    assert unchanged(previous_output)


def test_failed_render_leaves_the_output_folder_as_it_was(model, previous_output, monkeypatch):
    proto, weights = model

    def failing_render(*args, **kwargs):
        raise CmsisgenError("model.prototxt: layer 'ip1' (InnerProduct): rendering failed")

    monkeypatch.setattr(codegen, "render", failing_render)
    expect_error(["-q", *compile_args(proto, weights, "--test-vectors", "2", "--report", "r.json")],
                 "model.prototxt: layer 'ip1' (InnerProduct): rendering failed")
    assert unchanged(previous_output)


def test_report_inside_a_new_output_folder(model):
    proto, weights = model
    result = run(*compile_args(proto, weights, "--report", "out/r.json"))
    assert result.exit_code == 0, result.output
    assert sorted(tree(Path("out"))) == [".cmsisgen-manifest", "nn.c", "nn.h", "parameters.h", "r.json", "weights.c",
                                         "weights.h"]


def test_failed_write_with_the_report_inside_a_new_output_folder_leaves_nothing(model, monkeypatch):
    proto, weights = model

    def failing_write(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", failing_write)
    expect_error(["-q", *compile_args(proto, weights, "--report", "out/sub/r.json")],
                 "out: cannot write the generated files (No space left on device)")
    assert not Path("out").exists()
    assert not [p for p in Path(".").iterdir() if p.name.startswith(".cmsisgen-")]


def test_failed_data_check_leaves_the_output_folder_as_it_was(model, previous_output):
    proto, weights = model
    expect_error(compile_args(proto, weights, "--calib", small_npz(), "--test-vectors", "2", "--report", "r.json"),
                 "small.npz: images are 6x6, the network input is 8x8 (give --resize to resize them)", alone=False)
    assert unchanged(previous_output)


def test_unwritable_report_leaves_the_output_folder_as_it_was(model, previous_output):
    proto, weights = model
    Path("afile").write_text("not a folder")
    expect_error(compile_args(proto, weights, "--report", "afile/r.json"),
                 f"afile/r.json: cannot write the report ({Path.cwd() / 'afile'} is not a writable folder)")
    assert unchanged(previous_output)
