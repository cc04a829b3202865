"""Load a Caffe model into ``ir.Net``: prototxt -> IR -> shapes -> trained blobs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.loader.prototxt import parse_prototxt
from cmsisgen.loader.weights import read_weights
from cmsisgen.shapes import expected_blob_shapes, infer_shapes

__all__ = ["load_net", "attach_weights", "parse_prototxt", "read_weights", "blob_fits"]


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + (",)" if len(shape) == 1 else ")")


def blob_fits(stored: Sequence[int], expected: Sequence[int]) -> bool:
    """Caffe's legacy shape check: equal once both are left-padded with 1s (V1 files
    store an inner product weight (O, I) as (1, 1, O, I) and a bias (O,) as (1, 1, 1, O))."""
    n = max(len(stored), len(expected))
    pad = lambda s: (1,) * (n - len(s)) + tuple(int(d) for d in s)  # noqa: E731
    return pad(stored) == pad(expected)


def attach_weights(net: ir.Net, blobs: dict[str, list[np.ndarray]], source: str) -> None:
    """Give every layer that needs blobs its arrays, reshaped to Caffe's expected shapes."""
    for layer in net.layers:
        expected = expected_blob_shapes(net, layer)
        if not expected:
            continue
        stored = blobs.get(layer.name)
        if stored is None:
            raise CmsisgenError(f"{source}: no weights for layer '{layer.name}' ({layer.type}), "
                                f"which needs {len(expected)} blobs")
        if len(stored) != len(expected):
            raise CmsisgenError(f"{source}: layer '{layer.name}' ({layer.type}) has {len(stored)} blobs, "
                                f"the prototxt needs {len(expected)}")
        arrays = []
        for i, (arr, want) in enumerate(zip(stored, expected)):
            if not blob_fits(arr.shape, want):
                raise CmsisgenError(f"{source}: layer '{layer.name}' ({layer.type}) blob {i} has shape "
                                    f"{_fmt(arr.shape)}, the prototxt needs {_fmt(want)}")
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            if bad:
                raise CmsisgenError(f"{source}: layer '{layer.name}' ({layer.type}) blob {i} "
                                    f"({'weights' if i == 0 else 'bias'}) holds {bad} NaN/Inf "
                                    f"value{'s' if bad > 1 else ''}")
            arrays.append(np.ascontiguousarray(arr.reshape(want), dtype=np.float32))
        layer.blobs = arrays


def load_net(prototxt: str | Path, weights: str | Path | None = None,
             input_shape: Optional[Sequence[int]] = None, mean_file: Optional[Path] = None,
             outputs: Sequence[str] = ()) -> ir.Net:
    """Parse ``prototxt`` (TEST phase), infer shapes, and attach ``weights`` if given.

    ``input_shape`` (C, H, W) is needed only when a data layer's size is not in the
    prototxt (no crop_size) nor in ``mean_file`` or the data layer's own mean file; without
    weights the layers' ``blobs`` stay empty. ``outputs`` (blob names) cuts the net where
    they are computed (:mod:`cmsisgen.loader.heads`).
    """
    net = parse_prototxt(prototxt, input_shape=input_shape, mean_file=mean_file, outputs=outputs)
    infer_shapes(net)
    if weights is not None:
        attach_weights(net, read_weights(weights, net.warnings), str(weights))
    return net
