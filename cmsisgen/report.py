"""Per-layer report of a compiled program: the table the CLI prints and its JSON twin."""
from __future__ import annotations

import json
from typing import Any, Optional

from .calibration_methods import method_used
from .mapper.buffers import BufferPlan
from .mapper.calls import Op, Program
from .network_outputs import describe_outputs
from .qformat import q_format


def build_report(program: Program, plan: BufferPlan, calib_method: Optional[str] = None) -> dict[str, Any]:
    """``{"backend", "cpu", "calib_method", "layers": [...], "buffers": [...], "totals": {...},
    "outputs": [...]}``; shapes are Caffe's (C, H, W).

    ``backend`` is the API the code calls ("q7" or "s8"); ``cpu`` the core the s8 code is
    planned for (--cpu), null on q7, whose code is the same on every core; ``calib_method`` the
    --calib-method the calibration used (the backend's default when none was given;
    :func:`cmsisgen.calibration_methods.method_used`), null when the caller does not say. A
    report is read apart from the command that wrote it: these say how to make it again.

    ``buffers`` is the buffer plan (as nn.c's comment table shows it): every tensor and
    scratch buffer with its region ("image": run_nn()'s image buffer, "arena": the static
    arena), offset, reserved bytes and the steps it lives (op indices, NN_TRACE's step
    numbers). ``totals.arena_bytes`` is all the RAM run_nn() uses beyond the image buffer
    (``totals.activation_bytes`` is the same figure, kept for older readers);
    ``totals.scratch_bytes`` is the largest scratch of one call, inside the arena.

    On the s8 backend the Q formats and shifts are null (int8 tensors have no Q format) and each
    layer also says its tensors' ``input_quant`` / ``output_quant`` ({scale, zero_point}) and
    its weights' ``weight_scales`` ({channels, min, max}: one scale per output channel);
    each output, its ``quant``.
    """
    layers = [_layer_row(program, plan, step, op) for step, op in enumerate(program.ops)]
    buffers = [{"name": p.name, "region": p.region, "offset": p.offset, "bytes": p.bytes,
                "first_step": p.first, "last_step": p.last,
                "kind": "scratch" if p.scratch_of is not None else "tensor"} for p in plan.placements()]
    totals = {
        "weight_bytes": sum(layer["weight_bytes"] for layer in layers),
        "activation_bytes": plan.arena_bytes,
        "scratch_bytes": plan.scratch_bytes,
        "macs": sum(layer["macs"] for layer in layers),
        "arena_bytes": plan.arena_bytes,
        "input_buffer_bytes": plan.input_buffer_bytes,
    }
    return {"backend": program.backend, "cpu": program.cpu if program.backend == "s8" else None,
            "calib_method": None if calib_method is None else method_used(calib_method),
            "layers": layers, "buffers": buffers, "totals": totals, "outputs": report_outputs(program, plan)}


def _layer_row(program: Program, plan: BufferPlan, step: int, op: Op) -> dict[str, Any]:
    """One call of the report's ``layers``."""
    f = op.formats
    out = program.tensors[op.output]
    in_shape = list(program.tensors[op.inputs[0]].shape) if op.inputs else list(program.input_shape)
    row = {
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
        "weight_bytes": op.weight_bytes,
        "activation_bytes": out.size,
        "scratch_bytes": op.scratch_bytes,
        "output_region": plan.tensors[op.output].region,
        "output_offset": plan.tensors[op.output].offset,
        "scratch_offset": plan.scratch[step].offset if step in plan.scratch else None,
    }
    if program.backend == "s8":
        row.update(_s8_fields(program, op))
    return row


def _quant(program: Program, tensor: str) -> Optional[dict[str, Any]]:
    q = program.tensors[tensor].quant
    return None if q is None else {"scale": float(q.scale), "zero_point": int(q.zero_point)}


def _s8_fields(program: Program, op: Op) -> dict[str, Any]:
    """An s8 layer's quantization instead of Q formats: its first input's and its output's
    scale and zero point (the input step reads a raw image: none), and its weights' scales
    (one per output channel, all equal where the layer takes one per tensor)."""
    scales = op.params.get("weight_scales") if isinstance(op.params, dict) else None
    q_in = _quant(program, op.inputs[0]) if op.inputs else None
    return {"bias_format": None, "input_format": None, "weight_format": None, "output_format": None,
            "input_quant": q_in, "output_quant": _quant(program, op.output),
            "weight_scales": None if scales is None else {"channels": len(scales), "min": float(min(scales)),
                                                          "max": float(max(scales))}}


