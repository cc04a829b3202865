"""Integer LRN: the multiplier table that the project's own q7 LRN kernel reads.

Caffe's LRN multiplies every value by ``scale**-beta`` where ``scale = k + a * S`` and S
is a window sum of squares (``a = alpha/n`` across channels; within a channel Caffe uses
``k = 1`` and ``a = alpha/n**2``). With q7 input ``x`` in Q.f_in the kernel forms S
exactly in integers (sum of ``x*x``, at most ``window * 128**2``), so the multiplier is a
function of one integer, tabulated at compile time and indexed by S written as a small
float with :data:`MANTISSA_BITS` = M bits of mantissa:

    e     = the smallest e >= 0 with (S >> e) < 2**M
    index = S                                             if e == 0 (exact for small sums)
          = 2**M + (e - 1) * 2**(M-1) + (S >> e) - 2**(M-1)   otherwise
    out   = SSAT8((x * table[index] + NN_ROUND(out_shift)) >> out_shift)

Entry ``index`` holds ``round((k + a * S_mid * 2**(-2*f_in))**-beta * 2**mul_frac)`` as
int32, ``S_mid`` the middle of the sums that share the index, ``mul_frac`` as large as the
largest multiplier allows below 2**31, and ``out_shift = mul_frac + f_in - f_out``; the
product ``x * table[index]`` is formed in 64 bits (one SMULL on the Cortex-M7). 32-bit
entries matter: a strongly normalised output (multiplier 1e-3 or less) that the output
format is sized for would lose whole LSBs to a 16-bit entry's rounding.
A uniform step would not do: with a large ``a`` the multiplier falls steeply for small
sums. Here S is known to a relative 2**-M (half that from the middle), so the multiplier
to ``beta * 2**-M`` relative -- about a third of an output LSB at 127 -- whatever alpha,
beta, k and the input format are. The table has ``2**M + e_max * 2**(M-1)`` entries
(1152 to 1664 entries for local sizes 1 to 5; 4.5 to 6.5 KB of flash). Everything is
integer at run time, so the simulator reproduces it bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ir
from ..errors import CmsisgenError

#: Mantissa bits of the table index.
MANTISSA_BITS = 8
#: Largest table entry (int32).
ENTRY_MAX = (1 << 31) - 1
#: Largest out_shift the 64-bit product allows.
MAX_OUT_SHIFT = 62


@dataclass(frozen=True)
class LrnTable:
    table: np.ndarray  # int32
    mantissa_bits: int
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


def table_index(sums: np.ndarray, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """The kernel's table index of non-negative integer sums (see the module docstring)."""
    s = np.asarray(sums, dtype=np.int64)
    top = 1 << mantissa_bits
    e = np.zeros_like(s)
    while True:
        more = (s >> e) >= top
        if not more.any():
            break
        e += more
    half = top >> 1
    return np.where(e == 0, s, top + (e - 1) * half + (s >> e) - half)


def index_middles(size: int, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """For each index below ``size``, the middle of the sums that map to it (float)."""
    top, half = 1 << mantissa_bits, 1 << (mantissa_bits - 1)
    index = np.arange(size, dtype=np.int64)
    e = np.where(index < top, 0, (index - top) // half + 1)
    mantissa = np.where(index < top, index, (index - top) % half + half)
    low = (mantissa << e).astype(np.float64)
    return low + ((1 << e) - 1) / 2.0


def lrn_table(layer: str, p: ir.LRNParams, in_frac: int, out_frac: int) -> LrnTable:
    """The table and shifts for one LRN layer (see the module docstring)."""
    k, a = coefficients(p)
    max_sum = window_size(p) * 128 * 128
    size = int(table_index(np.array([max_sum]))[0]) + 1
    scale = k + a * index_middles(size) * 2.0 ** (-2 * in_frac)
    if np.any(scale <= 0):
        raise CmsisgenError(f"layer '{layer}' (LRN): k + alpha * sum must stay positive (k = {p.k:g})")
    multiplier = scale ** -p.beta
    mul_frac = math.floor(math.log2(ENTRY_MAX / float(multiplier.max())))
    out_shift = mul_frac + in_frac - out_frac
    if not 0 <= out_shift <= MAX_OUT_SHIFT:
        raise CmsisgenError(f"layer '{layer}' (LRN): the output format Q{7 - out_frac}.{out_frac} is out of reach of "
                            f"the input format Q{7 - in_frac}.{in_frac} (shift {out_shift})")
    table = np.clip(np.floor(multiplier * 2.0 ** mul_frac + 0.5), 0, ENTRY_MAX).astype(np.int32)
    return LrnTable(table=table, mantissa_bits=MANTISSA_BITS, mul_frac=mul_frac, out_shift=out_shift)
