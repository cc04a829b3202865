"""End to end: Caffe files -> compile_model -> simulator, checked against an independent
integer reference (tests/int_reference.py), and the generated C built with host gcc
against firmware/cmsis_nn_portable and run on known-answer vectors, bit for bit."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import int_reference
from caffe_models import layer, write_mean_binaryproto, write_model
from random_nets import CATALOGUE
from cmsisgen import codegen
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.execute import run_program

ROOT = Path(__file__).resolve().parent.parent
PORTABLE = ROOT / "firmware" / "cmsis_nn_portable"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"]


def L(*args, **kwargs):
    return layer(*args, **kwargs)


#: BatchNorm blobs for 4 channels (mean, variance, moving-average count 2) and Scale blobs.
BN4 = [np.array([0.2, -0.1, 0.05, 0.3]) * 2, np.array([0.04, 0.09, 0.01, 0.25]) * 2, np.array([2.0])]
SCALE4 = [np.array([1.5, 0.5, -0.8, 1.0]), np.array([0.1, -0.2, 0.0, 0.3])]

#: 1x1 convolution blobs (2 outputs, 3 inputs) with tiny weights: outputs in Q-13.20 or so.
TINY_POS = [np.full((2, 3, 1, 1), 1e-7, dtype=np.float32), np.zeros(2, dtype=np.float32)]
TINY_NEG = [np.full((2, 3, 1, 1), -1.3e-7, dtype=np.float32), np.zeros(2, dtype=np.float32)]

# name -> (layers, input shape, compile options, functions the program must use)
NETS = {
    # RGB conv with stride and padding on an odd size, ceil-mode max pool remainder, opt FC, softmax
    "rgb_chain": ([
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1, stride=2),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=10),
        L("prob", "Softmax"),
    ], (3, 9, 9), {}, {"arm_convolve_HWC_q7_RGB", "arm_maxpool_q7_HWC", "arm_fully_connected_q7_opt",
                       "arm_softmax_q7", "arm_relu_q7"}),
    # fast conv, average pool with a ceil-mode remainder (two-step truncation), plain FC (the pool
    # forced onto arm_avepool_q7_HWC: unforced, its finer own format runs it as nn_pool_q7)
    "fast_avepool": ([
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
        L("ip1", "InnerProduct", num_output=7),
        L("prob", "Softmax"),
    ], (3, 8, 8), {"fc_variant": "plain", "kernels": {"pool2": "arm_avepool_q7_HWC"}},
        {"arm_convolve_HWC_q7_fast", "arm_avepool_q7_HWC", "arm_fully_connected_q7"}),
    # non-square input, kernels, strides and padding; IP straight after a conv stack
    "nonsquare": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=6, kernel_h=3, kernel_w=2, stride_h=2, stride_w=1,
          pad_h=1, pad_w=0),
        L("relu2", "ReLU", inplace=True),
        L("conv3", "Convolution", num_output=3, kernel_h=1, kernel_w=3, stride_h=1, stride_w=2),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 7, 10), {}, {"arm_convolve_HWC_q7_basic_nonsquare", "arm_convolve_HWC_q7_fast_nonsquare"}),
    # channels not a multiple of 4, large kernel, padded max pool (pad < stride), no softmax
    "basic_odd": ([
        L("conv1", "Convolution", num_output=5, kernel_size=5, stride=2, pad=2),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=7, kernel_size=3, pad=1),
        L("pool2", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=1),
        L("conv3", "Convolution", num_output=3, kernel_h=1, kernel_w=3),
        L("ip1", "InnerProduct", num_output=6),
    ], (3, 11, 11), {}, {"arm_convolve_HWC_q7_basic_nonsquare"}),
    # a ReLU whose input another branch reads, a pool whose input is read later, Concat
    "branches": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("relu1", "ReLU", "conv1", "relu1"),
        L("pool_a", "Pooling", "relu1", "pool_a", pool="MAX", kernel_size=2, stride=2),
        L("pool_b", "Pooling", "conv1", "pool_b", pool="AVE", kernel_size=2, stride=2),
        L("conv_c", "Convolution", "conv1", "conv_c", num_output=4, kernel_size=2, stride=2),
        L("cat", "Concat", ["pool_a", "pool_b", "conv_c"], "cat"),
        L("conv_d", "Convolution", num_output=2, kernel_size=3),
        L("ip1", "InnerProduct", num_output=5),
        L("prob", "Softmax"),
    ], (3, 8, 8), {}, {"memcpy", "nn_concat_channels_q7", "arm_convolve_HWC_q7_fast"}),
    # explicit Split, in-place ReLUs on both branches, Concat, Dropout and Flatten before the IP
    "split_concat": (CATALOGUE["split_inplace_relu"].layers, (3, 8, 8), {}, {"nn_concat_channels_q7", "memcpy"}),
    # gray input, padded ceil-mode max pool, unpadded max pool, global average pool
    "gray_pools": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=1),
        L("pool2", "Pooling", pool="MAX", kernel_size=2, stride=1),
        L("gap", "Pooling", pool="AVE", global_pooling=True),
        L("ip1", "InnerProduct", num_output=3),
        L("prob", "Softmax"),
    ], (1, 9, 9), {}, {"arm_convolve_HWC_q7_basic_nonsquare"}),
    # the network output is a pooled spatial tensor (HWC order) straight from padded pools,
    # so clipped windows and the average's two-step truncation reach the output unfiltered
    # (the padded average forced onto arm_avepool_q7_HWC; unforced it runs as nn_pool_q7)
    "pool_output": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=1),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
    ], (3, 15, 15), {"kernels": {"pool2": "arm_avepool_q7_HWC"}}, {"arm_maxpool_q7_HWC", "arm_avepool_q7_HWC"}),
    # the same with nn_pool_q7 on a non-square image: 3x3/s1/p1 max (pad >= stride), then an
    # average 3x2 s2 with padding 2x1 whose border windows Caffe divides by their padded size
    "pool_output_any": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=1, pad=1),
        L("pool2", "Pooling", pool="AVE", kernel_h=3, kernel_w=2, stride=2, pad_h=2, pad_w=1),
    ], (3, 13, 9), {}, {"nn_pool_q7"}),
    # BGR, per-channel mean and scale, padded average pool, 1x1 convs (RGB, then the 1x1
    # kernel), FC after FC with rows and columns not multiples of 4
    "bgr_mean_scale": ([
        L("conv1", "Convolution", num_output=4, kernel_size=1),
        L("conv2", "Convolution", num_output=4, kernel_size=1),
        L("relu2", "ReLU", inplace=True),
        L("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
        L("ip1", "InnerProduct", num_output=9),
        L("relu3", "ReLU", inplace=True),
        L("ip2", "InnerProduct", num_output=5),
    ], (3, 8, 8), {"mean": "104,117,123", "scale": 0.017, "bgr": True},
        {"arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_fully_connected_q7_opt"}),
    # one tensor read twice by a Concat, an in-place ReLU on the network input that a conv
    # reads afterwards, a Flatten feeding two inner products, a Dropout as the output
    "shared_reads": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("relu0", "ReLU", "data", "data"),
        L("conv2", "Convolution", "data", "conv2", num_output=4, kernel_size=3),
        L("cat", "Concat", ["conv1", "conv2", "conv1"], "cat"),
        L("flat", "Flatten"),
        L("ip1", "InnerProduct", "flat", "ip1", num_output=5),
        L("ip2", "InnerProduct", "flat", "ip2", num_output=3),
        L("cat2", "Concat", ["ip1", "ip2"], "cat2"),
        L("drop", "Dropout", inplace=True),
    ], (3, 6, 6), {}, {"nn_concat_channels_q7", "arm_relu_q7"}),
    # residual block: conv -> relu -> conv + identity -> Eltwise SUM (inputs in different
    # Q formats, rescaled by shifts), then ReLU, pool and FC
    "residual": ([
        L("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("relu2", "ReLU", inplace=True),
        L("conv3", "Convolution", num_output=8, kernel_size=3, pad=1),
        L("add", "Eltwise", ["conv3", "conv1"], "add"),
        L("relu3", "ReLU", inplace=True),
        L("pool", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("ip1", "InnerProduct", num_output=6),
    ], (3, 8, 8), {}, {"nn_eltwise_sum_q7", "arm_convolve_HWC_q7_fast"}),
    # SUM of three inputs with coefficients, PROD of two branches, MAX of two
    "eltwise_ops": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("conv2", "Convolution", "data", "conv2", num_output=4, kernel_size=3, pad=1),
        L("conv3", "Convolution", "data", "conv3", num_output=4, kernel_size=1),
        L("sum", "Eltwise", ["conv1", "conv2", "conv3"], "sum", coeff=[1.0, -0.5, 0.3]),
        L("prod", "Eltwise", ["conv1", "conv3"], "prod", operation="PROD"),
        L("max", "Eltwise", ["sum", "prod"], "max", operation="MAX"),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 6, 6), {}, {"nn_eltwise_sum_q7", "nn_eltwise_prod_q7", "nn_eltwise_max_q7"}),
    # depthwise + pointwise pairs, grouped convolutions per group (catalogue nets)
    "depthwise_pointwise": (CATALOGUE["depthwise_pointwise"].layers[:-1], (3, 9, 9), {},  # without Softmax
                            {"arm_depthwise_separable_conv_HWC_q7_nonsquare",
                             "arm_convolve_1x1_HWC_q7_fast_nonsquare"}),
    "group_convs": (CATALOGUE["group_convs"].layers, (3, 7, 7), {},
                    {"arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_basic_nonsquare"}),
    "inception": (CATALOGUE["inception"].layers, (3, 9, 9), {},
                  {"arm_convolve_1x1_HWC_q7_fast_nonsquare", "nn_concat_channels_q7"}),
    "lrn_across": (CATALOGUE["lrn_across"].layers, (3, 8, 8), {}, {"nn_lrn_across_q7"}),
    "cifar10_full_style": (CATALOGUE["cifar10_full_style"].layers[:-1], (3, 16, 16), {},  # without Softmax
                           {"nn_lrn_within_q7"}),
    # BatchNorm + Scale folded into the conv before them (in place, as Caffe nets write them),
    # a BatchNorm alone folded into a bias-less conv, a BatchNorm + Scale after a pooling
    # layer (standalone nn_scale_q7, BN and Scale merged) and one on a tensor a branch also
    # reads (standalone, its input kept by a copy)
    "batchnorm": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("bn1", "BatchNorm", inplace=True, weights=BN4),
        L("scale1", "Scale", inplace=True, bias_term=True, weights=SCALE4),
        L("relu1", "ReLU", inplace=True),
        L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        L("bn2", "BatchNorm", inplace=True, weights=BN4),
        L("scale2", "Scale", inplace=True, weights=SCALE4[:1]),
        L("conv2", "Convolution", num_output=4, kernel_size=3, pad=1, bias_term=False),
        L("bn3", "BatchNorm", "conv2", "bn3", weights=BN4),
        L("bn4", "BatchNorm", "bn3", "bn4", weights=BN4),
        L("conv3", "Convolution", "bn3", "conv3", num_output=4, kernel_size=1),
        L("add", "Eltwise", ["bn4", "conv3"], "add"),
        L("ip1", "InnerProduct", num_output=5),
    ], (3, 8, 8), {}, {"nn_scale_q7", "memcpy"}),
    # LeNet: 1-channel 28x28 input, two convs and pools, IP -> ReLU -> IP -> softmax
    "lenet": (CATALOGUE["lenet_gray"].layers, (1, 28, 28), {}, {"arm_convolve_HWC_q7_basic_nonsquare",
                                                                "arm_fully_connected_q7_opt"}),
    # leaky ReLU (in place, on a tensor a branch reads too: a copy), PReLU per channel and shared
    "prelu": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("leaky", "ReLU", "conv1", "leaky", negative_slope=0.1),
        L("conv2", "Convolution", "leaky", "conv2", num_output=4, kernel_size=3, stride=2),
        L("prelu", "PReLU", inplace=True, weights=[np.array([0.25, -0.5, 0.01, 1.5])]),
        L("conv3", "Convolution", "conv1", "conv3", num_output=4, kernel_size=3, stride=2),
        L("leaky2", "ReLU", inplace=True, negative_slope=0.2),
        L("cat", "Concat", ["conv2", "conv3"], "cat"),
        L("ip1", "InnerProduct", num_output=6),
        L("prelu2", "PReLU", inplace=True, channel_shared=True, weights=[np.array([0.3])]),
        L("ip2", "InnerProduct", num_output=4),
    ], (3, 7, 7), {}, {"nn_prelu_q7"}),
    # Sigmoid and TanH (arm_nn_activations_direct_q7): in place, on a conv output capped to
    # Q3.4, on a small-range tensor (fewer integer bits), with a copy for a second reader
    "sigmoid_tanh": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("sig1", "Sigmoid", inplace=True),
        L("conv2", "Convolution", num_output=4, kernel_size=3, stride=2),
        L("tanh2", "TanH", "conv2", "tanh2"),
        L("conv3", "Convolution", "conv2", "conv3", num_output=4, kernel_size=1),
        L("tanh3", "TanH", "tanh2", "tanh3"),
        L("add", "Eltwise", ["tanh3", "conv3"], "add"),
        L("ip1", "InnerProduct", num_output=6),
        L("sig_out", "Sigmoid", inplace=True),
    ], (3, 7, 7), {}, {"arm_nn_activations_direct_q7"}),
    # Reshape: to (N, K) before an inner product (weight columns permuted), a spatial regroup
    # keeping the channels (4, 4, 4) -> (4, 16, 1) -> (4, 2, 8), and a vector to (1, H, W)
    "reshape": ([
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1, stride=2),
        L("flat", "Reshape", shape={"dim": [0, -1]}),
        L("ip1", "InnerProduct", num_output=6),
        L("regroup", "Reshape", "conv1", "regroup", shape={"dim": [0, 4, 16, 1]}),
        L("regroup2", "Reshape", "regroup", "regroup2", shape={"dim": [0, 0, 2, -1]}),
        L("conv2", "Convolution", "regroup2", "conv2", num_output=2, kernel_h=1, kernel_w=3),
        L("ip2", "InnerProduct", "conv2", "ip2", num_output=12),
        L("img", "Reshape", "ip2", "img", shape={"dim": [1, 1, 3, 4]}),
        L("conv3", "Convolution", "img", "conv3", num_output=2, kernel_size=2),
        L("ip3", "InnerProduct", "conv3", "ip3", num_output=6),
        L("sum", "Eltwise", ["ip1", "ip3"], "sum"),
        L("odd", "Reshape", "conv1", "odd", shape={"dim": [0, 8, 2, 4]}),  # reorders bytes: IPs only
        L("ip4", "InnerProduct", "odd", "ip4", num_output=6),
        L("sum2", "Eltwise", ["sum", "ip4"], "sum2"),
    ], (3, 8, 8), {}, {"arm_fully_connected_q7_opt"}),
    # global max and average pooling on a non-square image (nn_pool_q7, one window over the image)
    "global_nonsquare": ([
        L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
        L("relu1", "ReLU", inplace=True),
        L("gmax", "Pooling", "conv1", "gmax", pool="MAX", global_pooling=True),
        L("conv2", "Convolution", "conv1", "conv2", num_output=6, kernel_size=1),
        L("gave", "Pooling", "conv2", "gave", pool="AVE", global_pooling=True),
        L("cat", "Concat", ["gmax", "gave"], "cat"),
        L("ip1", "InnerProduct", num_output=4),
        L("prob", "Softmax"),
    ], (3, 5, 9), {}, {"nn_pool_q7"}),
    # MobileNet-style block: BatchNorm + Scale folded into the conv, depthwise and pointwise convs
    "mobilenet_block": (CATALOGUE["mobilenet_block"].layers[:-1], (3, 10, 10), {},  # without the softmax
                        {"arm_depthwise_separable_conv_HWC_q7_nonsquare", "arm_convolve_1x1_HWC_q7_fast_nonsquare"}),
    # a BatchNorm on the network input (standalone nn_scale_q7 in place in the image buffer), a
    # shared-slope PReLU on the normalised input read by a second branch, a residual SUM
    "bn_on_input": ([
        L("bn0", "BatchNorm", "data", "data", weights=[np.array([100.0, 120.0, 90.0]),
                                                       np.array([3000.0, 2500.0, 3500.0]), np.array([1.0])]),
        L("conv1", "Convolution", num_output=4, kernel_size=3),
        L("prelu", "PReLU", "data", "p", channel_shared=True, weights=[np.array(0.2)]),
        L("conv2", "Convolution", "p", "conv2", num_output=4, kernel_size=3),
        L("add", "Eltwise", ["conv1", "conv2"], "add"),
        L("ip", "InnerProduct", num_output=5),
    ], (3, 6, 6), {}, {"nn_scale_q7", "nn_prelu_q7", "nn_eltwise_sum_q7"}),
    # DenseNet-style block: each conv's output concatenated with its own input (one format group
    # through both Concats), BatchNorms on tensors the Concats also read (standalone, with copies)
    "densenet_block": ([
        L("conv0", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("bn1", "BatchNorm", "conv0", "bn1", weights=BN4),
        L("relu1", "ReLU", inplace=True),
        L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("cat1", "Concat", ["conv0", "conv1"], "cat1"),
        L("bn2", "BatchNorm", "cat1", "bn2", weights=[np.tile(BN4[0], 2), np.tile(BN4[1], 2), BN4[2]]),
        L("relu2", "ReLU", inplace=True),
        L("conv2", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("cat2", "Concat", ["cat1", "conv2"], "cat2"),
        L("ip", "InnerProduct", num_output=5),
    ], (3, 8, 8), {}, {"nn_scale_q7", "nn_concat_channels_q7", "memcpy"}),
    # a per-pixel mean image larger than the input (center-cropped)
    "mean_image": ([
        L("conv1", "Convolution", num_output=2, kernel_size=3, stride=2),
        L("ip1", "InnerProduct", num_output=4),
        L("prob", "Softmax"),
    ], (3, 7, 7), {"mean_image": (3, 10, 11)}, {"arm_convolve_HWC_q7_RGB"}),
    # a product of two tiny branches tied by a Concat to a coarse format: its right shift
    # would be 38 (undefined in C); capped at 16, where every product rounds to 0 anyway
    "prod_big_shift": ([
        L("c1", "Convolution", num_output=2, kernel_size=1, weights=TINY_POS),
        L("c2", "Convolution", "data", "c2", num_output=2, kernel_size=1, weights=TINY_NEG),
        L("c3", "Convolution", "data", "c3", num_output=2, kernel_size=1),
        L("prod", "Eltwise", ["c1", "c2"], "prod", operation="PROD"),
        L("cat", "Concat", ["prod", "c3"], "cat"),
    ], (3, 4, 4), {}, {"nn_eltwise_prod_q7"}),
    # element-wise tables and ArgMax (catalogue nets), and ArgMax over an inner product's scores
    "pointwise_lookup": (CATALOGUE["pointwise_lookup"].layers, (3, 8, 7), {}, {"nn_lookup_q7"}),
    "argmax_pixels": (CATALOGUE["argmax_pixels"].layers, (3, 9, 8), {}, {"nn_argmax_q7"}),
    "argmax_whole": (CATALOGUE["argmax_whole"].layers, (1, 7, 9), {}, {"nn_argmax_q7"}),
    "argmax_classifier": ([
        L("ip1", "InnerProduct", num_output=12),
        L("th", "Threshold", "ip1", "th", threshold=-0.1),
        L("sum", "Eltwise", ["ip1", "th"], "sum"),
        L("am", "ArgMax"),
    ], (3, 5, 5), {}, {"nn_argmax_q7", "nn_lookup_q7", "nn_eltwise_sum_q7"}),
    # the convolution family of issue 12: ConvolutionDepthwise with BatchNorm/Scale folded and a dilated
    # depthwise one, DeepLab-style dilated (per-axis, grouped) convolutions, FCN-style Deconvolutions
    **{name: (CATALOGUE[name].layers, CATALOGUE[name].input_shape, {}, CATALOGUE[name].functions)
       for name in ("mobilenet_dw_fork", "dilated_deeplab", "fcn_deconv")},
    # several outputs (issue 12, item 2): spatial heads, three heads with a Softmax, and an
    # output that later layers read (--output), each compared output by output
    "face_pnet_2heads": (CATALOGUE["face_pnet_2heads"].layers, (3, 14, 12), {}, {"nn_prelu_q7"}),
    "face_onet_3heads": (CATALOGUE["face_onet_3heads"].layers, (3, 12, 12), {}, {"arm_softmax_q7"}),
    "output_read_later": (CATALOGUE["output_read_later"].layers, (3, 8, 8), {"output": "conv2,prob"},
                          {"memcpy", "arm_relu_q7"}),
}

FLAVOURS = [("current", "binary"), ("current", "h5"), ("v1", "binary"), ("v1", "h5")]


def build(tmp_path, name, generation="current", weights_format="binary", seed=0):
    layers, shape, options, _ = NETS[name]
    options = dict(options)
    proto, weights = write_model(tmp_path, layers, input_shape=shape, generation=generation,
                                 weights_format=weights_format, seed=seed)
    if "mean_image" in options:
        mean = np.random.default_rng(9).uniform(60, 190, size=options.pop("mean_image")).astype(np.float32)
        options["mean"] = str(write_mean_binaryproto(tmp_path / "mean.binaryproto", mean))
    rng = np.random.default_rng(seed + 100)
    calib = rng.integers(0, 256, size=(8, shape[1], shape[2], 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=calib, **options)


def raw_images(compiled, count=6, seed=1):
    """run_nn() inputs: random images plus an all-black and an all-white one."""
    c, h, w = compiled.program.input_shape
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, h, w, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    return images[..., :1] if c == 1 else images


def simulate(compiled, raw):
    c, h, w = compiled.program.input_shape
    return run_program(compiled.program, compiled.pre.prepare_images(raw, h, w))


@pytest.mark.parametrize("name", sorted(NETS))
def test_simulator_matches_integer_reference(tmp_path, name):
    compiled = build(tmp_path, name)
    functions = {op.function for op in compiled.program.ops}
    assert NETS[name][3] <= functions
    raw = raw_images(compiled)
    got = simulate(compiled, raw)
    ref = int_reference.run(compiled, raw)
    assert got.dtype == np.int8 and got.shape == ref.shape
    assert np.array_equal(got, ref)
    # the networks are not degenerate: outputs vary between images
    assert len({row.tobytes() for row in got}) > 1
    assert_all_tensors_match(compiled, raw)


def assert_all_tensors_match(compiled, raw):
    """Every tensor the simulator holds (not only the output, which a saturating softmax
    can make insensitive) equals the reference's."""
    c, h, w = compiled.program.input_shape
    sim = run_program(compiled.program, compiled.pre.prepare_images(raw, h, w), keep_all=True)
    checked = set()
    for i, image in enumerate(raw):
        ref = int_reference.run_image(compiled, image)
        for name, value in ref.items():
            if name in sim:
                assert np.array_equal(sim[name][i], value.transpose(1, 2, 0)), (name, i)
                checked.add(name)
    weighted = {l.tops[0] for l in compiled.net.layers if l.type in ("Convolution", "InnerProduct", "Pooling")}
    assert weighted <= checked


