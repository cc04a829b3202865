"""Command-line interface: compile, evaluate, inspect, verify.

Every user error (a bad model, bad data or a bad option) is one line on stderr,
``cmsisgen: error: <where>: <what>``, with exit status 2; an unexpected exception is
``cmsisgen: internal error: ...`` with exit status 1 (a bug: the traceback only with
``--debug``). Nothing here prints a traceback for a bad model, bad data or a bad option.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import click
import numpy as np

from . import __version__
from .calibration_methods import DEFAULT_METHODS, DEFAULT_PERCENTILE
from .errors import CmsisgenError, SettingError, SettingNote
from .footprint import DEFAULT_FLASH_LIMIT_KB, DEFAULT_RAM_LIMIT_KB
from .output import Interrupted
from .s8.cpu import CPUS, DEFAULT_CPU
from .vectors import MAX_VECTORS

DEFAULT_CALIB_LIMIT = 2000
#: Exit statuses: a user error (input, data, option) and a bug in cmsisgen.
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


@dataclass(frozen=True)
class _Settings:
    """The global options of one invocation, kept in its click context (``ctx.obj``)."""

    quiet: bool = False
    verbose: bool = False
    debug: bool = False


def _settings() -> _Settings:
    """This invocation's global options (defaults outside a command, e.g. in error handling)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, _Settings) else _Settings()


