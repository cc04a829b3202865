"""The s8 backend's arithmetic: TFLite's quantization choices and CMSIS-NN v7.0.0's requantize.

The requantize model is checked on hand-worked values (each rounding rule once) and, when
``CMSIS_NN_PATH`` points at upstream CMSIS-NN v4.1+ (``Include/arm_nnsupportfunctions.h``
with ``arm_nn_requantize``), against the library's own inline functions compiled on this
machine, on random and edge inputs.
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cmsisgen.s8 import arith
from s8_harness import upstream_path
from cmsisgen.s8.quantization import (activation_quant, channel_multipliers, quantize_bias,
                                      quantize_multiplier, quantize_weights, weight_scales)


def _upstream_s8_include() -> Path | None:
    root = upstream_path()
    return None if root is None else root / "Include"


@pytest.mark.parametrize("real, expected", [
    (0.5, (2**30, 0)),
    (1.0, (2**30, 1)),
    (0.75, (3 * 2**29, 0)),
    (2.0**-31, (2**30, -30)),
    (2.0**-32, (2**30, -31)),
    (2.0**-33, (0, 0)),                       # every bit shifted out: flushed to zero
    (1.0 - 2.0**-40, (2**30, 1)),             # mantissa rounds up to 2**31: halved, shift + 1
    (0.0, (0, 0)),
])
def test_quantize_multiplier_cases(real, expected):
    assert quantize_multiplier(real) == expected


def test_quantize_multiplier_represents_the_real_value():
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 4.0, 500):
        m, s = quantize_multiplier(float(real))
        assert 2**30 <= m < 2**31
        assert abs(m * 2.0**(s - 31) - real) <= real * 2.0**-30


def test_activation_quant_makes_zero_exact_and_covers_the_range():
    q = activation_quant(0.0, 6.0)                # a ReLU6 output: zero at the bottom
    assert (q.zero_point, q.scale) == (-128, 6.0 / 255)
    q = activation_quant(-1.0, 1.0)
    assert q.scale == 2.0 / 255 and q.zero_point == -1    # -0.5 from either end: rounds away from zero
    assert q.quantize(np.array([0.0]))[0] == q.zero_point
    q = activation_quant(0.5, 2.0)                # range widened to include zero
    assert q.zero_point == -128 and q.scale == 2.0 / 255
    assert activation_quant(0.0, 0.0).scale == 1.0


def test_weights_symmetric_per_channel_and_bias_at_accumulator_scale():
    w = np.array([[[[0.5, -0.25]]], [[[0.0, 0.0]]], [[[-2.0, 1.0]]]])
    scales = weight_scales(w)
    np.testing.assert_allclose(scales, [0.5 / 127, 1.0, 2.0 / 127])
    np.testing.assert_array_equal(quantize_weights(w, scales).reshape(3, 2),
                                  [[127, -64], [0, 0], [-127, 64]])
    bias = quantize_bias(np.array([0.01, 3e-9, -1.0]), 0.02, scales)
    np.testing.assert_array_equal(bias, [127, 0, -3175])
    mult, shift = channel_multipliers(0.02, scales, 0.1)
    assert mult.dtype == np.int32 and shift.dtype == np.int32
    for m, s, ws in zip(mult, shift, scales):
        assert math.isclose(int(m) * 2.0**(int(s) - 31), 0.02 * ws / 0.1, rel_tol=2**-30)


@pytest.mark.parametrize("val, mult, shift, expected", [
    (1000, 2**30, -3, 63),          # 62.5: ties away from zero in the final shift
    (-1000, 2**30, -3, -63),
    (-1, 2**30, 0, 0),              # -0.5 in the doubling high multiply: rounds up (to 0), not away
    (1, 2**30, 0, 1),               # +0.5 rounds up
    (3, 2**30, 1, 3),               # a left shift first: 3 * 2 * 0.5
    (2**30, 2**30, 2, 0),           # 2**30 << 2 wraps to 0 in 32 bits, as the C does
    (100, 0, 0, 0),
])
def test_requantize_cases(val, mult, shift, expected):
    assert int(arith.requantize(val, mult, shift)) == expected


def _random_triples(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vals = np.concatenate([rng.integers(-2**31, 2**31, n // 2), rng.integers(-2**16, 2**16, n // 2),
                           [0, 1, -1, 2**31 - 1, -2**31, 2**20, -2**20]])
    mults = np.concatenate([rng.integers(2**30, 2**31, len(vals) - 3), [2**30, 2**31 - 1, 0]])
    shifts = rng.integers(-31, 8, len(vals))
    shifts = np.where(np.abs(vals) > 2**24, np.minimum(shifts, 0), shifts)   # keep left shifts defined in C
    return np.stack([vals, mults, shifts], axis=1)


@pytest.mark.skipif(_upstream_s8_include() is None,
                    reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS-NN v4.1+ (e.g. v7.0.0)")
def test_requantize_equals_upstream(tmp_path):
    source = tmp_path / "requantize.c"
    source.write_text('#include <stdio.h>\n#include "arm_nnsupportfunctions.h"\n'
                      "int main(void) { long v, m, s;\n"
                      '  while (scanf("%ld %ld %ld", &v, &m, &s) == 3)\n'
                      '    printf("%ld\\n", (long)arm_nn_requantize((int32_t)v, (int32_t)m, (int32_t)s));\n'
                      "  return 0; }\n")
    exe = tmp_path / "requantize"
    subprocess.run(["gcc", "-O2", "-fwrapv", f"-I{_upstream_s8_include()}", str(source), "-o", str(exe)],
                   check=True)
    triples = _random_triples(4000, seed=1)
    run = subprocess.run([str(exe)], input="\n".join(" ".join(map(str, t)) for t in triples),
                         capture_output=True, text=True, check=True)
    got = np.array(run.stdout.split(), dtype=np.int64)
    want = arith.requantize(triples[:, 0], triples[:, 1], triples[:, 2])
    np.testing.assert_array_equal(want, got)