@pytest.mark.parametrize("generation, weights_format", FLAVOURS)
@pytest.mark.parametrize("name", ["branches", "nonsquare", "split_concat", "eltwise_ops"])
def test_every_file_flavour(tmp_path, name, generation, weights_format):
    compiled = build(tmp_path, name, generation, weights_format)
    raw = raw_images(compiled, count=3)
    got = simulate(compiled, raw)
    assert np.array_equal(got, int_reference.run(compiled, raw))
    # the same trained blobs give the same program whatever the file flavour
    base = build(tmp_path / "base", name) if (tmp_path / "base").mkdir() is None else None
    assert base.quant.tensor_frac == compiled.quant.tensor_frac
    assert np.array_equal(got, simulate(base, raw))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_weights(tmp_path, seed):
    compiled = build(tmp_path, "basic_odd", seed=seed)
    raw = raw_images(compiled, count=3, seed=seed)
    assert np.array_equal(simulate(compiled, raw), int_reference.run(compiled, raw))


def test_reference_tracks_every_intermediate_tensor(tmp_path):
    """Not only the output: every tensor of a branching net equals the simulator's."""
    compiled = build(tmp_path, "branches")
    raw = raw_images(compiled, count=2)
    sim = run_program(compiled.program, compiled.pre.prepare_images(raw, 8, 8), keep_all=True)
    for i, image in enumerate(raw):
        ref = int_reference.run_image(compiled, image)
        for name in ("data", "conv1", "pool_a", "pool_b", "conv_c", "cat", "conv_d", "ip1", "prob"):
            assert np.array_equal(sim[name][i], ref[name].transpose(1, 2, 0)), name
    # relu1 runs after pool_a (max pooling and ReLU commute, cmsisgen/mapper/commute.py): the
    # program never holds Caffe's relu1 tensor, only pool_a before and after the ReLU
    assert "relu1" not in sim and "pool_a@before_relu1" in sim


