"""Caffe's shape rules: fill ``Net.shapes`` with (C, H, W) for every tensor.

The formulas copy Caffe's Reshape() code exactly (including the pooling ceil rounding
and the clipping of a last window that would start in the padding), because the
generated C code must produce feature maps of exactly the size the trained net expects.
"""
from __future__ import annotations

import dataclasses
import math

from cmsisgen import ir
from cmsisgen.errors import CmsisgenError

Shape = tuple[int, int, int]


def _fail(net: ir.Net, layer: ir.Layer, msg: str) -> CmsisgenError:
    prefix = f"{net.source}: " if net.source else ""
    return CmsisgenError(f"{prefix}layer '{layer.name}' ({layer.type}): {msg}")


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Caffe ConvolutionLayer: floor((in + 2p - (d(k-1)+1)) / s) + 1."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def pool_out(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool = True) -> int:
    """Caffe PoolingLayer for one axis, *without* the padding clip (see pool_out_hw)."""
    span = size + 2 * pad - kernel
    return (-(-span // stride) if ceil_mode else span // stride) + 1


def pool_out_hw(h: int, w: int, p: ir.PoolParams) -> tuple[int, int]:
    """Pooled (H, W). Caffe clips a last window that starts inside the padding, and does
    so on both axes whenever any pad is non-zero."""
    oh = pool_out(h, p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode)
    ow = pool_out(w, p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode)
    if p.pad_h or p.pad_w:
        if (oh - 1) * p.stride_h >= h + p.pad_h:
            oh -= 1
        if (ow - 1) * p.stride_w >= w + p.pad_w:
            ow -= 1
    return oh, ow


def _one_bottom(net: ir.Net, layer: ir.Layer) -> Shape:
    if len(layer.bottoms) != 1:
        raise _fail(net, layer, f"expects 1 input, got {len(layer.bottoms)}")
    return net.shapes[layer.bottoms[0]]


def _conv(net: ir.Net, layer: ir.Layer, p: ir.ConvParams) -> Shape:
    c, h, w = _one_bottom(net, layer)
    if p.num_output <= 0:
        raise _fail(net, layer, "num_output must be positive")
    if p.group <= 0 or c % p.group or p.num_output % p.group:
        raise _fail(net, layer, f"group {p.group} does not divide input channels {c} "
                                f"and num_output {p.num_output}")
    if p.stride_h <= 0 or p.stride_w <= 0:
        raise _fail(net, layer, "stride must be positive")
    ext_h = p.dilation * (p.kernel_h - 1) + 1
    ext_w = p.dilation * (p.kernel_w - 1) + 1
    if p.kernel_h <= 0 or p.kernel_w <= 0 or ext_h > h + 2 * p.pad_h or ext_w > w + 2 * p.pad_w:
        raise _fail(net, layer, f"kernel {p.kernel_h}x{p.kernel_w} (dilation {p.dilation}) "
                                f"does not fit the padded input {h}x{w} (pad {p.pad_h},{p.pad_w})")
    return (p.num_output, conv_out(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation),
            conv_out(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation))


def _pool(net: ir.Net, layer: ir.Layer, p: ir.PoolParams) -> Shape:
    c, h, w = _one_bottom(net, layer)
    if p.global_pooling:
        if p.pad_h or p.pad_w or p.stride_h != 1 or p.stride_w != 1:
            raise _fail(net, layer, "global pooling needs pad 0 and stride 1")
        # Caffe sets the kernel to the input size; record it so later stages see real sizes.
        layer.params = p = dataclasses.replace(p, kernel_h=h, kernel_w=w)
    if p.stride_h <= 0 or p.stride_w <= 0:
        raise _fail(net, layer, "stride must be positive")
    if p.kernel_h <= 0 or p.kernel_w <= 0 or p.kernel_h > h + 2 * p.pad_h or p.kernel_w > w + 2 * p.pad_w:
        raise _fail(net, layer, f"kernel {p.kernel_h}x{p.kernel_w} does not fit the padded "
                                f"input {h}x{w} (pad {p.pad_h},{p.pad_w})")
    if p.pad_h >= p.kernel_h or p.pad_w >= p.kernel_w:
        raise _fail(net, layer, "pad must be smaller than the kernel")
    oh, ow = pool_out_hw(h, w, p)
    return c, oh, ow


def _concat(net: ir.Net, layer: ir.Layer, p: ir.ConcatParams) -> Shape:
    if not layer.bottoms:
        raise _fail(net, layer, "has no inputs")
    shapes = [net.shapes[b] for b in layer.bottoms]
    if p.axis != 1:
        raise _fail(net, layer, f"concatenation along axis {p.axis} is not supported (only channels, axis 1)")
    h, w = shapes[0][1:]
    for name, s in zip(layer.bottoms, shapes):
        if s[1:] != (h, w):
            listing = ", ".join(f"{b} {net.shapes[b]}" for b in layer.bottoms)
            raise _fail(net, layer, f"inputs differ in height/width: {listing}")
    return sum(s[0] for s in shapes), h, w


def _eltwise(net: ir.Net, layer: ir.Layer, p: ir.EltwiseParams) -> Shape:
    """Caffe EltwiseLayer: two or more inputs of one shape; one coefficient per input."""
    if len(layer.bottoms) < 2:
        raise _fail(net, layer, f"needs at least 2 inputs, got {len(layer.bottoms)}")
    if p.coeffs and len(p.coeffs) != len(layer.bottoms):
        raise _fail(net, layer, f"has {len(p.coeffs)} coefficients for {len(layer.bottoms)} inputs")
    shapes = [net.shapes[b] for b in layer.bottoms]
    if any(s != shapes[0] for s in shapes):
        listing = ", ".join(f"{b} {net.shapes[b]}" for b in layer.bottoms)
        raise _fail(net, layer, f"inputs differ in shape: {listing}")
    return shapes[0]


def _reshape(net: ir.Net, layer: ir.Layer, p: ir.ReshapeParams) -> Shape:
    """Caffe ReshapeLayer on the whole (1, C, H, W) blob: 0 copies the input's dimension at
    that index, one -1 is inferred; the batch stays 1; (N, K) means (K, 1, 1)."""
    c, h, w = _one_bottom(net, layer)
    full = (1, c, h, w)
    if not 1 <= len(p.dims) <= 4:
        raise _fail(net, layer, f"shape {list(p.dims)} must have 1 to 4 dimensions")
    dims = [full[i] if d == 0 else d for i, d in enumerate(p.dims)]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise _fail(net, layer, f"shape {list(p.dims)}: at most one -1 and no other negative dimension")
    known = 1
    for d in dims:
        known *= d if d != -1 else 1
    if -1 in dims:
        if known == 0 or (c * h * w) % known:
            raise _fail(net, layer, f"shape {list(p.dims)} does not divide the input's {c * h * w} values")
        dims[dims.index(-1)] = c * h * w // known
    if dims[0] != 1 or len(dims) == 1:
        raise _fail(net, layer, f"shape {list(p.dims)} must keep the batch as the first dimension")
    out = tuple(dims[1:]) + (1,) * (4 - len(dims))
    if out[0] * out[1] * out[2] != c * h * w:
        raise _fail(net, layer, f"shape {list(p.dims)} holds {out[0] * out[1] * out[2]} values, "
                                f"the input {c * h * w}")
    return out  # type: ignore[return-value]


def layer_output_shapes(net: ir.Net, layer: ir.Layer) -> list[Shape]:
    """Shapes of ``layer.tops`` given that its bottoms are already in ``net.shapes``."""
    for b in layer.bottoms:
        if b not in net.shapes:
            raise _fail(net, layer, f"input '{b}' has no known shape")
    p = layer.params
    t = layer.type
    if t == "Convolution" and isinstance(p, ir.ConvParams):
        out = _conv(net, layer, p)
    elif t == "Pooling" and isinstance(p, ir.PoolParams):
        out = _pool(net, layer, p)
    elif t == "InnerProduct" and isinstance(p, ir.InnerProductParams):
        _one_bottom(net, layer)
        out = (p.num_output, 1, 1)
    elif t == "Flatten":
        c, h, w = _one_bottom(net, layer)
        out = (c * h * w, 1, 1)
    elif t == "Concat" and isinstance(p, ir.ConcatParams):
        out = _concat(net, layer, p)
    elif t == "Reshape" and isinstance(p, ir.ReshapeParams):
        out = _reshape(net, layer, p)
    elif t in ("BatchNorm", "Scale", "PReLU", "Sigmoid", "TanH"):
        out = _one_bottom(net, layer)
    elif t == "Eltwise" and isinstance(p, ir.EltwiseParams):
        out = _eltwise(net, layer, p)
    elif t in ("ReLU", "Dropout", "Softmax", "Split", "LRN"):
        out = _one_bottom(net, layer)
    else:
        raise _fail(net, layer, "no shape rule for this layer type")
    return [out] * len(layer.tops)


def infer_shapes(net: ir.Net) -> None:
    """Fill ``net.shapes`` in layer order (the IR keeps layers in execution order)."""
    net.shapes = {k: tuple(v) for k, v in net.input_shapes.items()}  # type: ignore[misc]
    for layer in net.layers:
        for top, shape in zip(layer.tops, layer_output_shapes(net, layer)):
            if min(shape) <= 0:
                raise _fail(net, layer, f"output '{top}' would have shape {shape}")
            net.shapes[top] = shape


def expected_blob_shapes(net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
    """The blob shapes Caffe allocates for ``layer`` (needs ``net.shapes`` filled).

    Convolution: (O, C/group, kh, kw) [+ (O,)]; InnerProduct: (O, C*H*W), or (C*H*W, O)
    with transpose, [+ (O,)]; BatchNorm: mean, variance (C,) and the moving-average factor
    (1,); Scale: (C,) [+ (C,)]; PReLU: (C,), or () when the slope is shared; every other
    supported layer has no blobs.
    """
    p = layer.params
    if isinstance(p, ir.ConvParams):
        c = net.shapes[layer.bottoms[0]][0]
        shapes: list[tuple[int, ...]] = [(p.num_output, c // p.group, p.kernel_h, p.kernel_w)]
        return shapes + [(p.num_output,)] if p.bias_term else shapes
    if isinstance(p, ir.InnerProductParams):
        c, h, w = net.shapes[layer.bottoms[0]]
        shape = (c * h * w, p.num_output) if p.transpose else (p.num_output, c * h * w)
        return [shape, (p.num_output,)] if p.bias_term else [shape]
    if isinstance(p, ir.PReLUParams):  # Caffe keeps a shared slope as a 0-d (scalar) blob
        return [()] if p.channel_shared else [(net.shapes[layer.bottoms[0]][0],)]
    if isinstance(p, ir.BatchNormParams):
        c = net.shapes[layer.bottoms[0]][0]
        return [(c,), (c,), (1,)]
    if isinstance(p, ir.ScaleParams):
        c = net.shapes[layer.bottoms[0]][0]
        return [(c,), (c,)] if p.bias_term else [(c,)]
    return []