def _colour(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def _say(kind: str, message: str, colour: str) -> None:
    """``cmsisgen: <kind>: <message>`` on stderr, the prefix coloured on a terminal."""
    prefix = f"cmsisgen: {kind}:"
    if _colour(sys.stderr):
        prefix = click.style(prefix, fg=colour, bold=True)
    one_line = re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", message.strip())
    click.echo(f"{prefix} {one_line}", err=True)


def _fail(message: str, status: int = EXIT_USER_ERROR, kind: str = "error") -> None:
    _say(kind, message, "red")
    sys.exit(status)


def warn(message: str) -> None:
    """A one-line warning on stderr (not with --quiet)."""
    if not _settings().quiet:
        _say("warning", message, "yellow")


def info(message: str) -> None:
    """Progress information on stderr (not with --quiet)."""
    if not _settings().quiet:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """Details and timings on stderr, only with --verbose."""
    if _settings().verbose and not _settings().quiet:
        click.echo(f"cmsisgen: {message}", err=True)


@contextmanager
def _stage(name: str) -> Iterator[None]:
    """Time one pipeline stage; --verbose prints how long it took."""
    start = time.perf_counter()
    yield
    detail(f"{name}: {time.perf_counter() - start:.2f} s")


#: What click (8.2+) raises for a group called without a command.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_message(exc: click.ClickException) -> str:
    """A click usage error as ``<command>: <what> (see '<command> --help')``."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return f"command line: {message}"
    where = ctx.info_name if ctx.parent is not None else "command line"
    return f"{where}: {message} (see '{ctx.command_path} --help')"


class _StdoutClosed(Exception):
    """Writing to stdout failed with EPIPE. Raised instead of the OSError so that no click
    version handles it on its own (click 8.5 turns it into exit status 1)."""


class _Commands(click.Group):
    """The command group: every error -- a bad model, bad data or a bad option -- is one line
    ``cmsisgen: error: ...`` on stderr with exit status 2, never a traceback or a usage
    screen; anything unexpected is one line ``cmsisgen: internal error: ...`` with exit
    status 1 (the traceback with --debug)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = "--debug" in (sys.argv[1:] if args is None else list(args))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with warnings.catch_warnings():
                # Library warnings (numpy overflow, h5py, ...) are multi-line developer noise;
                # cmsisgen's own warnings are one-line messages of their own. --debug shows them.
                if not debug:
                    warnings.simplefilter("ignore")
                status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CmsisgenError as exc:
            if debug:
                traceback.print_exc()
            _fail(str(_named(exc)))
        except _NO_ARGS_IS_HELP as exc:  # `cmsisgen` alone: the help, as with --help
            click.echo(exc.ctx.get_help())
            status = 0
        except click.ClickException as exc:
            _fail(_usage_message(exc))
        except click.Abort:
            _fail("interrupted", 130)
        except Interrupted as exc:  # SIGTERM/SIGHUP while writing: rolled back, then ended
            _fail(f"interrupted by {exc}", 128 + exc.signum)
        except _StdoutClosed:
            # The stdout reader stopped early (`cmsisgen inspect ... | head`): the reader's
            # choice, not an error. Python's own advice: point stdout at /dev/null so that
            # the flush at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except MemoryError:  # a resource limit, not a bug: say what to shrink
            if debug:
                traceback.print_exc()
            _fail("out of memory: the network, its input size or the data set (--calib-limit, --limit) "
                  "is too large for this machine")
        except Exception as exc:  # a bug in cmsisgen, not in the user's input
            if debug:
                traceback.print_exc()
            text = str(exc)
            hint = "" if debug else " (run with --debug for the traceback)"
            _fail(f"{type(exc).__name__}{': ' + text if text else ''}{hint}", EXIT_INTERNAL_ERROR,
                  kind="internal error")
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise _StdoutClosed() from exc
            raise


def _input_shape(text: Optional[str]) -> Optional[tuple[int, int, int]]:
    if not text:
        return None
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise CmsisgenError(f"--input-shape '{text}': expected C,H,W such as 3,32,32") from None
    return c, h, w


def _load_model(model: str, weights: str, mean: Optional[str], scale: Optional[float], bgr: bool, fc: str,
                input_shape: Optional[str], calib: Optional[str], choices: "ModelChoices"):
    """The model, checked as far as it can be without images (before any image is read; only
    a data layer that gives no size, with no mean file, reads the first calibration image)."""
    from .pipeline import load_model, needs_input_shape

    def load(shape: Optional[tuple[int, int, int]]):
        return load_model(Path(model), Path(weights), mean=mean, scale=scale, bgr=bgr, fc_variant=fc,
                          input_shape=shape, kernels=choices.kernels, output=choices.outputs,
                          calib_method=choices.calib_method, optimize=choices.optimize, backend=choices.backend,
                          cpu=choices.cpu or DEFAULT_CPU)

    with _stage("loading and checking the model"):
        try:
            loaded = load(_input_shape(input_shape))
        except SettingError as exc:
            if not needs_input_shape(exc, _input_shape(input_shape)) or calib is None:
                raise
            loaded = load(_calibration_input_shape(model, calib))
    net = loaded.net
    shapes = ", ".join(f"{name.split('@')[0]} {'x'.join(map(str, net.shapes[name]))}" for name in net.outputs)
    if len(net.outputs) == 1:
        shapes = "output " + "x".join(map(str, net.shapes[net.outputs[0]]))
    else:
        shapes = "outputs " + shapes
    detail(f"{model}: {len(net.layers)} layers, input {'x'.join(map(str, loaded.input_shape))}, {shapes}")
    for note in loaded.folded:
        detail(f"{model}: {note}")
    for note in loaded.warnings:
        warn(_named(note))
    detail(loaded.pre.describe())
    return loaded


def _calibration_input_shape(model: str, calib: str) -> tuple[int, int, int]:
    """(C, H, W) of the calibration images, for a data layer that gives no size (with a warning)."""
    from .dataset import load_dataset
    from .pipeline import images_input_shape

    first = load_dataset(calib, limit=1)
    shape = images_input_shape(first.x, grey=first.grey)
    warn(f"{model}: the data layer gives no input size and there is no mean file: using "
         f"{','.join(map(str, shape))} (C,H,W) from the calibration images {calib} (--input-shape sets it)")
    return shape


def _load_images(path: Optional[str], limit: Optional[int], label: str, model, resize: bool = False):
    """The data set at ``path`` (None without a path), checked against the model's input.

    Images of another size than the input are an error naming the data set, unless
    ``resize`` (--resize): then they are resized (bilinear) to the input size."""
    if path is None:
        return None
    from .dataset import load_dataset, resize_dataset

    info(f"reading {label} {path}")
    with _stage(f"reading {label}"):
        dataset = load_dataset(path, limit=limit, progress=not _settings().quiet)
    _, h, w = model.input_shape
    ih, iw = dataset.image_shape[:2]
    if resize and (ih, iw) != (h, w):
        detail(f"resizing {len(dataset)} images of {path} from {ih}x{iw} to {h}x{w}")
        dataset = resize_dataset(dataset, h, w)
    try:
        model.check_dataset(dataset, path)
    except CmsisgenError:
        if resize or (ih, iw) == (h, w):
            raise
        raise CmsisgenError(f"{path}: images are {ih}x{iw}, the network input is {h}x{w} "
                            "(give --resize to resize them)") from None
    return dataset


def _vector_images(data: Optional[str], count: int, option: str, calib: Optional[str], calib_set, model,
                   resize: bool = False):
    """Images for ``count`` known-answer vectors: --data, else the calibration images, else
    None (random images)."""
    source = _load_images(data, count, "test-vector images", model, resize) if data else calib_set
    if source is not None and len(source) < count:
        raise CmsisgenError(f"{option} {count}: {data or calib} holds only {len(source)} images")
    return source


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal's stderr (none with --quiet or in a log): yields update(n)."""
    if _settings().quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True) as bar:
        yield bar.update


def _calibrate(model, calib_set):
    """Calibrate, quantize, map and plan, with a progress bar; prints the warnings."""
    from .pipeline import SYNTHETIC_CALIBRATION_IMAGES, compile_loaded

    images = calib_set.x if calib_set is not None else None
    labels = calib_set.y if calib_set is not None else None
    total = len(images) if images is not None else SYNTHETIC_CALIBRATION_IMAGES
    with _stage("calibrating, quantizing, mapping"), _progress(total, "calibrating") as update:
        compiled = compile_loaded(model, images, progress=update, calib_labels=labels)
    if model.optimize:
        for line in compiled.optimized or ["no format changed"]:
            info(f"optimize: {line}")
    for note in located_notes(compiled):
        warn(note)
    plan = compiled.plan
    detail(f"arena {plan.arena_bytes} bytes (activations and scratch, largest scratch {plan.scratch_bytes}), "
           f"image buffer {plan.input_buffer_bytes} bytes")
    for note in compiled.rewrites:
        detail(note)
    return compiled


