"""Where a quantized net loses accuracy: per layer output, the error of the dequantized int8
tensor (the bit-exact simulator's) against the float forward's, for either backend: a q7
code stands for ``q * 2**-frac``, an s8 one for ``(q - zero_point) * scale`` (:class:`Grid`).

``evaluate --per-layer`` runs both passes side by side on the same batches; keeping every
activation of every image would not fit in memory for a real data set, so each tensor
only adds running sums (signal and error energy, products, counts) batch by batch.

* ``sqnr_db``: ``10 log10(sum f^2 / sum (q - f)^2)`` with ``q`` the dequantized value;
  ``None`` when the int8 tensor is exact.
* ``clipped``: share of float values the grid cannot hold (they round beyond -128..127).
* ``saturated``: int8 values at -128 or 127 whose float counterpart lies beyond the grid:
  the kernel clamped them (a value at 127 that the float net also puts there is not counted).
* ``cosine``: cosine similarity of the two tensors (1: same direction).

The layer where accuracy goes is the one whose SQNR drops most below that of its inputs:
a low SQNR inherited from an earlier layer is not that layer's fault.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir
from .mapper.calls import Program
from .ops import kind_of
from .ops.alias import held_layouts
from .qformat import q_format

#: SQNR of a full-scale uniform signal on an 8-bit grid (6.02 * 8 + 1.76): what the input
#: conversion's own SQNR is compared with when looking for the layer that loses most.
IDEAL_8BIT_SQNR_DB = 6.02 * 8 + 1.76
#: SQNR an exact tensor counts as when computing drops.
EXACT_SQNR_DB = 100.0


@dataclass(frozen=True)
class Grid:
    """The values an int8 tensor's codes stand for, ``(code - zero_point) * scale``, and how
    the report names it (a q7 Q format, or an s8 scale and zero point). ``floor``: the float
    values are compared from there up (see :func:`s8_grid`)."""

    scale: float
    zero_point: int
    label: str
    floor: float = -math.inf


def q7_grid(frac: int) -> Grid:
    return Grid(scale=2.0 ** -frac, zero_point=0, label=q_format(frac))


def s8_grid(scale: float, zero_point: int) -> Grid:
    """An s8 tensor's grid. One whose lowest code is 0.0 (zero point -128) holds max(x, 0):
    the s8 quantizer gives it that grid when no negative value of it can change the output
    (a ReLU fused into the call, or max pooling and a ReLU after it) or none was seen, so it
    is compared with the float values' positive part: its negatives are not an error."""
    return Grid(scale=scale, zero_point=zero_point, label=f"s{scale:.3g} z{zero_point}",
                floor=0.0 if zero_point == -128 else -math.inf)


@dataclass
class _Sums:
    grid: Grid
    count: int = 0
    signal: float = 0.0    # sum f^2
    error: float = 0.0     # sum (q - f)^2
    q_energy: float = 0.0  # sum q^2
    product: float = 0.0   # sum f q
    clipped: int = 0
    saturated: int = 0
    low: float = math.inf
    high: float = -math.inf

    def add(self, f: np.ndarray, q7: np.ndarray) -> None:
        f = np.maximum(f.astype(np.float64).ravel(), self.grid.floor)
        q7 = q7.ravel()
        q = (q7.astype(np.float64) - self.grid.zero_point) * self.grid.scale
        scaled = f / self.grid.scale + self.grid.zero_point
        above, below = scaled >= 127.5, scaled < -128.5
        self.count += f.size
        self.signal += float(f @ f)
        self.error += float((q - f) @ (q - f))
        self.q_energy += float(q @ q)
        self.product += float(f @ q)
        self.clipped += int(above.sum() + below.sum())
        self.saturated += int(((q7 == 127) & above).sum() + ((q7 == -128) & below).sum())
        if f.size:
            self.low, self.high = min(self.low, float(f.min())), max(self.high, float(f.max()))

    def sqnr_db(self) -> Optional[float]:
        if self.error == 0.0:
            return None
        return 10.0 * math.log10(max(self.signal, 1e-300) / self.error)

    def cosine(self) -> float:
        if self.signal == 0.0 or self.q_energy == 0.0:
            return 1.0 if self.signal == self.q_energy else 0.0
        return self.product / math.sqrt(self.signal * self.q_energy)


