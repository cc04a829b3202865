"""Per-layer report of a compiled program: the table the CLI prints and its JSON twin."""
from __future__ import annotations

import json
from typing import Any

from .mapper.buffers import BufferPlan
from .mapper.program import Op, Program
from .quantizer import q_format


def _weight_bytes(op: Op) -> int:
    if op.kind == "input" and op.input_fp is not None:
        return 4 * int(op.input_fp.offsets.size)
    if op.weight_data is None:
        return 0
    return int(op.weight_data.size) + (int(op.bias.size) if op.bias is not None else 0)


def build_report(program: Program, plan: BufferPlan) -> dict[str, Any]:
    """``{"layers": [...], "totals": {...}}``; shapes are Caffe's (C, H, W)."""
    layers = []
    for op in program.ops:
        f = op.formats
        out = program.tensors[op.output]
        in_shape = list(program.tensors[op.inputs[0]].shape) if op.inputs else list(program.input_shape)
        layers.append({
            "name": op.layer,
            "type": op.layer_type,
            "function": op.function,
            "input_shape": in_shape,
            "output_shape": list(out.shape),
            "input_format": q_format(f["in_frac"]) if "in_frac" in f else None,
            "weight_format": q_format(f["weight_frac"]) if "weight_frac" in f else None,
            "bias_format": q_format(f["bias_frac"]) if "bias_frac" in f else None,
            "output_format": q_format(f["out_frac"]) if "out_frac" in f else None,
            "bias_lshift": f.get("bias_lshift"),
            "out_rshift": f.get("out_rshift"),
            "macs": op.macs,
            "weight_bytes": _weight_bytes(op),
            "activation_bytes": out.size,
            "scratch_bytes": op.scratch_bytes,
        })
    totals = {
        "weight_bytes": sum(layer["weight_bytes"] for layer in layers),
        "activation_bytes": plan.arena_bytes,
        "scratch_bytes": plan.scratch_bytes,
        "macs": sum(layer["macs"] for layer in layers),
    }
    return {"layers": layers, "totals": totals}


def format_table(report: dict[str, Any]) -> str:
    """Fixed-width text table, one line per call, then totals."""
    header = ("layer", "function", "in", "out", "Q in/w/b/out", "lsh", "rsh", "MACs", "weights", "act")
    rows = [header]
    for layer in report["layers"]:
        formats = "/".join(f or "-" for f in (layer["input_format"], layer["weight_format"],
                                                layer["bias_format"], layer["output_format"]))
        name = layer["name"] + (" (copy)" if layer["type"] == "Copy" else "")
        rows.append((name, layer["function"], "x".join(map(str, layer["input_shape"])),
                     "x".join(map(str, layer["output_shape"])), formats,
                     "-" if layer["bias_lshift"] is None else str(layer["bias_lshift"]),
                     "-" if layer["out_rshift"] is None else str(layer["out_rshift"]),
                     str(layer["macs"]), str(layer["weight_bytes"]), str(layer["activation_bytes"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 5 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    t = report["totals"]
    lines.append(f"total: {t['macs']} MACs, {t['weight_bytes']} weight bytes (flash), "
                 f"{t['activation_bytes']} activation bytes + {t['scratch_bytes']} scratch bytes (RAM)")
    return "\n".join(lines)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"
