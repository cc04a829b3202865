#!/usr/bin/env python3
"""Speed and size of cmsisgen on the bundled CIFAR-10 example: figures only, one table.

    python3 benchmarks/bench.py [--calib-images 1000] [--vectors 4] [--build-dir DIR] [--no-firmware]
        [--big-nets mobilenet_v1,squeezenet_v1_1,alexnet]
        [--cmsis-nn-path .../CMSIS/NN --cmsis-core-path ... --cmsis-dsp-include ...] [--s8-cmsis-nn-path .../CMSIS-NN]
        [--arm-code .../cmsisnn-cifar10/code [--arm-models .../models]] [--arm-code-only] [--m55-only]

Prints, as one Markdown table (copy it into the README):

- the machine (CPU, cores, Python, gcc, arm-none-eabi-gcc, QEMU);
- `cmsisgen compile` of the example with N calibration images (wall time of the command,
  a fresh process: imports, image decoding, calibration, quantization, code generation) and
  its peak memory (maximum resident set size of that process);
- `cmsisgen evaluate` of the example on the 10,000 test images (the example's own 1,000
  when the full set is absent; the table says which): wall time and peak memory of the
  command, and the throughput of its two halves measured in-process: the float forward
  (numpy, Caffe semantics) and the q7 simulator (bit-exact kernels), images/s;
- the host's speed yardstick: 15 float32 2048x2048x2048 matrix products (numpy's BLAS, as
  many threads as it likes) timed in this process, and `evaluate()` of the test set (both
  passes, on images decoded beforehand) timed in the same process, and their ratio;
- ImageNet-size nets (benchmarks/models/, seeded random weights from
  benchmarks/random_weights.py): `cmsisgen compile` with the default calibration (wall time,
  peak memory, its time over the example's compile time) and whether it printed the RAM/flash
  warning;
- generated flash and RAM: the STM32F746 self-test build's size report (weights, code, the
  arena `run_nn()` uses, the caller's image buffer);
- QEMU Cortex-M7 (mps2-an500) instructions per inference, with the portable kernels and,
  when --cmsis-nn-path is given, with upstream CMSIS-NN; and per layer (the self test's
  profile of vector 0);
- the same for `--backend s8` (benchmarks/bench_s8.py): compile time, STM32F746 sizes and QEMU
  instructions with the portable s8 kernels and, with --s8-cmsis-nn-path, upstream CMSIS-NN
  v7.0.0; the step table aligns the q7 and s8 steps by name;
- the s8 code on QEMU's Cortex-M7 and Cortex-M55 (Helium/MVE) side by side, instructions per
  inference with each library (benchmarks/bench_m55.py; QEMU counts instructions, not cycles);
  --m55-only prints these rows alone;
- the input step (`nn_input_q7`, uint8 image -> q7) in QEMU instructions per byte of the
  image, for every preprocessing form (per-channel mean, per-pixel mean, scale only, RGB,
  BGR, 1 channel) on a 32x32 input, with the flash its table or offsets take;
- with --arm-code DIR (or ARM_CODE_DIR) and upstream CMSIS-NN: Arm's own generated code for its
  CIFAR-10 models (nn.cpp ..., a folder the user gives; benchmarks/arm_code.py) against
  cmsisgen's code for the same Caffe models, QEMU instructions per inference on the same
  kernels (skipped with a note without it; --arm-code-only prints these rows alone).

Needs arm-none-eabi-gcc and qemu-system-arm. Images: the full CIFAR-10 zips in
../shared/data/cifar10 when present (the README's figures), else the example's own
examples/cifar10/images/: train-2000.zip holds the first 2,000 images of train.zip, so up
to 2,000 calibration images give the same program, and test-1000.zip the first 1,000 of
test.zip, so the same test vectors and instruction counts; only the evaluate rows (1,000
images) and the wall times differ, and the table says which images it used.
Instruction counts are exact for a given build (QEMU -icount, SysTick in units of 40); wall
times depend on the machine and its load. --no-firmware leaves out the STM32F746 and QEMU rows
(no cross compiler needed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cmsisgen.errors import CmsisgenError  # noqa: E402
from cmsisgen.sizereport import size_report  # noqa: E402
from cmsisgen.verify import build_and_run, firmware_dir, make_variables  # noqa: E402
from bench_m55 import m55_rows  # noqa: E402
from bench_s8 import s8_rows, step_table  # noqa: E402

EXAMPLE = REPO / "examples" / "cifar10"
MODELS = REPO / "benchmarks" / "models"
BIG_NETS = ("mobilenet_v1", "squeezenet_v1_1", "alexnet")
#: The yardstick for the host's speed: this many float32 products of two 2048x2048 matrices.
BLAS_PRODUCTS, BLAS_SIZE = 15, 2048
CIFAR = REPO.parent / "shared" / "data" / "cifar10"
IMAGES = EXAMPLE / "images"
BUNDLED_CALIB = 2000  # images in IMAGES / "train-2000.zip"
MODEL_ARGS = [str(EXAMPLE / "cifar10.prototxt"), str(EXAMPLE / "cifar10.caffemodel"),
              "--mean", str(EXAMPLE / "mean.binaryproto"), "--scale", "0.015625"]


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    first = out.splitlines()[0] if out else ""
    m = re.search(r"\d+\.\d+(\.\d+)?", first)
    return m.group(0) if m else first.strip() or "not found"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}, gcc {_version(['gcc', '--version'])}, "
            f"arm-none-eabi-gcc {_version(['arm-none-eabi-gcc', '--version'])}, "
            f"QEMU {_version(['qemu-system-arm', '--version'])}")


#: Runs a command and prints its peak RSS (kilobytes). A child's ru_maxrss starts from the
#: peak of the process it was forked (vfork-ed) from -- Linux keeps the high-water mark
#: across exec -- so the command is started from this small process, not from the bench
#: process, which by then holds data sets and compiled models.
_PEAK_RSS = ("import resource, subprocess, sys\n"
             "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(code)\n")


def timed_command(args: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stderr) of `cmsisgen ARGS` in a fresh process."""
    command = ([shutil.which("cmsisgen")] if shutil.which("cmsisgen")
               else [sys.executable, "-c", "from cmsisgen.cli import main; main()"])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, *command, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: cmsisgen {args[0]} failed:\n{proc.stderr}")
    return seconds, int(proc.stdout.split()[-1]) * 1024, proc.stderr  # Linux reports kilobytes


