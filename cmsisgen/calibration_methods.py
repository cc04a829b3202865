"""Calibration methods: how a tensor's Q format is chosen from its calibration values.

``max`` (Arm's CMSIS-NN guide) sizes the format by the largest magnitude seen, so nothing
ever saturates -- and one outlier in a million costs every other value a bit of resolution.
The others trade a little clipping for resolution, each from a histogram of ``|x|`` built
batch by batch (:class:`AbsHistogram`; constant memory, one pass):

* ``percentile[=P]``: the format that holds the P-th percentile of ``|x|`` (P default 99.99);
  ``percentile=99.9`` is the default method, because it measured best on the trained nets
  (the example, Arm's two CIFAR-10 models, the CIFAR-10-trained catalogue nets: README);
* ``mse``: the format whose quantization error (rounding plus clipping) over the calibration
  values is smallest;
* ``kl``: the format whose quantized distribution is closest, in KL divergence, to the float
  one (TensorRT's entropy calibration, restricted to power-of-two ranges).

Each is a :class:`cmsisgen.calibration.TensorStatistic` (``max`` is its :class:`MaxAbs`).
A statistic returns a range whose power-of-two format is the one it chose
(``127 * 2**-frac``), so the quantizer's own rules (ReLU-read tensors, tied formats, shift
limits) apply unchanged on top. Only formats change: the kernels and their bit-exactness
do not depend on the method.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from .calibration import MaxAbs
from .errors import CmsisgenError
from .qformat import frac_bits_for

METHODS = ("max", "percentile", "mse", "kl")
#: Each backend's default --calib-method. q7's power-of-two formats gain from letting the rarest
#: largest values saturate (README, "Why percentile=99.9 is the default"); s8's affine scales
#: measured best with the exact min and max (the example: 80.78 % top-1 against 80.67 % with
#: percentile=99.9, on the 10,000 test images).
DEFAULT_METHODS = {"q7": "percentile=99.9", "s8": "max"}
DEFAULT_METHOD = DEFAULT_METHODS["q7"]
DEFAULT_PERCENTILE = 99.99
#: Histogram bins: a power-of-two bin width keeps the range between 1 and 2 times the
#: largest magnitude, so at least half the bins are in use.
BINS = 2048
#: Extra fractional bits beyond the max format a method may choose (each halves the range).
MAX_EXTRA_FRAC = 8
#: Points per bin at which the rounding error is evaluated (values spread evenly in a bin).
POINTS_PER_BIN = 8
#: Quantization levels of a q7 magnitude (0..127, plus -128 on the negative side).
LEVELS = 128


def default_method(backend: str) -> str:
    """The --calib-method ``backend`` uses when none is given."""
    return DEFAULT_METHODS[backend]


class AbsHistogram:
    """A histogram of the nonzero ``|x|`` over [0, BINS * width), widened (pairs of bins
    merged) when a batch holds a larger magnitude; the exact zeros (half of a ReLU's output,
    exact in every format) counted apart; and the exact largest magnitude."""

    def __init__(self) -> None:
        self.counts = np.zeros(BINS, dtype=np.float64)
        self.zeros = 0
        self.width = 0.0
        self.max_abs = 0.0

    def update(self, values: np.ndarray) -> None:
        """Add a batch with as few passes as can be: MobileNet's activations are megabytes per
        image, and the default method histograms every one. One float32 copy of ``|x|``, in
        memory order (a histogram does not care; a transposed view is not copied twice),
        divided in place (a power-of-two width divides exactly), the zeros binned with the
        rest and taken out of bin 0 (no masked copy)."""
        magnitudes = np.abs(np.asarray(values, dtype=np.float32)).ravel(order="K")  # no copy of a view
        nonzero = int(np.count_nonzero(magnitudes.view(np.uint32)))  # |x| has no -0.0; 8x faster than on floats
        self.zeros += magnitudes.size - nonzero
        if not nonzero:
            return
        largest = float(magnitudes.max())
        self.max_abs = max(self.max_abs, largest)
        if self.width == 0.0:
            self.width = 2.0 ** math.ceil(math.log2(largest / BINS))
        while largest >= BINS * self.width:
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1), np.zeros(BINS // 2)])
            self.width *= 2
        np.divide(magnitudes, np.float32(self.width), out=magnitudes)
        counts = np.bincount(magnitudes.astype(np.intp), minlength=BINS)  # < BINS: largest < BINS * width
        counts[0] -= magnitudes.size - nonzero
        self.counts += counts

    def candidates(self) -> list[int]:
        """Fractional bits worth trying: the max format and up to MAX_EXTRA_FRAC more."""
        first = frac_bits_for(self.max_abs)
        return list(range(first, first + MAX_EXTRA_FRAC + 1))

    def range(self) -> float:
        return self.max_abs


def _range_of(frac: int) -> float:
    """The magnitude whose format (:func:`frac_bits_for`) is exactly ``frac``."""
    return 127.0 * 2.0 ** -frac


class Percentile(AbsHistogram):
    def __init__(self, percent: float = DEFAULT_PERCENTILE) -> None:
        super().__init__()
        self.percent = percent

    def range(self) -> float:
        total = self.zeros + self.counts.sum()
        if self.width == 0.0:
            return self.max_abs
        index = int(np.searchsorted(self.zeros + np.cumsum(self.counts), total * self.percent / 100.0))
        return min(self.max_abs, (index + 1) * self.width)  # the bin's upper edge: no value in it clips


class MinMse(AbsHistogram):
    def range(self) -> float:
        if self.width == 0.0:
            return self.max_abs
        return _range_of(min(self.candidates(), key=self.error))

    def error(self, frac: int) -> float:
        """Sum of squared quantization errors (rounding half away from zero, clipping at
        127 steps) of the histogrammed magnitudes, each bin's count spread evenly over it."""
        step = 2.0 ** -frac
        offsets = (np.arange(POINTS_PER_BIN) + 0.5) / POINTS_PER_BIN
        values = (np.arange(BINS)[:, None] + offsets[None, :]) * self.width
        quantized = np.minimum(np.floor(values / step + 0.5), 127) * step
        per_bin = np.mean((values - quantized) ** 2, axis=1)
        return float(self.counts @ per_bin)


