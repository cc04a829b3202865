"""Flash and RAM use of a firmware build, from `arm-none-eabi-size -B` and the linker map.

Flash: weights (the arrays weights.h declares, i.e. the model's weights and biases and
the input step's table or offsets; without --model-dir every .rodata array of nn.o), test vectors (nn_test_*
arrays, only in self-test builds), code (model = the code and other constants of nn.o and of
the cmsisgen kernels copied beside nn.c, i.e. of every object built from the model folder;
CMSIS-NN kernels = code and constants of every object built from the kernel source folder,
--kernel-dir, so the portable kernels' pnn_* helpers count as kernels too; runtime =
startup, self test, libc), other (strings, .data initialisers, alignment). RAM: activation
buffers and scratch (the .bss/.data of nn.o; scratch = names containing
scratch/col/bufferA/bufferB/vec_buffer/im2col), stack and heap (the linker script's
.stack/.heap sections), other (self test, libc). Totals are Berkeley: flash = text + data,
RAM = data + bss.

Arrays moved into a section of their own (NN_WEIGHT_SECTION / NN_BUFFER_SECTION, e.g.
".psram") lose their per-symbol input section name: they count as "other".

Needs objects compiled with -ffunction-sections -fdata-sections (the firmware Makefiles do),
so each array has its own input section named after it.

    python -m cmsisgen.sizereport --elf build/nn_selftest.elf --map build/nn_selftest.map \
        [--model-dir OUT] [--kernel-dir firmware/cmsis_nn_portable]
        [--flash-size 1048576 --ram-size 327680] [--json]

The firmware Makefiles build objects at $(BUILD_DIR)/obj/<absolute source path>.o, so an
object was built from a folder when that folder's absolute path is part of its path.
Without --kernel-dir, kernel objects are recognised by their path (a cmsis_nn_portable or
CMSIS/NN/Source folder) or, for library members, an arm_ file name.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from cmsisgen.errors import CmsisgenError
except ImportError:  # run as a plain script from the firmware Makefiles
    class CmsisgenError(Exception):  # type: ignore[no-redef]
        pass

SCRATCH_RE = re.compile(r"scratch|col_?buf|buffer_?a\b|buffer_?b\b|bufferA|bufferB|vec_?buf|im2col",
                        re.IGNORECASE)
TEST_VECTOR_RE = re.compile(r"^nn_test_")
#: Without --model-dir, the model's objects by name: nn.o and the cmsisgen kernels
#: (cmsisgen.own_kernels.ALL_FILES: nn_concat_q7.c, nn_lrn_q7.c, ...).
MODEL_OBJECT_RE = re.compile(r"^nn(_\w+_q7)?\.o$")


@dataclass
class InputSection:
    name: str        # e.g. ".rodata.conv1_wt"
    address: int
    size: int
    obj: str         # object file path as written in the map

    @property
    def symbol(self) -> str:
        for prefix in (".rodata.", ".bss.", ".data.", ".text."):
            if self.name.startswith(prefix):
                return self.name[len(prefix):]
        return self.name


def parse_map(text: str) -> tuple[list[InputSection], dict[str, int]]:
    """Input sections (name, address, size, object) and output section sizes of a GNU ld map."""
    start = text.find("Linker script and memory map")
    if start < 0:
        raise CmsisgenError("linker map has no 'Linker script and memory map' part")
    lines = text[start:].splitlines()
    inputs: list[InputSection] = []
    outputs: dict[str, int] = {}
    out_re = re.compile(r"^(\.\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")
    in_re = re.compile(r"^ (\.\S+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    cont_re = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    pending_out = None
    pending_in = None
    for line in lines:
        if pending_out is not None:
            m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)", line)
            if m:
                outputs[pending_out] = int(m[2], 16)
            pending_out = None
            continue
        if pending_in is not None:
            m = cont_re.match(line)
            if m:
                inputs.append(InputSection(pending_in, int(m[1], 16), int(m[2], 16), m[3].strip()))
            pending_in = None
            continue
        m = out_re.match(line)
        if m:
            outputs[m[1]] = int(m[3], 16)
            continue
        if re.match(r"^\.\S+\s*$", line):
            pending_out = line.strip()
            continue
        m = in_re.match(line)
        if m:
            inputs.append(InputSection(m[1], int(m[2], 16), int(m[3], 16), m[4].strip()))
            continue
        m = re.match(r"^ (\.\S+|COMMON)\s*$", line)
        if m:
            pending_in = m[1]
    return inputs, outputs


def berkeley_size(elf: Path, size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    try:
        out = subprocess.run([size_tool, "-B", str(elf)], check=True, capture_output=True,
                             text=True).stdout
    except FileNotFoundError:
        raise CmsisgenError(f"{size_tool} not found on PATH: needed for the size report") from None
    except subprocess.CalledProcessError as exc:
        raise CmsisgenError(f"{size_tool} failed on {elf}: {exc.stderr.strip()}") from None
    rows = [l.split() for l in out.strip().splitlines()]
    if len(rows) < 2 or len(rows[1]) < 3:
        raise CmsisgenError(f"unexpected {size_tool} output for {elf}")
    text_b, data_b, bss_b = (int(v) for v in rows[1][:3])
    return {"text": text_b, "data": data_b, "bss": bss_b}


def _spellings(folder: Path) -> list[str]:
    """A folder as make's $(abspath) writes it (symlinks kept) and resolved, '/'-terminated."""
    forms = {os.path.abspath(folder), str(Path(folder).resolve())}
    return sorted(f.rstrip("/") + "/" for f in forms)


