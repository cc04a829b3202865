"""The project's own nn_pool_q7 (firmware/cmsisgen_kernels/nn_pool_q7.c): Caffe pooling of
any geometry, for the layers CMSIS-NN's square, in-place q7 pooling cannot run or runs
differently from Caffe.

Caffe's semantics per axis: output i pools the window starting at ``i * stride - pad``,
``kernel`` long, clipped to the image for the maximum and the sum; the average divides by
the window clipped to the *padded* image only (the padding counts as zeros), computed before
the clip. The integer average rounds the quotient half away from zero, chosen over
NN_ROUND's half up because the average of a mirrored input is then the mirrored average:
signed activations gain no drift towards +inf from the ties. Global pooling is the window
covering the whole image (measured on QEMU, nn_pool_q7 runs it in fewer instructions than the
channel-by-channel kernel it replaced, with the same bytes).

The average may write its own, finer Q format: ``shift`` more fractional bits than its input,
folded into the division (``round(sum * 2^shift / count)``, saturated). An average is usually
far smaller than its input's largest values (a global pool of a ReLU map: tenths of them), so
keeping the input's format would waste bits the output's own range gives back;
:meth:`cmsisgen.ops.pooling.Pooling.own_format` says when the quantizer may do so.
"""
from __future__ import annotations

import numpy as np

from ..mapper.rules import Site, rule
from ..simulator.kernels import saturate_q7
from .base import Kernel

#: nn_pool_q7 takes sizes, kernel, stride and padding up to this (int32 window bounds).
MAX_SIZE = 65535
#: Most cells of a window: the int32 sum of 2^24 q7 values cannot overflow.
MAX_WINDOW_BITS = 24
MAX_WINDOW_CELLS = 1 << MAX_WINDOW_BITS


@rule("input {in_h}x{in_w}, kernel {kernel_h}x{kernel_w}, stride {stride_h}x{stride_w}, padding {pad_h}x{pad_w}")
def any_geometry(site: Site) -> bool:
    """nn_pool_q7 (the project's own kernel) pools any geometry as Caffe does, out of place: the maximum of the window clipped to the image, or its sum divided by the window clipped to the padded image, rounded half away from zero (into a finer Q format than the input's when the output's range allows: the sum is scaled first); sizes, kernel, stride and padding must be at most 65535 and the window at most 2^24 cells."""
    sizes = (site.in_h, site.in_w, site.out_h, site.out_w, site.kernel_h, site.kernel_w, site.stride_h,
             site.stride_w, site.pad_h, site.pad_w)
    return all(s <= MAX_SIZE for s in sizes) and site.kernel_h * site.kernel_w <= MAX_WINDOW_CELLS


def pool_windows(in_size: int, out_size: int, kernel: int, stride: int, pad: int) -> tuple[np.ndarray, np.ndarray,
                                                                                              np.ndarray]:
    """Caffe's window per output index: (start, end) clipped to the image, and the divisor
    size that average pooling uses (clipped to the padded image, not to the image)."""
    start = np.arange(out_size) * stride - pad
    end_padded = np.minimum(start + kernel, in_size + pad)
    size = end_padded - start
    return np.maximum(start, 0), np.minimum(end_padded, in_size), size


def max_shift(kernel_h: int, kernel_w: int) -> int:
    """Most fractional bits the average may add to its input's: the scaled int32 sum
    (at most 128 * cells * 2^shift in magnitude, below 2^30) plus the rounding half cannot
    overflow."""
    return max(MAX_WINDOW_BITS - 1 - (kernel_h * kernel_w).bit_length(), 0)


