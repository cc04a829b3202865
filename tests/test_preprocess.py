"""Preprocess: uint8 -> q7 input conversion (integer, bit-exact) against an exact reference."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from caffe_models import layer, write_mean_binaryproto, write_model
from cmsisgen.errors import CmsisgenError
from cmsisgen.preprocess import INPUT_SHIFT, build_preprocessing

ALL_PIXELS = np.arange(256, dtype=np.uint8)
#: Largest distance from a rounding tie at which the integer path may round the other
#: way: the multiplier and the offset are each rounded to integers in units of
#: 2^-(f+16), so the error is at most (255 * 0.5 + 0.5) / 2^16 = 2^-9 output LSB.
TIE_WINDOW = Fraction(1, 2**9)


def exact_q7(pixel: int, mean: float, scale: float, frac: int) -> tuple[int, Fraction]:
    """round_half_up((pixel - mean) * scale * 2^f), saturated, in exact arithmetic on the
    float64 values of mean and scale; also returns the unrounded value."""
    value = (Fraction(pixel) - Fraction(mean)) * Fraction(scale) * Fraction(2) ** frac
    q = (value + Fraction(1, 2)).__floor__()
    return max(-128, min(127, q)), value


def convert_all_pixels(mean, scale, frac, channels=1):
    pre = build_preprocessing(np.array([mean] * channels), scale, False, channels, (1, 256))
    fp = pre.fixed_point(frac, (channels, 1, 256))
    image = np.repeat(ALL_PIXELS[None, None, :, None], channels, axis=3)
    return fp.apply(image)[0, 0, :, 0].astype(int), fp


# Scales that are powers of two with integer means (or means that are multiples of a
# power of two): the integer constants are exact, so the conversion equals the exact
# reference for every pixel value.
EXACT_COMBOS = [(m, s, f) for m in (0.0, 128.0, 104.0, 127.5, 255.0)
                for s in (1.0, 0.5, 2.0, 1 / 128, 1 / 256) for f in (-3, -1, 0, 2, 5, 7)
                if s * 2.0 ** (f + INPUT_SHIFT) * (255 + m) + 2**16 < 2**31]


@pytest.mark.parametrize("mean, scale, frac", EXACT_COMBOS)
def test_exact_combos_match_reference_for_every_pixel(mean, scale, frac):
    q, fp = convert_all_pixels(mean, scale, frac)
    assert fp.mul == scale * 2 ** (frac + INPUT_SHIFT)
    ref = [exact_q7(p, mean, scale, frac)[0] for p in range(256)]
    assert q.tolist() == ref


# Caffe-style constants (CIFAR 1/255, ImageNet means, 0.017, ...): the multiplier and
# offsets are rounded, so a value within TIE_WINDOW of a .5 tie may round the other way.
INEXACT_COMBOS = [(m, s, f) for m in (0.0, 104.0, 116.779, 123.68, 127.5, 0.1)
                  for s in (1 / 255, 0.017, 1 / 58.395, 0.003921569, 0.0078125)
                  for f in (-2, 0, 3, 5, 6, 7, 8)]


def test_caffe_style_combos_differ_only_next_to_rounding_ties():
    mismatches = []
    for mean, scale, frac in INEXACT_COMBOS:
        try:
            q, _ = convert_all_pixels(mean, scale, frac)
        except CmsisgenError:
            continue
        for p in range(256):
            ref, value = exact_q7(p, mean, scale, frac)
            if q[p] != ref:
                mismatches.append((mean, scale, frac, p, int(q[p]) - ref, value))
    for mean, scale, frac, p, diff, value in mismatches:
        assert abs(diff) == 1, (mean, scale, frac, p)
        distance_to_tie = abs(value - value.__floor__() - Fraction(1, 2))
        assert distance_to_tie <= TIE_WINDOW, (mean, scale, frac, p, float(value))
    # rare: a handful of pixel values out of 256 per combination at most, none on most
    assert len(mismatches) <= len(INEXACT_COMBOS)


def test_cifar_scale_known_tie_case():
    """scale 1/255 (stored as 0.0039215686...) and f = -1: pixel 255 is 0.49999999...
    exactly, which rounds to 0; the integer path (mul = round(128.50...) = 129) gives 1.
    This is the documented +/-1 case: within 2^-9 LSB of a tie."""
    q, fp = convert_all_pixels(0.0, 1 / 255, -1)
    assert fp.mul == 129
    ref, value = exact_q7(255, 0.0, 1 / 255, -1)
    assert (ref, q[255]) == (0, 1)
    assert abs(value - Fraction(1, 2)) < Fraction(1, 10**15)


def test_bright_pixels_stay_positive_with_zero_mean():
    """The q7_t-cast bug: reading pixels >= 128 through a signed pointer turns them negative."""
    q, fp = convert_all_pixels(0.0, 1 / 256, 7)
    assert q.tolist() == [(p + 1) // 2 if p < 255 else 127 for p in range(256)]
    assert (q[128:] > 0).all() and q[128] == 64 and q[255] == 127
    q, _ = convert_all_pixels(0.0, 1.0, -1)
    assert (q[128:] == 64).all() or (q[128:] >= 64).all()
    assert q.tolist() == [min(127, (p + 1) // 2) for p in range(256)]
    # and no pixel maps below zero
    assert q.min() == 0


def test_saturation_both_ways():
    q, _ = convert_all_pixels(128.0, 1.0, 0)
    assert q[0] == -128 and q[255] == 127 and q[128] == 0 and q[1] == -127 and q[100] == -28


def test_per_channel_means_and_shift_constants():
    pre = build_preprocessing(np.array([104.0, 117.0, 123.0]), 0.5, False, 3, (2, 2))
    fp = pre.fixed_point(2, (3, 2, 2))
    assert fp.shift == INPUT_SHIFT == 16
    assert fp.mul == 2**17 and not fp.per_pixel
    assert fp.offsets.tolist() == [104 * 2**17, 117 * 2**17, 123 * 2**17]
    image = np.array([[[[200, 117, 0], [255, 255, 255]], [[104, 118, 122], [0, 0, 0]]]], dtype=np.uint8)
    out = fp.apply(image)
    assert out.dtype == np.int8
    assert out[0, 0, 0].tolist() == [127, 0, -128]
    assert out[0, 1, 0].tolist() == [0, 2, -2]
    assert out[0, 0, 1].tolist() == [127, 127, 127]


def test_single_mean_value_is_repeated():
    pre = build_preprocessing(np.array([10.0]), 1.0, False, 3, (4, 4))
    assert pre.mean.reshape(-1).tolist() == [10.0, 10.0, 10.0]


def test_per_pixel_mean_image_center_cropped():
    rng = np.random.default_rng(0)
    mean = rng.uniform(0, 255, size=(3, 10, 13))
    pre = build_preprocessing(mean, 1 / 256, False, 3, (8, 8))
    assert np.array_equal(pre.mean, mean[:, 1:9, 2:10])
    fp = pre.fixed_point(7, (3, 8, 8))
    assert fp.per_pixel and fp.offsets.shape == (8 * 8 * 3,)
    factor = 2.0 ** (7 + 16) / 256
    hwc = fp.offsets.reshape(8, 8, 3)
    assert hwc[3, 5, 2] == round(mean[2, 4, 7] * factor)
    assert np.array_equal(hwc, np.round(mean[:, 1:9, 2:10].transpose(1, 2, 0) * factor).astype(np.int64))
    image = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    out = fp.apply(image)
    cropped = mean[:, 1:9, 2:10]
    for n, y, x, c in [(0, 0, 0, 0), (1, 7, 7, 2), (0, 3, 6, 1), (1, 4, 1, 0)]:
        ref, value = exact_q7(int(image[n, y, x, c]), float(cropped[c, y, x]), 1 / 256, 7)
        assert abs(int(out[n, y, x, c]) - ref) <= (1 if abs(value - value.__floor__() - Fraction(1, 2))
                                                   <= TIE_WINDOW else 0)


def test_mean_image_same_size_is_not_cropped():
    mean = np.arange(3 * 4 * 4, dtype=np.float64).reshape(3, 4, 4)
    assert np.array_equal(build_preprocessing(mean, 1.0, False, 3, (4, 4)).mean, mean)


def test_mean_file_through_compile_model(tmp_path):
    from cmsisgen.pipeline import compile_model

    rng = np.random.default_rng(5)
    mean = rng.uniform(50, 200, size=(3, 10, 10)).astype(np.float32)
    mean_path = write_mean_binaryproto(tmp_path / "mean.binaryproto", mean)
    proto, weights = write_model(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)],
                                 input_shape=(3, 8, 8))
    compiled = compile_model(proto, weights, mean=str(mean_path))
    assert np.allclose(compiled.pre.mean, mean[:, 1:9, 1:9])
    op = compiled.program.ops[0]
    assert op.kind == "input" and op.params.fixed_point.per_pixel and op.params.fixed_point.offsets.size == 8 * 8 * 3


def test_bgr_reorders_image_channels():
    pre = build_preprocessing(np.array([10.0, 20.0, 30.0]), 1.0, True, 3, (2, 2))
    assert pre.channel_source == (2, 1, 0)
    image = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 100, 50, 40  # R, G, B
    prepared = pre.prepare_images(image, 2, 2)
    assert prepared[0, 0, 0].tolist() == [40, 50, 100]  # B, G, R
    # the mean stays in the model's (BGR) order
    assert pre.to_float(prepared)[0, :, 0, 0].tolist() == [30.0, 30.0, 70.0]
    fp = pre.fixed_point(-1, (3, 2, 2))
    assert fp.apply(prepared)[0, 0, 0].tolist() == [15, 15, 35]


def test_rgb_and_gray_channel_sources():
    assert build_preprocessing(None, 1.0, False, 3, (2, 2)).channel_source == (0, 1, 2)
    assert build_preprocessing(None, 1.0, True, 1, (2, 2)).channel_source == (0,)


def test_prepare_images_center_crops_only_with_crop_size():
    """As Caffe: larger images are center-cropped at TEST time only with crop_size."""
    images = np.arange(2 * 7 * 6 * 3, dtype=np.uint8).reshape(2, 7, 6, 3)
    cropping = build_preprocessing(None, 1.0, False, 3, (4, 4), crop_size=4)
    assert np.array_equal(cropping.prepare_images(images, 4, 4), images[:, 1:5, 1:5])
    with pytest.raises(CmsisgenError, match=r"^images are 3x3, the network input is 4x4$"):
        cropping.prepare_images(images[:, :3, :3], 4, 4)
    plain = build_preprocessing(None, 1.0, False, 3, (4, 4))
    with pytest.raises(CmsisgenError, match=r"^images are 7x6, the network input is 4x4 "
                                            r"\(Caffe crops only with transform_param crop_size\)$"):
        plain.prepare_images(images, 4, 4)


def test_gray_network_reads_luminance_like_pillow():
    from PIL import Image

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(3, 5, 4, 3), dtype=np.uint8)
    pre = build_preprocessing(None, 1.0, False, 1, (5, 4))
    expected = np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in images])[..., None]
    assert np.array_equal(pre.raw_images(images, 5, 4), expected)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_must_be_positive_and_finite(scale):
    with pytest.raises(CmsisgenError, match=r"^scale .*: must be a positive, finite number$"):
        build_preprocessing(None, scale, False, 3, (4, 4))


def test_int32_overflow_is_refused():
    pre = build_preprocessing(None, 1.0, False, 3, (2, 2))
    assert pre.fixed_point(7, (3, 2, 2)).mul == 2**23  # 255 * 2^23 + 2^16 still fits
    with pytest.raises(CmsisgenError, match=r"^input scale/mean give an input multiplier of 16777216: "
                                            r"outside what int32 arithmetic can hold"):
        pre.fixed_point(8, (3, 2, 2))
    with pytest.raises(CmsisgenError, match="input multiplier of 0"):
        build_preprocessing(None, 1e-9, False, 3, (2, 2)).fixed_point(0, (3, 2, 2))
    with pytest.raises(CmsisgenError, match="int32"):
        build_preprocessing(np.array([1e7] * 3), 1.0, False, 3, (2, 2)).fixed_point(0, (3, 2, 2))


@pytest.mark.parametrize("mean, shape, message", [
    (np.array([1.0, 2.0]), (3, 4, 4), "2 mean values given for a 3-channel input"),
    (np.zeros((1, 4, 4)), (3, 4, 4), "mean image has 1 channels, the input has 3"),
    (np.zeros((3, 3, 8)), (3, 4, 4), "mean image is 3x8, smaller than the network input 4x4"),
    (np.zeros((3, 4)), (3, 4, 4), "mean must be per-channel values or a (C, H, W) image, got shape (3, 4)"),
    (None, (2, 4, 4), "the network input has 2 channels; image input needs 1 or 3"),
])
def test_mean_errors(mean, shape, message):
    c, h, w = shape
    with pytest.raises(CmsisgenError) as info:
        build_preprocessing(mean, 1.0, False, c, (h, w))
    assert str(info.value) == message
