"""Caffe's conventions for reading kernel, pad and stride out of a layer's parameter message."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ..errors import CmsisgenError

#: The loader's error maker for the layer being read: message -> error naming file and layer.
ErrorMaker = Callable[[str], CmsisgenError]


def spatial(values: Sequence[int], h: Optional[int], w: Optional[int], default: int, what: str,
            err: ErrorMaker) -> tuple[int, int]:
    """Caffe's repeated-or-_h/_w convention for kernel/pad/stride: (h, w)."""
    if h is not None or w is not None:
        if values:
            raise err(f"specify {what} either as {what} or as {what}_h/{what}_w, not both")
        if h is None or w is None:
            raise err(f"both {what}_h and {what}_w are required")
        return h, w
    if len(values) == 0:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise err(f"{what} has {len(values)} values; only 2-D layers are supported")


def optional(msg: Any, field: str) -> Optional[int]:
    """A field's value when it is set, else None."""
    return getattr(msg, field) if msg.HasField(field) else None
