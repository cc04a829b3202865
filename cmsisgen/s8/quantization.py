"""Scales, zero points and fixed-point multipliers as the TFLite int8 specification sets them.

CMSIS-NN's s8 kernels are the TFLite Micro kernels: they take each tensor's zero point and,
per output channel, an int32 multiplier with a power-of-two shift standing for the real
rescale ``s_in * s_w / s_out``. Choosing these the way the TFLite reference does keeps a
model compiled here interchangeable with one converted by TFLite (same integers for the
same float ranges), and the rounding of each choice is what the kernels were tested with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
#: Symmetric weights leave -128 unused so that -w is representable (TFLite int8 spec).
WEIGHT_MAX = 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: A multiplier's shift below this shifts every bit out: TFLite flushes it to zero.
MIN_SHIFT = -31


@dataclass(frozen=True)
class TensorQuant:
    """real = scale * (q - zero_point), q in int8."""

    scale: float
    zero_point: int

    def quantize(self, values: np.ndarray) -> np.ndarray:
        q = round_half_away(np.asarray(values, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round, which TFLite uses everywhere (numpy's round is half to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with real = multiplier * 2**(shift - 31), multiplier in [2**30, 2**31).

    TFLite's QuantizeMultiplier: frexp, round the mantissa to 31 bits, a mantissa that
    rounds up to 2**31 halves and bumps the shift, and a shift below -31 (every bit
    shifted out) becomes multiplier 0, shift 0.
    """
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier {real!r} must be finite and positive")
    mantissa, shift = math.frexp(real)
    fixed = int(round_half_away(mantissa * 2.0**31))
    if fixed == 2**31:
        fixed //= 2
        shift += 1
    if shift < MIN_SHIFT:
        return 0, 0
    return fixed, shift


def activation_quant(lo: float, hi: float, scale: Optional[float] = None) -> TensorQuant:
    """Asymmetric int8 for a calibrated range [lo, hi], nudged so that 0.0 is exact.

    TFLite's ChooseQuantizationParams: the range is widened to include zero, the zero
    point is taken from whichever end gives the smaller error, rounded and clamped. A given
    ``scale`` (at least the range's own; an average pooling's power-of-two step) is kept.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        return TensorQuant(scale=1.0 if scale is None else scale, zero_point=0)
    scale = (hi - lo) / (INT8_MAX - INT8_MIN) if scale is None else scale
    from_min, from_max = INT8_MIN - lo / scale, INT8_MAX - hi / scale
    error_min = abs(INT8_MIN) + abs(lo / scale)
    error_max = abs(INT8_MAX) + abs(hi / scale)
    zero = from_min if error_min < error_max else from_max
    zero_point = int(min(max(round_half_away(zero), INT8_MIN), INT8_MAX))
    return TensorQuant(scale=scale, zero_point=zero_point)


def weight_scales(weights: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel scales (axis 0), max |w| onto 127; 1.0 for an all-zero channel."""
    w = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    peak = np.abs(w).max(axis=1, initial=0.0)
    return np.where(peak > 0, peak / WEIGHT_MAX, 1.0)


def quantize_weights(weights: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 weights in -127..127 at one scale per output channel (axis 0)."""
    shape = (len(weights),) + (1,) * (np.ndim(weights) - 1)
    q = round_half_away(np.asarray(weights, dtype=np.float64) / scales.reshape(shape))
    return np.clip(q, -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    """int32 bias at scale s_in * s_w per channel, the accumulator's own resolution."""
    q = round_half_away(np.asarray(bias, dtype=np.float64) / (input_scale * scales))
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


def channel_multipliers(input_scale: float, scales: np.ndarray,
                        output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) int32 arrays for s_in * s_w[c] / s_out."""
    pairs = [quantize_multiplier(input_scale * float(s) / output_scale) for s in scales]
    return (np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32))


#: Integer bits of the scaled input differences the int8 softmax exponentiates (Q5.26).
SOFTMAX_DIFF_INTEGER_BITS = 5


@dataclass(frozen=True)
class SoftmaxParams:
    """arm_softmax_s8's ``mult``, ``shift`` and ``diff_min``."""

    mult: int
    shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """TFLite (Micro)'s int8 softmax preparation, which CMSIS-NN's arm_softmax_s8 expects.

    PreprocessSoftmaxScaling: beta * s_in * 2**26, capped at 2**31 - 1, as a multiplier
    >= 1 (frexp as :func:`quantize_multiplier`, shift >= 0). CalculateInputRadius: the
    largest input difference whose scaled value stays below 32, floored; its negation is
    diff_min (differences to the row maximum below it give exp = 0). TFLite holds scales
    as float32: pass ``float(np.float32(scale))`` to reproduce a converted model exactly.
    """
    integer_bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(beta * input_scale * float(1 << (31 - integer_bits)), float(2**31 - 1))
    if not real > 1.0:
        raise ValueError(f"softmax input scale {input_scale!r} (beta {beta!r}) is too small: "
                         f"beta * scale * 2**26 must exceed 1")
    mult, shift = quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * float(1 << (31 - integer_bits)) / float(1 << shift))
    return SoftmaxParams(mult=mult, shift=shift, diff_min=-radius)