def _is_model_obj(obj: str, model_dirs: list[str] | None) -> bool:
    """Built from a .c of the model folder: nn.c or a cmsisgen kernel compile copied beside it."""
    if model_dirs is not None:
        return obj.endswith(".o") and any(d in obj and "/" not in obj.rsplit(d, 1)[1] for d in model_dirs)
    return MODEL_OBJECT_RE.match(Path(obj).name) is not None


def _is_kernel_obj(obj: str, kernel_dirs: list[str]) -> bool:
    path = obj.split("(")[0]
    if kernel_dirs:
        return any(d in path for d in kernel_dirs)
    return ("/cmsis_nn_portable/" in path or "/CMSIS/NN/Source/" in path
            or Path(path).name.startswith("arm_") or "(arm_" in obj)


_ARRAY_RE = re.compile(r"^\s*(?:static\s+|extern\s+)?const\s+\w+\s+(\w+)\s*\[", re.MULTILINE)


def weight_names(model_dir: Path | None) -> set[str] | None:
    """Names of the arrays declared in the model's weights.h (None: no weights.h)."""
    if model_dir is None:
        return None
    path = Path(model_dir) / "weights.h"
    if not path.is_file():
        return None
    text = re.sub(r"/\*.*?\*/", "", path.read_text(errors="replace"), flags=re.DOTALL)
    return set(_ARRAY_RE.findall(text))


def _classify(inputs: list[InputSection], kernels: list[str], model_dirs: list[str] | None,
              weight_arrays: set[str] | None) -> dict:
    """Bytes per symbol of the model's weights, test vectors, activations and scratch, and
    code bytes of the model, the kernels and the rest, from the map's input sections."""
    found: dict = {"weights": {}, "test_vectors": {}, "activations": {}, "scratch": {},
                   "code": {"model": 0, "kernels": 0, "runtime": 0}}
    code = found["code"]

    def add(kind: str, symbol: str, size: int) -> None:
        found[kind][symbol] = found[kind].get(symbol, 0) + size

    for sec in inputs:
        if sec.size == 0 or sec.address == 0 and not sec.name.startswith((".text", ".rodata")):
            continue
        model = _is_model_obj(sec.obj, model_dirs)
        if sec.name.startswith(".text"):
            code["model" if model else "kernels" if _is_kernel_obj(sec.obj, kernels) else "runtime"] += sec.size
        elif sec.name.startswith(".rodata"):
            if TEST_VECTOR_RE.match(sec.symbol):
                add("test_vectors", sec.symbol, sec.size)
            elif model and (sec.symbol in weight_arrays if weight_arrays is not None
                            else not sec.symbol.startswith("str")):
                add("weights", sec.symbol, sec.size)
            elif model:
                code["model"] += sec.size  # nn.c's other constants
            elif _is_kernel_obj(sec.obj, kernels):
                code["kernels"] += sec.size  # kernel tables (upstream arm_nntables.c)
        elif sec.name.startswith((".bss", ".data", "COMMON")) and model:
            add("scratch" if SCRATCH_RE.search(sec.symbol) else "activations", sec.symbol, sec.size)
    return found


