#!/usr/bin/env python3
"""Instructions per inference (QEMU mps2-an500, Cortex-M7, -icount shift=0 + SysTick) and the
flash/RAM size report (QEMU and STM32F746G-DISCO builds) of a generated model. Figures only.

    python benchmarks/bench.py [--model-dir examples/cifar10/out] [--build-dir /tmp/bench]
        [--cmsis-nn-path .../CMSIS/NN [--cmsis-core-path ... --cmsis-dsp-include ...]]
        [--exact]      also count run_nn() exactly from a QEMU trace (slow: ~1 min per 10M insns)

--model-dir is a folder written by `cmsisgen compile -o OUT --test-vectors N`.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cmsisgen.errors import CmsisgenError  # noqa: E402
from cmsisgen.sizereport import format_table, size_report  # noqa: E402
from cmsisgen.verify import build_and_run, firmware_dir  # noqa: E402

DEFAULT_MODEL = REPO / "examples" / "cifar10" / "out"


def make_vars(args, model_dir: Path, build_dir: Path) -> list[str]:
    out = [f"MODEL_DIR={model_dir}", f"BUILD_DIR={build_dir}"]
    for flag, var in (("cmsis_nn_path", "CMSIS_NN_PATH"), ("cmsis_core_path", "CMSIS_CORE_PATH"),
                      ("cmsis_dsp_include", "CMSIS_DSP_INCLUDE")):
        if getattr(args, flag):
            out.append(f"{var}={Path(getattr(args, flag)).resolve()}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--cmsis-nn-path", type=Path, default=None)
    ap.add_argument("--cmsis-core-path", type=Path, default=None)
    ap.add_argument("--cmsis-dsp-include", type=Path, default=None)
    ap.add_argument("--exact", action="store_true", help="exact count of vector 0 from a QEMU trace")
    args = ap.parse_args()

    model_dir = args.model_dir.resolve()
    build_root = args.build_dir or Path(tempfile.mkdtemp(prefix="cmsisgen-bench-"))
    kernels = "upstream " + str(args.cmsis_nn_path) if args.cmsis_nn_path else "portable"
    print(f"model: {model_dir}\nkernels: {kernels}\nbuild: {build_root}\n")
    try:
        result = build_and_run(model_dir, "qemu", build_root / "qemu_m7",
                               cmsis_nn_path=args.cmsis_nn_path, cmsis_core_path=args.cmsis_core_path,
                               cmsis_dsp_include=args.cmsis_dsp_include)
    except CmsisgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("QEMU mps2-an500 (Cortex-M7, -O2, -mfpu=fpv5-d16), SysTick x 40 instructions:")
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
    print(format_table(size_report(q / "nn_selftest.elf", q / "nn_selftest.map", model_dir)))
    print()
    stm = build_root / "stm32f7"
    proc = subprocess.run(["make", "-s", "-C", str(firmware_dir() / "stm32f7"), f"-j{8}", "all",
                           *make_vars(args, model_dir, stm)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"STM32F7 build failed:\n{proc.stdout}{proc.stderr}")
        return 1
    print(format_table(size_report(stm / "nn_selftest.elf", stm / "nn_selftest.map", model_dir,
                                   flash_size=1 << 20, ram_size=320 * 1024)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