def located_notes(compiled) -> list[str]:
    """The compile's warnings, settings named as options; a layer's names the prototxt
    first, as errors do."""
    source = compiled.net.source
    notes = [_named(note) for note in compiled.notes]
    return [f"{source}: {note}" if source and note.startswith("layer '") else note for note in notes]


#: The option of each library setting a message may name (errors.SettingError).
OPTION_OF_SETTING = {"mean": "--mean", "scale": "--scale", "bgr": "--bgr", "input_shape": "--input-shape",
                     "calib_images": "--calib", "test_vectors": "--test-vectors", "output": "--output"}


def _named(message):
    """A library error or note about a setting, worded with the setting's option."""
    if isinstance(message, (SettingError, SettingNote)):
        return message.named(lambda setting: OPTION_OF_SETTING.get(setting, setting))
    return message


@dataclass(frozen=True)
class ModelChoices:
    """The model options the option decorators below add to a command (--backend, --output,
    --kernel, --calib-method, --optimize), gathered into the one ``choices`` argument the
    command receives and hands to :func:`_load_model`: each decorator takes its option's
    value, fills in its field and passes ``choices`` on, so no command lists them one by one."""

    backend: str = "q7"
    outputs: tuple[str, ...] = ()
    kernels: dict[str, str] = dataclasses.field(default_factory=dict)  # layer -> function
    calib_method: Optional[str] = None  # None: the backend's default
    optimize: bool = False
    cpu: Optional[str] = None  # --cpu (None: not given; the default, or verify's target, decides)


def _chosen(command: Callable, choices: Optional[ModelChoices], **fields) -> Callable:
    """``command`` with ``choices`` (the outer decorators' fields, or the defaults) plus ``fields``."""
    return functools.partial(command, choices=dataclasses.replace(choices or ModelChoices(), **fields))


def _kernel_choices(values: tuple[str, ...]) -> dict[str, str]:
    """--kernel LAYER=FUNCTION (repeatable) -> {layer: function}."""
    choices: dict[str, str] = {}
    for value in values:
        layer, sep, function = value.partition("=")
        if not sep or not layer or not function:
            raise CmsisgenError(f"--kernel '{value}': expected LAYER=FUNCTION, such as "
                                "conv1=arm_convolve_HWC_q7_basic_nonsquare")
        if layer in choices:
            raise CmsisgenError(f"--kernel {value}: layer '{layer}' is already given {choices[layer]}")
        choices[layer] = function
    return choices


def _with_kernel_option(command: Callable) -> Callable:
    """Add --kernel; its choices go to the command's ``choices``."""
    @functools.wraps(command)
    def run(*args, kernel: tuple[str, ...] = (), choices: Optional[ModelChoices] = None, **kwargs):
        return _chosen(command, choices, kernels=_kernel_choices(kernel))(*args, **kwargs)

    return click.option("--kernel", metavar="LAYER=FUNCTION", multiple=True,
                        help="Use FUNCTION for LAYER instead of the first that fits (repeatable); refused, naming "
                             "the rule, when the function cannot run the layer.")(run)


def _with_backend_option(command: Callable) -> Callable:
    """Add --backend and --cpu; the choices go to the command's ``choices``."""
    @functools.wraps(command)
    def run(*args, backend: str = "q7", cpu: Optional[str] = None, choices: Optional[ModelChoices] = None, **kwargs):
        return _chosen(command, choices, backend=backend, cpu=cpu)(*args, **kwargs)

    run = click.option("--cpu", type=click.Choice(list(CPUS)), default=None,
                       help="Core the s8 code is planned for: the scratch sizes of its CMSIS-NN build (DSP on "
                            "cortex-m7, Helium/MVE on cortex-m55) and, on cortex-m55, the inner products' kernel "
                            "sums precomputed into flash. Default cortex-m7; verify --target qemu-m55 implies "
                            "cortex-m55. The q7 code is the same for both: with --backend q7, --cpu is a warning.")(run)

    return click.option("--backend", type=click.Choice(["q7", "s8"]), default="q7", show_default=True,
                        help="CMSIS-NN API to compile for: q7 (the legacy API of CMSIS_5 5.9.0) or s8 (the int8 API of "
                             "CMSIS-NN v7.0.0, per-channel requantization).")(run)


def _cpu_unused(choices: ModelChoices) -> list[str]:
    """A --cpu given with the q7 backend changes nothing: say so (a warning, also in compile's
    --json) rather than let the user believe the code was planned for that core. The legacy q7
    API of CMSIS_5 5.9.0 has no Helium kernels (its MVE build takes the plain C paths), so the
    q7 code and its portable kernels are the same on both cores."""
    if choices.backend != "q7" or choices.cpu is None:
        return []
    note = (f"--cpu {choices.cpu}: has no effect on the q7 backend (the legacy q7 API has no Helium build: its "
            "code is the same on every core); --cpu plans the s8 code")
    warn(note)
    return [note]


