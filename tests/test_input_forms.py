"""The input conversion's C forms (issue 14, item 1): the q7 table per channel and the
reduced per-pixel arithmetic give exactly the simulator's numbers, for all 256 pixel values
at every channel and position, in Python, in C on the host and on the QEMU Cortex-M7.

The simulator's definition (:meth:`InputFixedPoint.apply`) did not change: these tests
compare the generated C's form with it, value by value, for every preprocessing form
(per-channel mean, per-pixel mean, scale only, RGB, BGR, 1 channel).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from caffe_models import layer, write_mean_binaryproto, write_model
from cli_run import run
from cmsisgen.errors import CmsisgenError
from cmsisgen.input_forms import AffineForm, TableForm, affine_form, input_form, table_form
from cmsisgen.ops.network_input import InputConstants
from cmsisgen.preprocess import build_preprocessing
from cmsisgen.verify import firmware_dir

ALL = np.arange(256, dtype=np.uint8)
SCALES = (1.0, 0.5, 1 / 64, 1 / 255, 0.017, 1 / 58.395, 0.0078125, 2.0)
FRACS = (-3, -1, 0, 2, 5, 7)


def every_value(channels: int, h: int, w: int) -> np.ndarray:
    """256 images in which every (position, channel) takes each of the 256 values once."""
    k = np.arange(256)[:, None, None, None]
    index = np.arange(h * w * channels).reshape(1, h, w, channels)
    return ((k + index) % 256).astype(np.uint8)


def constants(mean, scale, frac, channels, bgr=False, hw=(4, 4)):
    pre = build_preprocessing(mean, scale, bgr, channels, hw)
    try:
        return InputConstants(pre, frac, (channels, *hw))
    except CmsisgenError:
        pytest.skip("outside int32: refused by InputFixedPoint.check_range")


def assert_exact(consts, channels, hw=(4, 4)):
    images = every_value(channels, *hw)
    np.testing.assert_array_equal(consts.form.apply(images), consts.fixed_point.apply(images))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("frac", FRACS)
@pytest.mark.parametrize("channels, mean", [(3, None), (3, np.array([104.0, 116.779, 123.68])),
                                            (3, np.array([0.1, 255.0, 127.5])), (1, np.array([128.0]))])
def test_per_channel_table_is_exact_for_every_value(scale, frac, channels, mean):
    consts = constants(mean, scale, frac, channels)
    assert isinstance(consts.form, TableForm) and consts.form.rows.dtype == np.int8
    assert_exact(consts, channels)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("frac", FRACS)
@pytest.mark.parametrize("channels", [1, 3])
def test_per_pixel_form_is_exact_for_every_value(scale, frac, channels):
    mean = np.random.default_rng(frac + 10).uniform(0, 255, size=(channels, 4, 4))
    mean[0, 0, 0], mean[-1, 1, 1] = 0.0, 255.0
    consts = constants(mean, scale, frac, channels)
    assert isinstance(consts.form, AffineForm)
    assert_exact(consts, channels)


def test_identical_channels_share_a_table_row():
    form = constants(np.array([10.0, 20.0, 10.0]), 1 / 64, 5, 3).form
    assert form.row_of_channel == (0, 1, 0) and form.rows.shape == (2, 256) and form.flash_bytes == 512
    assert constants(None, 1 / 255, 7, 3).form.rows.shape == (1, 256)


def test_table_rows_are_the_conversion_of_every_value():
    form = table_form(build_preprocessing(np.array([128.0]), 1.0, False, 1, (1, 1)).fixed_point(0, (1, 1, 1)), 1)
    assert form.rows[0].tolist() == [max(-128, min(127, p - 128)) for p in range(256)]


@pytest.mark.parametrize("scale, frac, mean_max, mul, shift, c_type", [
    (1 / 64, 5, 255, 1, 1, "int16_t"),     # the CIFAR-10 example: (p + offset) >> 1
    (1.0, 0, 255, 1, 0, "int16_t"),        # plain p - mean, saturated: offsets -255..0
    (1.0, -2, 100, 1, 2, "int8_t"),        # a small mean image fits int8
    (0.017, 7, 255, 71303, 15, "int32_t"),  # an odd multiplier: nothing to divide out
])
def test_per_pixel_offsets_are_stored_in_the_narrowest_type(scale, frac, mean_max, mul, shift, c_type):
    mean = np.linspace(0, mean_max, 3 * 4 * 4).reshape(3, 4, 4)
    form = constants(mean, scale, frac, 3).form
    assert (form.mul, form.shift, form.c_type) == (mul, shift, c_type)
    assert form.flash_bytes == 48 * {"int8_t": 1, "int16_t": 2, "int32_t": 4}[c_type]


def test_the_reduction_keeps_the_offsets_floor():
    """floor((p*M + N) / 2^S) with M = 2^15, S = 16: (p + floor(N / 2^15)) >> 1, N = 2^15 - offset."""
    pre = build_preprocessing(np.array([[[0.4]], [[0.6]], [[255.0]]]) * np.ones((3, 2, 2)), 1 / 64, False, 3, (2, 2))
    fp = pre.fixed_point(5, (3, 2, 2))
    form = affine_form(fp)
    assert (fp.mul, form.mul, form.shift) == (2**15, 1, 1)
    expected = [(2**15 - o) // 2**15 for o in fp.offsets.tolist()]
    assert form.offsets.tolist() == expected


def test_a_form_that_changes_a_bit_is_an_internal_error(monkeypatch):
    import cmsisgen.input_forms as forms

    fp = build_preprocessing(np.ones((3, 4, 4)) * 100.3, 1 / 64, False, 3, (4, 4)).fixed_point(5, (3, 4, 4))
    good = forms.affine_form(fp)
    monkeypatch.setattr(forms, "affine_form", lambda fp: AffineForm(good.mul, good.shift, good.offsets + 1,
                                                                    good.c_type))
    with pytest.raises(AssertionError, match="differs from its fixed-point definition"):
        input_form(fp, (3, 4, 4))


# ------------------------------------------------------------------- generated C, host and QEMU

#: name -> (channels, --mean (values, "image": a mean image, "small": one below 100, "inner": one in
#: 20..235, which at scale 1/64 gives the example's Q2.5, (p + offset) >> 1), --scale, --bgr,
#: input H x W: pixels an iteration of the C loop, 3 channels: 36 pixels make 4, 10 make 2, 25 make 1;
#: 1 channel: 64 pixels make 16, 25 make 1 (SIMD forms: see SIMD); "high": a mean image near 200 at scale 1, calibrated on
#: pixels 136..255, gives Q7.0: q = saturate(pixel + offset) with int16 offsets and no shift, and
#: the vectors saturate)
C_FORMS = {
    "per_channel_rgb": (3, "104,117,123", 0.017, False, (6, 6)),
    "per_channel_bgr": (3, "104,117,123", 0.017, True, (5, 2)),
    "scale_only": (3, None, 1 / 255, False, (5, 5)),
    "gray_per_channel": (1, "128", 1 / 128, False, (8, 8)),
    "per_pixel_rgb": (3, "inner", 1 / 64, False, (6, 6)),
    "per_pixel_bgr_int32": (3, "image", 0.017, True, (5, 5)),
    "per_pixel_small_int8": (3, "small", 1.0, False, (5, 2)),
    "gray_per_pixel": (1, "image", 1 / 64, False, (5, 5)),
    "per_pixel_no_shift": (3, "high", 1.0, False, (6, 6)),
    "gray_per_pixel_4_bytes": (1, "image", 1 / 64, False, (4, 1)),
}
#: Forms the SIMD loop runs (MUL 1, SHIFT 0 or 1, int16 offsets, image channel order, size a
#: multiple of 4), with its bytes an iteration; per_pixel_bgr_int32 and gray_per_pixel (25 bytes)
#: take the byte loop.
SIMD = {"per_pixel_rgb": 12, "per_pixel_no_shift": 12, "gray_per_pixel_4_bytes": 4}
TARGETS = [("host", "gcc"), ("qemu", "qemu-system-arm")]


def c_form_args(tmp: Path, name: str) -> list:
    channels, mean, scale, bgr, hw = C_FORMS[name]
    proto, weights = write_model(tmp, [layer("ip", "InnerProduct", num_output=4)],
                                 input_shape=(channels, *hw))
    images = every_value(channels, *hw)
    data = tmp / "every_value.npz"
    np.savez(data, x=images if channels == 3 else images[..., 0], y=np.zeros(len(images), dtype=np.int64))
    calib = data
    if mean == "high":
        calib = tmp / "high.npz"
        np.savez(calib, x=np.clip(images, 136, 255), y=np.zeros(len(images), dtype=np.int64))
    args = [proto, weights, "--calib", calib, "--data", data, "--scale", scale]
    if mean in ("image", "small", "high", "inner"):
        low, high = {"image": (0, 255), "small": (0, 100), "high": (199.7, 200.3), "inner": (20, 235)}[mean]
        values = np.random.default_rng(3).uniform(low, high, size=(channels, *hw)).astype(np.float32)
        args += ["--mean", write_mean_binaryproto(tmp / "mean.binaryproto", values)]
    elif mean is not None:
        args += ["--mean", mean]
    return args + (["--bgr"] if bgr else [])


@pytest.mark.parametrize("target, tool", TARGETS)
@pytest.mark.parametrize("name", sorted(C_FORMS))
def test_generated_input_step_is_bit_exact_for_every_value(tmp_path, name, target, tool):
    """256 vectors in which every byte of the image takes every value: the self test compares
    the input step's output (step 0's checksum) and the scores with the simulator's."""
    if shutil.which(tool) is None or shutil.which("make") is None or (
            target == "qemu" and shutil.which("arm-none-eabi-gcc") is None):
        pytest.skip(f"{tool} not installed")
    result = run("verify", *c_form_args(tmp_path, name), "--vectors", "256", "--target", target,
                 "--keep", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "256/256 vectors bit-exact"
    nn_c = (tmp_path / "out" / "model" / "nn.c").read_text()
    table = C_FORMS[name][1] not in ("image", "small", "high", "inner")
    simd = SIMD.get(name, 0)
    assert ("NN_INPUT_TABLE +" in nn_c) == table and ("nn_input_pair(" in nn_c) == bool(simd)
    assert ("nn_input_saturate(" in nn_c) == (not table and not simd)
    channels, hw = C_FORMS[name][0], C_FORMS[name][4]
    per_iteration = {(3, 36): 4, (3, 10): 2, (3, 25): 1, (1, 64): 16, (1, 25): 1}.get((channels, hw[0] * hw[1]))
    assert f"i += {simd or channels * per_iteration}u)" in nn_c
    if name == "per_pixel_no_shift":  # pixel + offset saturated: no shift at all (QADD16, not SHADD16)
        assert '__asm__("qadd16 %0, %1, %2"' in nn_c
    # warning-free on the target's compiler (the SSAT path on Arm, the C clamp on the host)
    compiler = ["gcc"] if target == "host" else ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb",
                                                 "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
    model = tmp_path / "out" / "model"
    cmd = [*compiler, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(model), "-I",
           str(firmware_dir() / "cmsis_nn_portable" / "Include"), "-c", str(model / "nn.c"), "-o", str(tmp_path / "nn.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
