#!/usr/bin/env python3
"""Print the example README's per-layer table (Markdown) from a `cmsisgen compile --report` JSON.

    cmsisgen compile ... --report report.json && python3 examples/cifar10/report_table.py report.json

Operations are 2 x MACs (a multiply and an add), as the CMSIS-NN guide counts them; weight
bytes are what the layer keeps in flash (weights + biases; the input step's per-pixel offsets or q7 table);
activation bytes are the size of the layer's q7 output tensor (HWC); the totals are the buffer
plan's: one arena holding every activation and each call's scratch, plus the caller's image
buffer, which run_nn() converts in place.
"""
from __future__ import annotations

import json
import sys


def _hwc(shape: list[int]) -> str:
    c, h, w = shape
    return f"{h}x{w}x{c}" if h * w > 1 else str(c)


def table(report: dict) -> str:
    lines = ["| layer | function | output (HWC) | operations | weight bytes | activation bytes |",
             "|---|---|---|---:|---:|---:|"]
    ops = weights = 0
    for layer in report["layers"]:
        ops += 2 * layer["macs"]
        weights += layer["weight_bytes"]
        lines.append(f"| {layer['name']} | `{layer['function']}` | {_hwc(layer['output_shape'])} | "
                     f"{2 * layer['macs']:,} | {layer['weight_bytes']:,} | {layer['activation_bytes']:,} |")
    totals = report["totals"]
    lines.append(f"| **total** | | | **{ops:,}** | **{weights:,}** | arena **{totals['arena_bytes']:,}** "
                 f"(largest scratch {totals['scratch_bytes']:,} inside it) + image buffer "
                 f"**{totals['input_buffer_bytes']:,}** |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    with open(argv[1]) as file:
        print(table(json.load(file)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
