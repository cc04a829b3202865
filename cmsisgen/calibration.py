"""Calibration: running statistics of every tensor over streamed batches of images.

The quantizer needs one number per tensor (today its largest magnitude). Keeping every
activation of every calibration image to compute it costs the net's activations times the
images (gigabytes for an ImageNet-size net); instead the float forward hands each tensor
to a per-tensor :class:`TensorStatistic` as soon as it is computed and frees it after its
last reader, and batches are sized so that one batch's live tensors stay within
:data:`BATCH_MEMORY`. Memory is then bounded by one layer of one batch, not by the net
times the images.

A statistic sees every value of its tensor once, in batches, and summarises them in
constant memory. :class:`MaxAbs` is what the power-of-two quantizer uses. Methods that
choose a clipping range from the distribution (percentile, MSE, KL divergence) plug in as
another :class:`TensorStatistic` -- e.g. a histogram of ``|x|`` per tensor whose bins are
merged two by two when a batch exceeds its current range, so one pass suffices -- and
return their chosen range from :meth:`TensorStatistic.range`.
"""
from __future__ import annotations

from typing import Callable, Iterable, Protocol

import numpy as np

from . import ir

#: Bytes of float tensors one calibration batch may hold at once (its live tensors and the
#: temporaries of one layer); the batch shrinks to fit, down to one image.
BATCH_MEMORY = 256 << 20
#: Largest batch, whatever the memory allows (small nets: fewer, larger BLAS calls).
MAX_BATCH = 250
#: A layer's working set over its input and output: padded copies, im2col columns, layout
#: transposes (the float convolution holds about three times its output while it runs).
WORKING_SET_FACTOR = 4


class TensorStatistic(Protocol):
    """A running summary of one tensor's values, updated one batch at a time."""

    def update(self, values: np.ndarray) -> None:
        """Take one batch of the tensor's values (float32, any shape)."""

    def range(self) -> float:
        """The magnitude the tensor's format must hold."""


class MaxAbs:
    """The largest magnitude seen: what Arm's CMSIS-NN Qm.n guide sizes a format from."""

    def __init__(self) -> None:
        self.value = 0.0

    def update(self, values: np.ndarray) -> None:
        if values.size:
            self.value = max(self.value, float(np.max(values)), -float(np.min(values)))

    def range(self) -> float:
        return self.value


class RunningStatistics:
    """One statistic per tensor, created by ``statistic`` the first time a tensor is seen."""

    def __init__(self, statistic: Callable[[], TensorStatistic] = MaxAbs) -> None:
        self.statistic = statistic
        self.tensors: dict[str, TensorStatistic] = {}

    def observe(self, name: str, values: np.ndarray) -> None:
        if name not in self.tensors:
            self.tensors[name] = self.statistic()
        self.tensors[name].update(values)

    def ranges(self) -> dict[str, float]:
        return {name: stat.range() for name, stat in self.tensors.items()}


def calibrate(net: ir.Net, batches: Iterable[np.ndarray],
              statistic: Callable[[], TensorStatistic] = MaxAbs) -> dict[str, float]:
    """The range of every tensor over float batches (NCHW) of calibration inputs; no
    activation outlives its last reader (see the module docstring)."""
    from .float_forward import forward

    stats = RunningStatistics(statistic)
    for batch in batches:
        forward(net, batch, keep=(), observe=stats.observe)
    return stats.ranges()


def batch_size(net: ir.Net, memory: int = BATCH_MEMORY, largest: int = MAX_BATCH) -> int:
    """Images per calibration batch: as many as keep one batch's float tensors in ``memory``."""
    return max(1, min(largest, memory // max(1, image_bytes(net))))


def image_bytes(net: ir.Net) -> int:
    """Float32 bytes one image needs at the forward's busiest layer: every tensor still to be
    read, plus the layer's working set (:data:`WORKING_SET_FACTOR` times its inputs and outputs)."""
    def size(name: str) -> int:
        return int(np.prod(net.shapes[name]))

    last = ir.last_reads(layer.bottoms for layer in net.layers)
    live = {name: size(name) for name in net.input_shapes}
    peak = 0
    for index, layer in enumerate(net.layers):
        touched = sum(size(name) for name in set(layer.bottoms) | set(layer.tops))
        live.update((top, size(top)) for top in layer.tops)
        peak = max(peak, sum(live.values()) + WORKING_SET_FACTOR * touched)
        for name in set(layer.bottoms):
            if last.get(name) == index:
                live.pop(name, None)
    return 4 * peak
