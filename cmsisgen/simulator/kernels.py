"""Bit-exact numpy models of the legacy CMSIS-NN q7 kernels, as built for a Cortex-M7.

The target library is CMSIS-NN 3.1 (CMSIS_5 5.9.0) compiled with ``ARM_MATH_DSP`` defined,
i.e. the SIMD code paths. Every function here reproduces, bit for bit, what that build
writes; where the DSP path and the plain-C reference path of the library disagree the DSP
path is modelled (see :func:`avepool_q7_hwc` and :func:`avepool_q7_hwc_plain_c`).

Conventions
-----------
* Activations are batches of int8 arrays in NHWC order (the generated C holds one image
  HWC, the batch axis is the simulator's own).
* Weights are passed in their LOGICAL layout: convolution ``[Cout, kh, kw, Cin]`` (which
  is also the byte order the HWC conv kernels read), fully connected ``[dim_out,
  dim_vec]`` (row major; the interleaved order of ``arm_fully_connected_q7_opt`` is a
  storage detail handled by :mod:`cmsisgen.mapper.layout`, it does not change results).
* All kernels are vectorised over the batch and over pixels; the only Python loops run
  over kernel taps or output columns/rows, never over pixels of a batch.

Accumulator rules shared by conv and FC (why they look like this)
----------------------------------------------------------------
The DSP kernels start every accumulator at ``(bias << bias_lshift) + NN_ROUND(out_rshift)``
in a 32-bit register, add the int8*int8 products with SMLAD (modular 32-bit, no
saturation), then store ``__SSAT(acc >> out_rshift, 8)``:

* ``NN_ROUND(s) = (1 << s) >> 1`` adds one half LSB of the output so the arithmetic
  right shift rounds half up (towards +inf) instead of flooring; for ``s == 0`` it is 0.
* ``>>`` on a negative ``q31_t`` is an arithmetic shift on every compiler the library
  supports, so the result is ``floor(acc / 2**s)`` (numpy ``>>`` on int64 is the same).
* ``__SSAT(v, 8)`` clamps to [-128, 127] (:func:`saturate_q7`).
* The sums are formed exactly here: conv and FC as a float32/float64 product in which
  every partial sum is provably exact, the shift and the start riding along
  (:class:`cmsisgen.simulator.exact_gemm.QuantizedProduct`), wrapped to int32 as the
  modular SMLAD accumulator does where a sum could reach that (real models never do).
"""

from __future__ import annotations

import numpy as np

from ..im2col import im2col, images_per_chunk
from .exact_gemm import QuantizedProduct, nn_round
from .exact_gemm import wrap_int32 as _wrap_int32
from .separable_pool import pool_separable

__all__ = [
    "nn_round",
    "saturate_q7",
    "conv_hwc_q7",
    "conv_1x1_hwc_q7",
    "depthwise_conv_hwc_q7",
    "maxpool_q7_hwc",
    "maxpool_q7_hwc_plain_c",
    "avepool_q7_hwc",
    "avepool_q7_hwc_plain_c",
    "pool_dsp_matches_plain_c_windows",
    "relu_q7",
    "group_conv_hwc_q7",
    "fully_connected_q7",
    "softmax_q7",
]



def saturate_q7(values) -> np.ndarray:
    """``__SSAT(v, 8)``: clamp integers to [-128, 127] and return int8."""
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.integer):
        v = v.astype(np.int64)
    return np.clip(v, -128, 127).astype(np.int8)


def _requantize(acc: np.ndarray, bias: np.ndarray, bias_lshift: int, out_rshift: int, k: int) -> np.ndarray:
    """``__SSAT(((bias << bias_lshift) + NN_ROUND(out_rshift) + acc) >> out_rshift, 8)``.

    ``acc`` holds exact integer k-term dot products (float array, last axis = channel);
    it may be overwritten. When the a-priori bound ``k * 2**14 + max|start|`` shows that
    the float type holds every value exactly and no 32-bit wrap can occur, the shift is
    done in place as ``floor(total * 2**-out_rshift)`` (exact: power-of-two scaling and
    floor of exactly represented integers); otherwise in wrapped int64.
    """
    bias_lshift, out_rshift = int(bias_lshift), int(out_rshift)
    if bias_lshift < 0 or bias_lshift > 31 or out_rshift > 31:
        raise ValueError(f"shifts must be in [0, 31], got bias_lshift={bias_lshift}, out_rshift={out_rshift}")
    start = (bias.astype(np.int64) << bias_lshift) + nn_round(out_rshift)
    bound = k * (1 << 14) + int(np.abs(start).max(initial=0))
    exact_limit = (1 << 24) if acc.dtype == np.float32 else (1 << 53)
    if bound < min(exact_limit, 1 << 31):
        acc += start.astype(acc.dtype)
        acc *= acc.dtype.type(2.0**-out_rshift)
        np.floor(acc, out=acc)
        np.clip(acc, -128, 127, out=acc)
        return acc.astype(np.int8)
    total = _wrap_int32(np.rint(acc).astype(np.int64) + start)
    return saturate_q7(total >> out_rshift)


