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


def quantize_array(values: np.ndarray, frac: int) -> np.ndarray:
    """Round half away from zero, then saturate to int8."""
    scaled = np.asarray(values, dtype=np.float64) * 2.0**frac
    return np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -128, 127).astype(np.int8)


def q_format(frac: int) -> str:
    """Human-readable Qm.n (m integer bits excluding the sign)."""
    return f"Q{7 - frac}.{frac}"