#: Left shift of both int8 ADD inputs before their rescale (TFLite: 20 for int8, 15 for int16).
ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class AddParams:
    """arm_elementwise_add_s8's rescaling: (multiplier, shift) per input and for the output."""

    input_1: tuple[int, int]
    input_2: tuple[int, int]
    output: tuple[int, int]
    left_shift: int = ADD_LEFT_SHIFT


def _smaller_than_one(real: float, what: str) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierSmallerThanOneExp: 0 < |real| < 1, shift <= 0; a negative
    real gives the negated multiplier of |real| (never INT32_MIN), and 0 gives (0, 0)."""
    if real == 0.0:
        return 0, 0
    if not abs(real) < 1.0:
        raise ValueError(f"{what} rescale {real!r} must lie in (-1, 1)")
    multiplier, shift = quantize_multiplier(abs(real))
    return (-multiplier if real < 0 else multiplier), shift


#: |x_i + offset_i| of an ADD input: int8 minus a zero point in -128..127 (offset -127..128).
ADD_MAX_OPERAND = 255


def sum_headroom(count: int) -> int:
    """H, the power of two the ``count`` inputs of a SUM are scaled onto H * max|s_i|: 2 (TFLite's
    for two inputs) unless more are needed so that the int32 sum cannot overflow.

    Each input's term is requantize((x_i + offset_i) << 20, m_i) with |x_i + offset_i| <= 255 and
    the multiplier |m_i| <= 1 / H (|s_i| / (H * max|s|) rounded to 31 bits, which never passes the
    power of two 1 / H); the two roundings add at most 1. So |sum| <= count * (255 * 2**20 / H + 1),
    which H keeps <= 2**31 - 1: H = 2 up to 16 inputs, 4 up to 32, ...
    """
    headroom = 2
    while count * ((ADD_MAX_OPERAND << ADD_LEFT_SHIFT) // headroom + 1) > INT32_MAX:
        headroom *= 2
    return headroom


@dataclass(frozen=True)
class SumParams:
    """nn_eltwise_add_s8's rescaling: (multiplier, shift) per input and for the output."""

    inputs: tuple[tuple[int, int], ...]
    output: tuple[int, int]
    left_shift: int = ADD_LEFT_SHIFT


def sum_params(input_scales: Sequence[float], output_scale: float) -> SumParams:
    """TFLite (Micro)'s int8 ADD preparation for any number of inputs: every input onto
    H * the largest |scale| (:func:`sum_headroom`; H = 2 for two inputs, as TFLite), times
    2**20 for headroom, then the sum onto the output scale.

    An input scale carries its Eltwise coefficient, so it may be negative (a negative input
    multiplier: arm_nn_requantize's doubling high multiply takes any sign, and the int8
    operands shifted by 20 keep every product far from overflow) or zero (the input adds
    nothing; all zero: every multiplier 0, the output is its zero point).
    """
    top = sum_headroom(len(input_scales)) * max(abs(s) for s in input_scales)
    if top == 0.0:
        return SumParams(inputs=((0, 0),) * len(input_scales), output=(0, 0))
    return SumParams(inputs=tuple(_smaller_than_one(s / top, f"add input {i + 1}") for i, s in enumerate(input_scales)),
                     output=_smaller_than_one(top / (float(1 << ADD_LEFT_SHIFT) * output_scale), "add output"))


def add_params(input_1_scale: float, input_2_scale: float, output_scale: float) -> AddParams:
    """arm_elementwise_add_s8's rescaling: :func:`sum_params` of two inputs (both onto twice
    the larger scale, as TFLite's ADD)."""
    p = sum_params((input_1_scale, input_2_scale), output_scale)
    return AddParams(input_1=p.inputs[0], input_2=p.inputs[1], output=p.output, left_shift=p.left_shift)


def mul_params(input_1_scale: float, input_2_scale: float, output_scale: float) -> tuple[int, int]:
    """TFLite (Micro)'s int8 MUL: one (multiplier, shift) for s1 * s2 / s_out."""
    return quantize_multiplier(input_1_scale * input_2_scale / output_scale)