class MinKl(AbsHistogram):
    def range(self) -> float:
        if self.width == 0.0:
            return self.max_abs
        scores = {frac: self.divergence(frac) for frac in self.candidates()}
        usable = {frac: score for frac, score in scores.items() if score is not None}
        return _range_of(min(usable, key=usable.get)) if usable else self.max_abs

    def divergence(self, frac: int) -> Optional[float]:
        """KL(P || Q): P the histogram up to the format's range with the clipped values
        added to its last bin; Q the same bins without the clipped values, quantized to the
        format's LEVELS steps (each step's mass spread over its non-empty bins), so that
        clipping costs as much as lost resolution. None when the range covers fewer bins
        than levels (the histogram cannot tell)."""
        edge = int(round(LEVELS * 2.0 ** -frac / self.width))
        if edge < LEVELS:
            return None
        counts = np.concatenate([self.counts, np.zeros(max(0, edge - BINS))])
        kept = counts[:edge]
        reference = kept.copy()
        reference[-1] += counts[edge:].sum()
        level = np.minimum((np.arange(edge) * LEVELS) // edge, LEVELS - 1)
        nonzero = kept > 0
        mass = np.bincount(level, weights=kept, minlength=LEVELS)
        used = np.bincount(level, weights=nonzero.astype(np.float64), minlength=LEVELS)
        expanded = np.where(nonzero, mass[level] / np.maximum(used[level], 1), 0.0)
        if not expanded.sum():
            return math.inf  # every value clipped
        p = reference / reference.sum()
        support = p > 0
        q = _smoothed(expanded[support] / expanded.sum())
        return float(np.sum(p[support] * np.log(p[support] / q)))


def _smoothed(q: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """``q`` with its zeros (a clipped tail whose last kept bin is empty) raised to ``eps``
    and renormalised, so that the divergence stays finite."""
    empty = q == 0
    if not np.any(empty):
        return q
    return (q + eps * empty) / (1.0 + eps * empty.sum())


def statistic_for(method: str) -> Callable[[], object]:
    """The per-tensor statistic factory of ``--calib-method`` value ``method``
    (``max``, ``percentile``, ``percentile=P``, ``mse``, ``kl``)."""
    name, _, argument = method.partition("=")
    if name == "percentile":
        percent = _percent(method, argument) if argument else DEFAULT_PERCENTILE
        return lambda: Percentile(percent)
    if argument or name not in METHODS:
        raise CmsisgenError(f"--calib-method {method}: expected one of max, percentile[=P] (0 < P <= 100, "
                            f"default {DEFAULT_PERCENTILE}), mse, kl")
    return {"max": MaxAbs, "mse": MinMse, "kl": MinKl}[name]


def method_used(method: str) -> str:
    """``method`` as a report records it: a percentile with its P spelled out (``percentile``
    is ``percentile=99.99``, ``percentile=99.90`` is ``percentile=99.9``), so that two runs
    that chose their formats alike say so alike."""
    statistic_for(method)  # a bad method is refused as --calib-method refuses it
    name, _, argument = method.partition("=")
    if name != "percentile":
        return name
    text = repr(_percent(method, argument) if argument else DEFAULT_PERCENTILE)
    return f"percentile={text[:-2] if text.endswith('.0') else text}"


def _percent(method: str, text: str) -> float:
    try:
        percent = float(text)
    except ValueError:
        percent = math.nan
    if not 0 < percent <= 100:
        raise CmsisgenError(f"--calib-method {method}: the percentile must be a number in (0, 100]")
    return percent
