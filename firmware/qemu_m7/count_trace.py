#!/usr/bin/env python3
"""Exact instruction counts from a QEMU execution trace (stdlib only).

QEMU run with `-singlestep -d exec,nochain` makes every translation block one instruction
and logs every block it executes, one line each:

    Trace 0: 0x7f1a74000100 [00800408/0000016c/00000110/ff000201] Reset_Handler
                                      ^^^^^^^^ guest PC

so the executed instructions between two PCs are the trace lines between them. Read the
trace on stdin and count:

  --region START:END   lines from PC == START (inclusive) to the next PC == END (exclusive),
                       for every occurrence; START/END are symbols or hex addresses.
  --call FUNC          instructions executed inside FUNC and its callees per call: from
                       PC == FUNC to the return address (PC after each `bl FUNC`, found with
                       objdump), exclusive.

Prints `count N` per occurrence and `counts total T occurrences K`.

    qemu-system-arm ... -singlestep -d exec,nochain -kernel x.elf 2>&1 >/dev/null \
        | python3 count_trace.py --elf x.elf --call run_nn
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys

TRACE_RE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def symbols(elf: str, nm: str) -> dict[str, int]:
    out = subprocess.run([nm, elf], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16) & ~1
    return table


def address(spec: str, table: dict[str, int]) -> int:
    if spec in table:
        return table[spec]
    try:
        return int(spec, 16) & ~1
    except ValueError:
        raise SystemExit(f"count_trace: unknown symbol {spec!r}") from None


def return_addresses(elf: str, objdump: str, func: str) -> set[int]:
    """Addresses right after every `bl`/`blx` to FUNC (the call's return address)."""
    out = subprocess.run([objdump, "-d", elf], check=True, capture_output=True, text=True).stdout
    insn_re = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{4} ?){1,2})\s+(\S+)\s*(.*)$")
    lines = [m for m in (insn_re.match(l) for l in out.splitlines()) if m]
    rets = set()
    for m in lines:
        if m.group(3) in ("bl", "blx") and m.group(4).endswith(f"<{func}>"):
            size = 2 * len(m.group(2).split())
            rets.add(int(m.group(1), 16) + size)
    if not rets:
        raise SystemExit(f"count_trace: no call to {func} found in {elf}")
    return rets


def count(stream, start: int, stops: set[int], limit: int | None) -> list[int]:
    counts: list[int] = []
    inside = False
    n = 0
    for line in stream:
        m = TRACE_RE.match(line)
        if not m:
            continue
        pc = int(m.group(1), 16)
        if inside:
            if pc in stops:
                counts.append(n)
                inside = False
                if limit is not None and len(counts) >= limit:
                    break
            else:
                n += 1
        if not inside and pc == start and (limit is None or len(counts) < limit):
            inside = True
            n = 1
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--nm", default="arm-none-eabi-nm")
    ap.add_argument("--objdump", default="arm-none-eabi-objdump")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--region", help="START:END (symbols or hex addresses)")
    group.add_argument("--call", help="function name")
    ap.add_argument("--max", type=int, default=None, help="stop after this many occurrences")
    args = ap.parse_args()

    table = symbols(args.elf, args.nm)
    if args.region:
        start_s, _, end_s = args.region.partition(":")
        start, stops = address(start_s, table), {address(end_s, table)}
    else:
        start, stops = address(args.call, table), return_addresses(args.elf, args.objdump, args.call)
    counts = count(sys.stdin, start, stops, args.max)
    # Drain stdin so QEMU is not killed by SIGPIPE before it exits.
    for _ in sys.stdin:
        pass
    for c in counts:
        print(f"count {c}")
    print(f"counts total {sum(counts)} occurrences {len(counts)}")
    return 0 if counts else 1


if __name__ == "__main__":
    sys.exit(main())
