"""im2col for the float forward and the q7 simulator: the column matrix of a convolution.

Both run a convolution as one matrix product of its columns (one row per output pixel, its
taps in HWC order: kernel row, kernel column, channel) with the filters; how fast the
columns are built decides much of how fast ``evaluate`` runs.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided


def im2col(padded: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int,
           dtype: Optional[type] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Columns (N, oh, ow, kh, kw*C) of a zero-padded, C-contiguous NHWC batch, in one strided
    copy (converted to ``dtype`` on the way): a kernel row's kw*C values are contiguous in an
    image row, so the copy moves runs of kw*C values, not a run of C per tap.

    With ``out`` (N*oh*ow, kh*kw*C or more columns, rows contiguous) the columns are written
    into its first kh*kw*C columns, and that view is returned: a buffer reused from chunk to
    chunk costs no fresh pages, and a product can read spare columns beside the taps."""
    padded = np.ascontiguousarray(padded)
    n, _, _, c = padded.shape
    s0, s1, s2, s3 = padded.strides
    view = as_strided(padded, (n, oh, ow, kh, kw * c), (s0, s1 * sh, s2 * sw, s1, s3), writeable=False)
    if out is None:
        return np.array(view, dtype=dtype or padded.dtype, order="C")
    columns = out[:n * oh * ow, :kh * kw * c]
    np.copyto(columns.reshape(n, oh, ow, kh, kw * c), view, casting="unsafe")
    return columns


#: Column values per matrix product: 2 MB of float32, so that the columns are still in cache
#: when the product reads them (both evaluate passes at once share the cache; measured on the
#: example: 2**19 values ran both passes 8 % faster than 2**21, 2**17-2**18 no better) and their
#: memory is reused from chunk to chunk (a fresh hundred-MB array per product costs more in
#: page faults than the product itself).
COLUMN_CHUNK = 1 << 19


def images_per_chunk(columns_per_image: int) -> int:
    """Images whose columns make one product of about :data:`COLUMN_CHUNK` values."""
    return max(1, COLUMN_CHUNK // max(1, columns_per_image))
