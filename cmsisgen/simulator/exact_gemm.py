"""The q7 accumulate, shift and saturate of a weight matrix as one float GEMM that is exact.

A q7 convolution or fully connected layer computes, per output channel,
``__SSAT(((bias << bias_lshift) + NN_ROUND(out_rshift) + sum(x * w)) >> out_rshift, 8)``
in a modular 32-bit accumulator. The simulator runs the sums as a BLAS product, which is
only an oracle when every partial sum is exact. Here that is proved once per weight matrix,
from the weights themselves, not assumed per input:

* every input ``x`` is in [-128, 127], so any partial sum of a channel's terms, in any order,
  with or without FMA, is at most ``128 * sum|w|`` (+ the constant term below) in magnitude;
* an IEEE float holds every integer times ``2**-out_rshift`` exactly while the integer is
  below ``2**24`` (float32) or ``2**53`` (float64) in magnitude, so scaling the weights by
  ``2**-out_rshift`` keeps every partial sum exact and makes the shift part of the product;
* the start value plus ``128 * 2**out_rshift`` rides along as one more column of ones, so the
  product is ``v + 128`` with ``v = acc / 2**out_rshift``; since clamping commutes with floor
  at integer bounds, ``__SSAT(floor(v), 8) + 128 = trunc(clip(v + 128, 0, 255))``: one clip
  with a cast to uint8 (which truncates), and the byte's top bit flipped gives the int8.

float32 is used whenever the bound allows it (K up to about 1,000 terms of extreme weights,
many more for real ones: several times faster than float64), float64 otherwise. When the
32-bit accumulator could wrap (bound at or above ``2**31``) the sums are formed exactly in
float64 and the start, the wrap and the shift are applied in int64, as the C does.
"""
from __future__ import annotations

import numpy as np

#: Integers up to these magnitudes (exclusive) are exact in float32 / float64.
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
#: The SMLAD accumulator's range: a bound below this cannot wrap.
INT32_LIMIT = 1 << 31


def nn_round(out_rshift: int) -> int:
    """``NN_ROUND(out_rshift) = (1 << out_rshift) >> 1``: half an output LSB, 0 for shift 0.

    Added to the accumulator before the right shift so that the shift rounds half up.
    """
    out_rshift = int(out_rshift)
    if out_rshift < 0:
        raise ValueError(f"out_rshift must be >= 0, got {out_rshift}")
    return (1 << out_rshift) >> 1


def wrap_int32(acc: np.ndarray) -> np.ndarray:
    """Two's complement wrap of an int64 array to 32 bits (the SMLAD accumulator)."""
    return ((acc + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


class QuantizedProduct:
    """``out = __SSAT((start + x @ w.T) >> out_rshift, 8)`` for int8 rows ``x`` of ``K`` values.

    Callers fill :meth:`rows` (``K`` values per row, plus the ones column it already holds),
    multiply by :attr:`weights` and hand the product to :meth:`finish`.
    """

    def __init__(self, w: np.ndarray, bias: np.ndarray, bias_lshift: int, out_rshift: int):
        """``w`` int8 (channels, K), ``bias`` int8 (channels,)."""
        bias_lshift, out_rshift = int(bias_lshift), int(out_rshift)
        if not 0 <= bias_lshift <= 31 or not 0 <= out_rshift <= 31:
            raise ValueError(f"shifts must be in [0, 31], got bias_lshift={bias_lshift}, out_rshift={out_rshift}")
        self.k, self.out_rshift = w.shape[1], out_rshift
        self.start = (bias.astype(np.int64) << bias_lshift) + nn_round(out_rshift)
        terms = 128 * np.abs(w.astype(np.int64)).sum(axis=1)
        self.fused = int((terms + np.abs(self.start)).max(initial=0)) < INT32_LIMIT
        offset = self.start + (128 << out_rshift)
        bound = int((terms + np.abs(offset)).max(initial=0)) if self.fused else 0
        self.dtype = np.dtype(np.float32 if self.fused and bound < FLOAT32_EXACT else np.float64)
        self.columns = self.k + 1 if self.fused else self.k
        weights = np.empty((self.columns, w.shape[0]), dtype=self.dtype)
        weights[:self.k] = w.T
        if self.fused:
            weights[self.k] = offset
            weights *= self.dtype.type(2.0 ** -out_rshift)  # powers of two: exact
        self.weights = weights

    def rows(self, count: int) -> np.ndarray:
        """A (count, columns) buffer to fill ``[:, :K]`` of; its ones column is set."""
        buffer = np.empty((count, self.columns), dtype=self.dtype)
        if self.fused:
            buffer[:, self.k] = 1
        return buffer

    def finish(self, product: np.ndarray, out: np.ndarray) -> None:
        """Write the int8 result of ``product`` (rows @ weights; overwritten) into ``out``."""
        if self.fused:
            raw = out.view(np.uint8)
            np.clip(product, 0, 255, out=raw, casting="unsafe")  # float -> uint8 truncates: floor of v + 128
            np.bitwise_xor(raw, 0x80, out=raw)
            return
        total = wrap_int32(np.rint(product).astype(np.int64) + self.start)
        out[...] = np.clip(total >> self.out_rshift, -128, 127)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The int8 (N, channels) result for int8 rows ``x`` (N, K)."""
        rows = self.rows(len(x))
        rows[:, :self.k] = x
        out = np.empty((len(x), self.weights.shape[1]), dtype=np.int8)
        self.finish(rows @ self.weights, out)
        return out
