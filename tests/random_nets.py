"""A catalogue of small random networks that together make the mapper emit every kernel.

Each entry is a layer list for ``caffe_models.write_model`` plus an input shape, the
inner-product variant to compile with, and the functions its program must contain (the
tests check that, so a mapper change that silently stops covering a kernel is noticed).
Together the entries cover every function in :data:`ALL_FUNCTIONS`:

* convolutions: ``arm_convolve_HWC_q7_RGB``, ``_fast``, ``_fast_nonsquare``, ``_basic``,
  ``_basic_nonsquare``;
* ``arm_maxpool_q7_HWC``, ``arm_avepool_q7_HWC``, ``arm_relu_q7``,
  ``arm_fully_connected_q7_opt`` and (fc_variant "plain") ``arm_fully_connected_q7``,
  ``arm_softmax_q7``, the project's own ``nn_pool_q7``, ``nn_concat_channels_q7`` and the ``memcpy`` copies the
  buffer planner inserts (ReLU on a tensor read later, pooling of a tensor read later);

and awkward shapes: odd sizes, channel counts that are not multiples of 4, odd output
channels, non-square inputs, kernels, strides and padding, ceil-mode pooling remainders,
padded pooling (pad < stride for the CMSIS-NN kernels; nn_pool_q7 for pad >= stride, padded
average pooling, non-square images and windows, kernels smaller than the stride, floor
mode), global average pooling straight into a softmax, an inner
product after conv/pool stacks and straight on the image, branches concatenated, a ReLU
whose input another branch still reads, Split / Dropout / Flatten aliases; the byte movers
(``nn_copy_strided_q7``: Slice of channels and rows, Crop, ShuffleChannel, Permute;
``nn_upsample_nearest_q7``; SSD's Permute + Flatten heads as aliases).

:func:`write_random_net` writes one entry with random weights and a random calibration
.npz (``x`` uint8 NHWC, ``y`` labels) and returns the paths.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from caffe_models import layer as L
from caffe_models import write_model

ALL_FUNCTIONS = frozenset({
    "arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast", "arm_convolve_HWC_q7_fast_nonsquare",
    "arm_convolve_HWC_q7_basic_nonsquare",
    "arm_maxpool_q7_HWC", "arm_avepool_q7_HWC", "arm_relu_q7",
    "arm_fully_connected_q7_opt", "arm_fully_connected_q7", "arm_softmax_q7",
    "nn_concat_channels_q7", "memcpy",
    "nn_eltwise_sum_q7", "nn_eltwise_prod_q7", "nn_eltwise_max_q7", "nn_scale_q7",
    "nn_prelu_q7", "arm_nn_activations_direct_q7",
    "arm_convolve_1x1_HWC_q7_fast_nonsquare",
    "arm_depthwise_separable_conv_HWC_q7_nonsquare", "nn_lrn_across_q7", "nn_lrn_within_q7",
    "nn_lookup_q7", "nn_argmax_q7",
    "nn_conv_q7", "nn_deconv_q7",
    # pooling of any geometry (issue 12): the project's own kernel
    "nn_pool_q7",
    "nn_copy_strided_q7", "nn_upsample_nearest_q7",
})


@dataclass(frozen=True)
class NetSpec:
    name: str
    layers: list
    input_shape: tuple[int, int, int]          # (C, H, W); C is 1 (gray) or 3 (RGB)
    functions: frozenset                       # functions the compiled program must call
    fc_variant: str = "opt"
    about: str = ""
    calib_size: tuple[int, int] | None = None  # (H, W) of the calibration images; None: input size
    extra: dict = field(default_factory=dict)  # other compile options (mean, scale, bgr)


def _spec(name, layers, shape, functions, about, **kw) -> NetSpec:
    return NetSpec(name=name, layers=layers, input_shape=shape, functions=frozenset(functions),
                   about=about, **kw)


#: BatchNorm blobs for 8 channels (mean, variance, moving-average count 4) and Scale blobs.
BN8 = [np.linspace(-0.4, 0.4, 8) * 4, np.linspace(0.05, 0.5, 8) * 4, np.array([4.0])]
SCALE8 = [np.linspace(1.5, -0.5, 8), np.linspace(-0.2, 0.3, 8)]


def _bn_scale_relu(i: int) -> list:
    """BatchNorm + Scale (8 channels, in place, folded into the layer before them) + ReLU."""
    return [L(f"bn{i}", "BatchNorm", inplace=True, weights=BN8),
            L(f"scale{i}", "Scale", inplace=True, bias_term=True, weights=SCALE8), L(f"relu{i}", "ReLU", inplace=True)]

CATALOGUE: dict[str, NetSpec] = {s.name: s for s in [
    _spec("rgb_ceilpool_fcplain", [
        # 9x9 RGB, k3 s2 p1, odd output channels -> 5x5x5; max pool k2 s2 on 5 (ceil remainder)
        L("conv1", "Convolution", num_output=5, kernel_size=3, pad=1, stride=2),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=10),
        L("prob", "Softmax"),
    ], (3, 9, 9), {"arm_convolve_HWC_q7_RGB", "arm_relu_q7", "arm_maxpool_q7_HWC",
                   "arm_fully_connected_q7", "arm_softmax_q7"},
        "RGB conv with stride/padding on an odd size, ceil-mode max pool, plain FC",
        fc_variant="plain"),
    _spec("fast_pools_7x7", [
        # 7x7: RGB conv to 8 ch, fast 3x3 conv 8->8, max k3 s2 (exact), ave k2 s2 on 3 (ceil)
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="MAX", kernel_size=3, stride=2),
        L("conv3", "Convolution", num_output=4, kernel_size=1),
        L("pool3", "Pooling", pool="AVE", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=7),
        L("prob", "Softmax"),
    ], (3, 7, 7), {"arm_convolve_HWC_q7_fast", "arm_maxpool_q7_HWC", "arm_avepool_q7_HWC",
                   "arm_fully_connected_q7_opt"},
        "fast convs, 7x7 k3 s2 max pool, 3x3 k2 s2 average pool remainder, FC after the stack"),
    _spec("ave_remainder_padded", [
        # 8x8, average k3 s2 (ceil remainder: 4x4), then a padded average pool k3 s2 p1 (nn_pool_q7)
        L("conv1", "Convolution", num_output=12, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="AVE", kernel_size=3, stride=2),
        L("conv2", "Convolution", num_output=10, kernel_size=3, stride=2, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
        L("gap", "Pooling", pool="AVE", global_pooling=True),
        L("prob", "Softmax"),
    ], (3, 8, 8), {"arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast", "arm_avepool_q7_HWC",
                   "arm_softmax_q7"},
        "average pools with a ceil remainder, with padding (nn_pool_q7), global, softmax on 1x1"),
    _spec("nonsquare", [
        # 7x10 input: every layer non-square; fast_nonsquare with non-square kernel/stride/pad
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=6, kernel_h=3, kernel_w=2, stride_h=2, stride_w=1,
          pad_h=1, pad_w=0),
        L("relu2", "ReLU", inplace=True),
        L("conv3", "Convolution", num_output=3, kernel_h=1, kernel_w=3, stride_h=1, stride_w=2),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 7, 10), {"arm_convolve_HWC_q7_basic_nonsquare", "arm_convolve_HWC_q7_fast_nonsquare"},
        "non-square input, kernels, strides and padding; FC straight after convs"),
    _spec("square_nonsquare_kernels", [
        # square 9x9 input with non-square kernels: fast_nonsquare (in 4, even out) and
        # basic_nonsquare (odd out); padding only in one direction
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("conv2", "Convolution", num_output=8, kernel_h=1, kernel_w=3, pad_h=0, pad_w=1,
          stride_h=1, stride_w=2),
        L("relu2", "ReLU", inplace=True),
        L("conv3", "Convolution", num_output=5, kernel_h=3, kernel_w=1, stride_h=2, stride_w=1,
          pad_h=1, pad_w=0),
        L("ip1", "InnerProduct", num_output=4),
    ], (3, 9, 9), {"arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast_nonsquare",
                   "arm_convolve_HWC_q7_basic_nonsquare"},
        "square input with 1x3 / 3x1 kernels, stride in one axis, no softmax"),
    _spec("gray_basic_odd", [
        # gray 11x11: basic convs (1, 5 and 8-with-odd-output channels), padded max pool
        L("conv1", "Convolution", num_output=5, kernel_size=5, stride=2, pad=2),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("pool2", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=1),
        L("conv3", "Convolution", num_output=3, kernel_size=2),
        L("relu3", "ReLU", inplace=True),
        L("ip1", "InnerProduct", num_output=6),
        L("prob", "Softmax"),
    ], (1, 11, 11), {"arm_convolve_HWC_q7_basic_nonsquare", "arm_maxpool_q7_HWC"},
        "gray input, 5x5 stride-2 conv, channels 1/5/8->3 (basic), padded max pool"),
    _spec("branches_concat", [
        # conv1 feeds a separate-top ReLU, an average pool and a conv: copies for both the
        # ReLU and the pooling (their input is read later); two convs from one tensor
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("relu1", "ReLU", "conv1", "relu1"),
        L("pool_a", "Pooling", "relu1", "pool_a", pool="MAX", kernel_size=2, stride=2),
        L("pool_b", "Pooling", "conv1", "pool_b", pool="AVE", kernel_size=2, stride=2),
        L("conv_c", "Convolution", "conv1", "conv_c", num_output=4, kernel_size=2, stride=2),
        L("conv_d", "Convolution", "conv1", "conv_d", num_output=3, kernel_size=3, stride=2, pad=1),
        L("cat", "Concat", ["pool_a", "pool_b", "conv_c", "conv_d"], "cat"),
        L("conv_e", "Convolution", num_output=2, kernel_size=3),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 8, 8), {"memcpy", "nn_concat_channels_q7", "arm_convolve_HWC_q7_fast",
                   "arm_convolve_HWC_q7_basic_nonsquare"},
        "ReLU/pool/conv branches of one tensor concatenated (15 channels), copies inserted"),
    _spec("split_inplace_relu", [
        # explicit Split; an in-place ReLU on one split output while the other is read later
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("split", "Split", "conv1", ["s1", "s2"]),
        L("conv_a", "Convolution", "s1", "conv_a", num_output=6, kernel_size=3, pad=1),
        L("relu_a", "ReLU", "conv_a", "conv_a"),
        L("relu_s2", "ReLU", "s2", "s2"),
        L("conv_b", "Convolution", "s2", "conv_b", num_output=2, kernel_size=1),
        L("cat", "Concat", ["conv_a", "conv_b", "s1"], "cat"),
        L("pool", "Pooling", pool="MAX", kernel_size=3, stride=2),
        L("drop", "Dropout", inplace=True),
        L("flat", "Flatten"),
        L("ip1", "InnerProduct", num_output=9),
        L("prob", "Softmax"),
    ], (3, 7, 7), {"memcpy", "nn_concat_channels_q7", "arm_convolve_HWC_q7_fast",
                   "arm_relu_q7"},
        "Split with an in-place ReLU on one output, Concat, Dropout, Flatten, FC"),
    _spec("depthwise_pointwise", [
        # MobileNet-style pairs: depthwise (6 channels: a 4 + 2 split) then 1x1 (6 in:
        # basic_nonsquare), depthwise 3x1 on 8 channels then 1x1 fast_nonsquare (8 -> 12)
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("dw1", "Convolution", num_output=6, group=6, kernel_size=3, stride=2, pad=1),
        L("relu_dw1", "ReLU", inplace=True),
        L("pw1", "Convolution", num_output=8, kernel_size=1),
        L("relu_pw1", "ReLU", inplace=True),
        L("dw2", "Convolution", num_output=8, group=8, kernel_h=3, kernel_w=1, pad_h=1, pad_w=0),
        L("relu_dw2", "ReLU", inplace=True),
        L("pw2", "Convolution", num_output=12, kernel_size=1),
        L("relu_pw2", "ReLU", inplace=True),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 9, 9), {"arm_depthwise_separable_conv_HWC_q7_nonsquare", "arm_convolve_1x1_HWC_q7_fast_nonsquare",
                   "arm_convolve_HWC_q7_basic_nonsquare"},
        "depthwise (square and 3x1 kernels, channels not % 4) + pointwise (1x1 fast and basic) pairs"),
    _spec("group_convs", [
        # grouped convolutions run per group on gathered channel slices: 2 groups of 4 -> 3
        # (basic_nonsquare), 2 groups of 3 -> 4 with a 1x1 kernel (RGB per group), 4 groups
        # 1x3 (basic_nonsquare), a channel multiplier (group 8, 8 -> 16); a 1x1 on
        # a non-square tensor (1x1 fast_nonsquare)
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("g2", "Convolution", num_output=6, group=2, kernel_size=3, pad=1),
        L("g2b", "Convolution", num_output=8, group=2, kernel_size=1),
        L("relu2", "ReLU", inplace=True),
        L("g4", "Convolution", num_output=8, group=4, kernel_h=1, kernel_w=3, stride_h=1, stride_w=2,
          pad_h=0, pad_w=1),
        L("mult", "Convolution", num_output=16, group=8, kernel_size=3, pad=1, bias_term=False),
        L("pw", "Convolution", num_output=4, kernel_size=1),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 7, 7), {"arm_convolve_HWC_q7_RGB",
                   "arm_convolve_HWC_q7_basic_nonsquare", "arm_convolve_1x1_HWC_q7_fast_nonsquare"},
        "group convolutions (per group: RGB, basic_nonsquare; channel multiplier), 1x1 non-square"),
    _spec("inception", [
        # an inception-style module: a 1x1 branch and a 3x3 branch (after a 1x1 reduce) of one
        # tensor, concatenated along channels (HWC: interleaved copies), then a 1x1 on the result
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("b1", "Convolution", "conv1", "b1", num_output=8, kernel_size=1),
        L("relu_b1", "ReLU", inplace=True),
        L("b3_reduce", "Convolution", "conv1", "b3_reduce", num_output=4, kernel_size=1),
        L("relu_b3r", "ReLU", inplace=True),
        L("b3", "Convolution", "b3_reduce", "b3", num_output=6, kernel_size=3, pad=1),
        L("relu_b3", "ReLU", inplace=True),
        L("cat", "Concat", ["b1", "b3"], "cat"),
        L("mix", "Convolution", num_output=4, kernel_size=1),
        L("pool", "Pooling", pool="MAX", kernel_size=3, stride=2),
        L("ip1", "InnerProduct", num_output=6),
    ], (3, 9, 9), {"arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_fast",
                   "nn_concat_channels_q7"},
        "inception-style Concat of a 1x1 branch and a 3x3 branch, 1x1 convs (fast_nonsquare)"),
    _spec("lrn_across", [
        # AlexNet-style LRN across channels, with large alpha/k so the multipliers really vary,
        # on ReLU outputs and (second) on signed values, local_size 5 and 3
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("norm1", "LRN", local_size=5, alpha=3.0, beta=0.75, k=2.0),
        L("conv2", "Convolution", num_output=6, kernel_size=3),
        L("norm2", "LRN", local_size=3, alpha=0.5, beta=0.5),
        L("pool2", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 8, 8), {"nn_lrn_across_q7"}, "LRN ACROSS_CHANNELS (local_size 5 and 3, strong alpha)"),
    _spec("cifar10_full_style", [
        # BVLC examples/cifar10/cifar10_full.prototxt scaled down (16x16, 8/8/16 channels):
        # conv-pool-relu-LRN, conv-relu-pool-LRN (WITHIN_CHANNEL, local_size 3, alpha 5e-5,
        # beta 0.75), conv-relu-pool, ip
        L("conv1", "Convolution", num_output=8, kernel_size=5, pad=2),
        L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
        L("relu1", "ReLU", inplace=True),
        L("norm1", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
        L("conv2", "Convolution", num_output=8, kernel_size=5, pad=2),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
        L("norm2", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
        L("conv3", "Convolution", num_output=16, kernel_size=5, pad=2),
        L("relu3", "ReLU", inplace=True),
        L("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
        L("ip1", "InnerProduct", num_output=10),
        L("prob", "Softmax"),
    ], (3, 16, 16), {"nn_lrn_within_q7", "arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast"},
        "CIFAR-10 'full'-style: LRN WITHIN_CHANNEL after pool/relu"),
    _spec("fc_only_plain", [
        # inner products straight on a 5x5 RGB image (HWC flatten), rows/columns not % 4
        L("ip1", "InnerProduct", num_output=9),
        L("relu1", "ReLU", inplace=True),
        L("ip2", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 5, 5), {"arm_fully_connected_q7", "arm_relu_q7", "arm_softmax_q7"},
        "FC on the image, FC after FC, plain variant", fc_variant="plain",
        extra={"mean": "104,117,123", "scale": 0.02, "bgr": True}),
    _spec("fc_only_opt", [
        L("ip1", "InnerProduct", num_output=11),
        L("relu1", "ReLU", inplace=True),
        L("ip2", "InnerProduct", num_output=6),
    ], (1, 6, 5), {"arm_fully_connected_q7_opt", "arm_relu_q7"},
        "gray non-square image into opt FCs with odd row counts, output without softmax"),
    _spec("residual_sum", [
        # two residual blocks: conv -> relu -> conv + identity -> Eltwise SUM -> relu; the
        # identity and the branch end up in different Q formats (rescaled by shifts)
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("conv3", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("add1", "Eltwise", ["conv3", "conv1"], "add1"),
        L("relu3", "ReLU", inplace=True),
        L("conv4", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("add2", "Eltwise", ["add1", "conv4"], "add2", coeff=[0.5, 1.5]),
        L("pool", "Pooling", pool="AVE", kernel_size=3, stride=2),
        L("ip1", "InnerProduct", num_output=6),
        L("prob", "Softmax"),
    ], (3, 9, 9), {"nn_eltwise_sum_q7", "arm_convolve_HWC_q7_fast"},
        "residual blocks (Eltwise SUM of differently scaled branches, with coefficients)"),
    _spec("batchnorm_scale", [
        # BatchNorm + Scale folded into the conv before them; BatchNorm + Scale after a pool
        # (standalone nn_scale_q7, the two merged); a BatchNorm whose input a branch also reads
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1, bias_term=False),
        L("bn1", "BatchNorm", inplace=True, weights=BN8),
        L("scale1", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("bn2", "BatchNorm", inplace=True, weights=BN8),
        L("scale2", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("bn3", "BatchNorm", "conv2", "bn3", weights=BN8),
        L("bn4", "BatchNorm", "bn3", "bn4", weights=BN8),
        L("add", "Eltwise", ["bn3", "bn4"], "add"),
        L("ip1", "InnerProduct", num_output=6),
        L("prob", "Softmax"),
    ], (3, 9, 9), {"nn_scale_q7", "nn_eltwise_sum_q7", "memcpy"},
        "BatchNorm/Scale folded into convs, standalone after a pool and on a shared tensor"),
    _spec("lenet_gray", [
        # LeNet on MNIST-sized gray input: 1-channel conv (basic), pools, two inner products
        # with a ReLU between them
        L("conv1", "Convolution", num_output=20, kernel_size=5),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("conv2", "Convolution", num_output=50, kernel_size=5),
        L("pool2", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=100),
        L("relu1", "ReLU", inplace=True),
        L("ip2", "InnerProduct", num_output=10),
        L("prob", "Softmax"),
    ], (1, 28, 28), {"arm_convolve_HWC_q7_basic_nonsquare", "arm_convolve_HWC_q7_fast", "arm_maxpool_q7_HWC",
                     "arm_fully_connected_q7_opt", "arm_relu_q7", "arm_softmax_q7"},
        "LeNet: 1-channel 28x28 input, 5x5 convs 20/50, max pools, IP 100 -> ReLU -> IP 10"),
    _spec("prelu_leaky", [
        # leaky ReLU on a tensor another branch reads (copy), per-channel and shared PReLU,
        # PReLU between inner products
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("leaky", "ReLU", "conv1", "leaky", negative_slope=0.01),
        L("conv2", "Convolution", "leaky", "conv2", num_output=4, kernel_size=3, stride=2),
        L("prelu", "PReLU", inplace=True, weights=[np.array([0.25, -0.5, 0.05, 1.5])]),
        L("conv3", "Convolution", "conv1", "conv3", num_output=4, kernel_size=3, stride=2),
        L("prelu_s", "PReLU", inplace=True, channel_shared=True, weights=[np.array([0.125])]),
        L("cat", "Concat", ["conv2", "conv3"], "cat"),
        L("ip1", "InnerProduct", num_output=12),
        L("prelu_ip", "PReLU", inplace=True, weights=[np.linspace(-0.3, 0.6, 12)]),
        L("ip2", "InnerProduct", num_output=5),
    ], (3, 9, 9), {"nn_prelu_q7", "memcpy", "nn_concat_channels_q7"},
        "leaky ReLU and PReLU (per channel, shared, after an inner product)"),
    _spec("sigmoid_tanh", [
        # Sigmoid / TanH by table look-up on conv outputs (capped to Q3.4) and on tensors
        # already in Q0.7 (tanh of tanh), after an inner product, as the network output
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("sig1", "Sigmoid", inplace=True),
        L("conv2", "Convolution", num_output=6, kernel_size=3, stride=2),
        L("tanh2", "TanH", "conv2", "tanh2"),
        L("conv3", "Convolution", "conv2", "conv3", num_output=6, kernel_size=1),
        L("tanh3", "TanH", "tanh2", "tanh3"),
        L("cat", "Concat", ["tanh3", "conv3"], "cat"),
        L("ip1", "InnerProduct", num_output=10),
        L("tanh_ip", "TanH", inplace=True),
        L("ip2", "InnerProduct", num_output=4),
        L("sig_out", "Sigmoid", inplace=True),
    ], (3, 9, 9), {"arm_nn_activations_direct_q7", "memcpy"},
        "Sigmoid and TanH (arm_nn_activations_direct_q7) in place, with copies, after IPs, as output"),
    _spec("reshape_aliases", [
        # Reshape as an alias: to (N, K) before an IP (weight columns permuted), a spatial
        # regroup keeping the channels read by a conv and a pool, a vector to a 1-channel image
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("flat", "Reshape", shape={"dim": [0, -1]}),
        L("ip1", "InnerProduct", num_output=6),
        L("regroup", "Reshape", "conv1", "regroup", shape={"dim": [0, 4, 6, 6]}),
        L("pool", "Pooling", "regroup", "pool", pool="MAX", kernel_size=2, stride=2),
        L("conv2", "Convolution", "pool", "conv2", num_output=2, kernel_size=2),
        L("ip2", "InnerProduct", "conv2", "ip2", num_output=12),
        L("img", "Reshape", "ip2", "img", shape={"dim": [1, 1, 3, 4]}),
        L("conv3", "Convolution", "img", "conv3", num_output=2, kernel_size=2),
        L("ip3", "InnerProduct", "conv3", "ip3", num_output=6),
        L("sum", "Eltwise", ["ip1", "ip3"], "sum"),
        L("odd", "Reshape", "conv1", "odd", shape={"dim": [0, 6, 4, 6]}),  # reorders bytes: read by an IP
        L("ip4", "InnerProduct", "odd", "ip4", num_output=6),
        L("sum2", "Eltwise", ["sum", "ip4"], "sum2"),
    ], (3, 4, 9), {"arm_maxpool_q7_HWC", "arm_fully_connected_q7_opt"},
        "Reshape aliases: flatten-like before an IP, spatial regroup (conv, pool), vector to image, "
        "a byte-reordering reshape read by an IP"),
    _spec("global_pool_nonsquare", [
        # global max and average pooling on a non-square 6x11 image, a residual-style SUM first
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("add", "Eltwise", ["conv2", "conv1"], "add"),
        L("gave", "Pooling", "add", "gave", pool="AVE", global_pooling=True),
        L("gmax", "Pooling", "add", "gmax", pool="MAX", global_pooling=True),
        L("cat", "Concat", ["gave", "gmax"], "cat"),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 6, 11), {"nn_pool_q7", "nn_eltwise_sum_q7"},
        "global max and average pooling of a non-square image (nn_pool_q7, one window over the image)"),
    _spec("mobilenet_block", [
        # MobileNet v1 style: conv/dw/pw each followed by in-place BatchNorm + Scale (all folded,
        # into the depthwise convolution too) and ReLU, global average pooling, FC, softmax
        L("conv1", "Convolution", num_output=8, kernel_size=3, stride=2, pad=1, bias_term=False),
        L("bn1", "BatchNorm", inplace=True, weights=BN8),
        L("scale1", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("relu1", "ReLU", inplace=True),
        L("dw2", "Convolution", num_output=8, group=8, kernel_size=3, pad=1, bias_term=False),
        L("bn2", "BatchNorm", inplace=True, weights=BN8),
        L("scale2", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("relu2", "ReLU", inplace=True),
        L("pw2", "Convolution", num_output=8, kernel_size=1, bias_term=False),
        L("bn3", "BatchNorm", inplace=True, weights=BN8),
        L("scale3", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("relu3", "ReLU", inplace=True),
        L("pool", "Pooling", pool="AVE", global_pooling=True),
        L("fc", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 10, 10), {"arm_depthwise_separable_conv_HWC_q7_nonsquare", "arm_convolve_1x1_HWC_q7_fast_nonsquare",
                     "nn_pool_q7"},
        "MobileNet-style conv/depthwise/pointwise, each with BatchNorm + Scale folded, global average pool "
        "(nn_pool_q7: its output's own, finer format)"),
    _spec("eltwise_prod_max", [
        # PROD of two branches, MAX of three tensors in three formats, gray input
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("conv2", "Convolution", "data", "conv2", num_output=4, kernel_size=3, pad=1),
        L("conv3", "Convolution", "data", "conv3", num_output=4, kernel_size=1),
        L("prod", "Eltwise", ["conv1", "conv2"], "prod", operation="PROD"),
        L("max", "Eltwise", ["prod", "conv3", "conv1"], "max", operation="MAX"),
        L("ip1", "InnerProduct", num_output=5),
    ], (1, 7, 7), {"nn_eltwise_prod_q7", "nn_eltwise_max_q7"},
        "Eltwise PROD of two branches, MAX of three inputs in different formats"),
    _spec("pointwise_lookup", [
        # every nn_lookup_q7 type: on a tensor other layers still read (copies), in place, chained
        # (BNLL of AbsVal, Power of BNLL), brocolli's relu6_param, after an inner product, as the output
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("r6", "ReLU6", "conv1", "r6"),
        L("abs", "AbsVal", "conv1", "abs"),
        L("elu", "ELU", "conv1", "elu", alpha=0.5),
        L("clip", "Clip", "elu", "elu", min=-0.25, max=0.8),
        L("bnll", "BNLL", "abs", "bnll"),
        L("th", "Threshold", "conv1", "th", threshold=0.2),
        L("pw", "Power", "bnll", "pw", power=2.0, scale=0.5, shift=-0.5),
        L("cat", "Concat", ["r6", "elu", "th", "pw"], "cat"),
        L("conv2", "Convolution", num_output=4, kernel_size=3, stride=2),
        L("r6b", "ReLU6", inplace=True, threshold=3.0, negative_slope=0.1),
        L("ip1", "InnerProduct", num_output=8),
        L("cube", "Power", inplace=True, power=3.0, scale=0.5),
        L("ip2", "InnerProduct", num_output=5),
        L("abs_out", "AbsVal", inplace=True),
    ], (3, 8, 7), {"nn_lookup_q7", "memcpy", "nn_concat_channels_q7"},
        "ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold by table (nn_lookup_q7): copies, in place, as output"),
    _spec("argmax_pixels", [
        # a segmentation head: per-pixel ArgMax over 5 class channels of a non-square image
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("elu1", "ELU", inplace=True),
        L("conv2", "Convolution", num_output=5, kernel_size=1),
        L("seg", "ArgMax", axis=1),
    ], (3, 9, 8), {"nn_argmax_q7", "nn_lookup_q7"}, "per-pixel ArgMax (axis 1) as the network output"),
    _spec("argmax_whole", [
        # ArgMax without axis over a spatial blob (3x4x5 = 60 values, Caffe's C, H, W order), gray
        L("conv1", "Convolution", num_output=3, kernel_size=3, stride=2, pad=1),
        L("r6", "ReLU6", inplace=True),
        L("am", "ArgMax"),
    ], (1, 7, 9), {"nn_argmax_q7"}, "ArgMax over a whole spatial blob (the index in C, H, W order)"),
    _spec("mobilenet_dw_fork", [
        # ConvolutionDepthwise (the forks' type, no num_output/group) with BatchNorm + Scale folded,
        # stride 2 then a non-square dilated one (nn_conv_q7), pointwise, global pool
        L("conv1", "Convolution", num_output=8, kernel_size=3, stride=2, pad=1, bias_term=False),
        *_bn_scale_relu(1),
        L("dw2", "ConvolutionDepthwise", kernel_size=3, stride=2, pad=1, bias_term=False),
        *_bn_scale_relu(2),
        L("dw3", "ConvolutionDepthwise", num_output=8, kernel_h=3, kernel_w=1, pad_h=2, pad_w=0, dilation=2),
        L("pw3", "Convolution", num_output=8, kernel_size=1, bias_term=False),
        *_bn_scale_relu(3),
        L("pool", "Pooling", pool="AVE", global_pooling=True),
        L("fc", "InnerProduct", num_output=5),
    ], (3, 13, 11), {"arm_depthwise_separable_conv_HWC_q7_nonsquare", "nn_conv_q7"},
        "MobileNet-style ConvolutionDepthwise (fork type) + BatchNorm/Scale folded, a dilated depthwise"),
    _spec("dilated_deeplab", [
        # DeepLab-style atrous convolutions: dilation 2 and per-axis 3x1, a branch at rate 4, concat
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("atrous2", "Convolution", num_output=5, kernel_size=3, pad=2, dilation=2),
        L("atrous3", "Convolution", "conv1", "atrous3", num_output=4, kernel_size=3,
          pad=[4, 1], dilation=[4, 1]),
        L("cat", "Concat", ["atrous2", "atrous3"], "cat"),
        L("relu2", "ReLU", inplace=True),
        L("atrous4", "Convolution", num_output=6, kernel_size=3, dilation=2, group=3, stride=2),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 12, 10), {"nn_conv_q7"},
        "DeepLab-style dilated convolutions: rate 2, per-axis rates 4x1, grouped and strided rate 2"),
    _spec("fcn_deconv", [
        # FCN-style learned upsampling: stride 2 Deconvolution (k4 p1), grouped (per-class bilinear
        # style) Deconvolution with BatchNorm + Scale folded, a dilated one without bias
        L("conv1", "Convolution", num_output=6, kernel_size=3, stride=2, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("up1", "Deconvolution", num_output=4, kernel_size=4, stride=2, pad=1),
        L("up2", "Deconvolution", num_output=8, kernel_size=4, stride=2, pad=1, group=4, bias_term=False),
        L("bn2", "BatchNorm", inplace=True, weights=BN8),
        L("scale2", "Scale", inplace=True, bias_term=True, weights=SCALE8),
        L("relu2", "ReLU", inplace=True),
        L("up3", "Deconvolution", num_output=3, kernel_h=3, kernel_w=2, stride_h=1, stride_w=3, pad_h=2,
          pad_w=0, dilation=2, bias_term=False),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 7, 9), {"nn_deconv_q7"},
        "FCN-style Deconvolution upsampling: stride 2, grouped with BatchNorm/Scale folded, dilated"),
    # --- pooling of any geometry (issue 12): nn_pool_q7 where the square, in-place CMSIS-NN
    # pooling cannot run the layer or divides differently from Caffe
    _spec("pool_chars_30x14", [
        # a 30x14 character image: max 2x2 s2 of a non-square image (15x7), padded average
        # 3x3 s2 p1 (border windows divided as Caffe does: 8x4), a 3x2 window with stride 2x1
        # and a clipped last row (4x3)
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("conv2", "Convolution", num_output=12, kernel_size=3, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
        L("pool3", "Pooling", pool="MAX", kernel_h=3, kernel_w=2, stride_h=2, stride_w=1),
        L("ip1", "InnerProduct", num_output=10),
        L("prob", "Softmax"),
    ], (1, 30, 14), {"nn_pool_q7", "arm_convolve_HWC_q7_basic_nonsquare", "arm_softmax_q7"},
        "30x14 gray character image: non-square max, padded average and 3x2-window pooling (nn_pool_q7)"),
    _spec("pool_plate_66x16", [
        # a 66x16 plate image: stride-2 conv to 33x8, average 3x2 s3x2 p1 (non-square window,
        # stride and border padding: 12x5), max kernel 1 < stride 2 in floor mode (6x3), average
        # 2x2 s2 of 6x3 (a clipped last column, no padding: 3x2)
        L("conv1", "Convolution", num_output=6, kernel_size=3, stride=2, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="AVE", kernel_h=3, kernel_w=2, stride_h=3, stride_w=2, pad_h=1, pad_w=1),
        L("pool2", "Pooling", pool="MAX", kernel_size=1, stride=2, ceil_mode=False),
        L("conv2", "Convolution", num_output=8, kernel_size=1),
        L("pool3", "Pooling", pool="AVE", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=7),
    ], (3, 66, 16), {"nn_pool_q7", "arm_convolve_HWC_q7_basic_nonsquare"},
        "66x16 RGB plate image: non-square windows and strides, padded average, kernel < stride, floor mode"),
    _spec("pool_inception", [
        # a GoogLeNet-style inception block on 9x9: 1x1, 1x1 -> 3x3 and 3x3/s1/p1 max pool -> 1x1
        # branches of one tensor (the pool reads it out of place: no copy), concatenated; then
        # max 3x3 s2 p2 (padding >= stride: 6x6) and global average pooling (arm_avepool_q7_HWC)
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("b1", "Convolution", "conv1", "b1", num_output=4, kernel_size=1),
        L("b2a", "Convolution", "conv1", "b2a", num_output=4, kernel_size=1),
        L("relu_b2a", "ReLU", "b2a", "b2a"),
        L("b2", "Convolution", "b2a", "b2", num_output=6, kernel_size=3, pad=1),
        L("b3a", "Pooling", "conv1", "b3a", pool="MAX", kernel_size=3, stride=1, pad=1),
        L("b3", "Convolution", "b3a", "b3", num_output=4, kernel_size=1),
        L("cat", "Concat", ["b1", "b2", "b3"], "cat"),
        L("pool2", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=2),
        L("gap", "Pooling", pool="AVE", global_pooling=True),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 9, 9), {"nn_pool_q7", "nn_concat_channels_q7", "arm_avepool_q7_HWC"},
        "inception block: 3x3/s1/p1 max pool branch beside 1x1 and 3x3 convs, max pool with pad >= stride"),
    # Several network outputs (issue 12, item 2): run_nn() writes each to its own pointer.
    _spec("face_pnet_2heads", [
        # MTCNN P-Net-like: a conv trunk and two spatial 1x1 conv heads (face score, box), HWC outputs
        L("conv1", "Convolution", num_output=10, kernel_size=3, stride=2),
        L("prelu1", "PReLU", inplace=True, weights=[np.linspace(0.1, 0.4, 10)]),
        L("conv2", "Convolution", num_output=16, kernel_size=3),
        L("relu2", "ReLU", inplace=True),
        L("conv4-1", "Convolution", "conv2", "conv4-1", num_output=2, kernel_size=1),
        L("conv4-2", "Convolution", "conv2", "conv4-2", num_output=4, kernel_size=1),
    ], (3, 14, 12), {"nn_prelu_q7"},
        "two spatial heads (score and box maps) of a conv trunk: two outputs in HWC order"),
    _spec("face_onet_3heads", [
        # MTCNN O-Net-like: conv trunk, FC trunk, three heads: class (Softmax), box and landmarks
        L("conv1", "Convolution", num_output=8, kernel_size=3),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
        L("conv2", "Convolution", num_output=12, kernel_size=3),
        L("relu2", "ReLU", inplace=True),
        L("fc5", "InnerProduct", num_output=24),
        L("relu5", "ReLU", inplace=True),
        L("conv6-1", "InnerProduct", "fc5", "conv6-1", num_output=2),
        L("prob1", "Softmax", "conv6-1", "prob1"),
        L("conv6-2", "InnerProduct", "fc5", "conv6-2", num_output=4),
        L("conv6-3", "InnerProduct", "fc5", "conv6-3", num_output=10),
    ], (3, 12, 12), {"arm_fully_connected_q7_opt", "arm_softmax_q7", "arm_relu_q7"},
        "three heads of an FC trunk: class (Softmax), box and landmarks; outputs named with dashes"),
    _spec("output_read_later", [
        # --output names a blob that later layers read (and a ReLU would overwrite in place):
        # the planner copies it for the ReLU and keeps it to the end; the softmax is the other output
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu2", "ReLU", "conv2", "relu2"),
        # average (not max) pooling: a ReLU before a max pool would move after it, onto the pool's output
        L("pool2", "Pooling", pool="AVE", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=6),
        L("prob", "Softmax"),
    ], (3, 8, 8), {"memcpy", "arm_relu_q7", "arm_softmax_q7"},
        "an output (--output conv2,prob) that later layers also read, a ReLU on it works on a copy",
        extra={"output": "conv2,prob"}),
    _spec("shufflenet_unit", [
        # ShuffleNet v2 style: channel split (Slice), a branch on one half, Concat, ShuffleChannel;
        # then a Slice of rows into two tops of three parts, each read by its own layer
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("split", "Slice", "conv1", ["left", "right"]),
        L("conv2", "Convolution", "right", "conv2", num_output=4, kernel_size=1),
        L("relu2", "ReLU", inplace=True),
        L("dw", "Convolution", "conv2", "dw", num_output=4, group=4, kernel_size=3, pad=1),
        L("cat", "Concat", ["left", "dw"], "cat"),
        L("shuffle", "ShuffleChannel", "cat", "shuffle", group=2),
        L("rows", "Slice", "shuffle", ["r0", "r1", "r2"], slice_dim=2, slice_point=[1, 4]),
        L("pool", "Convolution", "r1", "pool", num_output=4, kernel_size=3, stride=3),
        L("conv3", "Convolution", "r2", "conv3", num_output=8, kernel_h=2, kernel_w=1),
        L("cat2", "Concat", ["r0", "conv3"], "cat2"),
        L("ip1", "InnerProduct", "cat2", "ip1", num_output=6),
        L("ip2", "InnerProduct", "pool", "ip2", num_output=6),
        L("sum", "Eltwise", ["ip1", "ip2"], "sum"),
    ], (3, 6, 6), {"nn_copy_strided_q7", "nn_concat_channels_q7"},
        "ShuffleNet-style unit: channel Slice, branch, Concat, ShuffleChannel, a Slice of rows"),
    _spec("fcn_upsample_crop", [
        # FCN/ENet style: downsample, nearest Upsample x2 and x3, Crop to the image's size (and
        # a channel crop), a score map as the network output (spatial, HWC)
        L("conv1", "Convolution", num_output=6, kernel_size=3, stride=2),
        L("relu1", "ReLU", inplace=True),
        L("up", "Upsample", "conv1", "up", scale=3),
        L("crop", "Crop", ["up", "data"], "crop", offset=[1, 1]),
        L("up2", "Upsample", "crop", "up2", scale=2),
        L("score", "Crop", ["up2", "data"], "score", axis=1, offset=[1, 3, 0]),
    ], (3, 7, 5), {"nn_upsample_nearest_q7", "nn_copy_strided_q7"},
        "FCN-style nearest Upsample and Crop to the input's size, a spatial score map as output"),
    _spec("ssd_permute_flatten", [
        # SSD style: two heads Permuted to NHWC (aliases: the HWC bytes are in place), Flattened and
        # concatenated, an inner product; a Permute (order 0,3,2,1) read by a convolution (a copy);
        # Flatten of axes 2-3 kept spatial
        L("conv1", "Convolution", num_output=5, kernel_size=3, pad=1),
        L("perm", "Permute", "conv1", "perm", order=[0, 2, 3, 1]),
        L("flat", "Flatten", "perm", "flat"),
        L("conv1b", "Convolution", "data", "conv1b", num_output=2, kernel_size=3, stride=2),
        L("perm_b", "Permute", "conv1b", "perm_b", order=[0, 2, 3, 1]),
        L("flat_b", "Flatten", "perm_b", "flat_b"),
        L("mbox", "Concat", ["flat", "flat_b"], "mbox"),
        L("ip1", "InnerProduct", "mbox", "ip1", num_output=4),
        L("perm2", "Permute", "conv1", "perm2", order=[0, 3, 2, 1]),
        L("conv2", "Convolution", "perm2", "conv2", num_output=3, kernel_size=1),
        L("flat2", "Flatten", "conv2", "flat2", axis=2),
        L("ip2", "InnerProduct", "flat2", "ip2", num_output=4),
        L("sum", "Eltwise", ["ip1", "ip2"], "sum"),
    ], (3, 5, 7), {"nn_copy_strided_q7", "arm_fully_connected_q7_opt"},
        "SSD-style Permute + Flatten before an inner product; a Permute read by a convolution"),
]}

#: Input of the STM32 build check: the CMSIS-NN CIFAR-10 demo topology (examples/cifar10).
CIFAR10 = _spec("cifar10", [
    L("conv1", "Convolution", num_output=32, kernel_size=5, pad=2),
    L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
    L("relu1", "ReLU", inplace=True),
    L("conv2", "Convolution", num_output=32, kernel_size=5, pad=2),
    L("relu2", "ReLU", inplace=True),
    L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
    L("conv3", "Convolution", num_output=64, kernel_size=5, pad=2),
    L("relu3", "ReLU", inplace=True),
    L("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
    L("ip1", "InnerProduct", num_output=10),
    L("prob", "Softmax"),
], (3, 32, 32), {"arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast", "arm_maxpool_q7_HWC",
                 "arm_avepool_q7_HWC", "arm_fully_connected_q7_opt", "arm_softmax_q7"},
    "CIFAR-10 sized: 32x32x3, 5x5 convs 32/32/64, max/ave pools, FC 10")


@dataclass(frozen=True)
class NetFiles:
    spec: NetSpec
    prototxt: Path
    weights: Path
    calib: Path          # .npz with x (N, H, W, 3) uint8 and y (N,)

    def options(self) -> list[str]:
        """CLI options for `cmsisgen compile/verify` (calibration, FC variant, preprocessing)."""
        opts = ["--calib", str(self.calib), "--fc", self.spec.fc_variant]
        for key, value in self.spec.extra.items():
            if value is True:
                opts.append(f"--{key}")
            else:
                opts += [f"--{key}", str(value)]
        return opts

    def compile_kwargs(self) -> dict:
        """Keyword arguments for ``pipeline.compile_model`` (without the calibration images)."""
        kwargs = {"fc_variant": self.spec.fc_variant}
        kwargs.update(self.spec.extra)
        return kwargs


def write_random_net(directory: Union[str, Path], spec: Union[str, NetSpec], seed: int = 0,
                     calib_images: int = 16) -> NetFiles:
    """Write ``spec`` (or the catalogue entry of that name) with N(0, 0.1) weights drawn with
    ``seed`` and a random calibration set into ``directory``; returns the paths."""
    if isinstance(spec, str):
        spec = CIFAR10 if spec == CIFAR10.name else CATALOGUE[spec]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    proto, weights = write_model(directory, spec.layers, input_shape=spec.input_shape, seed=seed,
                                 stem=spec.name)
    h, w = spec.calib_size or spec.input_shape[1:]
    rng = np.random.default_rng(seed + 1000)
    x = rng.integers(0, 256, size=(calib_images, h, w, 3), dtype=np.uint8)
    x[0] = 0        # the first vectors (taken from the calibration set) hit both extremes
    x[1] = 255
    y = np.arange(calib_images) % 10
    calib = directory / f"{spec.name}_calib.npz"
    np.savez(calib, x=x, y=y)
    return NetFiles(spec=spec, prototxt=proto, weights=weights, calib=calib)
