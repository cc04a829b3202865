"""The s8 column of benchmarks/bench.py: the example compiled with ``--backend s8``.

Rows: the compile (wall time), the STM32F746 self-test image's flash and RAM with the
portable s8 kernels (firmware/cmsis_nn_s8_portable), and QEMU Cortex-M7 instructions per
inference with the portable s8 kernels and, when ``--s8-cmsis-nn-path`` points at upstream
CMSIS-NN v7.0.0 (it needs no CMSIS-Core headers), with upstream; their per-step profiles go
into bench.py's step table beside the q7 ones, aligned by step name (the s8 program fuses
each ReLU into the call before it, so it has fewer steps).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Optional

from cmsisgen.errors import CmsisgenError
from cmsisgen.sizereport import size_report
from cmsisgen.verify import build_and_run, firmware_dir, make_variables

Row = tuple[str, str]


def _stm32_rows(model_dir: Path, build_dir: Path) -> list[Row]:
    portable = firmware_dir() / "cmsis_nn_s8_portable"
    variables = make_variables(model_dir, build_dir, portable_path=portable)
    proc = subprocess.run(["make", "-s", "-C", str(firmware_dir() / "stm32f7"), f"-j{os.cpu_count() or 1}", "all",
                           *[f"{k}={v}" for k, v in variables.items()]], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: STM32F7 s8 build failed:\n{proc.stdout}{proc.stderr}")
    sizes = size_report(build_dir / "nn_selftest.elf", build_dir / "nn_selftest.map", model_dir,
                        flash_size=1 << 20, ram_size=320 * 1024, kernel_dirs=[portable])
    flash, ram = sizes["flash"], sizes["ram"]
    return [("s8: STM32F746 flash: weights, biases, multipliers and input offsets", f"{flash['weights']:,} B"),
            ("s8: STM32F746 flash: code (nn.c + portable s8 kernels)",
             f"{flash['code_model'] + flash['code_kernels']:,} B"),
            ("s8: STM32F746 flash / RAM totals of the self-test image", f"{flash['total']:,} B / {ram['total']:,} B")]


def s8_rows(compile_args: list[str], root: Path, timed: Callable[[list[str]], tuple[float, int, str]],
            s8_cmsis_nn_path: Optional[Path], firmware: bool) -> tuple[list[Row], list]:
    """(rows, [(label, profile)]) of the s8 build of the example; ``compile_args`` are bench's
    compile arguments (model, calibration, vectors), ``timed`` its timed_command."""
    model_dir = root / "cifar10_s8"
    seconds, peak, _ = timed(["compile", *compile_args, "-o", str(model_dir), "--backend", "s8"])
    rows = [("`cmsisgen compile --backend s8` (same images)", f"{seconds:.1f} s, {peak / 2**20:,.0f} MiB peak")]
    if not firmware:
        return rows, []
    rows += _stm32_rows(model_dir, root / "stm32f7_s8")
    runs = [("s8 portable kernels", None)] + ([("s8 upstream CMSIS-NN", s8_cmsis_nn_path)] if s8_cmsis_nn_path else [])
    profiles = []
    for label, path in runs:
        try:
            result = build_and_run(model_dir, "qemu", root / ("qemu_" + label.replace(" ", "_")), cmsis_nn_path=path,
                                   portable_path=None if path else firmware_dir() / "cmsis_nn_s8_portable")
        except CmsisgenError as exc:
            raise SystemExit(f"bench: QEMU s8 run failed: {exc}")
        rows.append((f"QEMU Cortex-M7 instructions per inference, {label}",
                     f"{result.instructions_per_inference:,.0f} ({result.passed}/{result.total} vectors bit-exact)"))
        profiles.append((label, result.profile))
    return rows, profiles


def step_table(profiles: list) -> list[str]:
    """The per-step Markdown table of every run, one row per step name in first-seen order
    (a run without that step shows a dash)."""
    names: list[str] = []
    for _, profile in profiles:
        names += [name for name, _ in profile if name not in names]
    counts = [dict(profile) for _, profile in profiles]
    lines = ["| step | " + " | ".join(f"instructions, {label}" for label, _ in profiles) + " |",
             "|---|" + "---:|" * len(profiles)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{c[name]:,}" if name in c else "-" for c in counts) + " |")
    return lines