def _as_int8(name: str, a, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype != np.int8:
        raise ValueError(f"{name} must be int8, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def _pair(v, name: str) -> tuple[int, int]:
    if np.ndim(v) == 0:
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


# --------------------------------------------------------------------------- convolution


def _conv_arguments(x, w, bias, stride, pad, out_hw):
    """conv_hwc_q7's arguments checked against what the kernels can take (see its docstring)."""
    x = _as_int8("x", x, 4)
    w = _as_int8("w", w, 4)
    bias = _as_int8("bias", bias, 1)
    _, h, wd, cin = x.shape
    cout, kh, kw, cin_w = w.shape
    if cin_w != cin:
        raise ValueError(f"weight Cin {cin_w} != input channels {cin}")
    if bias.shape[0] != cout:
        raise ValueError(f"bias length {bias.shape[0]} != Cout {cout}")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(pad, "pad")
    oh, ow = _pair(out_hw, "out_hw")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or min(oh, ow) < 1:
        raise ValueError("stride must be >= 1, pad >= 0, output size >= 1")
    if oh > (h + 2 * ph - kh) // sh + 1 or ow > (wd + 2 * pw - kw) // sw + 1:
        raise ValueError(
            f"output {oh}x{ow} larger than the convolution allows for input {h}x{wd}, "
            f"kernel {kh}x{kw}, pad {ph}x{pw}, stride {sh}x{sw}"
        )
    if cin * kh * kw > 0xFFFF:
        raise ValueError(f"Cin*kh*kw = {cin * kh * kw} exceeds the kernels' uint16 counters")
    return x, w, bias, (sh, sw), (ph, pw), (oh, ow)


def conv_hwc_q7(x, w, bias, *, stride, pad, out_hw, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """Model of arm_convolve_HWC_q7_{RGB,basic,fast} and _{basic,fast}_nonsquare.

    ``x`` int8[N, H, W, Cin], ``w`` int8[Cout, kh, kw, Cin], ``bias`` int8[Cout];
    ``stride=(sh, sw)``, ``pad=(ph, pw)``, ``out_hw=(oh, ow)``; returns int8[N, oh, ow, Cout].

    Output pixel (oy, ox) reads input rows ``oy*sh - ph + ky`` and columns
    ``ox*sw - pw + kx``; taps outside the image contribute 0 (the kernels fill the im2col
    buffer with zeros there). ``acc = (bias << bias_lshift) + NN_ROUND(out_rshift) +
    sum(x * w)`` and ``out = saturate_q7(acc >> out_rshift)`` (arithmetic shift).

    All five kernels compute exactly this whenever their preconditions hold (RGB:
    Cin == 3; fast: Cin % 4 == 0 and Cout % 2 == 0 -- otherwise they return
    ARM_MATH_SIZE_MISMATCH and write nothing; the reordering inside the fast kernels
    permutes input and weights identically, so the dot products are unchanged). The
    fast kernels' top/middle/bottom split assumes ``oh``/``ow`` do not exceed Caffe's
    ``(H + 2*ph - kh) // sh + 1``; larger values make the DSP build read outside the
    image, so they are rejected here. ``Cin*kh*kw`` must fit the kernels' uint16 column
    counter.
    """
    x, w, bias, (sh, sw), (ph, pw), (oh, ow) = _conv_arguments(x, w, bias, stride, pad, out_hw)
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape

    k = kh * kw * cin
    product = QuantizedProduct(w.reshape(cout, k), bias, bias_lshift, out_rshift)
    out = np.empty((n, oh, ow, cout), dtype=np.int8)
    chunk = max(1, min(n, images_per_chunk(oh * ow * product.columns)))
    # Reused from chunk to chunk (no fresh pages): the zero-padded images converted to the
    # product's float type (their border stays 0), the column rows, the product.
    hp = max(h + ph, (oh - 1) * sh + kh)
    wp = max(wd + pw, (ow - 1) * sw + kw)
    padded = np.zeros((chunk, hp, wp, cin), dtype=product.dtype)
    rows = product.rows(chunk * oh * ow)
    acc = np.empty((chunk * oh * ow, cout), dtype=product.dtype)
    for b0 in range(0, n, chunk):
        nb = min(chunk, n - b0)
        padded[:nb, ph:ph + h, pw:pw + wd] = x[b0:b0 + nb]
        im2col(padded[:nb], kh, kw, sh, sw, oh, ow, out=rows)
        m = nb * oh * ow
        np.matmul(rows[:m], product.weights, out=acc[:m])
        product.finish(acc[:m], out[b0:b0 + nb].reshape(m, cout))
    return out


def conv_1x1_hwc_q7(x, w, bias, *, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """Model of arm_convolve_1x1_HWC_q7_fast_nonsquare (DSP build).

    ``x`` int8[N, H, W, Cin], ``w`` int8[Cout, 1, 1, Cin] -> int8[N, H, W, Cout]. The DSP
    path converts two pixels at a time to q15 (reordered, no shift) and runs the same
    reordered q7 x q15 matrix kernel as the _fast convolutions: the products and the
    ``(bias << bias_lshift) + NN_ROUND(out_rshift)`` start are those of
    :func:`conv_hwc_q7` with a 1x1 kernel, stride 1 and no padding, so that is what it
    returns. The kernel refuses (ARM_MATH_SIZE_MISMATCH) any other geometry, Cin % 4 != 0
    or Cout % 2 != 0; it reads input pixel ``y * W + x`` for output pixel (y, x), so the
    output has the input's size.
    """
    x = _as_int8("x", x, 4)
    w = _as_int8("w", w, 4)
    if w.shape[1:3] != (1, 1):
        raise ValueError(f"1x1 convolution needs a 1x1 kernel, got {w.shape[1]}x{w.shape[2]}")
    if x.shape[3] % 4 or w.shape[0] % 2:
        raise ValueError(f"arm_convolve_1x1_HWC_q7_fast_nonsquare needs Cin % 4 == 0 and Cout % 2 == 0, "
                         f"got {x.shape[3]} and {w.shape[0]}")
    return conv_hwc_q7(x, w, bias, stride=1, pad=0, out_hw=x.shape[1:3], bias_lshift=bias_lshift,
                       out_rshift=out_rshift)


def depthwise_conv_hwc_q7(x, w, bias, *, stride, pad, out_hw, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """Model of arm_depthwise_separable_conv_HWC_q7 and _nonsquare (DSP build).

    ``x`` int8[N, H, W, C], ``w`` int8[kh, kw, C] (the byte order the kernels read:
    ``wt[(ky*kw + kx)*C + c]``), ``bias`` int8[C] -> int8[N, oh, ow, C]. Channel ``c`` is
    channel ``c`` of the input convolved with filter ``c`` alone::

        acc = (bias[c] << bias_lshift) + NN_ROUND(out_rshift) + sum_{taps in image} x * w
        out = saturate_q7(acc >> out_rshift)

    The DSP path im2cols one output pixel (``C*kh*kw`` bytes, zeros in the padding),
    then accumulates four channels at a time, two taps per SMLAD, and the ``C % 4`` last
    channels one at a time, all in modular 32-bit accumulators: exactly these sums.
    ``C`` need not be a multiple of anything; input and output channels must be equal
    (ARM_MATH_SIZE_MISMATCH otherwise).
    """
    x = _as_int8("x", x, 4)
    w = _as_int8("w", w, 3)
    bias = _as_int8("bias", bias, 1)
    n, h, wd, c = x.shape
    kh, kw, cw = w.shape
    if cw != c or bias.shape[0] != c:
        raise ValueError(f"depthwise weights {w.shape} / bias {bias.shape} do not match {c} channels")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(pad, "pad")
    oh, ow = _pair(out_hw, "out_hw")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or min(oh, ow) < 1:
        raise ValueError("stride must be >= 1, pad >= 0, output size >= 1")
    bias_lshift, out_rshift = int(bias_lshift), int(out_rshift)
    if not 0 <= bias_lshift <= 31 or not 0 <= out_rshift <= 31:
        raise ValueError(f"shifts must be in [0, 31], got bias_lshift={bias_lshift}, out_rshift={out_rshift}")
    hp = max(h + ph, (oh - 1) * sh + kh)
    wp = max(wd + pw, (ow - 1) * sw + kw)
    xp = np.zeros((n, hp, wp, c), dtype=np.int64)
    xp[:, ph:ph + h, pw:pw + wd, :] = x
    acc = np.zeros((n, oh, ow, c), dtype=np.int64)
    w64 = w.astype(np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :] * w64[ky, kx]
    acc += (bias.astype(np.int64) << bias_lshift) + nn_round(out_rshift)
    return saturate_q7(_wrap_int32(acc) >> out_rshift)


def group_conv_hwc_q7(x, w, bias, *, groups: int, stride, pad, out_hw, bias_lshift: int,
                      out_rshift: int) -> np.ndarray:
    """A grouped convolution as the generated code runs it: one dense HWC convolution per
    group on that group's channel slice (``w`` int8[Cout, kh, kw, Cin/groups], the groups'
    filters one after the other as in Caffe). Every dense q7 convolution computes
    :func:`conv_hwc_q7`, and gathering/scattering channel slices only copies bytes, so the
    result is the per-group convolutions concatenated along channels."""
    x = _as_int8("x", x, 4)
    w = _as_int8("w", w, 4)
    cin, cout = x.shape[3], w.shape[0]
    if groups < 1 or cin % groups or cout % groups or w.shape[3] * groups != cin:
        raise ValueError(f"{groups} groups do not split {cin} input and {cout} output channels")
    in_g, out_g = cin // groups, cout // groups
    parts = [conv_hwc_q7(np.ascontiguousarray(x[..., g * in_g:(g + 1) * in_g]), w[g * out_g:(g + 1) * out_g],
                         bias[g * out_g:(g + 1) * out_g], stride=stride, pad=pad, out_hw=out_hw,
                         bias_lshift=bias_lshift, out_rshift=out_rshift) for g in range(groups)]
    return np.concatenate(parts, axis=3)


# --------------------------------------------------------------------------- pooling


def _check_pool(x, kernel, pad, stride, out_dim) -> tuple[np.ndarray, int, int, int, int, int]:
    x = _as_int8("x", x, 4)
    n, h, w, c = x.shape
    if h != w:
        raise ValueError(f"the q7 HWC pooling kernels take square inputs, got {h}x{w}")
    k, p, s, o = int(kernel), int(pad), int(stride), int(out_dim)
    if k < 1 or s < 1 or p < 0 or o < 1:
        raise ValueError("kernel and stride must be >= 1, pad >= 0, out_dim >= 1")
    if o > h:
        # The in-place row pass writes output column i into input column i of the same row.
        raise ValueError(f"out_dim {o} > input size {h}: the DSP row pass would overrun the row")
    if (o - 1) * s - p >= h:
        raise ValueError("the last pooling window starts outside the image")
    if k > 256:
        # Sums live in q15: with at most 256 q7 terms they can never saturate or wrap.
        raise ValueError(f"pooling kernel {k} > 256 would overflow the q15 accumulators")
    return x, h, k, p, s, o


def _dsp_windows(dim_in: int, k: int, p: int, s: int, o: int, first_pass: bool):
    """[start, stop) index ranges the DSP pool passes visit, exactly as upstream computes.

    With ``t = i*stride - pad``: stop is ``dim_in`` when ``t + k >= dim_in`` else ``t + k``;
    start is ``t`` when ``t >= 0``, otherwise the row pass uses the TARGET column ``i``
    (not column 0) and the column pass uses row 0. The first element is always taken
    (``count`` starts at 1), so the range is never empty.
    """
    out = []
    for i in range(o):
        t = i * s - p
        stop = dim_in if t + k >= dim_in else t + k
        if t >= 0:
            start = t
        else:
            start = i if first_pass else 0
        out.append((start, max(stop, start + 1)))
    return out


def _trunc_div(num: np.ndarray, den: int) -> np.ndarray:
    """C integer division (truncation towards zero) of an int array by a positive int."""
    q = np.abs(num) // den
    return np.where(num < 0, -q, q)


def _pool_dsp(x, kernel, pad, stride, out_dim, mode: str, return_im_in: bool):
    x, h, k, p, s, o = _check_pool(x, kernel, pad, stride, out_dim)
    if not return_im_in and pool_dsp_matches_plain_c_windows(h, k, p, s, o) and p < k:
        return pool_separable(x, k, p, s, o, mode)  # the same result as the passes below, faster
    buf = x.copy()  # models Im_in (int8), overwritten in place by the row pass
    # Row (x) pass: output column i is written into input column i of the same row,
    # in increasing i, so later windows that reach back to columns < i read the
    # already pooled values -- reproduced by updating `buf` in the same order.
    for i, (a, b) in enumerate(_dsp_windows(h, k, p, s, o, first_pass=True)):
        win = buf[:, :, a:b, :]
        if mode == "max":
            if a < i < b:
                # upstream first copies column a over the target column i and then
                # compares against columns a+1..b-1, so the original column i is lost
                win = np.concatenate([buf[:, :, a:i, :], buf[:, :, i + 1 : b, :]], axis=2)
            buf[:, :, i, :] = win.max(axis=2)
        else:
            buf[:, :, i, :] = _trunc_div(win.sum(axis=2, dtype=np.int32), b - a)
    # Column (y) pass over the first out_dim columns of every row, into Im_out.
    out = np.empty((x.shape[0], o, o, x.shape[3]), dtype=np.int8)
    cols = buf[:, :, :o, :]
    for i, (a, b) in enumerate(_dsp_windows(h, k, p, s, o, first_pass=False)):
        win = cols[:, a:b]
        if mode == "max":
            out[:, i] = win.max(axis=1)
        else:
            out[:, i] = _trunc_div(win.sum(axis=1, dtype=np.int32), b - a)
    if return_im_in:
        return out, buf
    return out


def maxpool_q7_hwc(x, *, kernel, pad, stride, out_dim, return_im_in: bool = False):
    """Model of arm_maxpool_q7_HWC, DSP build (int8[N, D, D, C] -> int8[N, o, o, C]).

    The DSP path pools along x first, IN PLACE: for every input row and output column
    ``i`` it writes the max of the row window into column ``i`` of that same row of
    Im_in; then it pools those values along y into Im_out. Im_in is destroyed (the
    buffer planner must not reuse it as a live tensor); ``return_im_in=True`` also
    returns its final contents. Windows start at ``i*stride - pad`` and are clipped to
    the image, with two upstream quirks reproduced here: a row window whose start is
    negative starts at column ``i`` instead of 0, and a row window that starts left of
    ``i`` reads columns already overwritten (and, because the first window column is
    copied over the target before the comparisons, loses the original column ``i`` if that
    lies inside the window). All of this only matters when ``pad >= stride``
    (see :func:`pool_dsp_matches_plain_c_windows`); with ``pad < stride`` the result is
    the max over the clipped 2-D window. bufferA is not used.
    """
    return _pool_dsp(x, kernel, pad, stride, out_dim, "max", return_im_in)


def avepool_q7_hwc(x, *, kernel, pad, stride, out_dim, return_im_in: bool = False):
    """Model of arm_avepool_q7_HWC, DSP build (int8[N, D, D, C] -> int8[N, o, o, C]).

    Two truncating steps, not one: the row pass sums each clipped row window (q15) and
    stores ``sum / count`` (C division, truncating towards zero) IN PLACE into column
    ``i`` of the same Im_in row; the column pass then sums those truncated values over the
    clipped column window and divides by that window's count, truncating again. The
    divisor is always the clipped count (padding is never counted). Im_in is destroyed
    (``return_im_in=True`` also returns its final contents), and the same window quirks as
    :func:`maxpool_q7_hwc` apply when ``pad >= stride``. Upstream uses bufferA as a q15
    accumulator of ``dim_im_out * ch_im_in`` elements (2*dim_im_out*ch_im_in bytes).
    """
    return _pool_dsp(x, kernel, pad, stride, out_dim, "avg", return_im_in)


def _pool_plain_c(x, kernel, pad, stride, out_dim, mode: str) -> np.ndarray:
    x, h, k, p, s, o = _check_pool(x, kernel, pad, stride, out_dim)
    xi = x.astype(np.int32)
    out = np.empty((x.shape[0], o, o, x.shape[3]), dtype=np.int8)
    rng = [(max(i * s - p, 0), min(i * s - p + k, h)) for i in range(o)]
    for iy, (y0, y1) in enumerate(rng):
        for ix, (x0, x1) in enumerate(rng):
            win = xi[:, y0:y1, x0:x1, :]
            if mode == "max":
                out[:, iy, ix] = win.max(axis=(1, 2))
            else:
                out[:, iy, ix] = _trunc_div(win.sum(axis=(1, 2)), (y1 - y0) * (x1 - x0))
    return out


def maxpool_q7_hwc_plain_c(x, *, kernel, pad, stride, out_dim) -> np.ndarray:
    """arm_maxpool_q7_HWC plain-C path: max over the clipped 2-D window (for reference)."""
    return _pool_plain_c(x, kernel, pad, stride, out_dim, "max")


def avepool_q7_hwc_plain_c(x, *, kernel, pad, stride, out_dim) -> np.ndarray:
    """arm_avepool_q7_HWC plain-C path (NOT what the Cortex-M7 build runs).

    Sums the clipped 2-D window once and divides by its element count, truncating towards
    zero. It differs from :func:`avepool_q7_hwc` because truncating each row average before
    averaging the rows loses (and differently signs) fractional parts. Kept for tests and
    documentation of that difference.
    """
    return _pool_plain_c(x, kernel, pad, stride, out_dim, "avg")


def pool_dsp_matches_plain_c_windows(dim_in: int, kernel: int, pad: int, stride: int, out_dim: int) -> bool:
    """True when the DSP pool passes visit exactly the clipped windows of the plain-C path.

    False means the DSP build's result depends on its in-place quirks (negative row
    window start clamped to the target column, reads of already pooled columns); this
    happens for ``pad >= stride`` with more than one output column. Even when True,
    average pooling still differs from the plain-C path by its double truncation.
    """
    for i in range(int(out_dim)):
        t = i * stride - pad
        if t < 0 and i != 0:
            return False
        if t >= 0 and t < i:
            return False
    return True


# --------------------------------------------------------------------------- misc layers


def relu_q7(x) -> np.ndarray:
    """arm_relu_q7: negative values become 0 (the DSP mask trick is exactly this)."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x must be int8, got {x.dtype}")
    return np.maximum(x, np.int8(0))


def fully_connected_q7(vec, w, bias, *, bias_lshift: int, out_rshift: int) -> np.ndarray:
    """arm_fully_connected_q7 / arm_fully_connected_q7_opt (same results).

    ``vec`` int8[N, dim_vec], ``w`` int8[dim_out, dim_vec] (logical, row major),
    ``bias`` int8[dim_out] -> int8[N, dim_out]; ``out = saturate_q7(((bias << bias_lshift)
    + NN_ROUND(out_rshift) + w @ v) >> out_rshift)``. The _opt kernel only differs in how
    the weights are stored (see mapper.layout.interleave_fc_opt).
    """
    vec = _as_int8("vec", vec, 2)
    w = _as_int8("w", w, 2)
    bias = _as_int8("bias", bias, 1)
    if w.shape[1] != vec.shape[1]:
        raise ValueError(f"weights take {w.shape[1]} inputs, vector has {vec.shape[1]}")
    if bias.shape[0] != w.shape[0]:
        raise ValueError(f"bias length {bias.shape[0]} != dim_out {w.shape[0]}")
    if w.shape[1] > 0xFFFF or w.shape[0] > 0xFFFF:
        raise ValueError("dim_vec and dim_out must fit uint16")
    return QuantizedProduct(w, bias, bias_lshift, out_rshift)(vec)


def softmax_q7(vec) -> np.ndarray:
    """arm_softmax_q7: a base-2 "softmax" in integers (int8[N, dim] -> int8[N, dim]).

    Exactly the upstream arithmetic (the same in DSP and plain-C builds)::

        base  = max(-128, max_i x_i) - 8
        sum   = sum_i 1 << clamp(x_i - base, 0, 7)
        ob    = (1 << 20) // sum                    (sum > 0, so floor == trunc)
        out_i = saturate_q7(ob >> clamp(13 + base - x_i, 0, 31))

    i.e. y_i ~ 2**x_i / sum_j 2**x_j in Q0.7, where inputs more than 8 below the max count
    as 2**-1 ... 2**0 of the smallest bucket; the maximum element counts as 2**7 (its
    ``x - base`` of 8 saturates to 7), so a lone maximum gives 127 after saturation.
    """
    vec = _as_int8("vec", vec, 2)
    x = vec.astype(np.int64)
    base = np.maximum(x.max(axis=1, keepdims=True), -128) - 8
    total = (np.int64(1) << np.clip(x - base, 0, 7)).sum(axis=1, keepdims=True)
    output_base = (1 << 20) // total
    shift = np.clip(13 + base - x, 0, 31)
    return saturate_q7(output_base >> shift)