def _with_calib_method_option(command: Callable) -> Callable:
    """Add --calib-method and --optimize; they go to the command's ``choices``."""
    @functools.wraps(command)
    def run(*args, calib_method: Optional[str] = None, optimize: bool = False, choices: Optional[ModelChoices] = None,
            **kwargs):
        return _chosen(command, choices, calib_method=calib_method, optimize=optimize)(*args, **kwargs)

    run = click.option("--optimize", is_flag=True,
                       help="Hold out the last quarter of the calibration images and adjust each format by one "
                            "fractional bit where the q7 net then scores better on them (top-1 with labels, "
                            "else the output error); prints what it changed. q7 only.")(run)
    return click.option("--calib-method", metavar="METHOD", default=None,
                        help="How each activation's Q format is chosen from the calibration images: max (holds "
                             "the largest magnitude, nothing saturates), percentile[=P] (holds the P-th percentile "
                             f"of |x|, P default {DEFAULT_PERCENTILE}; percentile=99.9 lets the largest 0.1 % "
                             "saturate), mse (least quantization error), kl (least KL divergence, TensorRT-style). "
                             "On s8 the method picks each tensor's min and max, each side on its own. Default: "
                             f"{DEFAULT_METHODS['q7']} on q7, {DEFAULT_METHODS['s8']} on s8.")(run)


def _with_output_option(command: Callable) -> Callable:
    """Add --output BLOB (repeatable, comma-separated); the blobs go to the command's ``choices``."""
    @functools.wraps(command)
    def run(*args, output_blobs: tuple[str, ...] = (), choices: Optional[ModelChoices] = None, **kwargs):
        return _chosen(command, choices, outputs=tuple(output_blobs))(*args, **kwargs)

    return click.option("--output", "output_blobs", metavar="BLOB", multiple=True,
                        help="Stop the network at BLOB: keep only the layers it needs, and make it an output "
                             "(repeatable or comma-separated for several heads).")(run)


def _missing_out_folder(outputs: tuple[str, ...]) -> str:
    """compile without -o. Before 0.2, --output named the folder: a CI script still passing
    it gets told where the folder option went instead of a bare missing-option line."""
    moved = (" (--output names a blob where the network stops; the output folder is -o/--out, "
             "which --output was before cmsisgen 0.2)" if outputs else "")
    return f"compile: Missing option '-o' / '--out'{moved} (see 'cmsisgen compile --help')"


def _common_model_options(command: Callable) -> Callable:
    options = [
        click.option("--calib", "calib", metavar="DATA", help="Calibration images: image-folder tree, zip of one, or .npz."),
        click.option("--calib-limit", metavar="N", type=click.IntRange(min=1), default=DEFAULT_CALIB_LIMIT, show_default=True,
                     help="Use at most this many calibration images."),
        click.option("--resize", is_flag=True,
                     help="Resize images of another size than the network input (bilinear) instead of refusing them."),
        click.option("--mean", metavar="FILE|V1,V2,V3", help="Mean: a mean.binaryproto or per-channel values (overrides the prototxt)."),
        click.option("--scale", type=float, help="Input scale applied after mean subtraction (overrides the prototxt)."),
        click.option("--bgr", is_flag=True, help="The model expects BGR channel order (images are read as RGB)."),
        click.option("--fc", type=click.Choice(["opt", "plain"]), default="opt", show_default=True,
                     help="Inner-product kernel: arm_fully_connected_q7_opt (interleaved weights) or arm_fully_connected_q7."),
        click.option("--input-shape", metavar="C,H,W", help="Network input shape when neither the prototxt's data layer nor its mean file (or --mean FILE) nor the --calib images say."),
    ]
    for option in reversed(options):
        command = option(command)
    return _with_backend_option(_with_output_option(_with_kernel_option(_with_calib_method_option(command))))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cmsisgen")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors (and the results of evaluate, inspect, verify).")
@click.option("-v", "--verbose", is_flag=True, help="Also print details and how long each stage took.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error (for bug reports).")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool, debug: bool) -> None:
    """Compile a trained Caffe model into CMSIS-NN C code for Cortex-M (the q7 or the s8 API)."""
    ctx.obj = _Settings(quiet=quiet, verbose=verbose, debug=debug)


@main.command("compile")
@click.argument("model", type=click.Path())
@click.argument("weights", type=click.Path())
@click.option("-o", "--out", "out_dir", metavar="OUT", type=click.Path(),
              help="Output folder (created if needed; required).")
@_common_model_options
@click.option("--report", "report_path", metavar="FILE.json", type=click.Path(dir_okay=False),
              help="Also write the per-layer report as JSON ('-': on stdout, instead of the table).")
@click.option("--test-vectors", metavar="N", type=click.IntRange(min=0, max=MAX_VECTORS), default=0,
              help="Also write N known-answer vectors (test_vectors.h).")
@click.option("--data", metavar="DATA", help="Images for --test-vectors (default: the --calib images, else random images).")
@click.option("--ram-limit", metavar="KB", type=click.IntRange(min=1), default=DEFAULT_RAM_LIMIT_KB,
              show_default=True, help="Warn when the model's buffers need more RAM than this (default: STM32F746).")
