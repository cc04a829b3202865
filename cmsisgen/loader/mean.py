"""Mean images (``mean.binaryproto``) and the ``--mean`` option (file or per-channel list)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from cmsisgen.errors import CmsisgenError
from cmsisgen.proto import schema
from cmsisgen.loader.weights import blob_to_array


def read_mean_binaryproto(path: str | Path) -> np.ndarray:
    """A Caffe mean file (BlobProto, usually legacy dims (1, C, H, W)) -> (C, H, W) float32."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise CmsisgenError(f"{path}: cannot read mean file ({e.strerror or e})") from None
    blob = schema.BlobProto()
    try:
        blob.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise CmsisgenError(f"{path}: not a readable mean.binaryproto ({e})") from None
    arr = blob_to_array(blob, str(path))
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.size == 0:
        raise CmsisgenError(f"{path}: mean blob has shape {arr.shape}, expected (1, C, H, W)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def parse_mean_option(text: str) -> dict[str, Any]:
    """``"104,117,123"`` -> mean_values; an existing path -> mean_file.

    Returns keyword arguments for ``dataclasses.replace(transform, **...)``, so the
    option fully replaces whatever mean the prototxt specified.
    """
    t = text.strip()
    if t and Path(t).is_file():
        return {"mean_file": t, "mean_values": ()}
    try:
        values = tuple(float(v) for v in t.split(","))
    except ValueError:
        raise CmsisgenError(f"mean '{text}': neither an existing file nor a list of numbers "
                            "like 104,117,123") from None
    return {"mean_file": None, "mean_values": values}
