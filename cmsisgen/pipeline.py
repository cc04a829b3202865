"""The compile pipeline in one place: load -> shapes -> calibrate -> quantize -> map -> plan.

The CLI commands (compile, evaluate, verify) all go through :func:`load_model` and
:func:`compile_loaded` (:func:`compile_model` is both in one call) so that they see the
same quantized program; everything that can be checked without images is checked in
:func:`load_model`, before any image is read.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import ir
from .errors import SETTING, CmsisgenError, SettingError, SettingNote
from .fold import fold_affine
from .loader import load_net
from .loader.heads import split_outputs
from .loader.mean import parse_mean_option, read_mean_binaryproto
from .mapper.buffers import BufferPlan, plan_buffers
from .mapper.lowering import check_supported, map_network
from .mapper.calls import Program
from .mapper.commute import drop_idle_relus, relu_after_max_pool
from .preprocess import Preprocessing, build_preprocessing
from .calibration import batch_size, calibrate
from .calibration_methods import DEFAULT_METHOD, default_method, statistic_for
from .optimize import held_out, optimize_formats, split
from .quantizer import Quantization, quantize
from .s8.cpu import scratch_core

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
    rewrites: list[str] = field(default_factory=list)  # steps moved without changing a bit (mapper/commute.py)
    optimized: list[str] = field(default_factory=list)  # what --optimize changed, one line each


def _mean_file(net: ir.Net, name: str, from_option: bool, warnings: list[str]) -> Path:
    """The mean file a relative ``mean_file`` of the prototxt names: beside the prototxt,
    else in the current folder (a ``mean`` setting's path is taken as given). When both exist and
    differ, the one used and the one ignored are named in a warning."""
    path = Path(name)
    if from_option or path.is_absolute() or not net.source:
        return path
    beside = Path(net.source).parent / path
    if not beside.is_file():
        if path.is_file():
            return path
        raise SettingError("mean", f"{net.source}: mean_file '{name}' does not exist beside the prototxt "
                                   f"({beside}) or in the current folder (give {SETTING})")
    if path.is_file() and not os.path.samefile(beside, path):
        warnings.append(f"{net.source}: mean_file '{name}': using {beside} (beside the prototxt), not {path} "
                        "in the current folder")
    return beside


def _guess_warning(net: ir.Net, bgr: bool) -> str:
    order = "luminance" if next(iter(net.input_shapes.values()))[0] == 1 else "BGR" if bgr else "RGB"
    return SettingNote("mean", f"{net.source}: no transform_param and no {SETTING}/{{scale}}: the input is the "
                               f"image as read, mean 0, scale 1, {order} (give {SETTING} and {{scale}} if the model "
                               "was trained otherwise)", also=("scale",))


def resolve_preprocessing(net: ir.Net, mean: Optional[str], scale: Optional[float], bgr: bool,
                          warnings: Optional[list[str]] = None) -> Preprocessing:
    """The prototxt's transform_param, overridden by the ``mean`` / ``scale`` settings.

    A mean_file named by the prototxt that does not exist is an error only when no
    ``mean`` replaces it. Errors name the setting (:class:`SettingError`) or the prototxt
    they come from; what was guessed (no transform_param at all) or chosen between two
    files goes to ``warnings``.
    """
    warnings = [] if warnings is None else warnings
    c, h, w = next(iter(net.input_shapes.values()))
    transform = net.transform
    origin = net.source
    if bgr and c != 3:
        raise SettingError("bgr", f"{SETTING}: the network input has {c} channel{'s' if c > 1 else ''}; "
                                  "a channel order applies only to 3-channel inputs")
    if mean is None and scale is None and not transform.given:
        warnings.append(_guess_warning(net, bgr))
    if mean is not None:
        option = parse_mean_option(mean)
        transform = replace(transform, **option)
        origin = SETTING
    if scale is not None:
        if not math.isfinite(scale) or scale <= 0:
            raise SettingError("scale", f"{SETTING} {scale}: must be a positive, finite number")
        transform = replace(transform, scale=scale)
    mean_array: Optional[np.ndarray] = None
    mean_origin = ""
    if transform.mean_file:
        path = _mean_file(net, transform.mean_file, mean is not None, warnings)
        mean_array = read_mean_binaryproto(path)
        if not np.all(np.isfinite(mean_array)):
            raise CmsisgenError(f"{path}: the mean image holds NaN/Inf values")
        mean_origin = str(path)
    elif transform.mean_values:
        mean_array = np.asarray(transform.mean_values, dtype=np.float64)
        if not np.all(np.isfinite(mean_array)):
            raise _origin_error(origin, f"mean_value must be finite numbers, got "
                                        f"{', '.join(f'{v:g}' for v in transform.mean_values)}")
    try:
        pre = build_preprocessing(mean_array, transform.scale, bgr, c, (h, w), crop_size=transform.crop_size)
    except CmsisgenError as exc:
        raise _origin_error(origin, str(exc)) from None
    return replace(pre, mean_file=mean_origin)


def _origin_error(origin: str, what: str) -> CmsisgenError:
    """An error in the mean, located at the mean setting or at the prototxt that gave it."""
    if origin == SETTING:
        return SettingError("mean", f"{SETTING}: {what}")
    return CmsisgenError(f"{origin}: {what}")


def float_batches(pre: Preprocessing, images: np.ndarray, shape: tuple[int, int, int], batch: int = CALIBRATION_BATCH):
    """Float NCHW batches of decoded uint8 NHWC ``images``, preprocessed as Caffe would."""
    _, h, w = shape
    for start in range(0, len(images), batch):
        yield pre.to_float(pre.prepare_images(images[start:start + batch], h, w))


@dataclass
class Model:
    """A loaded model that passed every check that needs no data: what calibration starts from."""

    net: ir.Net
    pre: Preprocessing
    fc_variant: str
    folded: list[str] = field(default_factory=list)  # "bn1 folded into conv1", from fold.fold_affine
    warnings: list[str] = field(default_factory=list)  # one line each: loading and preprocessing
    kernels: dict[str, str] = field(default_factory=dict)  # layer -> function the user forced (--kernel)
    backend: str = "q7"  # ops.base.BACKENDS: the legacy q7 API or the CMSIS-NN s8 API
    calib_method: str = DEFAULT_METHOD  # --calib-method (cmsisgen.calibration_methods)
    optimize: bool = False  # --optimize (cmsisgen.optimize)
    cpu: str = "cortex-m7"  # --cpu: the core the s8 code is planned for (cmsisgen.s8.cpu)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return next(iter(self.net.input_shapes.values()))

    def check_dataset(self, dataset, source: str) -> None:
        """:meth:`check_images`, and refuse greyscale images for a colour network: copied
        into three channels they are not what it was trained on (a silent 10 %)."""
        channels = self.input_shape[0]
        if dataset.grey and channels == 3:
            raise CmsisgenError(f"{source}: the images are greyscale (1 channel) and the network input has "
                                "3 channels (colour); give colour images")
        self.check_images(dataset.x, source)

    def check_images(self, images: np.ndarray, source: str) -> None:
        """Refuse images the network cannot take (wrong size, no crop), naming ``source``."""
        _, h, w = self.input_shape
        try:
            self.pre.raw_images(images[:1], h, w)
        except CmsisgenError as exc:
            raise CmsisgenError(f"{source}: {exc}") from None


def load_model(prototxt: Path, weights: Path, *, mean: Optional[str] = None, scale: Optional[float] = None,
               bgr: bool = False, fc_variant: str = "opt",
               input_shape: Optional[tuple[int, int, int]] = None,
               kernels: Optional[dict[str, str]] = None, output: Union[str, Sequence[str], None] = None,
               calib_method: Optional[str] = None, optimize: bool = False, backend: str = "q7",
               cpu: str = "cortex-m7") -> Model:
    """Load and check everything that does not need images: files, kernel rules of ``backend``
    (with the functions forced per layer in ``kernels``), preprocessing. ``output`` (blob names, a
    string of them comma-separated) cuts the net where they are computed: they are its outputs.
    ``calib_method`` None is the backend's default."""
    mean_file = parse_mean_option(mean).get("mean_file") if mean is not None else None
    net = load_net(prototxt, weights, input_shape=input_shape, mean_file=Path(mean_file) if mean_file else None,
                   outputs=split_outputs(output))
    folded = fold_affine(net)
    try:
        check_supported(net, fc_variant, kernels, backend)
    except CmsisgenError as exc:
        raise exc.at(net.source) from None
    warnings = list(net.warnings)
    pre = resolve_preprocessing(net, mean, scale, bgr, warnings)
    calib_method = calib_method or default_method(backend)
    statistic_for(calib_method)  # a bad --calib-method is refused before anything is read
    if backend == "s8" and fc_variant != "opt":
        raise CmsisgenError("--fc plain: not supported by the s8 backend (arm_fully_connected_s8 is its one "
                            "inner-product kernel)")
    if backend == "s8" and optimize:
        raise CmsisgenError("--optimize: not supported by the s8 backend (it searches power-of-two formats; "
                            "s8 scales come from each tensor's calibrated bounds)")
    scratch_core(cpu)  # a bad --cpu is refused before anything is read
    return Model(net=net, pre=pre, fc_variant=fc_variant, folded=folded, warnings=warnings,
                 kernels=dict(kernels or {}), calib_method=calib_method, optimize=optimize, backend=backend, cpu=cpu)


def compile_model(prototxt: Path, weights: Path, *, calib_images: Optional[np.ndarray] = None,
                  mean: Optional[str] = None, scale: Optional[float] = None, bgr: bool = False,
                  fc_variant: str = "opt", input_shape: Optional[tuple[int, int, int]] = None,
                  progress: Optional[Callable[[int], None]] = None,
                  kernels: Optional[dict[str, str]] = None, output: Union[str, Sequence[str], None] = None,
                  calib_method: Optional[str] = None, optimize: bool = False, backend: str = "q7",
                  cpu: str = "cortex-m7") -> Compiled:
    """Everything up to (not including) rendering C. A data layer that gives no size and has
    no mean file takes it from ``calib_images`` (:func:`images_input_shape`)."""
    def load(shape: Optional[tuple[int, int, int]]) -> Model:
        return load_model(prototxt, weights, mean=mean, scale=scale, bgr=bgr, fc_variant=fc_variant,
                          input_shape=shape, kernels=kernels, output=output, calib_method=calib_method,
                          optimize=optimize, backend=backend, cpu=cpu)

    try:
        model = load(input_shape)
    except SettingError as exc:
        if not needs_input_shape(exc, input_shape) or calib_images is None:
            raise
        model = load(images_input_shape(calib_images))
    return compile_loaded(model, calib_images, progress)


def needs_input_shape(error: SettingError, input_shape: Optional[tuple[int, int, int]]) -> bool:
    """The error says only that the net gives no input size (no input_shape setting was given)."""
    return error.setting == "input_shape" and input_shape is None


def images_input_shape(images: np.ndarray, grey: Optional[bool] = None) -> tuple[int, int, int]:
    """(C, H, W) of uint8 NHWC images, for a data layer whose size neither the prototxt nor a
    mean file gives: Caffe sizes such a layer by the data it reads, and the calibration images
    stand for that data. One channel when the images are greyscale (``grey``; by default when
    they have one channel), else three."""
    _, h, w = images.shape[:3]
    grey = images.ndim == 3 or images.shape[-1] == 1 if grey is None else grey
    return (1 if grey else 3), int(h), int(w)


def compile_loaded(model: Model, calib_images: Optional[np.ndarray] = None,
                   progress: Optional[Callable[[int], None]] = None,
                   calib_labels: Optional[np.ndarray] = None) -> Compiled:
    """Calibrate, quantize, map and plan a model from :func:`load_model`; with
    ``model.optimize``, the last quarter of the calibration images (and ``calib_labels``)
    is held out to adjust the formats (:mod:`cmsisgen.optimize`)."""
    net, pre, shape = model.net, model.pre, model.input_shape
    notes: list[str] = []
    if calib_images is None:
        rng = np.random.default_rng(0)
        calib_images = rng.integers(0, 256, size=(SYNTHETIC_CALIBRATION_IMAGES, shape[1], shape[2], 3),
                                    dtype=np.uint8)
        notes.append(SettingNote("calib_images", f"no {SETTING} given: activation ranges were estimated from "
                                 f"{SYNTHETIC_CALIBRATION_IMAGES} random uniform images; give {SETTING} with "
                                 "real images for a better quantization"))
        calib_labels = None
    used = split(len(calib_images)) if model.optimize else len(calib_images)

    def counted():
        for batch in float_batches(pre, calib_images[:used], shape, batch_size(net)):
            yield batch
            if progress is not None:
                progress(len(batch))

    optimized: list[str] = []
    try:
        if model.backend == "s8":
            from .calibration_bounds import calibrate_bounds
            from .quantizer_s8 import quantize_s8
            quant = quantize_s8(net, calibrate_bounds(net, counted(), model.calib_method))
        else:
            ranges = calibrate(net, counted(), statistic_for(model.calib_method))
            if used < len(calib_images):
                labels = calib_labels[used:] if calib_labels is not None else None
                quant, optimized = _optimized(model, ranges, calib_images[used:], labels)
            else:
                quant = quantize(net, ranges, forced=model.kernels)
        program = map_network(net, quant, pre, fc_variant=model.fc_variant, forced=model.kernels,
                              backend=model.backend, cpu=model.cpu)
        rewrites = relu_after_max_pool(program) + drop_idle_relus(program)  # (q7's ReLU steps; none on s8)
        plan = plan_buffers(program)
    except CmsisgenError as exc:  # layer checks name the layer; the file is the prototxt
        raise exc.at(net.source) from None
    notes.extend(program.warnings)
    return Compiled(net=net, pre=pre, quant=quant, program=program, plan=plan, notes=notes, rewrites=rewrites,
                    optimized=optimized)


def _optimized(model: Model, ranges: dict[str, float], images: np.ndarray,
               labels: Optional[np.ndarray]) -> tuple[Quantization, list[str]]:
    """:func:`cmsisgen.optimize.optimize_formats` on the held-out ``images``."""
    from .evaluate import scored_output

    net = model.net
    try:
        output = scored_output(net)
    except CmsisgenError:  # several outputs, no single classifier: the first output's error
        output = net.outputs[0]
    held = held_out(net, model.pre, images, labels, output)

    def build(quant: Quantization) -> Program:
        return map_network(net, quant, model.pre, fc_variant=model.fc_variant, forced=model.kernels)

    return optimize_formats(net, ranges, held, output, build, forced=model.kernels)