def report_outputs(program: Program, plan: BufferPlan) -> list[dict[str, Any]]:
    """run_nn()'s outputs in its argument order: the blob, the argument that receives it,
    Caffe's (C, H, W), bytes, Q format, element order ("HWC" for a spatial output) and the
    buffer run_nn() copies it from; on s8 no Q format but its scale and zero point (``quant``)."""
    s8 = program.backend == "s8"
    return [{"name": out["blob"], "argument": out["argument"], "shape": list(program.tensors[out["tensor"]].shape),
             "bytes": out["size"], "format": None if s8 else q_format(out["frac"]),
             "order": "HWC" if out["hwc"] else "vector", "tensor": out["tensor"],
             "region": plan.tensors[out["tensor"]].region, "offset": plan.tensors[out["tensor"]].offset,
             **({"quant": _quant(program, out["tensor"])} if s8 else {})} for out in describe_outputs(program)]


#: The table's columns between the shapes and the MACs: q7's formats and shifts, or s8's
#: scales and zero points (the left-aligned ones first).
_Q7_COLUMNS = (("Q in/w/b/out",), ("lsh", "rsh"))
_S8_COLUMNS = (("in scale/zp", "out scale/zp", "w scales"), ())


def _q7_cells(layer: dict[str, Any]) -> tuple[str, ...]:
    formats = "/".join(f or "-" for f in (layer["input_format"], layer["weight_format"],
                                            layer["bias_format"], layer["output_format"]))
    return (formats, "-" if layer["bias_lshift"] is None else str(layer["bias_lshift"]),
            "-" if layer["out_rshift"] is None else str(layer["out_rshift"]))


def quant_text(quant: Optional[dict[str, Any]]) -> str:
    """An s8 tensor's quantization as the table shows it: scale/zero point, 4 significant digits."""
    return "-" if quant is None else f"{quant['scale']:.4g}/{quant['zero_point']}"


def _s8_cells(layer: dict[str, Any]) -> tuple[str, ...]:
    w = layer["weight_scales"]
    weights = "-" if w is None else f"{w['min']:.3g}" if w["min"] == w["max"] else \
        f"{w['min']:.3g}..{w['max']:.3g} ({w['channels']})"
    return quant_text(layer["input_quant"]), quant_text(layer["output_quant"]), weights


def format_table(report: dict[str, Any]) -> str:
    """Fixed-width text table, one line per call, then totals."""
    s8 = bool(report["layers"]) and "output_quant" in report["layers"][0]
    left, right = _S8_COLUMNS if s8 else _Q7_COLUMNS
    header = ("step", "layer", "function", "in", "out", *left, *right, "MACs", "weights", "act")
    rows = [header]
    for step, layer in enumerate(report["layers"]):
        name = layer["name"] + (" (copy)" if layer["type"] == "Copy" else "")
        rows.append((str(step), name, layer["function"], "x".join(map(str, layer["input_shape"])),
                     "x".join(map(str, layer["output_shape"])), *(_s8_cells if s8 else _q7_cells)(layer),
                     str(layer["macs"]), str(layer["weight_bytes"]), str(layer["activation_bytes"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if 1 <= i <= 4 + len(left) else cell.rjust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in rows]
    t = report["totals"]
    lines.append(f"total: {t['macs']} MACs, {t['weight_bytes']} weight bytes (flash), "
                 f"{t['arena_bytes']} arena bytes (RAM: activations and scratch, largest scratch "
                 f"{t['scratch_bytes']}) + the caller's {t['input_buffer_bytes']}-byte image buffer")
    if report.get("outputs"):
        lines.append("run_nn() output" + ("s, in argument order: " if len(report["outputs"]) > 1 else ": ") + ", ".join(
            f"{out['name']} ({out['argument']}, {'x'.join(map(str, out['shape']))}, {out['bytes']} bytes, "
            f"{_output_format(out)}{', HWC' if out['order'] == 'HWC' else ''})" for out in report["outputs"]))
    if report.get("buffers"):
        lines += ["", "buffer plan (steps: first-last step the bytes are live):", *format_plan(report["buffers"])]
    return "\n".join(lines)


def _output_format(out: dict[str, Any]) -> str:
    """q7: its Q format; s8: its scale and zero point."""
    if out.get("quant") is None:
        return out["format"]
    return f"scale {out['quant']['scale']:.6g}, zero point {out['quant']['zero_point']}"


def format_plan(buffers: list[dict[str, Any]]) -> list[str]:
    """The buffer plan as text lines, one per tensor or scratch buffer."""
    rows = [("tensor", "region", "offset", "bytes", "steps")]
    for b in buffers:
        steps = str(b["first_step"]) if b["first_step"] == b["last_step"] else f"{b['first_step']}-{b['last_step']}"
        name = b["name"].replace("/scratch", " (scratch)") if b["kind"] == "scratch" else b["name"]
        rows.append((name, b["region"], str(b["offset"]), str(b["bytes"]), steps))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in rows]


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"
