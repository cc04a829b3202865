"""``--optimize``: adjust the calibrated formats with the bit-exact simulator.

A calibration method sizes every tensor on its own; whether a layer is better off with
one fractional bit more (resolution, some clipping) or less (headroom) depends on what the
rest of the net does with it. Coordinate descent answers that directly: for each tensor's
format group in execution order, try one fractional bit more and one less, run the q7 net
(the simulator, vectorised) on a held-out part of the calibration images, and keep a change
that scores better. The score is top-1 on the held-out labels when the images have them,
the error of the scored output against the float net otherwise (and as the tie-break).
The evaluation data is never looked at. The quantizer's rules still apply to every trial:
a change the shift limits undo is no change, and only formats change, never kernels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import ir
from .errors import CmsisgenError
from .float_forward import forward
from .mapper.calls import Program
from .qformat import q_format
from .quantizer import Quantization, quantize
from .simulator.execute import run_program

#: Share of the calibration images held out to score trials (the rest calibrates).
HELD_OUT_SHARE = 0.25
#: Passes over every tensor at most (the search stops earlier when a pass changes nothing).
MAX_PASSES = 2


@dataclass(frozen=True)
class HeldOut:
    """The held-out images as run_nn() takes them, their labels (None: unlabelled), and the
    float net's scores on them."""

    images: np.ndarray
    labels: Optional[np.ndarray]
    float_scores: np.ndarray


def split(count: int) -> int:
    """How many of ``count`` calibration images calibrate (the rest are held out)."""
    return max(1, count - max(1, int(round(count * HELD_OUT_SHARE)))) if count > 1 else count


def held_out(net: ir.Net, pre, images: np.ndarray, labels: Optional[np.ndarray], output: str) -> HeldOut:
    """The held-out set; its labels are dropped when the float net does not reach twice
    chance on them (they are not the net's classes: a folder tree in another order)."""
    from .evaluate import top1

    _, h, w = next(iter(net.input_shapes.values()))
    prepared = pre.prepare_images(images, h, w)
    scores = forward(net, pre.to_float(prepared), keep=[output])[output].reshape(len(images), -1)
    if labels is not None:
        classes = max(2, scores.shape[1], int(labels.max(initial=0)) + 1)
        try:
            if np.mean(top1(net, output, scores) == labels) < 2.0 / classes:
                labels = None
        except CmsisgenError:  # a per-pixel class map: no top-1 per image
            labels = None
    return HeldOut(images=prepared, labels=labels, float_scores=scores.astype(np.float64))


def optimize_formats(net: ir.Net, ranges: dict[str, float], held: HeldOut, output: str,
                     build: Callable[[Quantization], Program],
                     log: Callable[[str], None] = lambda line: None,
                     forced: Optional[dict[str, str]] = None) -> tuple[Quantization, list[str]]:
    """Coordinate descent from ``quantize(net, ranges)``; returns the quantization kept and
    one line per change. ``build`` maps a quantization to its program; ``forced``: the
    --kernel functions (they decide which layers may have their own format)."""
    adjust: dict[str, int] = {}
    best = quantize(net, ranges, forced=forced)
    best_score = _score(net, build(best), held, output)
    changes: list[str] = []
    tensors = list(net.input_shapes) + [top for layer in net.layers for top in layer.tops]
    scores: dict[tuple, tuple[float, float]] = {}  # formats tried -> score (a group's tensors give the same trial)
    for _ in range(MAX_PASSES):
        changed = False
        for name in tensors:
            for step in (1, -1):
                trial = dict(adjust, **{name: adjust.get(name, 0) + step})
                quant = quantize(net, ranges, trial, forced)
                key = tuple(sorted(quant.tensor_frac.items()))
                if quant.tensor_frac == best.tensor_frac or key in scores:
                    continue
                score = scores[key] = _score(net, build(quant), held, output)
                if score > best_score:
                    line = (f"{name.split('@')[0]}: {q_format(best.tensor_frac[name])} -> "
                            f"{q_format(quant.tensor_frac[name])} "
                            f"({_describe(best_score, held)} -> {_describe(score, held)})")
                    log(line)
                    changes.append(line)
                    adjust, best, best_score, changed = trial, quant, score, True
                    break
        if not changed:
            break
    return best, changes


def _score(net: ir.Net, program: Program, held: HeldOut, output: str) -> tuple[float, float]:
    """(held-out top-1, minus the mean squared error of the scores): higher is better."""
    from .evaluate import top1 as top1_of

    rows = run_program(program, held.images)
    out = program.outputs[net.outputs.index(output)]
    q7 = program.split_outputs(rows)[out.blob].astype(np.float64) * 2.0 ** -out.frac
    error = float(np.mean((q7 - held.float_scores) ** 2))
    top1 = float(np.mean(top1_of(net, output, q7) == held.labels)) if held.labels is not None else 0.0
    return top1, -error


def _describe(score: tuple[float, float], held: HeldOut) -> str:
    top1, error = score
    if held.labels is None:
        return f"output MSE {-error:.3g}"
    return f"top-1 {100 * top1:.2f} %, output MSE {-error:.3g}"
