"""Bit-exact numpy models of CMSIS-NN v7.0.0's fixed-point helpers (default build).

CMSIS-NN rescales with double rounding unless built with CMSIS_NN_USE_SINGLE_ROUNDING; the
default is what users get from the pack and from TFLite Micro, so that is the one modelled:

* ``doubling_high_mult``: ``(m1 * m2 + 2**30) >> 31`` in 64 bits. The rounding offset is
  added for negative products too (half rounds up), unlike gemmlowp's
  SaturatingRoundingDoublingHighMul, which rounds half away from zero: the two differ on
  negative ties, so this is not the TFLite reference's arithmetic bit for bit.
* ``divide_by_power_of_two``: arithmetic shift, then round half away from zero.
* ``requantize``: a positive shift multiplies ``val`` by ``2**shift`` first, in 32 bits
  (wrapping, as the C does), a negative one divides afterwards.
"""
from __future__ import annotations

import numpy as np

_INT32 = 2**32


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32, as 32-bit C arithmetic does."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) % _INT32 - 2**31).astype(np.int64)


def doubling_high_mult(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """arm_nn_doubling_high_mult_no_sat (int64 in, int32 range out)."""
    product = np.asarray(m1, dtype=np.int64) * np.asarray(m2, dtype=np.int64) + (1 << 30)
    return wrap_int32(product >> 31)


def divide_by_power_of_two(dividend: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """arm_nn_divide_by_power_of_two: exponent 0..31, ties away from zero."""
    dividend = np.asarray(dividend, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = dividend & mask
    result = dividend >> exponent
    threshold = (mask >> 1) + (result < 0)
    return result + (remainder > threshold)


def requantize(val: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """arm_nn_requantize, double rounding: broadcast over val, multiplier and shift."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    scaled = wrap_int32(np.asarray(val, dtype=np.int64) << left)
    return divide_by_power_of_two(doubling_high_mult(scaled, multiplier), right)
