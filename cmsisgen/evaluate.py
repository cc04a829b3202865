"""Accuracy of the float net and of the q7 net (simulator) on a labelled data set."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from . import ir
from .errors import SETTING, SettingError
from .float_forward import forward
from .ops import kind_of
from .ops.softmax import Softmax
from .pipeline import Compiled
from .simulator.execute import run_program

BATCH = 500


def scored_output(net: ir.Net) -> str:
    """The output top-1 is measured on: the only one, else the only classifier (a Softmax
    giving a vector), else an error listing the outputs (``--output NAME`` picks one)."""
    if len(net.outputs) == 1:
        return net.outputs[0]
    classifiers = [name for name in net.outputs if net.shapes[name][1:] == (1, 1)
                   and isinstance(kind_of(net.producer(name)), Softmax)]
    if len(classifiers) == 1:
        return classifiers[0]
    names = ", ".join(name.split("@")[0] for name in net.outputs)
    raise SettingError("output", f"{net.source}: the network has {len(net.outputs)} outputs ({names}) and "
                                 f"{'no' if not classifiers else 'more than one'} classifier (Softmax) among them; "
                                 f"name the one to score with {SETTING} NAME")


def evaluate(compiled: Compiled, dataset, progress: Optional[Callable[[int], None]] = None,
             output: Optional[str] = None) -> dict:
    """``{"n", "float_top1", "q7_top1", "agreement"}``, fractions in 0..1.

    Top-1 is the argmax of ``output`` (a tensor of ``net.outputs``; default
    :func:`scored_output`); ties go to the first maximum, as a firmware loop with a strict
    ``>`` would pick.
    """
    net, program = compiled.net, compiled.program
    shape = next(iter(net.input_shapes.values()))
    _, h, w = shape
    output = output or scored_output(net)
    blob = program.outputs[net.outputs.index(output)].blob
    float_pred, q7_pred = [], []
    for start in range(0, len(dataset.x), BATCH):
        images = compiled.pre.prepare_images(dataset.x[start:start + BATCH], h, w)
        scores = forward(net, compiled.pre.to_float(images), keep=[output])[output]
        float_pred.append(np.argmax(scores.reshape(len(images), -1), axis=1))
        q7 = program.split_outputs(run_program(program, images, batch_size=BATCH))[blob]
        q7_pred.append(np.argmax(q7, axis=1))
        if progress:
            progress(len(images))
    fp = np.concatenate(float_pred) if float_pred else np.zeros(0, dtype=np.int64)
    qp = np.concatenate(q7_pred) if q7_pred else np.zeros(0, dtype=np.int64)
    n = len(dataset.y)
    if n == 0:
        return {"n": 0, "float_top1": 0.0, "q7_top1": 0.0, "agreement": 0.0}
    return {"n": int(n), "float_top1": float(np.mean(fp == dataset.y)), "q7_top1": float(np.mean(qp == dataset.y)),
            "agreement": float(np.mean(fp == qp))}