@click.option("--flash-limit", metavar="KB", type=click.IntRange(min=1),
              default=DEFAULT_FLASH_LIMIT_KB, show_default=True,
              help="Warn when the weights need more flash than this (default: STM32F746).")
@click.option("--json", "json_path", metavar="[FILE]", is_flag=False, flag_value="-", default=None,
              type=click.Path(dir_okay=False),
              help="Write a machine-readable summary (JSON) to FILE; without FILE or with '-', print it "
                   "on stdout instead of the table.")
@click.option("--check", is_flag=True,
              help="Write nothing; fail, naming the stale files, unless OUT already holds exactly what this compile produces.")
def compile_command(model, weights, out_dir, calib, calib_limit, resize, mean, scale, bgr, fc, input_shape,
                    report_path, test_vectors, data, ram_limit, flash_limit, json_path, check,
                    choices: ModelChoices) -> None:
    """Compile MODEL.prototxt + WEIGHTS into OUT/{nn.c,nn.h,parameters.h,weights.h,weights.c} (and the kernels it calls)."""
    from .codegen import ALL_OUTPUT_FILES, render
    from .footprint import memory_use, memory_warning
    from .output import stale_files, write_output
    from .report import build_report, format_table, to_json
    from .vectors import make_test_vectors

    if out_dir is None:
        raise CmsisgenError(_missing_out_folder(choices.outputs))
    if data and not test_vectors:
        raise CmsisgenError("--data: only used with --test-vectors N")
    files_out = _compile_destinations(out_dir, report_path, json_path)
    cpu_notes = _cpu_unused(choices)
    loaded = _load_model(model, weights, mean, scale, bgr, fc, input_shape, calib, choices)
    _refuse_overwriting(files_out, _inputs(loaded, model, weights, mean, calib, data), out_dir)
    calib_set = _load_images(calib, calib_limit, "calibration images", loaded, resize)
    source = (_vector_images(data, test_vectors, "--test-vectors", calib, calib_set, loaded, resize)
              if test_vectors else None)
    compiled = _calibrate(loaded, calib_set)
    with _stage("rendering C"):
        vectors = make_test_vectors(compiled, source, test_vectors) if test_vectors else None
        files = render(compiled.program, compiled.plan, Path(model).name, vectors)
        report = build_report(compiled.program, compiled.plan, loaded.calib_method)
    if check:
        stale = stale_files(files, Path(out_dir), ALL_OUTPUT_FILES)
        if stale:
            raise CmsisgenError(f"{out_dir}: generated files are stale: {', '.join(stale)} "
                                f"(re-run without --check to regenerate)")
        click.echo(f"{out_dir}: up to date ({', '.join(sorted(files))})")
        return
    memory = memory_use(report, ram_limit, flash_limit)
    warnings = cpu_notes + [_named(note) for note in loaded.warnings] + located_notes(compiled)
    if not memory["fits"]:
        warnings.append(memory_warning(model, memory) + ", see --ram-limit/--flash-limit")
        warn(warnings[-1])
    summary = _summary(model, weights, out_dir, sorted(files), report_path, report, memory, warnings)
    texts = {"--report": to_json(report), "--json": json.dumps(summary, indent=2) + "\n"}
    with _stage("writing the output"):
        removed = write_output(files, Path(out_dir), {path: texts[option] for option, path in files_out.items()},
                               legacy=ALL_OUTPUT_FILES)
    if removed:
        info(f"{out_dir}: removed {', '.join(removed)}, written by an earlier compile and not by this one")
    if json_path == "-":
        click.echo(texts["--json"], nl=False)
    elif report_path == "-":
        click.echo(texts["--report"], nl=False)
    elif not _settings().quiet:
        click.echo(format_table(report))
        click.echo(f"wrote {', '.join(sorted(files))} to {out_dir}")


def _summary(model: str, weights: str, out_dir: str, files: list[str], report_path: Optional[str],
             report: dict, memory: dict, warnings: list[str]) -> dict:
    """compile --json: what was compiled with what, where it went, the report's figures."""
    # "out": the -o/--out folder ("outputs" below are the network's outputs)
    return {"model": str(model), "weights": str(weights), "out": str(out_dir),
            "files": [str(Path(out_dir) / name) for name in files],
            "report": None if report_path in (None, "-") else str(report_path),
            **{key: report[key] for key in ("backend", "cpu", "calib_method")},
            "layers": report["layers"], "totals": report["totals"], "memory": memory, "warnings": warnings,
            "outputs": report["outputs"]}


def _portable_kernels(backend: str) -> Optional[Path]:
    """The project's portable kernels of a backend (None: the q7 default of the build)."""
    from .verify import firmware_dir

    return firmware_dir() / "cmsis_nn_s8_portable" if backend == "s8" else None


#: The core each verify target runs the code as: the host build runs the portable kernels,
#: which answer as CMSIS-NN's DSP (Cortex-M7) build there.
_TARGET_CPU = {"host": "cortex-m7", "qemu": "cortex-m7", "qemu-m55": "cortex-m55"}