def test_bright_pixels_are_not_negative(tmp_path):
    compiled = build(tmp_path, "rgb_chain")
    raw = np.full((1, 9, 9, 3), 200, dtype=np.uint8)
    data = run_program(compiled.program, raw, keep_all=True)["data"]
    assert (data > 0).all()


# --------------------------------------------------------------------------- host gcc


MAIN_C = r"""
#include <stdio.h>
#include <string.h>
#include "nn.h"
#include "test_vectors.h"

int main(void)
{
    int i, k, bad = 0;
    q7_t out[NN_TEST_OUTPUT_SIZE];  /* every output side by side (one pointer into it each) */
    static uint8_t image[NN_INPUT_BUFFER_SIZE];

    for (i = 0; i < NN_TEST_VECTOR_COUNT; i++) {
        memcpy(image, nn_test_inputs[i], NN_INPUT_SIZE);  /* run_nn() overwrites it */
        arm_status status = NN_TEST_RUN(image, out);
        printf("%d %d", (int)status, (int)nn_test_labels[i]);
        for (k = 0; k < NN_TEST_OUTPUT_SIZE; k++) {
            printf(" %d", (int)out[k]);
            if (status != ARM_MATH_SUCCESS || out[k] != nn_test_expected[i][k]) {
                bad++;
            }
        }
        printf("\n");
    }
    printf("mismatches %d\n", bad);
    return bad != 0;
}
"""


