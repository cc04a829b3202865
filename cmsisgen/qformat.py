"""Qm.n fixed point: a q7 value ``q`` with ``f`` fractional bits means ``q * 2**-f``."""
from __future__ import annotations

import math

import numpy as np

#: Fractional bits for a tensor that is zero everywhere (any format represents it).
DEFAULT_FRAC = 7


def frac_bits_for(max_abs: float) -> int:
    """Most fractional bits for which ``max_abs`` still fits in int8 without saturating."""
    if not np.isfinite(max_abs) or max_abs <= 0:
        return DEFAULT_FRAC
    return int(math.floor(math.log2(127.0 / max_abs)))


#: Values quantized at a time: float64 temporaries of one block, not of a whole weight blob.
QUANTIZE_BLOCK = 1 << 20


def quantize_array(values: np.ndarray, frac: int) -> np.ndarray:
    """Round half away from zero, then saturate to int8 (in float64: scaling by 2**frac is
    exact, and ``|x| + 0.5`` in float32 would round 0.49999997 up)."""
    values = np.asarray(values)
    flat = values.reshape(-1)
    out = np.empty(flat.size, dtype=np.int8)
    for start in range(0, flat.size, QUANTIZE_BLOCK):
        scaled = flat[start:start + QUANTIZE_BLOCK].astype(np.float64) * 2.0**frac
        rounded = np.floor(np.abs(scaled) + 0.5)
        rounded *= np.sign(scaled)
        out[start:start + QUANTIZE_BLOCK] = np.clip(rounded, -128, 127, out=rounded)
    return out.reshape(values.shape)


def q_format(frac: int) -> str:
    """Human-readable Qm.n (m integer bits excluding the sign)."""
    return f"Q{7 - frac}.{frac}"
