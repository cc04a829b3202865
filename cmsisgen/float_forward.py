"""Float reference forward pass with Caffe's semantics (NCHW, float32).

It is the yardstick the quantized network is measured against (float top-1,
agreement) and the source of activation ranges for calibration, so each layer kind
follows Caffe exactly where Caffe is unusual (its ``forward``: ceil-mode pooling with the
last window clipped, average pooling dividing by the window clipped to the padded image).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np

from . import ir
from .errors import CmsisgenError
from .ops import kind_of


def forward(net: ir.Net, x: np.ndarray, keep: Optional[Iterable[str]] = None,
            observe: Optional[Callable[[str, np.ndarray], None]] = None) -> dict[str, np.ndarray]:
    """Run ``net`` on a batch ``x`` (N, C, H, W) for its single input.

    Returns every tensor (or only those in ``keep`` plus the outputs) as float32 NCHW (by
    shape: a convolution's output, and what pooling and ReLU make of it, is an NCHW view of
    NHWC memory, the order its GEMM writes and the next convolution reads);
    inner-product outputs are (N, C, 1, 1). With ``keep``, a tensor is released as soon as
    its last reader ran; ``observe(name, value)`` sees every tensor (the input first) when it
    is computed, which is how calibration summarises tensors it does not keep.
    """
    if len(net.input_shapes) != 1:
        raise CmsisgenError(f"{net.source}: cmsisgen supports one network input, found {len(net.input_shapes)}")
    (input_name, shape), = net.input_shapes.items()
    if tuple(x.shape[1:]) != tuple(shape):
        raise CmsisgenError(f"{net.source}: input '{input_name}' needs shape {tuple(shape)}, got {tuple(x.shape[1:])}")
    wanted = None if keep is None else set(keep) | set(net.outputs)
    last_use = ir.last_reads(layer.bottoms for layer in net.layers)
    values: dict[str, np.ndarray] = {input_name: np.asarray(x, dtype=np.float32)}
    if observe is not None:
        observe(input_name, values[input_name])
    for index, layer in enumerate(net.layers):
        kind = kind_of(layer)
        inputs = [values[name] if kind.forward_any_layout else np.ascontiguousarray(values[name])
                  for name in layer.bottoms]
        outputs = kind.forward(layer, inputs)
        for top, value in zip(layer.tops, outputs):
            values[top] = value
            if observe is not None:
                observe(top, value)
        if wanted is not None:
            for name in list(layer.bottoms) + list(layer.tops):
                if last_use.get(name, index) == index and name not in wanted:
                    values.pop(name, None)
    if wanted is not None:
        return {name: value for name, value in values.items() if name in wanted}
    return values
