"""Float reference forward pass with Caffe's semantics (NCHW, float32).

It is the yardstick the quantized network is measured against (float top-1,
agreement) and the source of activation ranges for calibration, so it follows
Caffe exactly where Caffe is unusual: ceil-mode pooling with the last window
clipped, and average pooling dividing by the window size clipped to the padded
image (padding cells count, cells beyond the padding do not).
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from . import ir
from .errors import CmsisgenError
from .shapes import pool_out_hw


def forward(net: ir.Net, x: np.ndarray, keep: Optional[Iterable[str]] = None) -> dict[str, np.ndarray]:
    """Run ``net`` on a batch ``x`` (N, C, H, W) for its single input.

    Returns every tensor (or only those in ``keep`` plus the outputs) as float32 NCHW;
    inner-product outputs are (N, C, 1, 1).
    """
    if len(net.input_shapes) != 1:
        raise CmsisgenError(f"{net.source}: cmsisgen supports one network input, found {len(net.input_shapes)}")
    (input_name, shape), = net.input_shapes.items()
    if tuple(x.shape[1:]) != tuple(shape):
        raise CmsisgenError(f"{net.source}: input '{input_name}' needs shape {tuple(shape)}, got {tuple(x.shape[1:])}")
    wanted = None if keep is None else set(keep) | set(net.outputs)
    last_use = ir.last_reads(layer.bottoms for layer in net.layers)
    values: dict[str, np.ndarray] = {input_name: np.asarray(x, dtype=np.float32)}
    for index, layer in enumerate(net.layers):
        inputs = [values[name] for name in layer.bottoms]
        outputs = _run_layer(layer, inputs)
        for top, value in zip(layer.tops, outputs):
            values[top] = value
        if wanted is not None:
            for name in layer.bottoms:
                if last_use.get(name) == index and name not in wanted:
                    values.pop(name, None)
    if wanted is not None:
        return {name: value for name, value in values.items() if name in wanted}
    return values


def _run_layer(layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    kind = layer.type
    if kind == "Convolution":
        return [convolution(inputs[0], layer)]
    if kind == "Pooling":
        return [pooling(inputs[0], layer.params)]
    if kind == "ReLU":
        slope = np.float32(layer.params.negative_slope)  # type: ignore[union-attr]
        x = inputs[0]
        return [(np.maximum(x, 0) + slope * np.minimum(x, 0)).astype(np.float32) if slope else
                np.maximum(x, 0).astype(np.float32)]
    if kind == "Sigmoid":
        return [(1.0 / (1.0 + np.exp(-inputs[0].astype(np.float64)))).astype(np.float32)]
    if kind == "TanH":
        return [np.tanh(inputs[0]).astype(np.float32)]
    if kind == "PReLU":
        x = inputs[0]
        slopes = np.broadcast_to(layer.blobs[0].astype(np.float32).reshape(-1), (x.shape[1],))
        return [(np.maximum(x, 0) + slopes[None, :, None, None] * np.minimum(x, 0)).astype(np.float32)]
    if kind == "InnerProduct":
        return [inner_product(inputs[0], layer)]
    if kind == "Softmax":
        z = inputs[0] - inputs[0].max(axis=1, keepdims=True)
        e = np.exp(z)
        return [(e / e.sum(axis=1, keepdims=True)).astype(np.float32)]
    if kind in ("Dropout", "Split"):
        return [inputs[0]] * len(layer.tops)
    if kind == "Flatten":
        n = inputs[0].shape[0]
        return [inputs[0].reshape(n, -1, 1, 1)]
    if kind == "Reshape":  # Caffe's dims: 0 copies the input's dimension, -1 is inferred
        x = inputs[0]
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(layer.params.dims)][1:]  # type: ignore[union-attr]
        out = x.reshape(x.shape[0], *dims)
        return [out.reshape(out.shape + (1,) * (4 - out.ndim))]
    if kind == "Concat":
        return [np.concatenate(inputs, axis=1)]
    if kind == "LRN":
        return [lrn(inputs[0], layer.params)]  # type: ignore[arg-type]
    if kind == "Eltwise":
        return [eltwise(inputs, layer.params)]
    if kind == "BatchNorm":
        return [batch_norm(inputs[0], layer)]
    if kind == "Scale":
        return [scale(inputs[0], layer)]
    raise CmsisgenError(f"layer '{layer.name}' ({kind}): no float implementation")


def convolution(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Cross-correlation with zero padding, as Caffe's im2col + GEMM computes it.

    im2col is built in HWC order one kernel tap at a time (strided slices, no Python
    loop over pixels) and multiplied in float32 BLAS, in chunks of images so that the
    column matrix stays around 32 M elements.
    """
    p: ir.ConvParams = layer.params  # type: ignore[assignment]
    if p.dilation != 1:
        raise CmsisgenError(f"layer '{layer.name}' (Convolution): dilation {p.dilation} is not supported")
    n, c, h, w = x.shape
    oh = (h + 2 * p.pad_h - p.kernel_h) // p.stride_h + 1
    ow = (w + 2 * p.pad_w - p.kernel_w) // p.stride_w + 1
    kh, kw, sh, sw = p.kernel_h, p.kernel_w, p.stride_h, p.stride_w
    padded = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (p.pad_h, p.pad_h), (p.pad_w, p.pad_w), (0, 0)))
    weights = layer.blobs[0].astype(np.float32)
    in_g, out_g = c // p.group, p.num_output // p.group
    out = np.empty((n, oh, ow, p.num_output), dtype=np.float32)
    chunk = max(1, (32 << 20) // max(1, oh * ow * kh * kw * c))
    for start in range(0, n, chunk):
        xb = padded[start:start + chunk]
        cols = np.empty((xb.shape[0], oh, ow, kh, kw, c), dtype=np.float32)
        for ky in range(kh):
            for kx in range(kw):
                cols[:, :, :, ky, kx, :] = xb[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
        for g in range(p.group):
            wg = weights[g * out_g:(g + 1) * out_g].transpose(0, 2, 3, 1).reshape(out_g, -1)
            cg = cols[..., g * in_g:(g + 1) * in_g].reshape(-1, kh * kw * in_g)
            out[start:start + chunk, :, :, g * out_g:(g + 1) * out_g] = (cg @ wg.T).reshape(xb.shape[0], oh, ow, out_g)
    if p.bias_term:
        out += layer.blobs[1].astype(np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def pool_windows(in_size: int, out_size: int, kernel: int, stride: int, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Caffe's window per output index: (start, end) clipped to the image, and the divisor
    size that average pooling uses (clipped to the padded image, not to the image)."""
    start = np.arange(out_size) * stride - pad
    end_padded = np.minimum(start + kernel, in_size + pad)
    size = end_padded - start
    return np.maximum(start, 0), np.minimum(end_padded, in_size), size


def pooling(x: np.ndarray, p: ir.PoolParams) -> np.ndarray:
    """Max or average pooling with Caffe's ceil-mode output size and window clipping."""
    n, c, h, w = x.shape
    if p.global_pooling:
        reduce = np.max if p.method == "max" else np.mean
        return reduce(x, axis=(2, 3), keepdims=True).astype(np.float32)
    out_h, out_w = pool_out_hw(h, w, p)
    hs, he, hsize = pool_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h)
    ws, we, wsize = pool_windows(w, out_w, p.kernel_w, p.stride_w, p.pad_w)
    out = np.empty((n, c, out_h, out_w), dtype=np.float32)
    if p.method == "max":
        # Reduce rows then columns: each separable step is a vectorized slice max.
        rows = np.stack([x[:, :, hs[i]:he[i], :].max(axis=2) for i in range(out_h)], axis=2)
        for j in range(out_w):
            out[:, :, :, j] = rows[:, :, :, ws[j]:we[j]].max(axis=3)
    else:
        rows = np.stack([x[:, :, hs[i]:he[i], :].sum(axis=2) for i in range(out_h)], axis=2)
        for j in range(out_w):
            out[:, :, :, j] = rows[:, :, :, ws[j]:we[j]].sum(axis=3)
        out /= (hsize[:, None] * wsize[None, :]).astype(np.float32)
    return out


def inner_product(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Caffe flattens each sample in C, H, W order before the matrix product."""
    p: ir.InnerProductParams = layer.params  # type: ignore[assignment]
    flat = x.reshape(x.shape[0], -1)
    weights = layer.blobs[0].astype(np.float32)
    if p.transpose:
        weights = weights.T
    out = flat @ weights.T
    if p.bias_term:
        out = out + layer.blobs[1].astype(np.float32)
    return out.reshape(x.shape[0], -1, 1, 1).astype(np.float32)


def eltwise(inputs: list[np.ndarray], p: ir.EltwiseParams) -> np.ndarray:
    """Caffe EltwiseLayer, accumulating in input order in float32 as Caffe does."""
    out = inputs[0].astype(np.float32)
    if p.operation == "sum":
        coeffs = p.coeffs or (1.0,) * len(inputs)
        out = out * np.float32(coeffs[0])
        for x, c in zip(inputs[1:], coeffs[1:]):
            out = out + np.float32(c) * x
    elif p.operation == "prod":
        for x in inputs[1:]:
            out = out * x
    else:
        for x in inputs[1:]:
            out = np.maximum(out, x)
    return out.astype(np.float32)


def batch_norm_factors(layer: ir.Layer) -> tuple[np.ndarray, np.ndarray]:
    """Caffe BatchNorm (stored statistics) as ``y = x * factor + offset`` per channel, float64.

    Caffe divides the stored sums by the scale factor blob (0 -> statistics of 0), then
    computes ``(x - mean) / sqrt(variance + eps)``.
    """
    mean, variance, count = (np.asarray(b, dtype=np.float64) for b in layer.blobs[:3])
    inv = 0.0 if count.reshape(-1)[0] == 0 else 1.0 / float(count.reshape(-1)[0])
    factor = 1.0 / np.sqrt(variance * inv + layer.params.eps)  # type: ignore[union-attr]
    return factor, -mean * inv * factor


def batch_norm(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Caffe's order of float32 operations: subtract the mean, then divide by the deviation."""
    mean, variance, count = layer.blobs[:3]
    inv = np.float32(0.0 if count.reshape(-1)[0] == 0 else 1.0 / count.reshape(-1)[0])
    std = np.sqrt(variance.astype(np.float32) * inv + np.float32(layer.params.eps))  # type: ignore[union-attr]
    centred = x - (mean.astype(np.float32) * inv)[None, :, None, None]
    return (centred / std[None, :, None, None]).astype(np.float32)


def scale(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Caffe Scale along channels: ``x * factor (+ bias)``."""
    out = x * layer.blobs[0].astype(np.float32)[None, :, None, None]
    if len(layer.blobs) > 1:
        out = out + layer.blobs[1].astype(np.float32)[None, :, None, None]
    return out.astype(np.float32)


def lrn_sum_of_squares(x: np.ndarray, p: ir.LRNParams) -> np.ndarray:
    """Caffe's LRN window sums of x**2 (zeros outside): over ``local_size`` neighbouring
    channels centred on each channel (ACROSS_CHANNELS), or over a ``local_size`` square
    centred on each pixel of the same channel (WITHIN_CHANNEL). Works for float and int
    arrays (N, C, H, W); the quantized kernel uses it on int64 squares of q7 values."""
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
