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

from .blas import blas_threads
from .float_forward import forward
from .pipeline import Compiled
from .simulator.execute import run_program

BATCH = 100
#: Batches queued ahead of the one being collected.
IN_FLIGHT = 2


def evaluate(compiled: Compiled, dataset, progress: Optional[Callable[[int], None]] = None) -> dict:
    """``{"n", "float_top1", "q7_top1", "agreement"}``, fractions in 0..1.

    Top-1 is the argmax of the network output; ties go to the first maximum, as a
    firmware loop with a strict ``>`` would pick.
    """
    net, program = compiled.net, compiled.program
    _, h, w = next(iter(net.input_shapes.values()))
    output = net.outputs[0]

    def float_top(images: np.ndarray) -> np.ndarray:
        scores = forward(net, compiled.pre.to_float(images), keep=[output])[output]
        return np.argmax(scores.reshape(len(images), -1), axis=1)

    def q7_top(images: np.ndarray) -> np.ndarray:
        return np.argmax(program.output_in_caffe_order(run_program(program, images, batch_size=BATCH)), axis=1)

    float_pred, q7_pred = [], []
    pending: deque = deque()  # (images in the batch, float job, q7 job), oldest first

    def collect() -> None:
        count, float_job, q7_job = pending.popleft()
        float_pred.append(float_job.result())
        q7_pred.append(q7_job.result())
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
    fp = np.concatenate(float_pred) if float_pred else np.zeros(0, dtype=np.int64)
    qp = np.concatenate(q7_pred) if q7_pred else np.zeros(0, dtype=np.int64)
    n = len(dataset.y)
    if n == 0:
        return {"n": 0, "float_top1": 0.0, "q7_top1": 0.0, "agreement": 0.0}
    return {"n": int(n), "float_top1": float(np.mean(fp == dataset.y)), "q7_top1": float(np.mean(qp == dataset.y)),
            "agreement": float(np.mean(fp == qp))}
