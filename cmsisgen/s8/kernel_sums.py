"""The kernel sums of an inner product on Helium, computed at compile time.

From CMSIS-NN v5.0.0 on, the MVE build of ``arm_fully_connected_s8`` starts each output row
from ``ctx->buf[row]`` and refuses a NULL buffer; it no longer reads the bias. Code that
passes the DSP build's empty context breaks only on Helium parts. The value per row is what
``arm_vector_sum_s8`` computes: ``bias[row] + input_offset * (sum(w[row]) + depth *
filter_offset)`` in wrapping int32 arithmetic. The weights and offsets are constants, so
cmsisgen computes the sums here, once, and the generated code hands the library a const
array in flash (no run-time sum, no RAM).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .kernels import vector_sum_s8


def fc_kernel_sums(matrix: np.ndarray, bias: Optional[np.ndarray], input_offset: int,
                   filter_offset: int = 0) -> np.ndarray:
    """int32 per row of ``matrix`` ([rows][depth]), as arm_vector_sum_s8 writes them."""
    sums = vector_sum_s8(np.asarray(matrix, dtype=np.int8), lhs_offset=input_offset, rhs_offset=filter_offset,
                         bias=bias)
    return np.asarray(sums, dtype=np.int32)
