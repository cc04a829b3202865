"""The input path: raw uint8 HWC pixels -> the network's float input, and -> q7.

Caffe computes ``(pixel - mean) * scale`` in float. The generated C must reproduce the
q7 version of that bit for bit, on a core where float is slow and where reading the
pixels through a ``q7_t`` pointer silently wraps every value >= 128 negative. So the q7
conversion here is defined in integer arithmetic on the uint8 value,

    q = saturate_int8((pixel * INPUT_MUL - INPUT_OFFSET + 2**(S-1)) >> S),

with ``INPUT_MUL = round(scale * 2**(f+S))`` and ``INPUT_OFFSET = round(mean * scale *
2**(f+S))`` (per channel or per pixel), and the simulator and the C template both
compute exactly this.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import CmsisgenError

#: Fixed-point precision of the input multiplier; 16 bits keep every product in int32.
INPUT_SHIFT = 16


@dataclass(frozen=True)
class Preprocessing:
    """How a uint8 image becomes the network input.

    ``mean`` is (C, 1, 1) for per-channel values or (C, H, W) for a mean image (already
    cropped to the network input), in the model's channel order. ``channel_source[c]`` is
    the image channel (RGB order) that model channel ``c`` reads: (0, 1, 2) for RGB
    models, (2, 1, 0) with ``--bgr``.
    """

    mean: np.ndarray
    scale: float
    channel_source: tuple[int, ...]
    crop_size: int = 0
    mean_file: str = ""  # the file the mean image was read from, for describe()

    def describe(self) -> str:
        """One line: the mean (and its file), scale and channel order actually used."""
        if self.mean_file:
            mean = f"mean image {self.mean_file} ({'x'.join(map(str, self.mean.shape))} as used)"
        elif np.any(self.mean):
            mean = "mean " + ",".join(f"{v:g}" for v in self.mean.reshape(-1))
        else:
            mean = "mean 0"
        order = {(0,): "luminance", (0, 1, 2): "RGB", (2, 1, 0): "BGR"}[self.channel_source]
        crop = f", center crop {self.crop_size}" if self.crop_size else ""
        return f"input preprocessing: {mean}, scale {self.scale:g}, channel order {order}{crop}"

    def raw_images(self, images: np.ndarray, height: int, width: int) -> np.ndarray:
        """What ``run_nn()`` receives for these decoded RGB images: uint8 NHWC at the
        network's input size, RGB (3-channel nets) or luminance (1-channel nets).

        Images larger than the input are center-cropped only when the model says so
        (Caffe's TEST-phase ``crop_size``); any other size mismatch is an error, as in Caffe.
        """
        if images.ndim != 4 or images.shape[3] not in (1, 3):
            raise CmsisgenError(f"images must be (N, H, W, 1 or 3) uint8, got shape {images.shape}")
        n, h, w, _ = images.shape
        if (h, w) != (height, width):
            if self.crop_size != height or self.crop_size != width or h < height or w < width:
                raise CmsisgenError(f"images are {h}x{w}, the network input is {height}x{width}"
                                    + ("" if self.crop_size else " (Caffe crops only with transform_param crop_size)"))
            top, left = (h - height) // 2, (w - width) // 2
            images = images[:, top:top + height, left:left + width]
        if len(self.channel_source) == 1 and images.shape[3] == 3:
            # ITU-R 601-2 luma with the integer rounding Pillow's convert("L") uses.
            rgb = images.astype(np.uint32)
            images = ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16)[..., None]
            images = images.astype(np.uint8)
        elif len(self.channel_source) == 3 and images.shape[3] == 1:
            images = np.repeat(images, 3, axis=3)
        return np.ascontiguousarray(images)

    def prepare_images(self, images: np.ndarray, height: int, width: int) -> np.ndarray:
        """:meth:`raw_images` with the channels in the model's order: what the simulator's
        input stage reads (the generated C reorders channels itself)."""
        raw = self.raw_images(images, height, width)
        return np.ascontiguousarray(raw[..., list(self.channel_source)])

    def to_float(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC (already prepared) -> float32 NCHW, Caffe's (pixel - mean) * scale."""
        x = pixels.transpose(0, 3, 1, 2).astype(np.float32)
        return ((x - self.mean.astype(np.float32)) * np.float32(self.scale)).astype(np.float32)

    def fixed_point(self, frac_bits: int, shape_chw: tuple[int, int, int]) -> "InputFixedPoint":
        """The integer constants for an input in Q(7-f).f (see module docstring)."""
        c, h, w = shape_chw
        factor = self.scale * 2.0 ** (frac_bits + INPUT_SHIFT)
        mul = int(round(factor))
        mean = np.broadcast_to(self.mean, (c, 1, 1) if self.mean.shape[1:] == (1, 1) else (c, h, w))
        offsets = np.round(mean.astype(np.float64) * factor).astype(np.int64)
        per_pixel = offsets.shape[1:] != (1, 1)
        hwc = offsets.transpose(1, 2, 0).reshape(-1) if per_pixel else offsets.reshape(-1)
        fp = InputFixedPoint(mul=mul, offsets=hwc, per_pixel=per_pixel, shift=INPUT_SHIFT)
        fp.check_range()
        return fp


@dataclass(frozen=True)
class InputFixedPoint:
    """Integer input conversion constants; ``offsets`` is (C,) or (H*W*C,) in HWC order."""

    mul: int
    offsets: np.ndarray
    per_pixel: bool
    shift: int

    def extreme(self) -> int:
        """The largest magnitude the conversion's integer arithmetic can reach."""
        return abs(255 * self.mul) + int(np.abs(self.offsets).max(initial=0)) + (1 << self.shift)

    def check_range(self) -> None:
        """The C code computes in int32: refuse constants that could overflow it."""
        if self.mul <= 0 or self.extreme() >= 2**31:
            raise CmsisgenError(
                f"input scale/mean give an input multiplier of {self.mul}: outside what int32 arithmetic can hold")

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> int8 NHWC, exactly as the generated C computes it."""
        n, h, w, c = pixels.shape
        offsets = self.offsets.reshape(h, w, c) if self.per_pixel else self.offsets.reshape(1, 1, c)
        wide = np.int32 if self.extreme() < 2**31 else np.int64  # int32 as the C, twice as fast as int64
        acc = pixels.astype(wide) * wide(self.mul) - offsets.astype(wide) + wide(1 << (self.shift - 1))
        return np.clip(acc >> self.shift, -128, 127).astype(np.int8)


def build_preprocessing(mean: Optional[np.ndarray], scale: float, bgr: bool, channels: int,
                        input_hw: tuple[int, int], crop_size: int = 0) -> Preprocessing:
    """Normalise the mean to (C,1,1) or a center-cropped (C,H,W) and fix the channel order."""
    if channels not in (1, 3):
        raise CmsisgenError(f"the network input has {channels} channels; image input needs 1 or 3")
    if not math.isfinite(scale) or scale <= 0:
        raise CmsisgenError(f"scale {scale}: must be a positive, finite number")
    if mean is None or np.size(mean) == 0:
        mean_arr = np.zeros((channels, 1, 1))
    else:
        mean_arr = np.asarray(mean, dtype=np.float64)
        if mean_arr.ndim == 1:
            if mean_arr.size == 1:
                mean_arr = np.repeat(mean_arr, channels)
            if mean_arr.size != channels:
                raise CmsisgenError(f"{mean_arr.size} mean values given for a {channels}-channel input")
            mean_arr = mean_arr.reshape(channels, 1, 1)
        elif mean_arr.ndim == 3:
            if mean_arr.shape[0] != channels:
                raise CmsisgenError(f"mean image has {mean_arr.shape[0]} channels, the input has {channels}")
            h, w = input_hw
            mh, mw = mean_arr.shape[1:]
            if (mh, mw) != (h, w):
                if mh < h or mw < w:
                    raise CmsisgenError(f"mean image is {mh}x{mw}, smaller than the network input {h}x{w}")
                top, left = (mh - h) // 2, (mw - w) // 2
                mean_arr = mean_arr[:, top:top + h, left:left + w]
        else:
            raise CmsisgenError(f"mean must be per-channel values or a (C, H, W) image, got shape {mean_arr.shape}")
    if channels == 1:
        source: tuple[int, ...] = (0,)
    else:
        source = (2, 1, 0) if bgr else (0, 1, 2)
    return Preprocessing(mean=mean_arr, scale=float(scale), channel_source=source, crop_size=crop_size)