def blas_seconds() -> float:
    """Wall time of BLAS_PRODUCTS float32 BLAS_SIZE^3 matrix products (after one warm-up)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((BLAS_SIZE, BLAS_SIZE)).astype(np.float32) for _ in range(2))
    a @ b
    start = time.perf_counter()
    for _ in range(BLAS_PRODUCTS):
        a @ b
    return time.perf_counter() - start


def big_net_rows(root: Path, names: list[str], example_seconds: float) -> list[tuple[str, str]]:
    """Compile each benchmark net with seeded random weights and the default calibration."""
    from random_weights import write_random_weights

    rows = []
    for name in names:
        weights = root / f"{name}.caffemodel"
        count = write_random_weights(MODELS / f"{name}.prototxt", weights)
        seconds, peak, stderr = timed_command(["compile", str(MODELS / f"{name}.prototxt"), str(weights),
                                               "-o", str(root / name)])
        warned = "too big for the target" in stderr
        rows.append((f"`cmsisgen compile` {name} ({count / 1e6:.1f} M parameters, default calibration)",
                     f"{seconds:.1f} s ({seconds / example_seconds:.1f}x the example's), {peak / 2**20:,.0f} MiB "
                     f"peak, {'RAM/flash warning' if warned else 'no RAM/flash warning'}"))
    return rows


def image_sets(calib_images: int) -> tuple[Path, Path]:
    """(calibration zip, test zip): the full set's, else the example's own."""
    calib, test = CIFAR / "train.zip", CIFAR / "test.zip"
    if not calib.exists() and calib_images <= BUNDLED_CALIB:
        calib = IMAGES / "train-2000.zip"
    if not calib.exists():
        raise SystemExit(f"bench: {calib} not found (more than {BUNDLED_CALIB:,} calibration images need "
                         "the full CIFAR-10 set)")
    return calib, test if test.exists() else IMAGES / "test-1000.zip"


def _which(path: Path) -> str:
    """How a table row names images that are not the full set's."""
    return "" if path.parent == CIFAR else ", the example's own"