def divide_rounded(total: np.ndarray, count, shift: int = 0) -> np.ndarray:
    """C's ``(total >= 0 ? total + count / 2 : total - count / 2) / count`` (division truncating
    towards zero) of ``total * 2^shift``: the quotient rounded half away from zero, saturated to q7."""
    total = np.asarray(total, dtype=np.int64) * (1 << shift)
    half = np.asarray(count, dtype=np.int64) // 2
    rounded = np.where(total >= 0, total + half, total - half)
    return saturate_q7(np.sign(rounded) * (np.abs(rounded) // count))


def pool_q7(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
            out_hw: tuple[int, int], average: bool, shift: int = 0) -> np.ndarray:
    """``nn_pool_q7`` on NHWC int8 ``x`` -> (N, out_h, out_w, C) int8; every window must hold a
    pixel of the image; the average writes ``shift`` more fractional bits. Separable: rows are reduced first, then columns (max and integer sums
    are exact in any order)."""
    _, h, w, _ = x.shape
    (oh, ow) = out_hw
    hs, he, hsize = pool_windows(h, oh, kernel[0], stride[0], pad[0])
    ws, we, wsize = pool_windows(w, ow, kernel[1], stride[1], pad[1])
    if not average:
        rows = np.stack([x[:, hs[i]:he[i]].max(axis=1) for i in range(oh)], axis=1)
        return np.stack([rows[:, :, ws[j]:we[j]].max(axis=2) for j in range(ow)], axis=2).astype(np.int8)
    wide = x.astype(np.int64)
    rows = np.stack([wide[:, hs[i]:he[i]].sum(axis=1) for i in range(oh)], axis=1)
    totals = np.stack([rows[:, :, ws[j]:we[j]].sum(axis=2) for j in range(ow)], axis=2)
    return divide_rounded(totals, (hsize[:, None] * wsize[None, :])[None, :, :, None], shift)


def _simulate(op, inputs: list[np.ndarray]) -> np.ndarray:
    a = op.args
    return pool_q7(inputs[0], (a["kernel_h"], a["kernel_w"]), (a["stride_h"], a["stride_w"]),
                   (a["pad_h"], a["pad_w"]), (a["out_h"], a["out_w"]), bool(a["average"]), a["shift"])


POOL = Kernel(
    "pool", _simulate,
    call="""\
    /* {{ op.layer }}: out of place */
    nn_pool_q7({{ buf[op.inputs[0]] }}, {{ prefix }}_IN_H, {{ prefix }}_IN_W, {{ prefix }}_CH,
               {{ prefix }}_KERNEL_H, {{ prefix }}_KERNEL_W, {{ prefix }}_STRIDE_H, {{ prefix }}_STRIDE_W,
               {{ prefix }}_PAD_H, {{ prefix }}_PAD_W, {{ prefix }}_OUT_H, {{ prefix }}_OUT_W, {{ a.average }}u, {{ a.shift }}u, {{ out }});
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}, {{ "average (divided by the window clipped to the padded image, rounded half away from zero)" if a.average else "maximum" }}; Q{{ 7 - f.out_frac }}.{{ f.out_frac }}{{ " (the input's Q%d.%d shifted left %d)" % (7 - f.in_frac, f.in_frac, a.shift) if a.shift }} */
#define {{ prefix }}_IN_H {{ a.in_h }}
#define {{ prefix }}_IN_W {{ a.in_w }}
#define {{ prefix }}_CH {{ a.channels }}
#define {{ prefix }}_KERNEL_H {{ a.kernel_h }}
#define {{ prefix }}_KERNEL_W {{ a.kernel_w }}
#define {{ prefix }}_STRIDE_H {{ a.stride_h }}
#define {{ prefix }}_STRIDE_W {{ a.stride_w }}
#define {{ prefix }}_PAD_H {{ a.pad_h }}
#define {{ prefix }}_PAD_W {{ a.pad_w }}
#define {{ prefix }}_OUT_H {{ a.out_h }}
#define {{ prefix }}_OUT_W {{ a.out_w }}
""", source="nn_pool_q7.c")


def pool_args(site: Site, shift: int = 0) -> dict[str, int]:
    """nn_pool_q7's arguments for a layer, by its C parameter names (``shift``: the output's
    fractional bits over the input's)."""
    return {"in_h": site.in_h, "in_w": site.in_w, "channels": site.in_ch, "kernel_h": site.kernel_h,
            "kernel_w": site.kernel_w, "stride_h": site.stride_h, "stride_w": site.stride_w, "pad_h": site.pad_h,
            "pad_w": site.pad_w, "out_h": site.out_h, "out_w": site.out_w, "average": int(site.method == "ave"), "shift": shift}
