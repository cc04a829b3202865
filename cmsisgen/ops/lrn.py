"""Caffe LRN (ACROSS_CHANNELS, WITHIN_CHANNEL) onto the project's own q7 kernels, and the
multiplier table they read.

Caffe's LRN multiplies every value by ``scale**-beta`` where ``scale = k + a * S`` and S
is a window sum of squares (``a = alpha/n`` across channels; within a channel Caffe uses
``k = 1`` and ``a = alpha/n**2``). With q7 input ``x`` in Q.f_in the kernel forms S
exactly in integers (sum of ``x*x``, at most ``window * 128**2``), so the multiplier is a
function of one integer, tabulated at compile time and indexed by S written as a small
float with :data:`MANTISSA_BITS` = M bits of mantissa:

    e     = the smallest e >= 0 with (S >> e) < 2**M
    index = S                                             if e == 0 (exact for small sums)
          = 2**M + (e - 1) * 2**(M-1) + (S >> e) - 2**(M-1)   otherwise
    out   = SSAT8((x * table[index] + NN_ROUND(out_rshift)) >> out_rshift)

Entry ``index`` holds ``round((k + a * S_mid * 2**(-2*f_in))**-beta * 2**mul_frac)`` as
int32, ``S_mid`` the middle of the sums that share the index, ``mul_frac`` as large as the
largest multiplier allows below 2**31, and ``out_rshift = mul_frac + f_in - f_out``; the
product ``x * table[index]`` is formed in 64 bits (one SMULL on the Cortex-M7). 32-bit
entries matter: a strongly normalised output (multiplier 1e-3 or less) that the output
format is sized for would lose whole LSBs to a 16-bit entry's rounding.
A uniform step would not do: with a large ``a`` the multiplier falls steeply for small
sums. Here S is known to a relative 2**-M (half that from the middle), so the multiplier
to ``beta * 2**-M`` relative -- about a third of an output LSB at 127 -- whatever alpha,
beta, k and the input format are. The table has ``2**M + e_max * 2**(M-1)`` entries
(1152 to 1664 entries for local sizes 1 to 5; 4.5 to 6.5 KB of flash). Everything is
integer at run time, so the simulator reproduces it bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..mapper.calls import Op
from ..mapper.rules import Site, rule, sizes_fit_int16
from ..simulator.kernels import nn_round, saturate_q7
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, choose, formats, generic_site, stem

#: Mantissa bits of the table index.
MANTISSA_BITS = 8
#: Largest table entry (int32).
ENTRY_MAX = (1 << 31) - 1
#: Largest out_rshift the 64-bit product allows.
MAX_OUT_RSHIFT = 62


@dataclass(frozen=True)
class LrnTable:
    table: np.ndarray  # int32
    mantissa_bits: int
    mul_frac: int
    out_rshift: int


def window_size(p: ir.LRNParams) -> int:
    """Terms in one sum of squares."""
    return p.local_size if p.region == "across" else p.local_size * p.local_size


def coefficients(p: ir.LRNParams) -> tuple[float, float]:
    """(k, a) of ``scale = k + a * sum of squared values`` in Caffe's definition."""
    if p.region == "across":
        return p.k, p.alpha / p.local_size
    return 1.0, p.alpha / (p.local_size * p.local_size)


