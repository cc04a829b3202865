"""A data layer that gives no size and has no mean file takes C,H,W from the calibration images
(issue 12, item 3): Caffe sizes such a layer by the data it reads."""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer as L, write_model, write_train_test
from cli_run import run

from cmsisgen.errors import SettingError
from cmsisgen.pipeline import compile_model, images_input_shape

LAYERS = [L("conv1", "Convolution", num_output=4, kernel_size=3), L("ip1", "InnerProduct", num_output=5)]


@pytest.fixture
def train_test(tmp_path):
    """(train/test prototxt without a size or mean file, its weights, 3x10x12 calibration .npz)."""
    _, weights = write_model(tmp_path, LAYERS, input_shape=(3, 10, 12))
    proto = write_train_test(tmp_path, LAYERS, mean_value=(120, 120, 120))
    calib = tmp_path / "calib.npz"
    x = np.random.default_rng(0).integers(0, 256, size=(6, 10, 12, 3), dtype=np.uint8)
    np.savez(calib, x=x, y=np.arange(6) % 5)
    return proto, weights, calib, x


def test_compile_takes_the_input_shape_from_the_calibration_images(train_test, tmp_path):
    proto, weights, calib, _ = train_test
    result = run("compile", proto, weights, "-o", tmp_path / "out", "--calib", calib)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        f"cmsisgen: warning: {proto}: the data layer gives no input size and there is no mean file: using 3,10,12 "
        f"(C,H,W) from the calibration images {calib} (--input-shape sets it)")
    header = (tmp_path / "out" / "nn.h").read_text()
    assert "#define NN_INPUT_HEIGHT 10\n#define NN_INPUT_WIDTH 12\n#define NN_INPUT_CHANNELS 3\n" in header


def test_without_calibration_images_the_error_names_input_shape(train_test, tmp_path):
    proto, weights, _, _ = train_test
    result = run("compile", proto, weights, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output == (f"cmsisgen: error: {proto}: layer 'data' (Data): the input size is not in the "
                             "prototxt (no crop_size) nor in a mean file; give it as --input-shape C,H,W\n")


def test_the_library_does_the_same(train_test):
    proto, weights, _, x = train_test
    compiled = compile_model(proto, weights, calib_images=x)
    assert compiled.program.input_shape == (3, 10, 12)
    with pytest.raises(SettingError):
        compile_model(proto, weights)


def test_greyscale_images_give_one_channel():
    grey = np.zeros((2, 7, 9, 1), dtype=np.uint8)
    assert images_input_shape(grey) == (1, 7, 9)
    assert images_input_shape(np.zeros((2, 7, 9, 3), dtype=np.uint8), grey=True) == (1, 7, 9)
    assert images_input_shape(np.zeros((2, 7, 9, 3), dtype=np.uint8)) == (3, 7, 9)