def size_report(elf: Path, map_file: Path, model_dir: Path | None = None,
                size_tool: str = "arm-none-eabi-size", flash_size: int | None = None,
                ram_size: int | None = None,
                kernel_dirs: list[Path] | tuple[Path, ...] | None = None) -> dict:
    """Flash/RAM breakdown of a firmware build (bytes); see the module docstring.

    kernel_dirs: the CMSIS-NN source folders the build compiled (portable kernels or
    upstream CMSIS/NN); objects under them are kernels whatever their names."""
    elf, map_file = Path(elf), Path(map_file)
    if not map_file.is_file():
        raise CmsisgenError(f"{map_file}: linker map not found")
    totals = berkeley_size(elf, size_tool)
    inputs, outputs = parse_map(map_file.read_text(errors="replace"))
    # Objects sit at $(BUILD_DIR)/obj/<make's absolute source path>.o: match both spellings
    # of a folder reached through a symlink.
    kernels = [form for d in (kernel_dirs or ()) for form in _spellings(Path(d))]
    model_dirs = _spellings(Path(model_dir)) if model_dir is not None else None
    weight_arrays = weight_names(model_dir)

    sym = _classify(inputs, kernels, model_dirs, weight_arrays)
    weights, test_vectors, activations, scratch, code = (sym["weights"], sym["test_vectors"], sym["activations"],
                                                         sym["scratch"], sym["code"])

    flash_total = totals["text"] + totals["data"]
    ram_total = totals["data"] + totals["bss"]
    stack = outputs.get(".stack", 0)
    heap = outputs.get(".heap", 0)
    flash = {
        "weights": sum(weights.values()),
        "test_vectors": sum(test_vectors.values()),
        "code_model": code["model"],
        "code_kernels": code["kernels"],
        "code_runtime": code["runtime"],
    }
    flash["other"] = flash_total - sum(flash.values())
    flash["total"] = flash_total
    ram = {
        "activations": sum(activations.values()),
        "scratch": sum(scratch.values()),
        "stack": stack,
        "heap": heap,
    }
    ram["other"] = ram_total - sum(ram.values())
    ram["total"] = ram_total
    return {
        "elf": str(elf),
        "berkeley": totals,
        "flash": flash,
        "ram": ram,
        "flash_size": flash_size,
        "ram_size": ram_size,
        "symbols": {"weights": weights, "test_vectors": test_vectors,
                    "activations": activations, "scratch": scratch},
    }


_FLASH_LABELS = [
    ("weights", "weights (model .rodata)"),
    ("test_vectors", "test vectors (self test only)"),
    ("code_model", "code: nn.c + own kernels"),
    ("code_kernels", "code: CMSIS-NN kernels"),
    ("code_runtime", "code: startup, self test, libc"),
    ("other", "other (strings, .data init, padding)"),
]
_RAM_LABELS = [
    ("activations", "activation buffers"),
    ("scratch", "kernel scratch buffers"),
    ("stack", "stack (reserved)"),
    ("heap", "heap (reserved)"),
    ("other", "other (self test, libc, padding)"),
]


def format_table(report: dict) -> str:
    """Text table: one row per category, bytes and share of the total (or of the device)."""
    lines = [f"Size report: {report['elf']}", f"{'':40}{'bytes':>10}{'%':>8}"]
    for title, key, labels, cap in (("Flash", "flash", _FLASH_LABELS, report.get("flash_size")),
                                    ("RAM", "ram", _RAM_LABELS, report.get("ram_size"))):
        part = report[key]
        total = part["total"] or 1
        lines.append(title)
        for field_name, label in labels:
            lines.append(f"  {label:38}{part[field_name]:>10}{100.0 * part[field_name] / total:>8.1f}")
        suffix = f"  ({100.0 * part['total'] / cap:.1f}% of {cap // 1024} KB)" if cap else ""
        lines.append(f"  {'total':38}{part['total']:>10}{100.0:>8.1f}{suffix}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cmsisgen.sizereport",
                                 description="Flash/RAM report of a cmsisgen firmware build")
    ap.add_argument("--elf", required=True, type=Path)
    ap.add_argument("--map", required=True, type=Path)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--kernel-dir", type=Path, action="append", default=None,
                    help="CMSIS-NN source folder the build compiled (repeatable)")
    ap.add_argument("--size-tool", default="arm-none-eabi-size")
    ap.add_argument("--flash-size", type=int, default=None, help="device flash in bytes")
    ap.add_argument("--ram-size", type=int, default=None, help="device RAM in bytes")
    ap.add_argument("--json", action="store_true", help="print the dict as JSON")
    args = ap.parse_args(argv)
    try:
        report = size_report(args.elf, args.map, args.model_dir, args.size_tool,
                             args.flash_size, args.ram_size, kernel_dirs=args.kernel_dir)
    except CmsisgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