def table_index(sums: np.ndarray, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """The kernel's table index of non-negative integer sums (see the module docstring)."""
    s = np.asarray(sums, dtype=np.int64)
    top = 1 << mantissa_bits
    e = np.zeros_like(s)
    while True:
        more = (s >> e) >= top
        if not more.any():
            break
        e += more
    half = top >> 1
    return np.where(e == 0, s, top + (e - 1) * half + (s >> e) - half)


def index_middles(size: int, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """For each index below ``size``, the middle of the sums that map to it (float)."""
    top, half = 1 << mantissa_bits, 1 << (mantissa_bits - 1)
    index = np.arange(size, dtype=np.int64)
    e = np.where(index < top, 0, (index - top) // half + 1)
    mantissa = np.where(index < top, index, (index - top) % half + half)
    low = (mantissa << e).astype(np.float64)
    return low + ((1 << e) - 1) / 2.0


def lrn_table(layer: str, p: ir.LRNParams, in_frac: int, out_frac: int) -> LrnTable:
    """The table and shifts for one LRN layer (see the module docstring)."""
    k, a = coefficients(p)
    max_sum = window_size(p) * 128 * 128
    size = int(table_index(np.array([max_sum]))[0]) + 1
    scale = k + a * index_middles(size) * 2.0 ** (-2 * in_frac)
    if np.any(scale <= 0):
        raise CmsisgenError(f"layer '{layer}' (LRN): k + alpha * sum must stay positive (k = {p.k:g})")
    multiplier = scale ** -p.beta
    mul_frac = math.floor(math.log2(ENTRY_MAX / float(multiplier.max())))
    out_rshift = mul_frac + in_frac - out_frac
    if not 0 <= out_rshift <= MAX_OUT_RSHIFT:
        raise CmsisgenError(f"layer '{layer}' (LRN): the output format Q{7 - out_frac}.{out_frac} is out of reach of "
                            f"the input format Q{7 - in_frac}.{in_frac} (shift {out_rshift})")
    table = np.clip(np.floor(multiplier * 2.0 ** mul_frac + 0.5), 0, ENTRY_MAX).astype(np.int32)
    return LrnTable(table=table, mantissa_bits=MANTISSA_BITS, mul_frac=mul_frac, out_rshift=out_rshift)


def lrn_q7(x: np.ndarray, table: np.ndarray, *, local_size: int, region: str, mantissa_bits: int,
           out_rshift: int) -> np.ndarray:
    """nn_lrn_across_q7 / nn_lrn_within_q7 (int8[N, H, W, C] -> same shape).

    ``S`` is the exact integer sum of ``x*x`` over the window (``local_size`` channels
    centred on the channel, or a ``local_size`` square centred on the pixel; zeros
    outside), then S as a small float with ``mantissa_bits`` of mantissa gives the table
    index (:func:`table_index`, capped at the last entry) and ``out =
    saturate_q7((x * table[index] + NN_ROUND(out_rshift)) >> out_rshift)``.
    """
    x = np.asarray(x)
    table = np.asarray(table)
    if x.dtype != np.int8 or x.ndim != 4:
        raise ValueError(f"x must be a 4-D int8 array, got {x.dtype} {x.shape}")
    if table.dtype != np.int32 or table.ndim != 1 or table.size == 0:
        raise ValueError("table must be a non-empty 1-D int32 array")
    if local_size < 1 or local_size % 2 == 0 or region not in ("across", "within"):
        raise ValueError(f"LRN needs an odd local_size and region 'across' or 'within', got {local_size}, {region!r}")
    half = (local_size - 1) // 2
    sq = x.astype(np.int64) ** 2
    n, h, w, c = x.shape
    if region == "across":
        padded = np.pad(sq, ((0, 0), (0, 0), (0, 0), (half, half)))
        sums = sum(padded[..., i:i + c] for i in range(local_size))
    else:
        padded = np.pad(sq, ((0, 0), (half, half), (half, half), (0, 0)))
        rows = sum(padded[:, i:i + h] for i in range(local_size))
        sums = sum(rows[:, :, j:j + w] for j in range(local_size))
    index = np.minimum(table_index(sums, mantissa_bits), table.size - 1)
    acc = x.astype(np.int64) * table.astype(np.int64)[index] + nn_round(out_rshift)  # < 2**38: exact
    return saturate_q7(acc >> out_rshift)


@rule("norm_region {method}")
def lrn_across_channels(site: Site) -> bool:
    """nn_lrn_across_q7 (the project's own kernel) sums squares over neighbouring channels: norm_region ACROSS_CHANNELS."""
    return site.method == "across"


@rule("norm_region {method}")
def lrn_within_channel(site: Site) -> bool:
    """nn_lrn_within_q7 (the project's own kernel) sums squares over a square of neighbouring pixels: norm_region WITHIN_CHANNEL."""
    return site.method == "within"


CHOICE = Choice("LRN", (Candidate("nn_lrn_across_q7", (lrn_across_channels, sizes_fit_int16)),
                        Candidate("nn_lrn_within_q7", (lrn_within_channel, sizes_fit_int16))))


def _simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    a = op.args
    return lrn_q7(inputs[0], op.weight_data, local_size=a["local_size"],
                  region="across" if op.function == "nn_lrn_across_q7" else "within",
                  mantissa_bits=a["mantissa_bits"], out_rshift=op.formats["out_rshift"])


LRN_Q7 = Kernel(
    "lrn", _simulate,
    call="""\
    /* {{ op.layer }} */
{% if op.function == "nn_lrn_across_q7" %}
    nn_lrn_across_q7({{ buf[op.inputs[0]] }}, {{ out }}, {{ prefix }}_HEIGHT * {{ prefix }}_WIDTH, {{ prefix }}_CH,
                     {{ prefix }}_LOCAL_SIZE, {{ prefix }}_TABLE, {{ prefix }}_TABLE_SIZE, {{ prefix }}_MANTISSA_BITS,
                     {{ prefix }}_OUT_RSHIFT);
{% else %}
    nn_lrn_within_q7({{ buf[op.inputs[0]] }}, {{ out }}, {{ prefix }}_HEIGHT, {{ prefix }}_WIDTH, {{ prefix }}_CH,
                     {{ prefix }}_LOCAL_SIZE, {{ prefix }}_TABLE, {{ prefix }}_TABLE_SIZE, {{ prefix }}_MANTISSA_BITS,
                     {{ prefix }}_OUT_RSHIFT);
{% endif %}
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, multipliers x 2^{{ f.mul_frac }} (int32), out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_HEIGHT {{ a.height }}
#define {{ prefix }}_WIDTH {{ a.width }}
#define {{ prefix }}_CH {{ a.channels }}
#define {{ prefix }}_LOCAL_SIZE {{ a.local_size }}
#define {{ prefix }}_MANTISSA_BITS {{ a.mantissa_bits }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
#define {{ prefix }}_TABLE_SIZE {{ a.table_size }}
""",
    weights="""\
/* {{ op.layer }}: {{ op.function }} multipliers (k + a * S)^-beta scaled by 2^{{ op.formats.mul_frac }}, indexed by the sum of squares S as a float with {{ op.args.mantissa_bits }} mantissa bits */
const int32_t {{ prefix }}_TABLE[{{ prefix }}_TABLE_SIZE] NN_WEIGHT_SECTION = {
{{ op.weight_data | c_array }}
};
""", source="nn_lrn_q7.c")


class LRN(LayerKind):
    types = ("LRN",)
    choice = CHOICE

    def parse(self, layer: Any, err: ErrorMaker) -> ir.LRNParams:
        lp = layer.lrn_param
        if lp.local_size % 2 == 0:
            raise err(f"local_size {lp.local_size} must be odd (as Caffe requires)")
        return ir.LRNParams(local_size=lp.local_size, alpha=float(lp.alpha), beta=float(lp.beta), k=float(lp.k),
                            region="within" if lp.norm_region == 1 else "across")

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [lrn(inputs[0], layer.params)]  # type: ignore[arg-type]

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        p: ir.LRNParams = layer.params  # type: ignore[assignment]
        return generic_site(net, layer, kernel_h=p.local_size, kernel_w=p.local_size, method=p.region)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        p: ir.LRNParams = layer.params  # type: ignore[assignment]
        function = choose(CHOICE, self.site(ctx.net, layer), ctx.forced.get(layer.name))
        fmt = formats(ctx, layer)
        table = lrn_table(layer.name, p, fmt["in_frac"], fmt["out_frac"])
        c, h, w = ctx.shape(layer.bottoms[0])
        args = {"height": h, "width": w, "channels": c, "local_size": p.local_size,
                "mantissa_bits": table.mantissa_bits, "table_size": table.table.size}
        return Op(**stem(layer), kernel=LRN_Q7, function=function, inputs=ctx.bottoms, in_shape=(h, w, c),
                  args=args, weight_data=table.table, weight_bytes=4 * table.table.size,
                  macs=c * h * w * (window_size(p) + 1),
                  formats=dict(fmt, mul_frac=table.mul_frac, out_rshift=table.out_rshift))


def lrn_sum_of_squares(x: np.ndarray, p: ir.LRNParams) -> np.ndarray:
    """Caffe's LRN window sums of x**2 (zeros outside): over ``local_size`` neighbouring
    channels centred on each channel (ACROSS_CHANNELS), or over a ``local_size`` square
    centred on each pixel of the same channel (WITHIN_CHANNEL), on NCHW arrays."""
    half = (p.local_size - 1) // 2
    sq = x * x
    if p.region == "across":
        padded = np.pad(sq, ((0, 0), (half, half), (0, 0), (0, 0)))
        return sum(padded[:, i:i + x.shape[1]] for i in range(p.local_size))
    padded = np.pad(sq, ((0, 0), (0, 0), (half, half), (half, half)))
    rows = sum(padded[:, :, i:i + x.shape[2]] for i in range(p.local_size))
    return sum(rows[:, :, :, j:j + x.shape[3]] for j in range(p.local_size))


def lrn(x: np.ndarray, p: ir.LRNParams) -> np.ndarray:
    """Caffe LRN: ``x * (k + alpha/n * sum)^-beta`` across channels; within a channel Caffe
    averages the squares with a padded AVE pool (always dividing by n*n for an odd n and
    stride 1) and uses ``(1 + alpha * average)^-beta``."""
    x = np.asarray(x, dtype=np.float32)
    sums = lrn_sum_of_squares(x.astype(np.float64), p)
    if p.region == "across":
        scale = p.k + p.alpha / p.local_size * sums
    else:
        scale = 1.0 + p.alpha * sums / (p.local_size * p.local_size)
    return (x * scale ** -p.beta).astype(np.float32)
