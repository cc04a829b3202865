"""Integer LRN: the multiplier table that the project's own q7 LRN kernel reads.

Caffe's LRN multiplies every value by ``scale**-beta`` where ``scale = k + a * S`` and S
is a window sum of squares (``a = alpha/n`` across channels; within a channel Caffe uses
``k = 1`` and ``a = alpha/n**2``). With q7 input ``x`` in Q.f_in the kernel forms S
exactly in integers (sum of ``x*x``, at most ``window * 128**2``), so the multiplier is a
function of one integer and is tabulated at compile time:

    index = (S + half_step) >> index_shift            (rounded to the nearest entry)
    out   = SSAT8((x * table[index] + NN_ROUND(out_shift)) >> out_shift)

``table[i] = round((k + a * (i << index_shift) * 2**(-2*f_in))**-beta * 2**mul_frac)`` as
uint16, ``mul_frac`` as large as the largest multiplier allows (at most 16), and
``out_shift = mul_frac + f_in - f_out``. ``index_shift`` is the smallest shift that keeps
the table at most :data:`TABLE_MAX` entries; the multiplier changes slowly (its relative
slope is ``beta * a * 2**(-2*f_in) / scale``), so the rounded index costs far less than
one output LSB for Caffe's usual alpha (1e-4 .. 5e-5). Everything is integer at run
time, so the simulator reproduces it bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ir
from ..errors import CmsisgenError

#: Largest table (uint16 entries; 2 KiB of flash).
TABLE_MAX = 1024
#: Largest fractional bits of a multiplier (uint16 holds up to 65535 / 2**16 < 1).
MAX_MUL_FRAC = 16


@dataclass(frozen=True)
class LrnTable:
    table: np.ndarray  # uint16
    index_shift: int
    mul_frac: int
    out_shift: int


def window_size(p: ir.LRNParams) -> int:
    """Terms in one sum of squares."""
    return p.local_size if p.region == "across" else p.local_size * p.local_size


def coefficients(p: ir.LRNParams) -> tuple[float, float]:
    """(k, a) of ``scale = k + a * sum of squared values`` in Caffe's definition."""
    if p.region == "across":
        return p.k, p.alpha / p.local_size
    return 1.0, p.alpha / (p.local_size * p.local_size)


def lrn_table(layer: str, p: ir.LRNParams, in_frac: int, out_frac: int) -> LrnTable:
    """The table and shifts for one LRN layer (see the module docstring)."""
    k, a = coefficients(p)
    max_sum = window_size(p) * 128 * 128
    index_shift = 0
    while ((max_sum + ((1 << index_shift) >> 1)) >> index_shift) + 1 > TABLE_MAX:
        index_shift += 1
    size = ((max_sum + ((1 << index_shift) >> 1)) >> index_shift) + 1
    sums = np.arange(size, dtype=np.float64) * float(1 << index_shift)
    scale = k + a * sums * 2.0 ** (-2 * in_frac)
    if np.any(scale <= 0):
        raise CmsisgenError(f"layer '{layer}' (LRN): k + alpha * sum must stay positive (k = {p.k:g})")
    multiplier = scale ** -p.beta
    largest = float(multiplier.max())
    mul_frac = min(MAX_MUL_FRAC, math.floor(math.log2(65535.0 / largest)))
    out_shift = mul_frac + in_frac - out_frac
    if not 0 <= out_shift <= 31:
        raise CmsisgenError(f"layer '{layer}' (LRN): the output format Q{7 - out_frac}.{out_frac} is out of reach of "
                            f"the input format Q{7 - in_frac}.{in_frac} (shift {out_shift})")
    table = np.clip(np.floor(multiplier * 2.0 ** mul_frac + 0.5), 0, 65535).astype(np.uint16)
    return LrnTable(table=table, index_shift=index_shift, mul_frac=mul_frac, out_shift=out_shift)
