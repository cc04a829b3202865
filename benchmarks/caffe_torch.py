"""A loaded Caffe net (:class:`cmsisgen.ir.Net`, before BatchNorm folding) as a trainable torch
module with Caffe's forward semantics, so what it learns exports to a .caffemodel that scores
the same in cmsisgen (``benchmarks/train_catalogue.py`` checks it image by image).

Only the layer kinds the trained catalogue nets use are here. Where torch's own op differs
from Caffe it is written as Caffe computes it: pooling in ceil mode (torch's ``ceil_mode``
drops a last window starting in the padding, as Caffe does, and its average divides by the
window clipped to the padded image, as Caffe's), LRN from summed squares, BatchNorm from the
stored statistics divided by the stored scale factor (kept fixed: Caffe's deploy BatchNorm
never updates them). Scale factors, PReLU slopes, convolution and inner-product blobs are
trained; convolutions and inner products start from torch's default initialisation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cmsisgen import ir

#: Layer types whose blobs are trained.
TRAINED = {"Convolution", "InnerProduct", "Scale", "PReLU"}
#: Output activations left out of the training graph: the loss reads their input.
SQUASHERS = {"Softmax", "Sigmoid"}


def logits_tensor(net: ir.Net) -> str:
    """The tensor training scores: the single output, or the input of its final Softmax/Sigmoid."""
    (output,) = net.outputs
    producer = net.producer(output)
    return producer.bottoms[0] if producer is not None and producer.type in SQUASHERS else output


class CaffeTorch(nn.Module):
    """``forward(x)`` gives the logits tensor (:func:`logits_tensor`) of ``net``, NCHW float32."""

    def __init__(self, net: ir.Net) -> None:
        super().__init__()
        self.net = net
        self.logits = logits_tensor(net)
        self.layers = [layer for layer in net.layers]
        self.params = nn.ParameterDict()
        self.fixed: dict[str, list[torch.Tensor]] = {}
        for layer in self.layers:
            if layer.type in ("Convolution", "InnerProduct"):
                self._init_weighted(layer)
            elif layer.type in TRAINED:
                for i, blob in enumerate(layer.blobs):
                    self.params[f"{layer.name}__{i}"] = nn.Parameter(torch.from_numpy(blob.astype(np.float32).copy()))
            elif layer.blobs:
                self.fixed[layer.name] = [torch.from_numpy(b.astype(np.float32).copy()) for b in layer.blobs]

    def _init_weighted(self, layer: ir.Layer) -> None:
        """torch's default initialisation for a layer of the blobs' shapes (Kaiming uniform)."""
        shapes = [b.shape for b in layer.blobs]
        if layer.type == "Convolution":
            p: ir.ConvParams = layer.params  # type: ignore[assignment]
            out, cin_g, kh, kw = shapes[0]
            module = nn.Conv2d(cin_g * p.group, out, (kh, kw), groups=p.group, bias=len(shapes) > 1)
        else:
            module = nn.Linear(shapes[0][1], shapes[0][0], bias=len(shapes) > 1)
        tensors = [module.weight] + ([module.bias] if module.bias is not None else [])
        for i, tensor in enumerate(tensors):
            self.params[f"{layer.name}__{i}"] = nn.Parameter(tensor.detach().reshape(shapes[i]).clone())

    def blobs(self, layer: ir.Layer) -> list[torch.Tensor]:
        if layer.type in TRAINED:
            return [self.params[f"{layer.name}__{i}"] for i in range(len(layer.blobs))]
        return self.fixed.get(layer.name, [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (name,) = self.net.input_shapes
        values = {name: x}
        for layer in self.layers:
            outs = forward_layer(layer, [values[b] for b in layer.bottoms], self.blobs(layer))
            values.update(zip(layer.tops, outs))
            if self.logits in layer.tops:
                break
        out = values[self.logits]
        return out.reshape(out.shape[0], -1)

    def trained_blobs(self) -> dict[str, list[np.ndarray]]:
        """Layer name -> its blobs in Caffe's layout, float32, as the .caffemodel stores them."""
        return {layer.name: [t.detach().numpy().astype(np.float32) for t in self.blobs(layer)]
                for layer in self.layers if layer.blobs}


