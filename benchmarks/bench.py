#!/usr/bin/env python3
"""Instructions per inference (QEMU mps2-an500, Cortex-M7, -icount shift=0 + SysTick) and the
flash/RAM size report (QEMU and STM32F746G-DISCO builds) of a generated model. Figures only.

    python benchmarks/bench.py [--model-dir OUT] [--build-dir /tmp/bench]
        [--cmsis-nn-path .../CMSIS/NN [--cmsis-core-path ... --cmsis-dsp-include ...]]
        [--exact]      also count run_nn() exactly from a QEMU trace (slow: ~1 min per 10M insns)

--model-dir is a folder written by `cmsisgen compile -o OUT --test-vectors N`; without it the
bundled CIFAR-10 example is compiled (calibrated on ../shared/data/cifar10/train.zip when
present) and the simulator's and float forward's throughput on the CIFAR-10 test set is
printed as well.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cmsisgen.errors import CmsisgenError  # noqa: E402
from cmsisgen.sizereport import format_table, size_report  # noqa: E402
from cmsisgen.verify import build_and_run, firmware_dir, make_variables  # noqa: E402

EXAMPLE = REPO / "examples" / "cifar10"
CIFAR = REPO.parent / "shared" / "data" / "cifar10"
PREPROCESSING = dict(mean="125.3,123.0,113.9", scale=0.015625)


def compile_example(out_dir: Path, vectors: int) -> None:
    """Compile the bundled example with known-answer vectors, and time the simulator."""
    import time

    from cmsisgen.cli import make_test_vectors
    from cmsisgen.codegen import render, write_output
    from cmsisgen.dataset import load_dataset
    from cmsisgen.float_forward import forward
    from cmsisgen.pipeline import compile_model, float_batches
    from cmsisgen.simulator.program import run_program

    calib = load_dataset(CIFAR / "train.zip", limit=2000) if (CIFAR / "train.zip").exists() else None
    start = time.perf_counter()
    compiled = compile_model(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel",
                             calib_images=None if calib is None else calib.x, **PREPROCESSING)
    print(f"compile (calibration on {0 if calib is None else len(calib.x)} images): "
          f"{time.perf_counter() - start:.1f} s")
    test = load_dataset(CIFAR / "test.zip") if (CIFAR / "test.zip").exists() else calib
    write_output(render(compiled.program, compiled.plan, "cifar10.prototxt",
                        make_test_vectors(compiled, test, vectors)), out_dir)
    if test is not None:
        images = compiled.pre.prepare_images(test.x, 32, 32)
        start = time.perf_counter()
        run_program(compiled.program, images)
        sim = time.perf_counter() - start
        start = time.perf_counter()
        for batch in float_batches(compiled.pre, test.x, (3, 32, 32), batch=500):
            forward(compiled.net, batch, keep=[compiled.net.outputs[0]])
        flt = time.perf_counter() - start
        print(f"simulator: {len(images)} images in {sim:.1f} s ({len(images) / sim:,.0f} images/s)")
        print(f"float forward: {len(images)} images in {flt:.1f} s ({len(images) / flt:,.0f} images/s)")
    print()


def make_vars(args, model_dir: Path, build_dir: Path) -> list[str]:
    """make variables of a build, exactly those of verify.build (every kernel variable set),
    so the trace count measures the program the QEMU run timed."""
    variables = make_variables(model_dir, build_dir, args.cmsis_nn_path, args.cmsis_core_path,
                               args.cmsis_dsp_include)
    return [f"{name}={value}" for name, value in variables.items()]


def kernel_dir(args) -> Path:
    """The kernel source folder the builds compile (for the size report)."""
    return Path(args.cmsis_nn_path).resolve() if args.cmsis_nn_path else firmware_dir() / "cmsis_nn_portable"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--vectors", type=int, default=4, help="known-answer vectors when compiling the example")
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--cmsis-nn-path", type=Path, default=None)
    ap.add_argument("--cmsis-core-path", type=Path, default=None)
    ap.add_argument("--cmsis-dsp-include", type=Path, default=None)
    ap.add_argument("--exact", action="store_true", help="exact count of vector 0 from a QEMU trace")
    args = ap.parse_args()

    build_root = args.build_dir or Path(tempfile.mkdtemp(prefix="cmsisgen-bench-"))
    if args.model_dir is None:
        args.model_dir = build_root / "cifar10"
        compile_example(args.model_dir, args.vectors)
    model_dir = args.model_dir.resolve()
    kernels = "upstream " + str(args.cmsis_nn_path) if args.cmsis_nn_path else "portable"
    print(f"model: {model_dir}\nkernels: {kernels}\nbuild: {build_root}\n")
    try:
        result = build_and_run(model_dir, "qemu", build_root / "qemu_m7",
                               cmsis_nn_path=args.cmsis_nn_path, cmsis_core_path=args.cmsis_core_path,
                               cmsis_dsp_include=args.cmsis_dsp_include)
    except CmsisgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("QEMU mps2-an500 (Cortex-M7, -O2, -mfpu=fpv5-d16), SysTick x 40 instructions, timed runs:")
    for v in result.vectors:
        print(f"  vector {v.index}: {v.count:>12,} instructions  {'PASS' if v.passed else 'FAIL'}")
    print(f"  instructions per inference: {result.instructions_per_inference:,.0f}"
          f"  ({result.passed}/{result.total} vectors bit-exact)")
    print("  (cycles on real silicon differ: Cortex-M7 is dual-issue with memory stalls;"
          " use the STM32F7 build's DWT cycle counts for time)\n")

    if args.exact:
        proc = subprocess.run(["make", "-s", "-C", str(firmware_dir() / "qemu_m7"), "trace-count",
                               *make_vars(args, model_dir, build_root / "qemu_m7")],
                              capture_output=True, text=True)
        m = re.search(r"^count (\d+)$", proc.stdout, re.MULTILINE)
        print(f"  exact run_nn() instructions, vector 0 (trace): {int(m[1]):,}\n" if m
              else f"  trace count failed:\n{proc.stdout}{proc.stderr}\n")

    q = build_root / "qemu_m7"
    print(format_table(size_report(q / "nn_selftest.elf", q / "nn_selftest.map", model_dir,
                                   kernel_dirs=[kernel_dir(args)])))
    print()
    stm = build_root / "stm32f7"
    proc = subprocess.run(["make", "-s", "-C", str(firmware_dir() / "stm32f7"), f"-j{os.cpu_count() or 1}", "all",
                           *make_vars(args, model_dir, stm)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"STM32F7 build failed:\n{proc.stdout}{proc.stderr}")
        return 1
    print(format_table(size_report(stm / "nn_selftest.elf", stm / "nn_selftest.map", model_dir,
                                   flash_size=1 << 20, ram_size=320 * 1024,
                                   kernel_dirs=[kernel_dir(args)])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
