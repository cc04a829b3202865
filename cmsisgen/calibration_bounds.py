"""``--calib-method`` on the s8 backend: each tensor's [low, high] from its streamed values.

The s8 backend maps a tensor affinely between two bounds (a scale and a zero point), so a
method chooses both ends, each side on its own, with the q7 methods' statistics
(:mod:`cmsisgen.calibration_methods`): one sees the positive values, the other the magnitudes
of the negative ones, every other value counting as a zero. So ``percentile=P`` clips at
most (100 - P) % of the values above the high bound and as many below the low one, and a
side with no values stays at 0. ``mse`` and ``kl`` pick each bound among their power-of-two
candidates with 128 levels a side, what a tensor centred on zero gets; a one-sided tensor
(a ReLU's) has twice the levels on its side, so they clip a little more than it would need.
``max`` is :class:`~cmsisgen.calibration.MinMax`: the exact smallest and largest value.
Constant memory per tensor, one pass, as the q7 calibration.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from . import ir
from .calibration import MaxAbs, MinMax, TensorStatistic, running_statistics
from .calibration_methods import statistic_for

Bounds = dict[str, tuple[float, float]]


class TwoSided:
    """Two one-sided statistics: the high bound from the positive values, the low one from
    the negative values' magnitudes."""

    def __init__(self, side: Callable[[], TensorStatistic]) -> None:
        self.positive = side()
        self.negative = side()

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        self.positive.update(np.maximum(values, 0))
        self.negative.update(np.maximum(-values, 0))

    def range(self) -> float:
        low, high = self.bounds()
        return max(-low, high)

    def bounds(self) -> tuple[float, float]:
        return -self.negative.range(), self.positive.range()


def bounds_statistic_for(method: str) -> Callable[[], TensorStatistic]:
    """The per-tensor statistic of ``--calib-method`` value ``method`` on s8 (a bad value is
    refused as on q7)."""
    side = statistic_for(method)
    if side is MaxAbs:
        return MinMax
    return lambda: TwoSided(side)  # type: ignore[arg-type]


def calibrate_bounds(net: ir.Net, batches: Iterable[np.ndarray], method: str = "max") -> Bounds:
    """Every tensor's (low, high) over float batches (NCHW), 0 always inside: the s8
    quantizer's ranges (:func:`cmsisgen.quantizer_s8.quantize_s8`)."""
    stats = running_statistics(net, batches, bounds_statistic_for(method))
    return {name: stat.bounds() for name, stat in stats.tensors.items()}  # type: ignore[attr-defined]