def _target_cpu(target: str, choices: ModelChoices) -> ModelChoices:
    """verify's --target decides --cpu: refuse a --cpu that contradicts it, else set it."""
    wanted = _TARGET_CPU[target]
    if choices.cpu not in (None, wanted):
        raise CmsisgenError(f"--cpu {choices.cpu}: contradicts --target {target}, which runs the code as on a "
                            f"{wanted} (give --cpu {wanted} or leave it out)")
    return dataclasses.replace(choices, cpu=wanted)


def _check_target_library(target: str, cmsis_nn_path: Optional[str], backend: str) -> None:
    """The q7 API on the Cortex-M55 runs with the portable kernels only: CMSIS_5 5.9.0 builds
    its MVE sources there, and arm-none-eabi-gcc 12.2 fails on one of them (an internal
    compiler error in arm_softmax_s8.c), so the upstream q7 build is not verified on it."""
    if target == "qemu-m55" and backend == "q7" and cmsis_nn_path:
        raise CmsisgenError("--target qemu-m55: the q7 backend runs there with the portable kernels only "
                            "(CMSIS_5 5.9.0 built for Cortex-M55 is not verified); unset --cmsis-nn-path/"
                            "CMSIS_NN_PATH or use --backend s8")


def _check_output_folder(out_dir: str) -> None:
    """-o names a folder: not empty, not an existing file, writable (before any long work)."""
    from .output import check_destination

    if out_dir == "":
        raise CmsisgenError("-o '': the output folder's name is empty")
    if _exists_not_folder(Path(out_dir)):
        raise CmsisgenError(f"{out_dir}: exists and is not a folder (-o names the output folder)")
    check_destination(Path(out_dir), "output folder", folder=True)


def _exists_not_folder(path: Path) -> bool:
    try:
        return path.exists() and not path.is_dir()
    except OSError:
        return False


def _file_options(*options: tuple[str, Optional[str], str]) -> dict[str, Path]:
    """The options that name a file to write, {option: path} ('-' is stdout, not a file),
    each checked before any long work."""
    from .output import check_destination

    files = {}
    for option, value, what in options:
        if value == "":
            raise CmsisgenError(f"{option} '': the file name is empty (give '-' for stdout)")
        if value is not None and value != "-":
            check_destination(Path(value), what)
            files[option] = Path(value)
    return files


def _compile_destinations(out_dir: str, report_path: Optional[str], json_path: Optional[str]) -> dict[str, Path]:
    """compile's -o folder and its file options ({option: path}), checked before any long work."""
    if report_path == "-" and json_path == "-":
        raise CmsisgenError("--report -: stdout already carries the --json summary (give --report a file)")
    _check_output_folder(out_dir)
    files_out = _file_options(("--report", report_path, "report"), ("--json", json_path, "summary"))
    _refuse_the_output_folder(files_out, out_dir)
    return files_out


def _refuse_the_output_folder(files_out: dict[str, Path], out_dir: str) -> None:
    """A file option (--report, --json) naming the -o folder, or a folder on its way, can only
    fail, and would fail after the long work with an error about the generated files: refuse
    it first, naming the option."""
    folder = _resolved(Path(out_dir))
    for option, path in files_out.items():
        target = _resolved(path)
        if target == folder:
            raise CmsisgenError(f"{path}: {option} names the output folder (-o {out_dir}), not a file of its own")
        if target in folder.parents:
            raise CmsisgenError(f"{path}: {option} names a folder that holds the output folder (-o {out_dir}), "
                                "not a file of its own")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _inputs(loaded, model: str, weights: str, mean: Optional[str], calib: Optional[str],
            data: Optional[str]) -> list[tuple[str, Path]]:
    """The files a run reads, described as an error names them."""
    named = [("the model", model), ("the weights", weights), ("the mean file", mean),
             ("the calibration data", calib), ("the images", data)]
    mean_file = loaded.net.transform.mean_file
    if mean_file and mean is None:
        named.append(("the prototxt's mean_file", mean_file))
        if loaded.net.source:
            named.append(("the prototxt's mean_file", str(Path(loaded.net.source).parent / mean_file)))
    return [(what, Path(path)) for what, path in named if path]


def _refuse_overwriting(files_out: dict[str, Path], inputs: list[tuple[str, Path]],
                        out_dir: Optional[str] = None) -> None:
    """A file an option writes must be none of the run's inputs, generated files or other
    files written."""
    from .codegen import ALL_OUTPUT_FILES
    from .output import MANIFEST, refuse_overwriting

    protected = list(inputs)
    if out_dir is not None:
        protected += [(f"the generated {name}", Path(out_dir) / name) for name in (*ALL_OUTPUT_FILES, MANIFEST)]
    whats = {"--report": "report", "--json": "summary", "--plot": "plot"}
    for option, path in files_out.items():
        refuse_overwriting(path, whats[option], protected)
        protected.append((f"the {whats[option]}", path))


