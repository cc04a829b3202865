"""What the input preprocessing is, said out loud (issue 11, item 5).

A deploy prototxt has no transform_param, so without --mean/--scale the network runs on the
image as read: a warning says so. ``-v`` prints the mean (and the file it came from), scale
and channel order used; a relative mean_file is looked up beside the prototxt, then in the
current folder, and the file used is the one named, never silently another one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from caffe_models import layer, make_weights, write_caffemodel, write_mean_binaryproto, write_model, write_train_test
import cli_run

LAYERS = [layer("conv1", "Convolution", num_output=4, kernel_size=3), layer("ip1", "InnerProduct", num_output=3)]
GUESS = ("cmsisgen: warning: model.prototxt: no transform_param and no --mean/--scale: the input is the image as "
         "read, mean 0, scale 1, {order} (give --mean and --scale if the model was trained otherwise)")
NO_CALIB = "cmsisgen: warning: no --calib given"


pytestmark = pytest.mark.usefixtures("cli_tmp")


def run(*args):
    result = cli_run.run(*args)
    assert result.exit_code == 0, result.output
    return [line for line in result.stderr.splitlines() if not line.startswith(NO_CALIB)]


@pytest.fixture()
def model():
    return write_model(Path("."), LAYERS, input_shape=(3, 8, 8))


def test_guessed_preprocessing_is_a_warning(model):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out") == [GUESS.format(order="RGB")]
    assert run("compile", proto, weights, "-o", "out", "--bgr") == [GUESS.format(order="BGR")]
    result = cli_run.run("compile", proto, weights, "-o", "out", "--json")
    assert json.loads(result.stdout)["warnings"][0] == GUESS.format(order="RGB")[len("cmsisgen: warning: "):]


@pytest.mark.parametrize("option", [["--scale", "1"], ["--mean", "0,0,0"]])
def test_no_warning_when_an_option_says_it(model, option):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", *option) == []


def test_verbose_prints_what_is_used(model):
    proto, weights = model
    lines = run("-v", "compile", proto, weights, "-o", "out", "--mean", "104,117,123", "--scale", "0.5", "--bgr")
    assert "cmsisgen: input preprocessing: mean 104,117,123, scale 0.5, channel order BGR" in lines


def test_greyscale_net_says_luminance():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(1, 8, 8))
    lines = run("-v", "compile", proto, weights, "-o", "out")
    assert GUESS.format(order="luminance") in lines
    assert "cmsisgen: input preprocessing: mean 0, scale 1, channel order luminance" in lines


def mean_model(place: str) -> Path:
    """train_test.prototxt in model/ naming mean.binaryproto; the mean file beside it
    (value 10), in the current folder (value 20), in both, or nowhere."""
    Path("model").mkdir()
    proto = write_train_test(Path("model"), LAYERS, crop_size=8, mean_file="mean.binaryproto")
    if place in ("beside", "both"):
        write_mean_binaryproto(Path("model/mean.binaryproto"), np.full((3, 8, 8), 10.0))
    if place in ("cwd", "both"):
        write_mean_binaryproto(Path("mean.binaryproto"), np.full((3, 8, 8), 20.0))
    write_caffemodel(Path("w.caffemodel"), LAYERS, make_weights(proto, LAYERS))
    return proto


@pytest.mark.parametrize("place, used", [("beside", "model/mean.binaryproto"), ("cwd", "mean.binaryproto")])
def test_mean_file_used_is_named(place, used):
    proto = mean_model(place)
    lines = run("-v", "compile", proto, "w.caffemodel", "-o", "out")
    assert f"cmsisgen: input preprocessing: mean image {used} (3x8x8 as used), scale 1, channel order RGB, " \
           "center crop 8" in lines
    assert not [line for line in lines if "warning" in line]


def test_mean_file_in_both_places_names_the_one_used():
    proto = mean_model("both")
    lines = run("compile", proto, "w.caffemodel", "-o", "out")
    assert lines == ["cmsisgen: warning: model/train_test.prototxt: mean_file 'mean.binaryproto': using "
                     "model/mean.binaryproto (beside the prototxt), not mean.binaryproto in the current folder"]
    # The one beside the prototxt (10) is compiled in: the same program as with --mean naming it.
    run("compile", proto, "w.caffemodel", "-o", "explicit", "--mean", "model/mean.binaryproto")
    assert Path("out/nn.c").read_text() == Path("explicit/nn.c").read_text()


def test_mean_file_nowhere_is_an_error():
    proto = mean_model("nowhere")
    result = cli_run.run("compile", proto, "w.caffemodel", "-o", "out")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "cmsisgen: error: model/train_test.prototxt: mean_file 'mean.binaryproto' does not exist beside the "
        "prototxt (model/mean.binaryproto) or in the current folder (give --mean)"]
