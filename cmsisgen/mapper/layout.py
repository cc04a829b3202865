"""Weight layouts: Caffe's logical arrays -> the byte order each CMSIS-NN kernel reads.

* Convolution: Caffe stores ``[O, I, kh, kw]``; the HWC q7 conv kernels read weight
  ``wt[o*kh*kw*I + (ky*kw + kx)*I + i]``, i.e. ``[O, kh, kw, I]`` (:func:`conv_weights_hwc`).
* Fully connected after a spatial blob: Caffe flattens the (C, H, W) input in CHW order,
  the generated code holds it HWC, so the weight columns are permuted
  (:func:`fc_columns_chw_to_hwc`).
* ``arm_fully_connected_q7`` reads ``[dim_out, dim_vec]`` row major;
  ``arm_fully_connected_q7_opt`` reads an interleaved order (:func:`interleave_fc_opt`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv_weights_hwc", "fc_columns_chw_to_hwc", "interleave_fc_opt", "deinterleave_fc_opt"]


def conv_weights_hwc(w_oihw) -> np.ndarray:
    """Caffe conv weights ``[O, I, kh, kw]`` -> ``[O, kh, kw, I]`` (dtype kept, contiguous)."""
    w = np.asarray(w_oihw)
    if w.ndim != 4:
        raise ValueError(f"conv weights must be 4-D [O, I, kh, kw], got shape {w.shape}")
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def fc_columns_chw_to_hwc(w, c: int, h: int, wd: int) -> np.ndarray:
    """Permute FC weight columns from Caffe's CHW flattening to the HWC activation order.

    ``w[O, C*H*W]`` with column ``(ci*H + y)*W + x`` -> ``w'[O, H*W*C]`` with column
    ``(y*W + x)*C + ci`` holding the same weight, so ``w' @ hwc_vec == w @ chw_vec``.
    """
    w = np.asarray(w)
    if w.ndim != 2 or w.shape[1] != c * h * wd:
        raise ValueError(f"FC weights {w.shape} do not take a {c}x{h}x{wd} input")
    o = w.shape[0]
    return np.ascontiguousarray(w.reshape(o, c, h, wd).transpose(0, 2, 3, 1).reshape(o, h * wd * c))


def _fc_opt_order(dim_out: int, dim_vec: int) -> np.ndarray:
    """Flat logical indices ``r*dim_vec + c`` in the order arm_fully_connected_q7_opt reads.

    For each group of 4 rows r0..r3 (``dim_out // 4`` groups, in order):
      * for each block of 4 columns c..c+3 (``dim_vec // 4`` blocks), 16 bytes:
        ``W[r0][c]   W[r1][c]   W[r0][c+2] W[r1][c+2]``
        ``W[r2][c]   W[r3][c]   W[r2][c+2] W[r3][c+2]``
        ``W[r0][c+1] W[r1][c+1] W[r0][c+3] W[r1][c+3]``
        ``W[r2][c+1] W[r3][c+1] W[r2][c+3] W[r3][c+3]``
        (the DSP path sign-extends bytes 0/2 and 1/3 of each word into two q15 pairs that
        meet the reordered input pair (v[c], v[c+2]) or (v[c+1], v[c+3]); the plain-C
        path reads the same bytes in the same order);
      * then each tail column c (``dim_vec % 4`` of them): ``W[r0][c] W[r1][c] W[r2][c] W[r3][c]``.
    Then the ``dim_out % 4`` leftover rows, each row major in natural column order.
    """
    idx = np.arange(dim_out * dim_vec, dtype=np.int64).reshape(dim_out, dim_vec)
    parts = []
    full_rows = dim_out - dim_out % 4
    full_cols = dim_vec - dim_vec % 4
    for r in range(0, full_rows, 4):
        g = idx[r : r + 4]  # [4, dim_vec]
        if full_cols:
            blk = g[:, :full_cols].reshape(4, full_cols // 4, 4)  # [row, block, col-in-block]
            # per block: (col 0,2) x rows (0,1) then rows (2,3), then (col 1,3) likewise
            order = []
            for cpair in ((0, 2), (1, 3)):
                for rpair in ((0, 1), (2, 3)):
                    for cc in cpair:
                        for rr in rpair:
                            order.append((rr, cc))
            rows = np.array([o[0] for o in order])
            cols = np.array([o[1] for o in order])
            parts.append(blk[rows, :, cols].T.reshape(-1))  # [block, 16] flattened
        if dim_vec % 4:
            parts.append(g[:, full_cols:].T.reshape(-1))
    if dim_out % 4:
        parts.append(idx[full_rows:].reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(parts)


def interleave_fc_opt(w) -> np.ndarray:
    """``w[dim_out, dim_vec]`` -> 1-D array in arm_fully_connected_q7_opt's read order.

    See :func:`_fc_opt_order` for the exact order (upstream's function comment draws it
    for a 6x7 matrix: rows 0-3 interleaved, column 7 as the per-row tail, rows 4-5 plain).
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"FC weights must be 2-D [dim_out, dim_vec], got shape {w.shape}")
    dim_out, dim_vec = w.shape
    full_rows, full_cols = dim_out - dim_out % 4, dim_vec - dim_vec % 4
    groups = w[:full_rows].reshape(full_rows // 4, 4, dim_vec)  # [group, row, column]
    # the same order as _fc_opt_order, by slicing the matrix itself (an index array per
    # weight would take eight times the weights' memory: gigabytes for a 4096-wide layer)
    blocks = groups[:, :, :full_cols].reshape(full_rows // 4, 4, full_cols // 4, 4)  # [group, row, block, col]
    rows, cols = _OPT_BLOCK_ORDER
    interleaved = blocks[:, rows, :, cols].transpose(1, 2, 0).reshape(full_rows // 4, full_cols * 4)
    tails = groups[:, :, full_cols:].transpose(0, 2, 1).reshape(full_rows // 4, -1 if full_rows else 0)
    return np.concatenate([np.concatenate([interleaved, tails], axis=1).reshape(-1), w[full_rows:].reshape(-1)])


#: (row, column) inside a 4x4 block, in the order of its 16 bytes (see :func:`_fc_opt_order`).
_OPT_BLOCK_ORDER = (np.array([rr for cpair in ((0, 2), (1, 3)) for rpair in ((0, 1), (2, 3))
                              for cc in cpair for rr in rpair]),
                    np.array([cc for cpair in ((0, 2), (1, 3)) for rpair in ((0, 1), (2, 3))
                              for cc in cpair for rr in rpair]))


def deinterleave_fc_opt(flat, dim_out: int, dim_vec: int) -> np.ndarray:
    """Inverse of :func:`interleave_fc_opt`: 1-D interleaved -> ``[dim_out, dim_vec]``."""
    flat = np.asarray(flat)
    if flat.shape != (dim_out * dim_vec,):
        raise ValueError(f"expected {dim_out * dim_vec} weights, got shape {flat.shape}")
    out = np.empty(dim_out * dim_vec, dtype=flat.dtype)
    out[_fc_opt_order(dim_out, dim_vec)] = flat
    return out.reshape(dim_out, dim_vec)
