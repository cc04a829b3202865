"""The Cortex-M55 rows of benchmarks/bench.py: the example's s8 code on QEMU's Cortex-M7 and
Cortex-M55 side by side.

The same network compiled twice with ``--backend s8``: ``--cpu cortex-m7`` run on QEMU
mps2-an500 (``verify``'s target ``qemu``) and ``--cpu cortex-m55`` on mps3-an547
(``qemu-m55``), each with the portable s8 kernels and, when ``--s8-cmsis-nn-path`` points at
upstream CMSIS-NN v7.0.0, with upstream built for that core (DSP paths on the M7, Helium/MVE
paths on the M55). QEMU counts instructions, not cycles: an MVE instruction does up to 16
byte lanes of work in one count, and neither core's pipeline, memory system or beat-wise
MVE execution is modelled, so the ratio is one of instructions, not of time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from cmsisgen.errors import CmsisgenError
from cmsisgen.verify import build_and_run, firmware_dir

Row = tuple[str, str]
#: (core, --cpu, verify target)
CORES = (("Cortex-M7", "cortex-m7", "qemu"), ("Cortex-M55", "cortex-m55", "qemu-m55"))
NOTE = "QEMU counts instructions, not cycles: one MVE instruction works on up to 16 lanes"


def _instructions(model_dir: Path, target: str, build_dir: Path, path: Optional[Path]) -> tuple[float, str]:
    try:
        result = build_and_run(model_dir, target, build_dir, cmsis_nn_path=path,
                               portable_path=None if path else firmware_dir() / "cmsis_nn_s8_portable")
    except CmsisgenError as exc:
        raise SystemExit(f"bench: {target} s8 run failed: {exc}")
    return result.instructions_per_inference or 0.0, f"{result.passed}/{result.total}"


def m55_rows(compile_args: list[str], root: Path, timed: Callable[[list[str]], tuple[float, int, str]],
             s8_cmsis_nn_path: Optional[Path]) -> list[Row]:
    """Rows ``s8 <library>: instructions per inference, Cortex-M7 / Cortex-M55`` and their ratio."""
    for _, cpu, _ in CORES:
        timed(["compile", *compile_args, "-o", str(root / f"cifar10_s8_{cpu}"), "--backend", "s8", "--cpu", cpu])
    libraries = [("portable s8 kernels", None)] + ([("upstream CMSIS-NN", s8_cmsis_nn_path)] if s8_cmsis_nn_path
                                                   else [])
    rows = []
    for label, path in libraries:
        counts = []
        for core, cpu, target in CORES:
            build = root / f"{target}_{'upstream' if path else 'portable'}"
            counts.append((core,) + _instructions(root / f"cifar10_s8_{cpu}", target, build, path))
        (_, m7, m7_ok), (_, m55, m55_ok) = counts
        rows.append((f"s8, {label}: QEMU instructions per inference, Cortex-M7 / Cortex-M55 ({NOTE})",
                     f"{m7:,.0f} / {m55:,.0f} (M55 = {m55 / m7:.1%} of M7; vectors bit-exact {m7_ok} / {m55_ok})"))
    return rows