def throughput(calib_zip: Path, test_zip: Path, calib_images: int) -> tuple[float, float, float, int]:
    """(float images/s, q7 images/s, seconds of evaluate(), images) on the test set."""
    from cmsisgen.dataset import load_dataset
    from cmsisgen.evaluate import BATCH, evaluate
    from cmsisgen.float_forward import forward
    from cmsisgen.pipeline import compile_model, float_batches
    from cmsisgen.simulator.execute import run_program

    calib = load_dataset(calib_zip, limit=calib_images).x
    compiled = compile_model(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel", calib_images=calib,
                             mean=str(EXAMPLE / "mean.binaryproto"), scale=0.015625)
    test = load_dataset(test_zip)
    start = time.perf_counter()
    evaluate(compiled, test)
    both_s = time.perf_counter() - start
    images = compiled.pre.prepare_images(test.x, 32, 32)
    start = time.perf_counter()
    for batch in float_batches(compiled.pre, test.x, (3, 32, 32), batch=BATCH):
        forward(compiled.net, batch, keep=[compiled.net.outputs[0]])
    float_s = time.perf_counter() - start
    start = time.perf_counter()
    run_program(compiled.program, images, batch_size=BATCH)
    q7_s = time.perf_counter() - start
    return len(images) / float_s, len(images) / q7_s, both_s, len(images)