@main.command("evaluate")
@click.argument("model", type=click.Path())
@click.argument("weights", type=click.Path())
@click.option("--data", required=True, metavar="DATA", help="Labelled images: image-folder tree, zip of one, or .npz.")
@_common_model_options
@click.option("--limit", metavar="N", type=click.IntRange(min=1), help="Evaluate at most N images.")
@click.option("--json", "json_path", metavar="[FILE]", is_flag=False, flag_value="-", default=None,
              type=click.Path(dir_okay=False),
              help="Write {n, float_top1, q7_top1 (s8_top1 with --backend s8), agreement} as JSON to FILE; without FILE or with '-', print it "
                   "on stdout instead of the text lines.")
@click.option("--per-layer", is_flag=True,
              help="Also report, per layer output, its format (s8: scale and zero point), the SQNR and cosine of the "
                   "dequantized int8 tensor against the float one, the share of values clipped and the count "
                   "saturated (JSON: 'layers').")
@click.option("--plot", "plot_path", metavar="FILE.png", type=click.Path(dir_okay=False),
              help="Draw the per-layer report (float range against the format's, SQNR) into FILE.png; implies "
                   "--per-layer; needs matplotlib (the 'plot' extra).")
def evaluate_command(model, weights, data, calib, calib_limit, resize, mean, scale, bgr, fc, input_shape, limit,
                     json_path, per_layer, plot_path, choices: ModelChoices) -> None:
    """Float top-1, quantized top-1 (bit-exact simulator of the --backend) and their agreement on DATA."""
    from .evaluate import evaluate, scored_output

    if plot_path == "-":
        raise CmsisgenError("--plot -: the plot is a PNG image, not text for stdout (name a file)")
    files_out = _file_options(("--json", json_path, "summary"), ("--plot", plot_path, "plot"))
    if plot_path is not None:
        from .layer_plot import require_matplotlib

        require_matplotlib()
    _cpu_unused(choices)
    loaded = _load_model(model, weights, mean, scale, bgr, fc, input_shape, calib, choices)
    scored_output(loaded.net)  # several outputs and none named: refused before any image is read
    _refuse_overwriting(files_out, _inputs(loaded, model, weights, mean, calib, data))
    calib_set = _load_images(calib, calib_limit, "calibration images", loaded, resize)
    dataset = _load_images(data, limit, "evaluation images", loaded, resize)
    scored = scored_output(loaded.net)
    _check_labels(dataset, data, loaded, scored)
    compiled = _calibrate(loaded, calib_set)
    with _stage("evaluating"), _progress(len(dataset.x), "evaluating") as update:
        result = evaluate(compiled, dataset, progress=update, output=scored, per_layer=per_layer or bool(plot_path))
    backend = choices.backend
    if backend != "q7":  # the quantized top-1 under the backend's name
        result = {(f"{backend}_top1" if key == "q7_top1" else key): value for key, value in result.items()}
    if plot_path is not None:
        from .layer_plot import plot_layers

        plot_layers(result["layers"], files_out["--plot"], f"{Path(model).name}: {result['n']} images", backend)
    _print_evaluation(result, json_path, files_out, backend)


def _print_evaluation(result: dict, json_path: Optional[str], files_out: dict[str, Path], backend: str) -> None:
    from .layer_error import format_rows
    from .output import write_files

    text = json.dumps(result, indent=2) + "\n"
    if "--json" in files_out:
        write_files({files_out["--json"]: text}, "summary")
    if json_path == "-":
        click.echo(text, nl=False)
        return
    click.echo(f"images:      {result['n']}")
    click.echo(f"float top-1: {100 * result['float_top1']:.2f}%")
    click.echo(f"{backend} top-1:    {100 * result[f'{backend}_top1']:.2f}%")
    click.echo(f"agreement:   {100 * result['agreement']:.2f}%")
    if "layers" in result:
        click.echo("")
        for line in format_rows(result["layers"]):
            click.echo(line)


def _check_labels(dataset, path: str, model, output: str) -> None:
    """Evaluation labels must index the classes of the scored output."""
    from .evaluate import class_count

    net = model.net
    outputs = class_count(net, output) or int(np.prod(net.shapes[output]))
    label = int(dataset.y.max()) if len(dataset.y) else 0
    if label >= outputs:
        name = dataset.classes[label] if label < len(dataset.classes) else str(label)
        has = (f"the network has {outputs} outputs" if len(net.outputs) == 1 else
               f"output '{output.split('@')[0]}' has {outputs} values")
        raise CmsisgenError(f"{path}: label {label} (class '{name}') is out of range: {has}, so labels must be "
                            f"0..{outputs - 1}")


