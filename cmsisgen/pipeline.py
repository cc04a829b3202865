"""The compile pipeline in one place: load -> shapes -> calibrate -> quantize -> map -> plan.

The CLI commands (compile, evaluate, verify) all go through :func:`compile_model` so
that they see the same quantized program.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import ir
from .errors import CmsisgenError
from .loader import load_net
from .loader.mean import read_mean_binaryproto
from .mapper.buffers import BufferPlan, plan_buffers
from .mapper.mapper import map_network
from .mapper.program import Program
from .preprocess import Preprocessing, build_preprocessing
from .quantizer import Quantization, calibrate, quantize

#: Images pushed through the float net to estimate ranges when no --calib is given.
SYNTHETIC_CALIBRATION_IMAGES = 64
CALIBRATION_BATCH = 250


@dataclass
class Compiled:
    net: ir.Net
    pre: Preprocessing
    quant: Quantization
    program: Program
    plan: BufferPlan
    notes: list[str]


def resolve_preprocessing(net: ir.Net, mean: Optional[str], scale: Optional[float], bgr: bool) -> Preprocessing:
    """The prototxt's transform_param, overridden by --mean / --scale.

    A mean_file named by the prototxt that does not exist is an error only when no
    --mean replaces it.
    """
    c, h, w = next(iter(net.input_shapes.values()))
    transform = net.transform
    mean_array: Optional[np.ndarray] = None
    if mean is not None:
        mean_array = parse_mean(mean)
    elif transform.mean_file:
        path = Path(transform.mean_file)
        if not path.is_absolute() and net.source:
            beside = Path(net.source).parent / path
            path = beside if beside.exists() else path
        if not path.exists():
            raise CmsisgenError(f"{net.source}: mean_file '{transform.mean_file}' does not exist (give --mean)")
        mean_array = read_mean_binaryproto(path)
    elif transform.mean_values:
        mean_array = np.asarray(transform.mean_values, dtype=np.float64)
    try:
        return build_preprocessing(mean_array, transform.scale if scale is None else scale, bgr, c, (h, w),
                                   crop_size=transform.crop_size)
    except CmsisgenError as exc:
        raise CmsisgenError(f"{net.source}: {exc}") from None


def parse_mean(text: str) -> np.ndarray:
    """--mean: a mean.binaryproto file or comma-separated per-channel values."""
    if Path(text).exists():
        return read_mean_binaryproto(Path(text))
    try:
        return np.asarray([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        raise CmsisgenError(f"--mean '{text}': neither an existing file nor comma-separated numbers") from None


def float_batches(pre: Preprocessing, images: np.ndarray, shape: tuple[int, int, int], batch: int = CALIBRATION_BATCH):
    """Prepared float NCHW batches of ``images`` (uint8 NHWC)."""
    _, h, w = shape
    for start in range(0, len(images), batch):
        yield pre.to_float(pre.prepare_images(images[start:start + batch], h, w))


def compile_model(prototxt: Path, weights: Path, *, calib_images: Optional[np.ndarray] = None,
                  mean: Optional[str] = None, scale: Optional[float] = None, bgr: bool = False,
                  fc_variant: str = "opt", input_shape: Optional[tuple[int, int, int]] = None,
                  progress: Optional[Callable[[int], None]] = None) -> Compiled:
    """Everything up to (not including) rendering C."""
    net = load_net(prototxt, weights, input_shape=input_shape)
    pre = resolve_preprocessing(net, mean, scale, bgr)
    shape = next(iter(net.input_shapes.values()))
    notes: list[str] = []
    if calib_images is None:
        rng = np.random.default_rng(0)
        calib_images = rng.integers(0, 256, size=(SYNTHETIC_CALIBRATION_IMAGES, shape[1], shape[2], 3),
                                    dtype=np.uint8)
        notes.append(f"no --calib given: activation ranges were estimated from {SYNTHETIC_CALIBRATION_IMAGES} "
                     "random uniform images; give --calib with real images for a better quantization")

    def counted():
        for batch in float_batches(pre, calib_images, shape):
            yield batch
            if progress is not None:
                progress(len(batch))

    ranges = calibrate(net, counted())
    quant = quantize(net, ranges)
    program = map_network(net, quant, pre, fc_variant=fc_variant)
    plan = plan_buffers(program)
    notes.extend(program.warnings)
    return Compiled(net=net, pre=pre, quant=quant, program=program, plan=plan, notes=notes)