def stm32_sizes(model_dir: Path, build_dir: Path, kernels: Path) -> dict:
    variables = make_variables(model_dir, build_dir)
    proc = subprocess.run(["make", "-s", "-C", str(firmware_dir() / "stm32f7"), f"-j{os.cpu_count() or 1}", "all",
                           *[f"{k}={v}" for k, v in variables.items()]], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: STM32F7 build failed:\n{proc.stdout}{proc.stderr}")
    return size_report(build_dir / "nn_selftest.elf", build_dir / "nn_selftest.map", model_dir,
                       flash_size=1 << 20, ram_size=320 * 1024, kernel_dirs=[kernels])


#: Preprocessing forms of the input step: (what, channels, options; "MEAN_IMAGE" is a random
#: per-pixel mean file for the channel count, "EXAMPLE_MEAN" the example's mean.binaryproto).
INPUT_FORMS = [
    ("per-pixel mean, RGB, scale 1/64 (the example's)", 3, ["--mean", "EXAMPLE_MEAN", "--scale", "0.015625"]),
    ("per-pixel mean, BGR, scale 0.017", 3, ["--mean", "MEAN_IMAGE", "--scale", "0.017", "--bgr"]),
    ("per-channel mean, RGB, scale 0.017", 3, ["--mean", "104,117,123", "--scale", "0.017"]),
    ("per-channel mean, BGR, scale 0.017", 3, ["--mean", "104,117,123", "--scale", "0.017", "--bgr"]),
    ("scale only (mean 0), RGB, scale 1/255", 3, ["--scale", "0.00392156862745098"]),
    ("1 channel, per-channel mean 128, scale 1/128", 1, ["--mean", "128", "--scale", "0.0078125"]),
    ("1 channel, per-pixel mean, scale 1/64", 1, ["--mean", "MEAN_IMAGE", "--scale", "0.015625"]),
]
INPUT_HW = 32


def _input_model(folder: Path, channels: int) -> tuple[Path, Path, Path]:
    """A 32x32 net of one max pool (no weights) and a random mean image: what the input step needs."""
    import numpy as np

    from cmsisgen.proto import schema

    folder.mkdir(parents=True, exist_ok=True)
    proto = folder / "input.prototxt"
    proto.write_text(f'name: "input"\ninput: "data"\ninput_shape {{ dim: 1 dim: {channels} dim: {INPUT_HW} '
                     f'dim: {INPUT_HW} }}\nlayer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool" '
                     'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n')
    weights = folder / "input.caffemodel"
    net = schema.NetParameter(name="input")
    net.layer.add(name="pool", type="Pooling")
    weights.write_bytes(net.SerializeToString())
    blob = schema.BlobProto(num=1, channels=channels, height=INPUT_HW, width=INPUT_HW)
    blob.data.extend(np.random.default_rng(channels).uniform(0, 255, channels * INPUT_HW**2).tolist())
    mean = folder / "mean.binaryproto"
    mean.write_bytes(blob.SerializeToString())
    return proto, weights, mean


def input_step_rows(root: Path) -> list[tuple[str, str]]:
    """QEMU instructions per byte of the input step, and its flash, for every preprocessing form."""
    rows = []
    for i, (what, channels, options) in enumerate(INPUT_FORMS):
        folder = root / f"input_{i}"
        proto, weights, mean = _input_model(folder, channels)
        options = [{"MEAN_IMAGE": str(mean), "EXAMPLE_MEAN": str(EXAMPLE / "mean.binaryproto")}.get(o, o)
                   for o in options]
        timed_command(["compile", str(proto), str(weights), "-o", str(folder / "model"), *options,
                       "--test-vectors", "1", "--report", str(folder / "report.json")])
        flash = json.loads((folder / "report.json").read_text())["layers"][0]["weight_bytes"]
        try:
            result = build_and_run(folder / "model", "qemu", folder / "qemu")
        except CmsisgenError as exc:
            raise SystemExit(f"bench: QEMU run failed: {exc}")
        per_byte = result.profile[0][1] / (channels * INPUT_HW**2)
        rows.append((f"input step, {what}", f"{per_byte:.2f} instructions/byte, {flash:,} B flash "
                                            f"({result.passed}/{result.total} vectors bit-exact)"))
    return rows


def firmware_rows(args: argparse.Namespace, model_dir: Path, root: Path, totals: dict,
                  rows: list[tuple[str, str]]) -> list:
    """The STM32F746 size rows and the QEMU instruction rows (appended to ``rows``); the profiles."""
    portable = firmware_dir() / "cmsis_nn_portable"
    sizes = stm32_sizes(model_dir, root / "stm32f7", portable)
    flash, ram = sizes["flash"], sizes["ram"]
    rows.append(("STM32F746 flash: weights and input offsets", f"{flash['weights']:,} B"))
    rows.append(("STM32F746 flash: code (nn.c + portable kernels)",
                 f"{flash['code_model'] + flash['code_kernels']:,} B"))
    rows.append(("STM32F746 flash: total of the self-test image (incl. test vectors, libc)",
                 f"{flash['total']:,} B"))
    rows.append(("RAM: `run_nn()` arena (activations + scratch; STM32F746 .bss of nn.o)",
                 f"{totals['arena_bytes']:,} B ({ram['activations'] + ram['scratch']:,} B)"))
    rows.append(("RAM: caller's image buffer (`NN_INPUT_BUFFER_SIZE`)", f"{totals['input_buffer_bytes']:,} B"))
    rows.append(("STM32F746 RAM: total of the self-test image (incl. 16 KB stack, 4 KB heap)",
                 f"{ram['total']:,} B"))

    runs = [("portable kernels", None)]
    if args.cmsis_nn_path:
        runs.append(("upstream CMSIS-NN", args.cmsis_nn_path))
    profiles = []
    for label, path in runs:
        try:
            result = build_and_run(model_dir, "qemu", root / ("qemu_" + label.split()[0]), cmsis_nn_path=path,
                                   cmsis_core_path=args.cmsis_core_path if path else None,
                                   cmsis_dsp_include=args.cmsis_dsp_include if path else None)
        except CmsisgenError as exc:
            raise SystemExit(f"bench: QEMU run failed: {exc}")
        rows.append((f"QEMU Cortex-M7 instructions per inference, {label}",
                     f"{result.instructions_per_inference:,.0f} ({result.passed}/{result.total} vectors bit-exact)"))
        profiles.append((label, result.profile))
    return profiles


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calib-images", type=int, default=1000)
    ap.add_argument("--vectors", type=int, default=4, help="known-answer vectors in the firmware builds")
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--no-firmware", action="store_true", help="leave out the STM32F746 and QEMU rows")
    ap.add_argument("--big-nets", default=",".join(BIG_NETS),
                    help="benchmark nets to compile (benchmarks/models/NAME.prototxt), comma-separated; '' for none")
    ap.add_argument("--cmsis-nn-path", type=Path, default=os.environ.get("CMSIS_NN_PATH"))
    ap.add_argument("--cmsis-core-path", type=Path, default=os.environ.get("CMSIS_CORE_PATH"))
    ap.add_argument("--cmsis-dsp-include", type=Path, default=os.environ.get("CMSIS_DSP_INCLUDE"))
    ap.add_argument("--s8-cmsis-nn-path", type=Path, default=None,
                    help="upstream CMSIS-NN v7.0.0 for the s8 QEMU row (benchmarks/bench_s8.py)")
    ap.add_argument("--arm-code", type=Path, default=os.environ.get("ARM_CODE_DIR"),
                    help="Arm's generated CIFAR-10 code (a folder with nn.cpp, nn.h, parameter.h, weights.h, or one "
                         "holding such folders: m7, m4) to compare with cmsisgen on QEMU [env: ARM_CODE_DIR]")
    ap.add_argument("--arm-models", type=Path, default=os.environ.get("ARM_MODELS_DIR"),
                    help="its Caffe models: *_NAME_*.prototxt and *_NAME_*.caffemodel[.h5] for each code folder "
                         "NAME (default: the models/ folder beside Arm's code/) [env: ARM_MODELS_DIR]")
    ap.add_argument("--arm-code-only", action="store_true", help="only the Arm's-code-vs-cmsisgen rows")
    ap.add_argument("--m55-only", action="store_true",
                    help="only the s8 Cortex-M7 vs Cortex-M55 instructions per inference (benchmarks/bench_m55.py)")
    ap.add_argument("--input-step-only", action="store_true",
                    help="only the input step's instructions per byte for every preprocessing form")
    args = ap.parse_args()
    root = args.build_dir or Path(tempfile.mkdtemp(prefix="cmsisgen-bench-"))
    if args.input_step_only:
        print_input_step(root, [])
        print(f"\n(build folder: {root})")
        return 0
    if args.arm_code_only:
        print_arm_code(args, root)
        print(f"\n(build folder: {root})")
        return 0
    calib_zip, test_zip = image_sets(args.calib_images)
    s8_args = [*MODEL_ARGS, "--calib", str(calib_zip), "--calib-limit", str(args.calib_images),
               "--test-vectors", str(args.vectors), "--data", str(test_zip)]
    if args.m55_only:
        return _print_table(m55_rows(s8_args, root, timed_command, args.s8_cmsis_nn_path), [], root, False)

    model_dir = root / "cifar10"
    rows: list[tuple[str, str]] = [("machine", machine())]

    compile_s, peak, _ = timed_command(["compile", *MODEL_ARGS, "-o", str(model_dir),
                                        "--calib", str(calib_zip), "--calib-limit", str(args.calib_images),
                                        "--test-vectors", str(args.vectors), "--data", str(test_zip),
                                        "--report", str(root / "report.json")])
    totals = json.loads((root / "report.json").read_text())["totals"]
    rows.append((f"`cmsisgen compile`, {args.calib_images:,} calibration images{_which(calib_zip)}",
                 f"{compile_s:.1f} s"))
    rows.append(("peak memory of `cmsisgen compile` (max RSS)", f"{peak / 2**20:,.0f} MiB"))
    seconds, peak, _ = timed_command(["evaluate", *MODEL_ARGS, "--data", str(test_zip),
                                      "--calib", str(calib_zip), "--calib-limit", str(args.calib_images)])
    float_rate, q7_rate, both_s, n = throughput(calib_zip, test_zip, args.calib_images)
    blas_s = blas_seconds()
    rows.append((f"`cmsisgen evaluate`, {n:,} test images{_which(test_zip)} (float + q7)", f"{seconds:.1f} s"))
    rows.append(("peak memory of `cmsisgen evaluate` (max RSS)", f"{peak / 2**20:,.0f} MiB"))
    rows.append(("evaluate throughput, float forward (numpy)", f"{float_rate:,.0f} images/s"))
    rows.append(("evaluate throughput, q7 simulator", f"{q7_rate:,.0f} images/s"))
    rows.append((f"`evaluate()` of the {n:,} decoded test images (float + q7 passes), in process", f"{both_s:.1f} s"))
    rows.append((f"BLAS yardstick: {BLAS_PRODUCTS} float32 {BLAS_SIZE}^3 matrix products, same process",
                 f"{blas_s:.1f} s"))
    rows.append(("evaluate / BLAS yardstick", f"{both_s / blas_s:.1f}x"))
    rows.extend(big_net_rows(root, [name for name in args.big_nets.split(",") if name], compile_s))
    profiles = [] if args.no_firmware else firmware_rows(args, model_dir, root, totals, rows)
    s8, s8_profiles = s8_rows(s8_args, root, timed_command, args.s8_cmsis_nn_path, not args.no_firmware)
    if not args.no_firmware:
        s8 += m55_rows(s8_args, root, timed_command, args.s8_cmsis_nn_path)
    _print_table(rows + s8, profiles + s8_profiles, root, input_step=not args.no_firmware)
    if not args.no_firmware:
        print_arm_code(args, root)
    print(f"\n(build folder: {root})")
    return 0


def _print_table(rows: list[tuple[str, str]], profiles: list, root: Path, input_step: bool) -> int:
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    if profiles:
        print("\n".join(step_table(profiles)))
    if input_step:
        print_input_step(root, [p for p in profiles if not p[0].startswith("s8")])  # (nn_input_q7 only)
    return 0


def print_input_step(root: Path, profiles: list) -> None:
    """The input step's table: the example's runs (profile step 0), then every preprocessing form."""
    print("\n| input step (`nn_input_q7`), QEMU Cortex-M7 | value |\n|---|---|")
    for label, profile in profiles:
        print(f"| input step, the example, {label} | {profile[0][1] / (3 * 32 * 32):.2f} instructions/byte |")
    for name, value in input_step_rows(root):
        print(f"| {name} | {value} |")


def print_arm_code(args: argparse.Namespace, root: Path) -> None:
    """Arm's own generated code against cmsisgen's on the same model and kernels (benchmarks/arm_code.py)."""
    from arm_code import arm_code_rows, cmsis_paths

    if not args.arm_code:
        print("\n(Arm's generated code vs cmsisgen: skipped; give --arm-code DIR or ARM_CODE_DIR, "
              "see benchmarks/arm_code.py)")
        return
    cmsis = cmsis_paths(args.cmsis_nn_path, args.cmsis_core_path, args.cmsis_dsp_include)
    rows = arm_code_rows(args.arm_code, args.arm_models, root / "arm_code", image_sets(1000), cmsis)
    print("\n| Arm's generated code vs cmsisgen, QEMU Cortex-M7 | instructions per inference |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    sys.exit(main())