class LayerErrors:
    """Running per-tensor error statistics of one compiled program; feed batches with :meth:`add`."""

    def __init__(self, program: Program, net: ir.Net, quant: object = None) -> None:
        """``quant``: the s8 quantization (each tensor's scale and zero point); None or a
        q7 one: the program's Q formats."""
        self.shapes = net.shapes
        self.held = held_layouts(net)  # tensor -> (C, H, W) of the spatial bytes it holds
        self.ops = [op for op in program.ops if op.output in net.shapes]
        layers = {layer.name: layer for layer in net.layers}
        s8 = getattr(quant, "tensors", None)  # name -> TensorQuant on s8
        #: outputs whose kernel computes another function than the float net (arm_softmax_q7's
        #: 2**x; arm_softmax_s8 computes e**x)
        self.unlike_float = set() if s8 else {op.output for op in self.ops if op.layer in layers
                                              and not getattr(kind_of(layers[op.layer]), "matches_float", True)}
        self.sums = {op.output: _Sums(s8_grid(s8[op.output].scale, s8[op.output].zero_point) if s8
                                      else q7_grid(program.tensors[op.output].frac)) for op in self.ops}

    def add(self, floats: dict[str, np.ndarray], q7s: dict[str, np.ndarray]) -> None:
        """One batch: float NCHW tensors (the float forward's) and int8 NHWC (the simulator's)."""
        for name, sums in self.sums.items():
            q7 = q7s[name]
            sums.add(self._hwc(name, floats[name].reshape(len(q7), -1)), q7.reshape(len(q7), -1))

    def _hwc(self, name: str, flat: np.ndarray) -> np.ndarray:
        """Float values in the byte order the q7 tensor holds them (HWC; a flattened spatial
        tensor keeps its source's HWC order)."""
        c, h, w = self.held.get(name) or self.shapes[name]
        return flat.reshape(len(flat), c, h, w).transpose(0, 2, 3, 1).reshape(len(flat), -1)

    def rows(self) -> list[dict]:
        """One dict per layer output, in execution order (see the module docstring)."""
        rows = []
        for op in self.ops:
            sums = self.sums[op.output]
            grid = sums.grid
            rows.append({
                "name": op.layer, "tensor": op.output.split("@")[0], "format": grid.label,
                "range": [sums.low, sums.high] if sums.count else [0.0, 0.0],
                "format_range": [(-128 - grid.zero_point) * grid.scale, (127 - grid.zero_point) * grid.scale],
                "sqnr_db": sums.sqnr_db(), "clipped": sums.clipped / sums.count if sums.count else 0.0,
                "saturated": sums.saturated, "cosine": sums.cosine(),
                "sqnr_drop_db": self._drop(op), "matches_float": op.output not in self.unlike_float,
            })
        return rows

    def _drop(self, op) -> float:
        """How far this output's SQNR falls below the lowest of its inputs' (the input
        conversion: below an ideal 8-bit quantizer's)."""
        inputs = [_capped(self.sums[name].sqnr_db()) for name in op.inputs if name in self.sums]
        before = min(inputs) if inputs else IDEAL_8BIT_SQNR_DB
        return before - _capped(self.sums[op.output].sqnr_db())


def _capped(sqnr: Optional[float]) -> float:
    return EXACT_SQNR_DB if sqnr is None else min(sqnr, EXACT_SQNR_DB)


def worst_layer(rows: list[dict]) -> Optional[dict]:
    """The row whose SQNR drops most (None when no layer loses anything); a layer whose kernel
    computes another function than the float one (``matches_float`` false) is not counted."""
    losing = [row for row in rows if row["sqnr_drop_db"] > 0 and row["matches_float"]]
    return max(losing, key=lambda row: row["sqnr_drop_db"]) if losing else None


def format_rows(rows: list[dict]) -> list[str]:
    """The text table ``evaluate --per-layer`` prints, and its last line naming the worst layer."""
    width = max([len("layer")] + [len(_label(row)) for row in rows])
    grid = max([6] + [len(row["format"]) for row in rows])  # Q formats fit 6; s8 scales are longer
    lines = [f"{'layer':<{width}}  {'format':<{grid}}  {'float range':>21}  {'SQNR dB':>7}  {'clipped':>8}  "
             f"{'saturated':>9}  {'cosine':>7}"]
    for row in rows:
        low, high = row["range"]
        sqnr = "exact" if row["sqnr_db"] is None else f"{row['sqnr_db']:.1f}"
        lines.append(f"{_label(row):<{width}}  {row['format']:<{grid}}  {f'[{low:.3g}, {high:.3g}]':>21}  {sqnr:>7}  "
                     f"{100 * row['clipped']:>7.3f}%  {row['saturated']:>9}  {row['cosine']:>7.4f}")
    worst = worst_layer(rows)
    if worst is None:
        lines.append("no layer loses SQNR")
    else:
        lines.append(f"largest SQNR drop: {_label(worst)} ({worst['sqnr_drop_db']:.1f} dB below its input, "
                     f"{worst['format']})")
    return lines


def _label(row: dict) -> str:
    """The layer's name, and its top when it is not named like the layer (a Slice's tops)."""
    return row["name"] if row["tensor"] == row["name"] else f"{row['name']} ({row['tensor']})"
