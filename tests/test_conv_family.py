"""The convolution family beyond CMSIS-NN's q7 functions (issue 12, item 5): dilated and
oversized convolutions on nn_conv_q7, the forks' ConvolutionDepthwise, Caffe's Deconvolution.

Kernel choice, --kernel, exact refusals, shapes, weight layouts, BatchNorm/Scale folding (the
folded net's float outputs equal the unfolded net's), and the simulated program against the
float forward. Bit-exactness of the C is in test_own_conv.py and the catalogue nets
(mobilenet_dw_fork, dilated_deeplab, fcn_deconv) of tests/random_nets.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer, write_model
from test_mapper import compile_layers, op_of
from cmsisgen.errors import CmsisgenError
from cmsisgen.float_forward import forward
from cmsisgen.fold import fold_affine
from cmsisgen.loader import load_net
from cmsisgen.ops.deconvolution import kernel_weights
from cmsisgen.pipeline import compile_model

BN4 = [np.array([0.1, -0.2, 0.3, 0.0]), np.array([0.5, 0.2, 1.5, 0.9]), np.array([1.0])]
SCALE4 = [np.array([1.5, -0.5, 0.8, 2.0]), np.array([0.1, -0.3, 0.0, 0.2])]


@pytest.mark.parametrize("layers, shape, function", [
    ([layer("c", "Convolution", num_output=4, kernel_size=3, dilation=2)], (3, 8, 8), "nn_conv_q7"),
    ([layer("c", "Convolution", num_output=4, kernel_size=3, dilation=[1, 2], pad=[0, 2])], (3, 8, 7), "nn_conv_q7"),
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=4, kernel_size=3, group=2, dilation=2)], (3, 8, 8), "nn_conv_q7"),
    ([layer("c", "ConvolutionDepthwise", kernel_size=3, pad=1)], (3, 8, 8),
     "arm_depthwise_separable_conv_HWC_q7_nonsquare"),
    ([layer("c", "ConvolutionDepthwise", num_output=3, group=3, kernel_size=3, dilation=3)], (3, 8, 8), "nn_conv_q7"),
    ([layer("c", "Deconvolution", num_output=4, kernel_size=4, stride=2, pad=1)], (3, 5, 6), "nn_deconv_q7"),
])
def test_kernel_choice(tmp_path, layers, shape, function):
    compiled = compile_layers(tmp_path, layers, shape)
    assert op_of(compiled, "c").function == function


def test_forced_own_convolution_on_a_plain_convolution(tmp_path):
    compiled = compile_layers(tmp_path, [layer("c", "Convolution", num_output=4, kernel_size=3)],
                              kernels={"c": "nn_conv_q7"})
    op = op_of(compiled, "c")
    assert (op.function, op.kernel.source) == ("nn_conv_q7", "nn_conv_q7.c")
    assert op.args == dict(in_h=8, in_w=8, in_ch=3, out_h=6, out_w=6, out_ch=4, kernel_h=3, kernel_w=3, stride_h=1,
                           stride_w=1, pad_h=0, pad_w=0, dilation_h=1, dilation_w=1, groups=1)


def test_depthwise_forced_per_group_and_refused_cmsis(tmp_path):
    layers = [layer("c", "ConvolutionDepthwise", kernel_size=3, dilation=2)]
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers, kernels={"c": "arm_depthwise_separable_conv_HWC_q7_nonsquare"})
    assert str(info.value) == (
        f"{tmp_path / 'model.prototxt'}: layer 'c' (ConvolutionDepthwise): arm_depthwise_separable_conv_HWC_q7_nonsquare "
        "cannot run it: CMSIS-NN q7 convolutions have no dilation: dilation must be 1 (dilation 2x2).")


@pytest.mark.parametrize("lay, message", [
    (layer("c", "ConvolutionDepthwise", num_output=4, kernel_size=3),
     "layer 'c' (ConvolutionDepthwise): num_output 4 is not the input's 3 channels: ConvolutionDepthwise filters "
     "each input channel on its own"),
    (layer("c", "ConvolutionDepthwise", group=1, kernel_size=3),
     "layer 'c' (ConvolutionDepthwise): group 1 is not the input's 3 channels: ConvolutionDepthwise filters "
     "each input channel on its own"),
    (layer("c", "Deconvolution", num_output=4, kernel_size=2, stride=1, pad=2),
     "layer 'c' (Deconvolution): padding 2x2 crops away all of the 2x2 output (kernel 2x2, stride 1x1 on the "
     "1x1 input)"),
    (layer("c", "Deconvolution", num_output=4, kernel_size=2, group=2),
     "layer 'c' (Deconvolution): group 2 does not divide input channels 3 and num_output 4"),
    (layer("c", "Convolution", num_output=4, kernel_size=3, dilation=4),
     "layer 'c' (Convolution): kernel 3x3 (dilation 4x4) does not fit the padded input 1x1 (pad 0,0)"),
])
def test_shape_errors(tmp_path, lay, message):
    with pytest.raises(CmsisgenError) as info:
        write_model(tmp_path, [lay], input_shape=(3, 1, 1))
    assert str(info.value) == f"{tmp_path / 'model.prototxt'}: {message}"


def test_deconvolution_weight_layout_and_missing_bias(tmp_path):
    compiled = compile_layers(tmp_path, [layer("a", "Convolution", num_output=4, kernel_size=1),
                                         layer("c", "Deconvolution", num_output=6, kernel_h=3, kernel_w=2, stride=2,
                                               group=2, bias_term=False)], (3, 5, 4))
    op, lq = op_of(compiled, "c"), compiled.quant.layers["c"]
    assert lq.weights.shape == (4, 3, 3, 2)  # Caffe: (C_in, C_out / group, kh, kw)
    # output channel 4 (group 1, its column 1) reads input channels 2, 3 of the blob's rows
    assert np.array_equal(op.weights[4, 2, 1], lq.weights[2:4, 1, 2, 1])
    assert np.array_equal(op.weight_data, kernel_weights(lq.weights, 2).reshape(-1))
    assert op.bias.tolist() == [0] * 6
    assert compiled.net.shapes["c"] == (6, 11, 8)  # (H - 1) * stride + kernel


@pytest.mark.parametrize("kind, params", [
    ("ConvolutionDepthwise", dict(kernel_size=3, pad=1, dilation=[1, 2], bias_term=False)),
    ("Deconvolution", dict(num_output=4, kernel_size=3, stride=2, group=2)),
    ("Deconvolution", dict(num_output=4, kernel_size=2, stride=2, bias_term=False)),
    ("Convolution", dict(num_output=4, kernel_size=3, pad=2, dilation=2)),
])
def test_batchnorm_scale_fold_into_it(tmp_path, kind, params):
    layers = [layer("a", "Convolution", num_output=4, kernel_size=1), layer("c", kind, **params),
              layer("bn", "BatchNorm", inplace=True, weights=BN4), layer("sc", "Scale", inplace=True, bias_term=True,
                                                                         weights=SCALE4),
              layer("ip", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 6, 7))
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 7)).astype(np.float32)
    plain = load_net(proto, weights)
    want = forward(plain, x)["ip"]
    net = load_net(proto, weights)
    assert fold_affine(net) == ["bn folded into c", "sc folded into c"]
    np.testing.assert_allclose(forward(net, x)["ip"], want, rtol=1e-4, atol=1e-5)


def test_simulated_program_follows_the_float_forward(tmp_path):
    """The quantized program's outputs track the float net's (a wrong weight layout would not)."""
    from cmsisgen.simulator.execute import run_program

    layers = [layer("a", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("c", "Deconvolution", num_output=4, kernel_size=4, stride=2, pad=1, group=2),
              layer("d", "ConvolutionDepthwise", kernel_size=3, dilation=2, pad=2),
              layer("e", "Convolution", num_output=3, kernel_size=3, dilation=[2, 1])]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 6, 5), seed=2)
    images = np.random.default_rng(3).integers(0, 256, size=(8, 6, 5, 3), dtype=np.uint8)
    compiled = compile_model(proto, weights, calib_images=images)
    frac = compiled.quant.tensor_frac[compiled.net.outputs[0]]
    got = run_program(compiled.program, images).astype(np.float64) * 2.0 ** -frac
    want = forward(compiled.net, images.transpose(0, 3, 1, 2).astype(np.float32))[compiled.net.outputs[0]]
    want = want.transpose(0, 2, 3, 1).reshape(got.shape)
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_positions_beyond_uint32_are_refused(tmp_path):
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, [layer("c", "Deconvolution", num_output=2, kernel_size=1, stride=1 << 30)], (3, 3, 3))
    assert str(info.value) == (
        f"{tmp_path / 'model.prototxt'}: layer 'c' (Deconvolution): no kernel fits: nn_deconv_q7: "
        "nn_conv_q7 and nn_deconv_q7 compute image positions (position * stride + dilation * kernel offset, plus "
        "padding) in uint32_t: they must stay below 2^31 (input 3x3, output 2147483649x2147483649, kernel 1x1, "
        "stride 1073741824x1073741824, padding 0x0, dilation 1x1).")


def test_deconvolution_kernel_override_names_its_function(tmp_path):
    layers = [layer("c", "Deconvolution", num_output=2, kernel_size=2, stride=2)]
    assert op_of(compile_layers(tmp_path, layers, kernels={"c": "nn_deconv_q7"}), "c").function == "nn_deconv_q7"
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers, kernels={"c": "nn_conv_q7"})
    assert str(info.value) == (f"{tmp_path / 'model.prototxt'}: layer 'c' (Deconvolution): kernel nn_conv_q7 is not "
                               "a function for this layer (candidates: nn_deconv_q7)")


def test_convolution_past_the_q7_counters_runs_on_nn_conv_q7(tmp_path):
    """in_ch * kernel_h * kernel_w = 67500 overflows the q7 convolutions' uint16 im2col counter."""
    compiled = compile_layers(tmp_path, [layer("c", "Convolution", num_output=2, kernel_size=150)], (3, 150, 150))
    op = op_of(compiled, "c")
    assert (op.function, compiled.net.shapes["c"]) == ("nn_conv_q7", (2, 1, 1))
    with pytest.raises(CmsisgenError, match=r"arm_convolve_HWC_q7_basic_nonsquare cannot run it: The q7 convolutions "
                                            r"count one im2col column .* \(3 channels x 150x150 kernel\)"):
        compile_layers(tmp_path, [layer("c", "Convolution", num_output=2, kernel_size=150)], (3, 150, 150),
                       kernels={"c": "arm_convolve_HWC_q7_basic_nonsquare"})
