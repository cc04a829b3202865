"""The form in which the generated C computes the input conversion, derived from its constants.

:class:`cmsisgen.preprocess.InputFixedPoint` defines the numbers (the simulator's model,
``saturate((pixel * MUL - OFFSET + 2^(S-1)) >> S)``); this module chooses constants that
give exactly those numbers with fewer instructions and fewer bytes on a Cortex-M:

- **Per-channel preprocessing** (a mean per channel, or none): a channel's result depends on
  the pixel value alone, so the C reads it from a 256-entry q7 table (one load per byte).
  Channels with the same mapping share a row.
- **Per-pixel mean**: ``saturate((pixel * MUL' + OFFSET'[i]) >> S')`` with the rounding
  term folded into the offsets and the common power of two of MUL and 2^S divided out
  (exact: ``pixel * MUL`` is a multiple of it, so only the offsets' floor changes); the
  offsets are stored in the narrowest of int8/int16/int32 that holds them.

Both forms are checked against :meth:`InputFixedPoint.apply` for all 256 pixel values at
every channel (or position) when they are made: a form that would change a bit is a bug.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from .preprocess import InputFixedPoint

ALL_PIXELS = np.arange(256, dtype=np.uint8)
#: Pixel values checked at once (images of the input's size in memory during the check).
CHECK_VALUES = 16
#: C integer types for the per-pixel offsets, narrowest first.
OFFSET_TYPES = (("int8_t", np.int8), ("int16_t", np.int16), ("int32_t", np.int32))


@dataclass(frozen=True)
class TableForm:
    """q7 result of every pixel value: ``rows[row_of_channel[c], pixel]`` for model channel c."""

    rows: np.ndarray  # int8 (R, 256)
    row_of_channel: tuple[int, ...]
    kind = "table"

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC (model channel order) -> int8 NHWC, as the generated C computes it."""
        out = np.empty(pixels.shape, dtype=np.int8)
        for c, row in enumerate(self.row_of_channel):
            out[..., c] = self.rows[row][pixels[..., c]]
        return out

    @property
    def flash_bytes(self) -> int:
        return int(self.rows.size)


@dataclass(frozen=True)
class AffineForm:
    """``saturate((pixel * mul + offsets[i]) >> shift)``, offsets per HWC position."""

    mul: int
    shift: int
    offsets: np.ndarray  # int64 (H*W*C,)
    c_type: str
    kind = "affine"

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC (model channel order) -> int8 NHWC, as the generated C computes it."""
        acc = pixels.astype(np.int64) * self.mul + self.offsets.reshape(pixels.shape[1:])
        return np.clip(acc >> self.shift, -128, 127).astype(np.int8)

    @property
    def flash_bytes(self) -> int:
        return int(self.offsets.size * np.dtype(dict(OFFSET_TYPES)[self.c_type]).itemsize)


InputForm = Union[TableForm, AffineForm]


def table_form(fp: InputFixedPoint, channels: int) -> TableForm:
    """The per-channel table: fp applied to every pixel value in every channel."""
    every = np.repeat(ALL_PIXELS[None, None, :, None], channels, axis=3)
    columns = fp.apply(every)[0, 0].T  # (C, 256)
    rows: list[np.ndarray] = []
    row_of_channel = []
    for column in columns:
        same = [r for r, row in enumerate(rows) if np.array_equal(row, column)]
        if not same:
            rows.append(column)
        row_of_channel.append(same[0] if same else len(rows) - 1)
    return TableForm(rows=np.stack(rows), row_of_channel=tuple(row_of_channel))


def affine_form(fp: InputFixedPoint) -> AffineForm:
    """fp's arithmetic with the rounding term folded into the offsets and the common power of
    two of MUL and 2^S divided out: floor((p*M + N) / 2^S) == floor((p*M/2^t + floor(N/2^t)) / 2^(S-t))
    whenever 2^t divides M (and t <= S)."""
    t = 0
    while t < fp.shift and fp.mul % (2 << t) == 0:
        t += 1
    offsets = ((1 << (fp.shift - 1)) - fp.offsets.astype(np.int64)) >> t
    c_type = next(name for name, dtype in OFFSET_TYPES
                  if offsets.min(initial=0) >= np.iinfo(dtype).min and offsets.max(initial=0) <= np.iinfo(dtype).max)
    return AffineForm(mul=fp.mul >> t, shift=fp.shift - t, offsets=offsets, c_type=c_type)


def input_form(fp: InputFixedPoint, shape_chw: tuple[int, int, int]) -> InputForm:
    """The form the C computes (see the module docstring), checked bit for bit against fp for
    all 256 pixel values at every channel or position."""
    c, h, w = shape_chw
    form: InputForm = affine_form(fp) if fp.per_pixel else table_form(fp, c)
    positions = (h, w) if fp.per_pixel else (1, 1)
    for first in range(0, 256, CHECK_VALUES):  # a few values at a time: bounded memory on big inputs
        values = ALL_PIXELS[first:first + CHECK_VALUES, None, None, None]
        every = np.broadcast_to(values, (len(values), *positions, c))
        if not np.array_equal(form.apply(every), fp.apply(every)):
            raise AssertionError("the input conversion's C form differs from its fixed-point definition")
    return form
