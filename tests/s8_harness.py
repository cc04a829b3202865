"""Run CMSIS-NN s8 kernel calls as one C program, on the host or on QEMU's Cortex-M7.

A :class:`Case` is one kernel call written as C (its arrays given as numpy arrays); the
harness writes a program that makes every call on an output buffer pre-filled with 0x5A,
prints ``<case> <return code> <output bytes in hex>`` per call, and builds it against:

* the project's portable kernels (firmware/cmsis_nn_s8_portable), with host gcc, optionally
  with -fsanitize=undefined (any report fails the run);
* upstream CMSIS-NN v4.1+ (``CMSIS_NN_PATH``) built for the host: its plain-C paths;
* either library for QEMU mps2-an500 (Cortex-M7, -mcpu=cortex-m7): upstream's DSP paths, or
  for QEMU mps3-an547 (Cortex-M55, -mcpu=cortex-m55): upstream's MVE (Helium) paths.

Nothing of upstream is stored: it is compiled into pytest's tmp folders.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
PORTABLE_S8 = FIRMWARE / "cmsis_nn_s8_portable"
CM7_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
#: QEMU machine folder (firmware/<folder>: linker.ld, qemu.mk) and compiler flags per cpu.
QEMU_CPUS = {"cortex-m7": ("qemu_m7", CM7_FLAGS),
             "cortex-m55": ("qemu_m55", ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"])}
SENTINEL = 0x5A
SCRATCH_BYTES = 1 << 16

_C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t", np.dtype(np.int16): "int16_t"}


@dataclass
class Case:
    """One call: ``call`` is C using the array names of ``arrays`` and ``out``/``ctx``/``rc``."""

    name: str
    call: str
    out_len: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scratch: bool = True        # ctx.buf = the scratch area, else NULL


def upstream_path() -> Path | None:
    """CMSIS_NN_PATH when it points at CMSIS-NN v4.1+: the s8 API with arm_nn_requantize, and
    no legacy q7 functions (CMSIS_5 5.9.0's CMSIS/NN has both APIs and older s8 arithmetic,
    so a CMSIS_NN_PATH set for the q7 tests must not be taken for v7.0.0)."""
    root = os.environ.get("CMSIS_NN_PATH")
    include = Path(root or "/nonexistent") / "Include"
    support, functions = include / "arm_nnsupportfunctions.h", include / "arm_nnfunctions.h"
    if not (root and support.is_file() and functions.is_file()):
        return None
    s8_api = "arm_nn_requantize" in support.read_text(errors="replace")
    legacy_q7 = "arm_convolve_HWC_q7_basic" in functions.read_text(errors="replace")
    return Path(root) if s8_api and not legacy_q7 else None


def qemu_available() -> bool:
    return bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))


def _array(name: str, a: np.ndarray) -> str:
    a = np.asarray(a)
    values = ", ".join(str(int(v)) for v in a.reshape(-1)) or "0"
    return f"static {_C_TYPES[a.dtype]} {name}[{max(a.size, 1)}] = {{{values}}};"


def program(cases: list[Case]) -> str:
    """The C source of the whole run."""
    lines = ["#include <stdio.h>", "#include <string.h>", '#include "arm_nnfunctions.h"',
             f"static int32_t scratch[{SCRATCH_BYTES // 4}];",
             "static void emit(int n, int rc, const int8_t *out, int len)",
             '{ printf("%d %d ", n, rc); for (int i = 0; i < len; i++) printf("%02x", (unsigned)(uint8_t)out[i]);'
             ' printf("\\n"); }']
    for i, case in enumerate(cases):
        arrays = "\n".join(_array(f"c{i}_{k}", v) for k, v in case.arrays.items())
        call = case.call
        for k in case.arrays:
            call = re.sub(rf"\b{k}\b", f"c{i}_{k}", call)
        buf = "scratch" if case.scratch else "NULL"
        lines += [arrays, f"static int8_t c{i}_out[{max(case.out_len, 1)}];",
                  f"static void case{i}(void) {{ /* {case.name} */",
                  f"  cmsis_nn_context ctx = {{{buf}, {SCRATCH_BYTES if case.scratch else 0}}};",
                  f"  int8_t *out = c{i}_out; int rc = 0; (void)ctx;",
                  f"  memset(out, {SENTINEL}, {max(case.out_len, 1)});",
                  f"  {call}", f"  emit({i}, rc, out, {case.out_len}); }}"]
    lines += ["int main(void) {"] + [f"  case{i}();" for i in range(len(cases))]
    lines += ['  printf("done\\n"); fflush(stdout); return 0; }']
    return "\n".join(lines) + "\n"


def _parse(text: str, cases: list[Case]) -> list[tuple[int, np.ndarray]]:
    results = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            hexes = parts[2] if len(parts) > 2 else ""
            results.append((int(parts[1]), np.frombuffer(bytes.fromhex(hexes), dtype=np.int8).copy()))
    assert "done" in text and len(results) == len(cases), text[-2000:]
    return results


def library_sources(library: str) -> tuple[list[Path], Path]:
    """(C sources, include folder) of 'portable' or 'upstream'."""
    if library == "portable":
        return sorted((PORTABLE_S8 / "Source").glob("*.c")), PORTABLE_S8 / "Include"
    root = upstream_path()
    assert root is not None
    return sorted((root / "Source").glob("*/*.c")), root / "Include"


#: Built libraries of this session, by (library, compiler, flags): built once, linked by every run.
_ARCHIVES: dict[tuple[str, str, tuple[str, ...]], Path] = {}


def _archive(library: str, compiler: str, flags: list[str], work: Path) -> Path:
    """The library compiled with these flags into a static archive (cached for the session)."""
    key = (library, compiler, tuple(flags))
    if key not in _ARCHIVES or not _ARCHIVES[key].is_file():
        sources, include = library_sources(library)
        lib = work / "lib"
        lib.mkdir(parents=True, exist_ok=True)
        assert len({src.name for src in sources}) == len(sources)     # one object per basename, in lib/
        subprocess.run([compiler, *flags, f"-I{include}", "-c", *map(str, sources)], check=True, cwd=lib)
        objects = [lib / f"{src.stem}.o" for src in sources]
        archive = lib / f"lib{library}.a"
        subprocess.run([compiler.replace("gcc", "ar"), "rcs", str(archive), *map(str, objects)], check=True)
        _ARCHIVES[key] = archive
    return _ARCHIVES[key]


def run_host(cases: list[Case], library: str, work: Path, sanitize: bool = False) -> list[tuple[int, np.ndarray]]:
    """Build and run on this machine; with ``sanitize``, UBSan aborts on any report."""
    _, include = library_sources(library)
    work.mkdir(parents=True, exist_ok=True)
    (work / "cases.c").write_text(program(cases))
    flags = ["-O1", "-g", "-fsanitize=undefined", "-fno-sanitize-recover=undefined"] if sanitize else ["-O2"]
    flags = ["-std=gnu11", *flags]
    exe = work / "cases"
    subprocess.run(["gcc", *flags, f"-I{include}", str(work / "cases.c"), str(_archive(library, "gcc", flags, work)),
                    "-o", str(exe), "-lm"], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr[-3000:]
    return _parse(run.stdout, cases)


def run_qemu(cases: list[Case], library: str, work: Path, cpu: str = "cortex-m7") -> list[tuple[int, np.ndarray]]:
    """Build for the Cortex-M7 (DSP paths) and run under QEMU mps2-an500 with semihosting, or
    for the Cortex-M55 (MVE paths) on mps3-an547."""
    _, include = library_sources(library)
    work.mkdir(parents=True, exist_ok=True)
    (work / "cases.c").write_text(program(cases))
    machine, cpu_flags = QEMU_CPUS[cpu]
    qemu, common, platform_dir = FIRMWARE / machine, FIRMWARE / "common", FIRMWARE / "qemu_m7"
    platform = [platform_dir / "startup.c", platform_dir / "semihosting.c", platform_dir / "systick.c",
                common / "cm7_startup.c", common / "newlib_stubs.c"]
    elf = work / "cases.elf"
    flags = [*cpu_flags, "-std=gnu11", "-O2", "-ffunction-sections", "-fdata-sections"]
    archive = _archive(library, "arm-none-eabi-gcc", flags, work)
    subprocess.run(["arm-none-eabi-gcc", *flags, f"-I{include}", f"-I{platform_dir}", f"-I{common}",
                    str(work / "cases.c"), *map(str, platform), str(archive), "--specs=nano.specs", "-nostartfiles",
                    f"-L{common}", f"-T{qemu / 'linker.ld'}", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
                    "-o", str(elf), "-lm"], check=True)
    flags = re.search(r"QEMU_MACHINE_FLAGS := (.*)", (qemu / "qemu.mk").read_text()).group(1).split()
    run = subprocess.run(["qemu-system-arm", *flags, "-kernel", str(elf)], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return _parse(run.stdout, cases)


def random_calib(directory: Path, seed: int, shape=(16, 8, 8, 3)) -> Path:
    """A calibration set of random uint8 images (label 0) as ``directory``/calib.npz."""
    calib = directory / "calib.npz"
    np.savez(calib, x=np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8),
             y=np.zeros(shape[0], dtype=np.int64))
    return calib