@main.command("inspect")
@click.argument("model", type=click.Path())
@click.argument("weights", required=False, type=click.Path())
@click.option("--input-shape", metavar="C,H,W", help="Network input shape when neither the prototxt's data layer nor its mean file (or --mean FILE) says.")
@_with_output_option
def inspect_command(model, weights, input_shape, choices: ModelChoices) -> None:
    """Print the graph with its shapes (and blob shapes when WEIGHTS is given)."""
    from .loader import load_net
    from .loader.heads import split_outputs

    net = load_net(Path(model), Path(weights) if weights else None, input_shape=_input_shape(input_shape),
                   outputs=split_outputs(choices.outputs))
    for note in net.warnings:
        warn(_named(note))
    click.echo(f"net {net.name or '(unnamed)'}")
    for name, shape in net.input_shapes.items():
        click.echo(f"  input {name}: {'x'.join(map(str, shape))}")
    t = net.transform
    if t.mean_file or t.mean_values or t.scale != 1.0 or t.crop_size:
        values = ",".join(f"{v:g}" for v in t.mean_values) or "-"
        click.echo(f"  transform: mean_file={t.mean_file or '-'} mean_value={values} "
                   f"scale={t.scale} crop_size={t.crop_size}")
    # columns as wide as the longest layer name and type (at least 16 and 13)
    name_w = max([16] + [len(layer.name) for layer in net.layers])
    type_w = max([13] + [len(layer.type) for layer in net.layers])
    for layer in net.layers:
        out = " ".join("x".join(map(str, net.shapes[top])) for top in layer.tops)
        blobs = " ".join("(" + ",".join(map(str, b.shape)) + ")" for b in layer.blobs)
        click.echo(f"  {layer.name:<{name_w}} {layer.type:<{type_w}} {','.join(layer.bottoms)} -> "
                   f"{','.join(layer.tops)}  {out}{'  blobs ' + blobs if blobs else ''}")
    click.echo(f"  outputs: {', '.join(net.outputs)}")


@main.command("verify")
@click.argument("model", type=click.Path())
@click.argument("weights", type=click.Path())
@_common_model_options
@click.option("--data", metavar="DATA", help="Images for the vectors (default: the --calib images, else random images).")
@click.option("--vectors", metavar="N", type=click.IntRange(min=1, max=MAX_VECTORS), default=10, show_default=True, help="Number of known-answer vectors.")
@click.option("--target", type=click.Choice(["host", "qemu", "qemu-m55"]), default="host", show_default=True,
              help="host: gcc with the portable kernels; qemu: emulated Cortex-M7 (mps2-an500); qemu-m55: emulated "
                   "Cortex-M55 with Helium/MVE (mps3-an547).")
@click.option("--cmsis-nn-path", metavar="DIR", envvar="CMSIS_NN_PATH", type=click.Path(file_okay=False),
              help="Build against upstream CMSIS-NN (its CMSIS/NN folder) instead of the portable kernels. [env: CMSIS_NN_PATH]")
@click.option("--cmsis-core-path", metavar="DIR", envvar="CMSIS_CORE_PATH", type=click.Path(file_okay=False),
              help="CMSIS Core include folder for an upstream build. [env: CMSIS_CORE_PATH]")
@click.option("--cmsis-dsp-include", metavar="DIR", envvar="CMSIS_DSP_INCLUDE", type=click.Path(file_okay=False),
              help="CMSIS-DSP Include folder (arm_math_types.h), needed by CMSIS_5 5.9.0's CMSIS-NN. [env: CMSIS_DSP_INCLUDE]")
@click.option("--keep", metavar="DIR", type=click.Path(file_okay=False), help="Keep the generated code and build in this folder.")
def verify_command(model, weights, calib, calib_limit, resize, mean, scale, bgr, fc, input_shape, data, vectors,
                   target, cmsis_nn_path, cmsis_core_path, cmsis_dsp_include, keep, choices: ModelChoices) -> None:
    """Compile, build and run the generated code; the last line is 'K/N vectors bit-exact'."""
    from .codegen import render
    from .output import write_output
    from .vectors import make_test_vectors
    from .verify import build_and_run, format_result

    if keep == "":
        raise CmsisgenError("--keep '': the folder name is empty")
    _check_target_library(target, cmsis_nn_path, choices.backend)
    targeted = _target_cpu(target, choices)
    _cpu_unused(choices)
    choices = targeted

    loaded = _load_model(model, weights, mean, scale, bgr, fc, input_shape, calib, choices)
    calib_set = _load_images(calib, calib_limit, "calibration images", loaded, resize)
    source = _vector_images(data, vectors, "--vectors", calib, calib_set, loaded, resize)
    compiled = _calibrate(loaded, calib_set)
    test_vectors = make_test_vectors(compiled, source, vectors)
    files = render(compiled.program, compiled.plan, Path(model).name, test_vectors)
    # The work folder is removed only after a clean pass: on a failure its logs (named in
    # the error) and the generated code stay for inspection.
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="cmsisgen-verify-"))
    model_dir = root / "model"
    write_output(files, model_dir)
    with _stage(f"building and running on {target}"):
        result = build_and_run(model_dir, target=target, build_dir=root / "build",
                               cmsis_nn_path=Path(cmsis_nn_path) if cmsis_nn_path else None,
                               cmsis_core_path=Path(cmsis_core_path) if cmsis_core_path else None,
                               cmsis_dsp_include=Path(cmsis_dsp_include) if cmsis_dsp_include else None,
                               portable_path=_portable_kernels(compiled.program.backend))
    click.echo(format_result(result))
    if result.passed != result.total or result.total != vectors:
        info(f"generated code and build logs kept in {root}")
        sys.exit(EXIT_INTERNAL_ERROR)  # the generated code disagrees with the simulator: a bug
    if not keep:
        shutil.rmtree(root, ignore_errors=True)

if __name__ == "__main__":
    main()
