"""nn_lookup_q7 and nn_argmax_q7 (firmware/cmsisgen_kernels) against their simulator models,
through ctypes, built plain and with UBSan trapping (the ``own`` fixture of
tests/test_own_kernels.py, which also compiles every file for the Cortex-M7 and checks the
header declares each kernel)."""
from __future__ import annotations

import numpy as np
import pytest

from test_kernels import P, rand8
from test_own_kernels import edges, own, u32  # noqa: F401 (own is a fixture)
from cmsisgen.ops.argmax import argmax_q7
from cmsisgen.ops.lookup_activation import LOOKUP_KINDS, PointwiseParams, lookup_q7


def _tables(rng) -> list[np.ndarray]:
    """A random table, the identity, constants at both ends, and the compiler's own tables."""
    ramp = np.arange(256, dtype=np.int64)
    tables = [rand8(rng, 256), np.where(ramp >= 128, ramp - 256, ramp).astype(np.int8),
              np.full(256, -128, np.int8), np.full(256, 127, np.int8)]
    params = PointwiseParams(negative_slope=0.1, threshold=0.5, low=-1.0, high=2.0, power=2.0, scale=0.5,
                             shift=-1.0, alpha=0.5)
    layer = type("L", (), {"params": params})()
    tables += [kind.table(layer, 5, 4) for kind in LOOKUP_KINDS]  # type: ignore[arg-type]
    return tables


@pytest.mark.parametrize("size", [1, 7, 256, 1000])
def test_lookup(own, size):  # noqa: F811
    rng = np.random.default_rng(size)
    every = np.resize(np.arange(-128, 128, dtype=np.int8), size)
    for table in _tables(rng):
        for x in [rand8(rng, size), every, *edges(size)]:
            out = np.full(size, 0x55, dtype=np.int8)
            own.nn_lookup_q7(P(x), P(table), u32(size), P(out))
            np.testing.assert_array_equal(out, lookup_q7(x, table))
            x = x.copy()
            own.nn_lookup_q7(P(x), P(table), u32(size), P(x))  # in place
            np.testing.assert_array_equal(x, out)


@pytest.mark.parametrize("h, w, c", [(1, 1, 1), (1, 1, 128), (3, 5, 1), (4, 6, 5), (2, 2, 32), (16, 8, 1)])
@pytest.mark.parametrize("whole", [0, 1])
def test_argmax(own, h, w, c, whole):  # noqa: F811
    if whole and c * h * w > 128:
        pytest.skip("an index over the whole blob is below 128")
    rng = np.random.default_rng(h * 100 + w * 10 + c + whole)
    ties = rng.integers(-2, 2, size=(1, h, w, c)).astype(np.int8)  # many equal values
    for x in [rand8(rng, 1, h, w, c), ties, *edges((1, h, w, c))]:
        x = np.ascontiguousarray(x)
        size = 1 if whole else h * w
        out = np.full(size, 0x55, dtype=np.int8)
        own.nn_argmax_q7(P(x), u32(c), u32(h * w), u32(whole), P(out))
        np.testing.assert_array_equal(out, argmax_q7(x, per_pixel=not whole).reshape(-1))
