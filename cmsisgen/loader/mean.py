"""Mean images (``mean.binaryproto``) and the ``mean`` setting (file or per-channel list)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from cmsisgen.errors import SETTING, CmsisgenError, SettingError
from cmsisgen.loader.fields import unknown_numbers
from cmsisgen.proto import schema
from cmsisgen.loader.prototxt import printable
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
    unknown = unknown_numbers(blob)
    if unknown:  # e.g. a fork's half-precision raw_data: the values would be missed
        raise CmsisgenError(f"{path}: the mean blob holds fields this reader does not know (numbers "
                            f"{', '.join(map(str, unknown))}): a Caffe fork's format?")
    arr = blob_to_array(blob, str(path))
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.size == 0:
        raise CmsisgenError(f"{path}: mean blob has shape {arr.shape}, expected (1, C, H, W)")
    return np.ascontiguousarray(arr, dtype=np.float32)


MEAN_HELP = "a mean.binaryproto file or per-channel values such as 104,117,123"


def _path_kind(t: str) -> str:
    """"file", "dir" or "" (missing or not a usable path name, e.g. too long)."""
    try:
        p = Path(t)
        return "file" if p.is_file() else "dir" if p.is_dir() else ""
    except (OSError, ValueError):
        return ""


def parse_mean_option(text: str) -> dict[str, Any]:
    """The CLI's ``--mean FILE|V1,V2,V3``: an existing file -> mean_file, else a list of
    numbers -> mean_values (surrounding whitespace ignored).

    Returns ``{"mean_file": str | None, "mean_values": tuple[float, ...]}``, keyword
    arguments for ``dataclasses.replace(transform, **...)``, so the option fully replaces
    whatever mean the prototxt specified. Anything else is a one-line error naming the
    setting (:class:`SettingError`: the CLI names it --mean).
    """
    shown = f"{SETTING} '{printable(text)}'"

    def error(what: str) -> SettingError:
        return SettingError("mean", f"{shown}: {what}")

    t = text.strip()
    if not t:
        raise error(f"empty; give {MEAN_HELP}")
    kind = _path_kind(t)
    if kind == "file":
        return {"mean_file": t, "mean_values": ()}
    if kind == "dir":
        raise error(f"is a directory; give {MEAN_HELP}")
    parts = [v.strip() for v in t.split(",")]
    values = []
    for v in parts:
        try:
            values.append(float(v) if v else None)
        except ValueError:
            raise error("neither an existing file nor a list of numbers such as 104,117,123") from None
    if None in values:
        raise error("empty value in the list; give numbers such as 104,117,123")
    if not all(math.isfinite(v) for v in values):
        raise error("mean values must be finite numbers")
    return {"mean_file": None, "mean_values": tuple(values)}
