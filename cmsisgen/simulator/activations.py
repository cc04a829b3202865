"""Bit-exact model of ``arm_nn_activations_direct_q7`` (Sigmoid and TanH) and its tables.

The function shifts each q7 input right by ``3 - int_width`` to Q3.4 and looks its bit
pattern up in a 256-entry table: entry ``i`` holds ``f(int8(i) / 16)`` in Q0.7, rounded to
nearest and saturated to [-128, 127]. The tables are computed here from that formula
(scripts/gen_activation_tables.py writes the same numbers into the portable C kernel).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: arm_nn_activation_type values
ACTIVATION_TYPES = {"sigmoid": 0, "tanh": 1}
#: Input fractional bits below which the table cannot be indexed (int_width <= 3).
MIN_INPUT_FRAC = 4
#: The tables' output format, Q0.7.
OUTPUT_FRAC = 7

_FUNCTIONS = {"sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)), "tanh": math.tanh}


@lru_cache(maxsize=None)
def _table(kind: str) -> tuple[int, ...]:
    f = _FUNCTIONS[kind]
    values = []
    for index in range(256):
        x = (index - 256 if index >= 128 else index) / 16.0
        values.append(max(-128, min(127, math.floor(f(x) * 128.0 + 0.5))))
    return tuple(values)


def activation_table_q7(kind: str) -> np.ndarray:
    """The 256 int8 entries of the sigmoid or tanh table, in index order."""
    return np.array(_table(kind), dtype=np.int8)


def activations_direct_q7(x: np.ndarray, int_width: int, kind: str) -> np.ndarray:
    """``arm_nn_activations_direct_q7(data, size, int_width, type)`` on int8 ``x`` (any shape)."""
    shift = (3 - int_width) % 65536
    index = (x.astype(np.int16) >> shift).astype(np.uint8)
    return activation_table_q7(kind)[index]
