"""Accuracy of the float net and of the q7 net (simulator) on a labelled data set.

The two passes read the same decoded, preprocessed images and run side by side, one per
core (each product on :func:`cmsisgen.blas.blas_threads` of its share of the cores):
numpy releases the GIL in every product and copy that matters.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

from . import ir
from .blas import blas_threads
from .errors import SETTING, CmsisgenError, SettingError
from .float_forward import forward
from .layer_error import LayerErrors
from .ops import kind_of
from .ops.softmax import Softmax
from .pipeline import Compiled
from .simulator.execute import output_rows, run_program

BATCH = 100
#: Batches queued ahead of the one being collected.
IN_FLIGHT = 2


def scored_output(net: ir.Net) -> str:
    """The output top-1 is measured on: the only one, else the only classifier (a Softmax
    giving a vector, or an output that is the class itself), else an error listing the
    outputs (``--output NAME`` picks one)."""
    if len(net.outputs) == 1:
        return net.outputs[0]
    classifiers = [name for name in net.outputs if _classifier(net, name)]
    if len(classifiers) == 1:
        return classifiers[0]
    names = ", ".join(name.split("@")[0] for name in net.outputs)
    raise SettingError("output", f"{net.source}: the network has {len(net.outputs)} outputs ({names}) and "
                                 f"{'no' if not classifiers else 'more than one'} classifier (Softmax, ArgMax) among "
                                 f"them; name the one to score with {SETTING} NAME")


def _classifier(net: ir.Net, output: str) -> bool:
    """A Softmax giving a vector, or an output that is one class per image (not per pixel)."""
    if net.shapes[output][1:] == (1, 1) and isinstance(kind_of(net.producer(output)), Softmax):
        return True
    try:
        return class_count(net, output) is not None
    except CmsisgenError:  # a per-pixel class map: no class per image
        return False


def evaluate(compiled: Compiled, dataset, progress: Optional[Callable[[int], None]] = None,
             output: Optional[str] = None, per_layer: bool = False) -> dict:
    """``{"n", "float_top1", "q7_top1", "agreement"}``, fractions in 0..1, and with
    ``per_layer`` a ``layers`` list (:mod:`cmsisgen.layer_error`).

    Top-1 is the argmax of ``output`` (a tensor of ``net.outputs``; default
    :func:`scored_output`); ties go to the first maximum, as a firmware loop with a strict
    ``>`` would pick. An output that is the class itself (an ArgMax layer: ``class_count``)
    is the prediction as it stands.
    """
    net, program = compiled.net, compiled.program
    _, h, w = next(iter(net.input_shapes.values()))
    output = output or scored_output(net)
    blob = program.outputs[net.outputs.index(output)].blob
    errors = LayerErrors(program, net, compiled.quant) if per_layer else None

    def float_top(images: np.ndarray):
        floats = forward(net, compiled.pre.to_float(images), keep=None if errors else [output])
        return top1(net, output, floats[output].reshape(len(images), -1)), floats if errors else None

    def q7_top(images: np.ndarray):
        if errors is None:
            return top1(net, output, program.split_outputs(run_program(program, images, batch_size=BATCH))[blob]), None
        values = run_program(program, images, keep_all=True)  # every tensor, for the per-layer sums
        return top1(net, output, program.split_outputs(output_rows(program, values))[blob]), values

    float_pred, q7_pred = [], []
    pending: deque = deque()  # (images in the batch, float job, q7 job), oldest first

    def collect() -> None:
        count, float_job, q7_job = pending.popleft()
        (float_top1, floats), (q7_top1, values) = float_job.result(), q7_job.result()
        float_pred.append(float_top1)
        q7_pred.append(q7_top1)
        if errors is not None:
            errors.add(floats, values)
        if progress:
            progress(count)

    with blas_threads(max(1, (os.cpu_count() or 2) // 2)), ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(dataset.x), BATCH):
            images = compiled.pre.prepare_images(dataset.x[start:start + BATCH], h, w)
            pending.append((len(images), pool.submit(float_top, images), pool.submit(q7_top, images)))
            if len(pending) > IN_FLIGHT:  # neither pass waits for the other at every batch
                collect()
        while pending:
            collect()
    result = _scores(dataset.y, float_pred, q7_pred)
    if errors is not None:
        result["layers"] = errors.rows()
    return result


def _scores(labels: np.ndarray, float_pred: list, q7_pred: list) -> dict:
    fp = np.concatenate(float_pred) if float_pred else np.zeros(0, dtype=np.int64)
    qp = np.concatenate(q7_pred) if q7_pred else np.zeros(0, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return {"n": 0, "float_top1": 0.0, "q7_top1": 0.0, "agreement": 0.0}
    return {"n": int(n), "float_top1": float(np.mean(fp == labels)), "q7_top1": float(np.mean(qp == labels)),
            "agreement": float(np.mean(fp == qp))}


def class_count(net: ir.Net, output: str) -> Optional[int]:
    """How many classes an output that is itself the predicted class picks from (None: scores)."""
    producer = net.producer(output)
    return None if producer is None else kind_of(producer).class_count(net, producer)


def top1(net: ir.Net, output: str, values: np.ndarray) -> np.ndarray:
    """The predicted class of every row of ``values`` (N, K), in Caffe's order."""
    if class_count(net, output) is not None:
        return values[:, 0].astype(np.int64)
    return np.argmax(values, axis=1)
