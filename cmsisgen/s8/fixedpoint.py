"""Bit-exact numpy models of the gemmlowp-style fixed-point helpers CMSIS-NN v7.0.0's softmax uses.

Unlike requantization (:mod:`.arith`), the softmax rounds with the *saturating* doubling
high multiply ``arm_nn_doubling_high_mult`` (ties away from zero, 64-bit division that
truncates, ``INT32_MIN * INT32_MIN`` saturated), so it needs its own helper. Every sum is
wrapped to int32 as the C's 32-bit arithmetic does; all functions broadcast.
"""
from __future__ import annotations

import numpy as np

from .arith import divide_by_power_of_two, wrap_int32

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: exp(-2**k / 4)... factors for the bits 24..30 of the remainder (Q0.31), from gemmlowp.
_EXP_FACTORS = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def saturating_doubling_high_mult(m1, m2) -> np.ndarray:
    """arm_nn_doubling_high_mult: round(m1 * m2 / 2**31), ties away from zero, saturated."""
    m1, m2 = _i64(m1), _i64(m2)
    nudge = np.where((m1 < 0) != (m2 < 0), 1 - (1 << 30), 1 << 30)
    total = m1 * m2 + nudge
    quotient = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where((m1 == INT32_MIN) & (m2 == INT32_MIN), INT32_MAX, wrap_int32(quotient))


def mult_by_power_of_two(val, exponent: int) -> np.ndarray:
    """arm_nn_mult_by_power_of_two: val * 2**exponent, saturated to int32."""
    val = _i64(val)
    thresh = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(val << exponent)
    return np.where(val > thresh, INT32_MAX, np.where(val < -thresh, INT32_MIN, shifted))


def exp_on_negative_values(val) -> np.ndarray:
    """arm_nn_exp_on_negative_values: exp(val / 2**26) in Q0.31 for val <= 0 (Q5.26 input)."""
    val = _i64(val)
    mul = saturating_doubling_high_mult
    mod_minus_quarter = (val & ((1 << 24) - 1)) - (1 << 24)
    remainder = wrap_int32(mod_minus_quarter - val)
    x = wrap_int32((mod_minus_quarter << 5) + (1 << 28))
    x2 = mul(x, x)
    x4_over_4 = divide_by_power_of_two(mul(x2, x2), 2)
    poly = wrap_int32(mul(wrap_int32(x4_over_4 + mul(x2, x)), 715827883) + x2)
    result = wrap_int32(1895147668 + mul(1895147668, wrap_int32(x + divide_by_power_of_two(poly, 1))))
    for bit, factor in enumerate(_EXP_FACTORS):
        result = np.where(remainder & (1 << (24 + bit)), mul(result, factor), result)
    return np.where(val == 0, INT32_MAX, result)


def one_over_one_plus_x(val) -> np.ndarray:
    """arm_nn_one_over_one_plus_x_for_x_in_0_1: 1 / (1 + val / 2**31), three Newton steps."""
    mul = saturating_doubling_high_mult
    total = _i64(val) + INT32_MAX
    half_den = np.where(total >= 0, (total + 1) // 2, -((-(total - 1)) // 2))
    x = wrap_int32(1515870810 + mul(half_den, -1010580540))
    for _ in range(3):
        err = wrap_int32((1 << 29) - mul(half_den, x))
        x = wrap_int32(x + mult_by_power_of_two(mul(x, err), 2))
    return mult_by_power_of_two(x, 1)


def count_leading_zeros(val) -> np.ndarray:
    """CLZ of the value as uint32 (32 for 0)."""
    v = _i64(val) & 0xFFFFFFFF
    bits = np.zeros(v.shape, dtype=np.int64)
    for shift in (16, 8, 4, 2, 1):
        big = v >= (1 << shift)
        bits = bits + np.where(big, shift, 0)
        v = np.where(big, v >> shift, v)
    return np.where(v > 0, 31 - bits, 32)
