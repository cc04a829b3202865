#!/usr/bin/env python3
"""Write the ImageNet-size benchmark nets as deploy prototxts (the .prototxt files beside
this script are its output, committed so that they can be read and compiled as they are).

    python3 benchmarks/models/make_prototxts.py   # rewrites mobilenet_v1, squeezenet_v1_1, alexnet

They follow the published architectures layer for layer (MobileNet v1 1.0-224 with its
depthwise convolutions as ``Convolution`` group = channels, BatchNorm + Scale, ReLU;
SqueezeNet v1.1 with its Fire modules and Concat; AlexNet (BVLC) with LRN, grouped
convolutions and 4096-wide inner products); weights are not kept here:
``benchmarks/random_weights.py`` makes seeded random ones at benchmark time.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


class Writer:
    """Text of one prototxt, a layer at a time, each reading the previous layer's top."""

    def __init__(self, name: str, shape: tuple[int, int, int]) -> None:
        c, h, w = shape
        self.lines = [f'name: "{name}"', 'input: "data"',
                      f"input_shape {{ dim: 1 dim: {c} dim: {h} dim: {w} }}"]
        self.top = "data"

    def add(self, name: str, type_: str, params: str = "", bottoms: tuple[str, ...] = (),
            inplace: bool = False) -> str:
        bottoms = bottoms or (self.top,)
        top = bottoms[0] if inplace else name
        body = [f'  name: "{name}"', f'  type: "{type_}"'] + [f'  bottom: "{b}"' for b in bottoms]
        body.append(f'  top: "{top}"')
        if params:
            body.append("  " + params)
        self.lines.append("layer {\n" + "\n".join(body) + "\n}")
        self.top = top
        return top

    def conv(self, name: str, out: int, k: int, stride: int = 1, pad: int = 0, group: int = 1,
             bias: bool = True, bottom: str = "") -> str:
        extra = "" if bias else " bias_term: false"
        extra += f" group: {group}" if group > 1 else ""
        return self.add(name, "Convolution", f"convolution_param {{ num_output: {out} kernel_size: {k} "
                        f"stride: {stride} pad: {pad}{extra} }}", (bottom,) if bottom else ())

    def relu(self, name: str) -> str:
        return self.add(name, "ReLU", inplace=True)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def mobilenet_v1() -> str:
    """MobileNet v1 1.0-224: 13 depthwise-separable blocks, 4.2 M weights, 1000 classes."""
    net = Writer("MobileNet_v1", (3, 224, 224))

    def conv_bn(name: str, out: int, k: int, stride: int, group: int = 1) -> None:
        net.conv(name, out, k, stride, pad=k // 2, group=group, bias=False)
        net.add(name + "/bn", "BatchNorm", "batch_norm_param { use_global_stats: true eps: 1e-5 }", inplace=True)
        net.add(name + "/scale", "Scale", "scale_param { bias_term: true }", inplace=True)
        net.relu(name + "/relu")

    conv_bn("conv1", 32, 3, 2)
    channels = 32
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (out, stride) in enumerate(blocks, start=2):
        conv_bn(f"conv{i}_dw", channels, 3, stride, group=channels)
        conv_bn(f"conv{i}_sep", out, 1, 1)
        channels = out
    net.add("pool6", "Pooling", "pooling_param { pool: AVE global_pooling: true }")
    net.conv("fc7", 1000, 1)
    net.add("prob", "Softmax")
    return net.text()


def squeezenet_v1_1() -> str:
    """SqueezeNet v1.1: eight Fire modules (squeeze 1x1, expand 1x1 and 3x3 joined by Concat)."""
    net = Writer("SqueezeNet_v1.1", (3, 227, 227))
    net.conv("conv1", 64, 3, 2)
    net.relu("relu_conv1")
    pool = "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"
    net.add("pool1", "Pooling", pool)
    fires = [(16, 64), (16, 64), None, (32, 128), (32, 128), None, (48, 192), (48, 192), (64, 256), (64, 256)]
    index = 2
    for i, fire in enumerate(fires):
        if fire is None:
            net.add(f"pool{i + 1}", "Pooling", pool)
            continue
        squeeze, expand = fire
        name = f"fire{index}"
        s = net.conv(f"{name}/squeeze1x1", squeeze, 1)
        net.relu(f"{name}/relu_squeeze1x1")
        a = net.conv(f"{name}/expand1x1", expand, 1, bottom=s)
        net.relu(f"{name}/relu_expand1x1")
        b = net.conv(f"{name}/expand3x3", expand, 3, pad=1, bottom=s)
        net.relu(f"{name}/relu_expand3x3")
        net.add(f"{name}/concat", "Concat", bottoms=(a, b))
        index += 1
    net.add("drop9", "Dropout", "dropout_param { dropout_ratio: 0.5 }", inplace=True)
    net.conv("conv10", 1000, 1)
    net.relu("relu_conv10")
    net.add("pool10", "Pooling", "pooling_param { pool: AVE global_pooling: true }")
    net.add("prob", "Softmax")
    return net.text()


def alexnet() -> str:
    """BVLC AlexNet: LRN, grouped convolutions, 4096-wide inner products (61 M weights)."""
    net = Writer("AlexNet", (3, 227, 227))
    lrn = "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }"
    pool = "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"
    net.conv("conv1", 96, 11, 4)
    net.relu("relu1")
    net.add("norm1", "LRN", lrn)
    net.add("pool1", "Pooling", pool)
    net.conv("conv2", 256, 5, pad=2, group=2)
    net.relu("relu2")
    net.add("norm2", "LRN", lrn)
    net.add("pool2", "Pooling", pool)
    net.conv("conv3", 384, 3, pad=1)
    net.relu("relu3")
    net.conv("conv4", 384, 3, pad=1, group=2)
    net.relu("relu4")
    net.conv("conv5", 256, 3, pad=1, group=2)
    net.relu("relu5")
    net.add("pool5", "Pooling", pool)
    for i, out in ((6, 4096), (7, 4096)):
        net.add(f"fc{i}", "InnerProduct", f"inner_product_param {{ num_output: {out} }}")
        net.relu(f"relu{i}")
        net.add(f"drop{i}", "Dropout", "dropout_param { dropout_ratio: 0.5 }", inplace=True)
    net.add("fc8", "InnerProduct", "inner_product_param { num_output: 1000 }")
    net.add("prob", "Softmax")
    return net.text()


NETS = {"mobilenet_v1": mobilenet_v1, "squeezenet_v1_1": squeezenet_v1_1, "alexnet": alexnet}


def main() -> None:
    for name, build in NETS.items():
        (HERE / f"{name}.prototxt").write_text(build())


if __name__ == "__main__":
    main()