def forward_layer(layer: ir.Layer, inputs: list[torch.Tensor], blobs: list[torch.Tensor]) -> list[torch.Tensor]:
    """One layer, as Caffe's forward computes it."""
    p, x = layer.params, inputs[0]
    t = layer.type
    if t == "Convolution":
        return [F.conv2d(x, blobs[0], blobs[1] if len(blobs) > 1 else None, (p.stride_h, p.stride_w),
                         (p.pad_h, p.pad_w), (p.dilation_h, p.dilation_w), p.group)]
    if t == "InnerProduct":
        return [F.linear(x.reshape(x.shape[0], -1), blobs[0], blobs[1] if len(blobs) > 1 else None)[:, :, None, None]]
    if t == "Pooling":
        return [_pool(x, p)]
    if t == "ReLU":
        return [F.leaky_relu(x, p.negative_slope) if p.negative_slope else F.relu(x)]
    if t in ("Sigmoid", "TanH"):
        return [torch.sigmoid(x) if t == "Sigmoid" else torch.tanh(x)]
    if t == "Softmax":
        return [F.softmax(x, dim=1)]
    if t == "Concat":
        return [torch.cat(inputs, dim=p.axis)]
    if t == "Eltwise":
        return [_eltwise(inputs, p)]
    if t == "LRN":
        return [_lrn(x, p)]
    if t == "BatchNorm":
        mean, variance, count = blobs[:3]
        inv = 0.0 if float(count.reshape(-1)[0]) == 0 else 1.0 / float(count.reshape(-1)[0])
        return [(x - (mean * inv)[None, :, None, None]) / torch.sqrt(variance * inv + p.eps)[None, :, None, None]]
    if t == "Scale":
        out = x * blobs[0][None, :, None, None]
        return [out + blobs[1][None, :, None, None] if len(blobs) > 1 else out]
    if t in ("Split", "Dropout"):
        return [x] * len(layer.tops)
    raise NotImplementedError(f"{layer.name}: no Caffe-exact torch twin for {t} here")


def _pool(x: torch.Tensor, p: ir.PoolParams) -> torch.Tensor:
    if p.global_pooling:
        kernel, stride, pad = (x.shape[2], x.shape[3]), (1, 1), (0, 0)
    else:
        kernel, stride, pad = (p.kernel_h, p.kernel_w), (p.stride_h, p.stride_w), (p.pad_h, p.pad_w)
    if p.method == "max":
        return F.max_pool2d(x, kernel, stride, pad, ceil_mode=p.ceil_mode)
    return F.avg_pool2d(x, kernel, stride, pad, ceil_mode=p.ceil_mode, count_include_pad=True)


def _eltwise(inputs: list[torch.Tensor], p: ir.EltwiseParams) -> torch.Tensor:
    if p.operation == "sum":
        coeffs = p.coeffs or (1.0,) * len(inputs)
        return sum(c * x for c, x in zip(coeffs, inputs))
    out = inputs[0]
    for x in inputs[1:]:
        out = out * x if p.operation == "prod" else torch.maximum(out, x)
    return out


def _lrn(x: torch.Tensor, p: ir.LRNParams) -> torch.Tensor:
    """``x * (k + alpha/n * sum)^-beta`` across channels; within a channel Caffe's padded AVE
    pool of the squares (dividing by n*n) and ``(1 + alpha * average)^-beta``."""
    half = (p.local_size - 1) // 2
    sq = x * x
    if p.region == "across":
        padded = F.pad(sq, (0, 0, 0, 0, half, half))
        sums = sum(padded[:, i:i + x.shape[1]] for i in range(p.local_size))
        return x * (p.k + p.alpha / p.local_size * sums) ** -p.beta
    average = F.avg_pool2d(sq, p.local_size, 1, half, count_include_pad=True)
    return x * (1.0 + p.alpha * average) ** -p.beta