@pytest.fixture(scope="session")
def kernel_objects(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not found: cannot build the generated C")
    out = tmp_path_factory.mktemp("kernels")
    objects = []
    for source in sorted((PORTABLE / "Source").glob("*.c")):
        obj = out / (source.stem + ".o")
        subprocess.run(["gcc", *CFLAGS, "-I", str(PORTABLE / "Include"), "-c", str(source), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objects.append(str(obj))
    return objects


def build_and_run(tmp_path, compiled, raw, expected, kernel_objects):
    vectors = codegen.TestVectors(inputs=raw, expected=expected, labels=np.arange(len(raw)))
    files = codegen.render(compiled.program, compiled.plan, "model.prototxt", vectors)
    model_dir = tmp_path / "c"
    model_dir.mkdir()
    for name, text in files.items():
        (model_dir / name).write_text(text)
    (model_dir / "main.c").write_text(MAIN_C)
    exe = model_dir / "selftest"
    # every .c of the folder: nn.c, the project's kernels copied beside it, main.c
    result = subprocess.run(["gcc", *CFLAGS, "-I", str(model_dir), "-I", str(PORTABLE / "Include"),
                             *map(str, sorted(model_dir.glob("*.c"))), *kernel_objects,
                             "-o", str(exe)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    lines = run.stdout.strip().splitlines()
    rows = [[int(v) for v in line.split()] for line in lines[:-1]]
    return run.returncode, lines[-1], rows


@pytest.mark.parametrize("name", sorted(NETS))
def test_generated_c_is_bit_exact(tmp_path, name, kernel_objects):
    compiled = build(tmp_path, name)
    raw = raw_images(compiled, count=5, seed=11)
    expected = simulate(compiled, raw)
    assert np.array_equal(expected, int_reference.run(compiled, raw))
    code, summary, rows = build_and_run(tmp_path, compiled, raw, expected, kernel_objects)
    assert summary == "mismatches 0" and code == 0
    assert [row[:2] for row in rows] == [[0, i] for i in range(len(raw))]
    assert np.array_equal(np.array([row[2:] for row in rows]), expected.astype(int))


def test_generated_c_reports_a_wrong_vector(tmp_path, kernel_objects):
    """The harness is not vacuous: a wrong expected value is caught."""
    compiled = build(tmp_path, "rgb_chain")
    raw = raw_images(compiled, count=2)
    expected = simulate(compiled, raw)
    wrong = expected.copy()
    wrong[1, 0] = wrong[1, 0] + 1 if wrong[1, 0] < 127 else 0
    code, summary, rows = build_and_run(tmp_path, compiled, raw, wrong, kernel_objects)
    assert code == 1 and summary == "mismatches 1"
    assert np.array_equal(np.array([row[2:] for row in rows]), expected.astype(int))


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_bit_exact_in_c(tmp_path, seed, kernel_objects):
    """Random conv/pool/relu stacks with random geometry, ending in FC + softmax."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(7, 12))
    layers, h, w, c = [], size, size, 3
    for i in range(int(rng.integers(2, 4))):
        k = int(rng.integers(1, 4))
        pad = int(rng.integers(0, k))
        stride = int(rng.integers(1, 3))
        out = int(rng.choice([2, 3, 4, 5, 8]))
        if (h + 2 * pad - k) // stride + 1 < 2:
            break
        layers.append(L(f"conv{i}", "Convolution", num_output=out, kernel_size=k, pad=pad, stride=stride))
        h = w = (h + 2 * pad - k) // stride + 1
        c = out
        if rng.random() < 0.6:
            layers.append(L(f"relu{i}", "ReLU", inplace=True))
        if h >= 4 and rng.random() < 0.6:
            kp = int(rng.integers(2, 4))
            sp = int(rng.integers(1, kp + 1))
            layers.append(L(f"pool{i}", "Pooling", pool=str(rng.choice(["MAX", "AVE"])), kernel_size=kp, stride=sp))
            h = w = -(-(h - kp) // sp) + 1
    layers += [L("ip1", "InnerProduct", num_output=int(rng.integers(2, 12))), L("prob", "Softmax")]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, size, size), seed=seed)
    calib = rng.integers(0, 256, size=(8, size, size, 3), dtype=np.uint8)
    compiled = compile_model(proto, weights, calib_images=calib, fc_variant="opt" if seed % 2 else "plain")
    raw = rng.integers(0, 256, size=(4, size, size, 3), dtype=np.uint8)
    expected = simulate(compiled, raw)
    assert np.array_equal(expected, int_reference.run(compiled, raw))
    code, summary, _ = build_and_run(tmp_path, compiled, raw, expected, kernel_objects)
    assert summary == "mismatches 0" and code == 0


@pytest.mark.parametrize("shape, extra", [
    ((3, 8, 8), ["--bgr", "--mean", "10,20,30", "--scale", "0.5", "--fc", "plain"]),
    ((1, 7, 7), []),
])
def test_cli_test_vectors_build_bit_exact(tmp_path, kernel_objects, shape, extra):
    """`cmsisgen compile --test-vectors` with an .npz calibration set (channel-reordered by the
    generated input stage; RGB images become luminance for a 1-channel net)."""
    from click.testing import CliRunner

    from cmsisgen.cli import main

    layers = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              L("relu1", "ReLU", inplace=True),
              L("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
              L("ip1", "InnerProduct", num_output=6),
              L("prob", "Softmax")]
    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(12, shape[1], shape[2], 3), dtype=np.uint8)
    np.savez(tmp_path / "calib.npz", x=x, y=np.arange(12) % 3)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compile", str(proto), str(weights), "-o", str(out), "--calib",
                                       str(tmp_path / "calib.npz"), "--test-vectors", "5", *extra])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".cmsisgen-manifest", "nn.c", "nn.h", "parameters.h",
                                                     "test_vectors.h", "weights.c", "weights.h"]
    (out / "main.c").write_text(MAIN_C)
    exe = out / "selftest"
    built = subprocess.run(["gcc", *CFLAGS, "-I", str(out), "-I", str(PORTABLE / "Include"), str(out / "nn.c"), str(out / "weights.c"),
                            str(out / "main.c"), *kernel_objects, "-o", str(exe)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == "mismatches 0" and run.returncode == 0
    assert len(lines) == 6
    # and what the C computed is the independent reference's answer on the same images
    options = {"calib_images": x, "fc_variant": "plain" if "plain" in extra else "opt"}
    if extra:
        options.update(mean="10,20,30", scale=0.5, bgr=True)
    compiled = compile_model(proto, weights, **options)
    raw = x[:5]
    if shape[0] == 1:  # Pillow's convert("L") luma, as the compiler feeds a gray net
        rgb = raw.astype(np.uint32)
        raw = (((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16)[..., None]
               ).astype(np.uint8)
    ref = int_reference.run(compiled, raw)
    c_rows = np.array([[int(v) for v in line.split()[2:]] for line in lines[:-1]])
    assert np.array_equal(c_rows, ref.astype(int))
    assert [int(line.split()[1]) for line in lines[:-1]] == [0, 1, 2, 0, 1]
