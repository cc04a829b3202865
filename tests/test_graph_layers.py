"""Layers beyond conv/pool/relu/fc, stage by stage: loader params, shapes, float forward,
quantizer formats and shifts, mapper choice, and the generated kernels' numpy models.

End-to-end bit-exactness of the same layers (simulator vs tests/int_reference.py, host
gcc, QEMU) is in test_end_to_end.py and test_generated_qemu.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.float_forward import forward
from cmsisgen.loader import load_net
from cmsisgen.ops.eltwise import eltwise_coefficients, eltwise_max_q7, eltwise_prod_q7, eltwise_sum_q7
from cmsisgen.ops.pooling_nn import pool_q7
from cmsisgen.ops.prelu import prelu_q7, quantize_slopes
from cmsisgen.ops.scale import scale_q7
from cmsisgen.quantizer import quantize


# --------------------------------------------------------------------------- Eltwise


def test_eltwise_params_loaded(tmp_path):
    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=2, kernel_size=1),
              L("s", "Eltwise", ["a", "b"], "s", coeff=[1, -2]),
              L("p", "Eltwise", ["a", "b"], "p", operation="PROD"),
              L("m", "Eltwise", ["s", "p", "a"], "m", operation="MAX")]
    proto, _ = write_model(tmp_path, layers, input_shape=(1, 3, 3))
    net = load_net(proto)
    params = {lay.name: lay.params for lay in net.layers}
    assert params["s"] == ir.EltwiseParams("sum", (1.0, -2.0))
    assert params["p"] == ir.EltwiseParams("prod", ())
    assert params["m"] == ir.EltwiseParams("max", ())
    assert net.shapes["m"] == (2, 3, 3)


@pytest.mark.parametrize("extra, message", [
    ({"operation": "PROD", "coeff": [1, 1]},
     "layer 'e' (Eltwise): Eltwise takes coefficients only for SUM (Caffe refuses them otherwise)"),
    ({"coeff": [1, 1, 1]}, "layer 'e' (Eltwise): has 3 coefficients for 2 inputs"),
])
def test_eltwise_param_errors(tmp_path, extra, message):
    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=2, kernel_size=1),
              L("e", "Eltwise", ["a", "b"], "e", **extra)]
    proto, _ = write_model(tmp_path, [layers[0]], input_shape=(1, 3, 3))
    from caffe_models import build_net, write_prototxt
    proto = write_prototxt(tmp_path / "e.prototxt", build_net(layers, (1, 3, 3)))
    with pytest.raises(CmsisgenError) as e:
        load_net(proto)
    assert str(e.value) == f"{proto}: {message}"


def test_eltwise_shape_mismatch(tmp_path):
    from caffe_models import build_net, write_prototxt
    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=3, kernel_size=1),
              L("e", "Eltwise", ["a", "b"], "e")]
    proto = write_prototxt(tmp_path / "e.prototxt", build_net(layers, (1, 3, 3)))
    with pytest.raises(CmsisgenError) as e:
        load_net(proto)
    assert str(e.value) == f"{proto}: layer 'e' (Eltwise): inputs differ in shape: a (2, 3, 3), b (3, 3, 3)"


def test_eltwise_float_forward(tmp_path):
    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=2, kernel_size=1),
              L("s", "Eltwise", ["a", "b"], "s", coeff=[0.5, -2]),
              L("p", "Eltwise", ["a", "b"], "p", operation="PROD"),
              L("m", "Eltwise", ["s", "p"], "m", operation="MAX")]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 3, 3))
    net = load_net(proto, weights)
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    v = forward(net, x)
    assert np.allclose(v["s"], 0.5 * v["a"] - 2 * v["b"])
    assert np.allclose(v["p"], v["a"] * v["b"])
    assert np.array_equal(v["m"], np.maximum(v["s"], v["p"]))


@pytest.mark.parametrize("coeffs, lshifts, ints, frac", [
    ((1.0, 1.0), (0, 0), (1, 1), 0), ((1.0, -1.0), (0, 3), (1, -1), 0), ((2.0, 1.0), (0, 0), (2, 1), 0),
    ((0.5, 1.5), (0, 0), (1, 3), 1), ((1.0, -0.5, 0.3), (0, 0, 2), (16384, -8192, 4915), 14),
    ((200.0, 1.0), (0, 0), (200, 1), 0), ((0.0, 1.0), (0, 0), (0, 1), 0),
    # an input shifted by 12 leaves the accumulator room for 12 coefficient bits: 0.3 -> 1229 / 2^12
    ((0.3, 1.0), (12, 0), (1229, 4096), 12),
])
def test_eltwise_coefficients(coeffs, lshifts, ints, frac):
    assert eltwise_coefficients(coeffs, lshifts) == (ints, frac)


def _two_branch_net(tmp_path, operation="SUM", coeff=None):
    extra = {"operation": operation} if operation != "SUM" else {}
    if coeff:
        extra["coeff"] = coeff
    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=2, kernel_size=1),
              L("e", "Eltwise", ["a", "b"], "e", **extra)]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 3, 3))
    return load_net(proto, weights)


@pytest.mark.parametrize("ranges, fracs, lshifts, rshift", [
    # a in Q1.6, b in Q4.3, sum in Q3.4: common format 6 bits, b shifted by 3, out by 2
    ({"a": 1.5, "b": 12.0, "e": 13.0}, (6, 3, 3), (0, 3), 3),
    # the output has more fractional bits than both inputs: the common format is the output's
    ({"a": 12.0, "b": 12.0, "e": 0.9}, (3, 3, 7), (4, 4), 0),
])
def test_eltwise_sum_shifts(tmp_path, ranges, fracs, lshifts, rshift):
    net = _two_branch_net(tmp_path)
    q = quantize(net, dict(ranges, data=1.0))
    eq = q.params["e"]
    assert (eq.in_fracs + (eq.out_frac,)) == fracs
    assert eq.lshifts == lshifts and eq.out_rshift == rshift and eq.coeffs == (1, 1)


def test_eltwise_prod_output_never_finer_than_the_product(tmp_path):
    net = _two_branch_net(tmp_path, "PROD")
    q = quantize(net, {"data": 1.0, "a": 12.0, "b": 12.0, "e": 1e-4})
    eq = q.params["e"]
    assert eq.in_fracs == (3, 3) and eq.out_frac == 6 and eq.out_rshift == 0


def test_generated_kernel_models():
    a = np.array([[127, -128, 5, -5, 3]], dtype=np.int8)
    b = np.array([[127, -128, -3, 2, 1]], dtype=np.int8)
    # a (2 frac bits) + b (0 frac bits) into 0 frac bits: (a + 4b + 2) >> 2, saturated
    assert eltwise_sum_q7([a, b], [1, 1], [0, 2], 2).tolist() == [[127, -128, -2, 1, 2]]
    assert eltwise_sum_q7([a, b], [1, -1], [0, 0], 0).tolist() == [[0, 0, 8, -7, 2]]
    assert eltwise_max_q7([a, b], [0, 1], 1).tolist() == [[127, -64, 3, 2, 2]]
    assert eltwise_prod_q7(a, b, 7).tolist() == [[126, 127, 0, 0, 0]]


# --------------------------------------------------------------------------- BatchNorm / Scale


BN3 = [np.array([0.5, -1.0, 2.0]) * 3, np.array([0.25, 4.0, 1.0]) * 3, np.array([3.0])]
SCALE3 = [np.array([2.0, -0.5, 1.0]), np.array([0.1, 0.2, -0.3])]


def test_batchnorm_and_scale_float_semantics(tmp_path):
    layers = [L("bn", "BatchNorm", "data", "bn", weights=BN3, eps=0.01),
              L("sc", "Scale", "bn", "sc", bias_term=True, weights=SCALE3),
              L("sc2", "Scale", "sc", "sc2", weights=SCALE3[:1])]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 2, 2))
    net = load_net(proto, weights)
    assert net.layers[0].params == ir.BatchNormParams(eps=pytest.approx(0.01))
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 2)).astype(np.float32)
    v = forward(net, x)
    mean = np.array([0.5, -1.0, 2.0])[None, :, None, None]
    var = np.array([0.25, 4.0, 1.0])[None, :, None, None]
    bn = (x - mean) / np.sqrt(var + 0.01)
    assert np.allclose(v["bn"], bn, rtol=1e-5, atol=1e-6)
    gamma, beta = (a[None, :, None, None] for a in SCALE3)
    assert np.allclose(v["sc"], bn * gamma + beta, rtol=1e-5, atol=1e-6)
    assert np.allclose(v["sc2"], (bn * gamma + beta) * gamma, rtol=1e-5, atol=1e-6)


def _fold_net(tmp_path, layers, shape=(3, 5, 5)):
    from cmsisgen.fold import fold_affine

    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    x = np.random.default_rng(2).standard_normal((2, *shape)).astype(np.float32)
    before = forward(load_net(proto, weights), x)
    net = load_net(proto, weights)
    notes = fold_affine(net)
    return net, notes, before, forward(net, x)


@pytest.mark.parametrize("transpose", [False, True])
def test_fold_into_conv_and_inner_product(tmp_path, transpose):
    layers = [L("conv", "Convolution", num_output=3, kernel_size=3, bias_term=False),
              L("bn", "BatchNorm", inplace=True, weights=BN3),
              L("scale", "Scale", inplace=True, bias_term=True, weights=SCALE3),
              L("relu", "ReLU", inplace=True),
              L("ip", "InnerProduct", num_output=3, transpose=transpose),
              L("bn_ip", "BatchNorm", inplace=True, weights=BN3)]
    net, notes, before, after = _fold_net(tmp_path, layers)
    assert notes == ["bn folded into conv", "scale folded into conv", "bn_ip folded into ip"]
    assert [lay.type for lay in net.layers] == ["Convolution", "ReLU", "InnerProduct"]
    assert net.layers[0].params.bias_term and net.layers[0].tops == ["conv@2"]
    assert "conv" not in net.shapes and "conv@1" not in net.shapes
    assert net.outputs == ["ip@1"] and net.layers[2].tops == ["ip@1"]
    assert np.allclose(after["ip@1"], before["ip@1"], rtol=1e-4, atol=1e-5)
    assert np.allclose(after["conv@3"], before["conv@3"], rtol=1e-4, atol=1e-5)


def test_standalone_affine_when_the_input_has_other_readers(tmp_path):
    layers = [L("conv", "Convolution", num_output=3, kernel_size=3),
              L("bn", "BatchNorm", "conv", "bn", weights=BN3),
              L("scale", "Scale", "bn", "scale", bias_term=True, weights=SCALE3),
              L("pool", "Pooling", "conv", "pool", pool="MAX", kernel_size=3, stride=1, pad=1),
              L("bn2", "BatchNorm", "pool", "bn2", weights=BN3),
              L("cat", "Concat", ["scale", "bn2"], "cat")]
    net, notes, before, after = _fold_net(tmp_path, layers)
    # bn (input read by the pool too) stays, and absorbs its Scale; bn2 follows a pooling layer
    assert notes == ["scale folded into bn"]
    assert [(lay.name, lay.type) for lay in net.layers] == [
        ("conv", "Convolution"), ("bn", "Scale"), ("pool", "Pooling"), ("bn2", "Scale"), ("cat", "Concat")]
    assert net.layers[1].tops == ["scale"]
    assert np.allclose(after["cat"], before["cat"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extra, message", [
    ({"use_global_stats": False}, "layer 'bn' (BatchNorm): use_global_stats: false normalises with each batch's "
                                  "own statistics; only the stored statistics can be deployed"),
])
def test_batchnorm_errors(tmp_path, extra, message):
    from caffe_models import build_net, write_prototxt
    proto = write_prototxt(tmp_path / "b.prototxt",
                           build_net([L("bn", "BatchNorm", "data", "bn", **extra)], (1, 3, 3)))
    with pytest.raises(CmsisgenError) as e:
        load_net(proto)
    assert str(e.value) == f"{proto}: {message}"


def test_scale_with_two_inputs_refused(tmp_path):
    from caffe_models import build_net, write_prototxt
    layers = [L("a", "Convolution", num_output=1, kernel_size=1),
              L("s", "Scale", ["data", "a"], "s", axis=0)]
    proto = write_prototxt(tmp_path / "s.prototxt", build_net(layers, (1, 3, 3)))
    with pytest.raises(CmsisgenError) as e:
        load_net(proto)
    assert str(e.value) == (f"{proto}: layer 's' (Scale): a Scale with its factors in a second input is not "
                            "supported (only learned factors)")


def test_scale_kernel_model():
    x = np.array([[[[10, -20], [127, -128]]]], dtype=np.int8)  # N=1, H=1, W=2, C=2
    mult = np.array([64, -3], dtype=np.int8)
    bias = np.array([1, -2], dtype=np.int8)
    # ((bias << 2) + 32 + x * mult) >> 6, per channel
    got = scale_q7(x, mult, bias, 2, 6)
    assert got.tolist() == [[[[10, 1], [127, 6]]]]


# --------------------------------------------------------------------------- PReLU / leaky ReLU


@pytest.mark.parametrize("slopes, ints, frac", [
    ([0.1], [102], 10), ([0.01, 0.02], [41, 82], 12),
    ([0.25, -0.5], [32, -64], 7), ([0.0], [0], 7), ([300.0], [127], 0),
])
def test_quantize_slopes(slopes, ints, frac):

    got, got_frac = quantize_slopes(np.array(slopes))
    assert got_frac == frac and got.tolist() == [min(127, v) for v in ints]


def test_prelu_kernel_model():
    x = np.array([[[[-100, 50, -1, -128]]]], dtype=np.int8)  # one pixel, 4 channels
    slopes = np.array([64, 64, 64, -128], dtype=np.int8)  # 0.5, 0.5, 0.5, -1.0 with 7 bits
    # (x * a + 64) >> 7 for negative x: -50, kept 50, (-64 + 64) >> 7 = 0, 128 -> saturated 127
    assert prelu_q7(x, slopes, 7).tolist() == [[[[-50, 50, 0, 127]]]]


def test_prelu_float_and_formats(tmp_path):
    layers = [L("conv", "Convolution", num_output=2, kernel_size=1),
              L("prelu", "PReLU", inplace=True, weights=[np.array([0.5, -2.0])])]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 2, 2))
    net = load_net(proto, weights)
    x = np.random.default_rng(3).standard_normal((1, 1, 2, 2)).astype(np.float32)
    v = forward(net, x)
    conv, out = v["conv"], v["conv@1"]
    slope = np.array([0.5, -2.0])[None, :, None, None]
    assert np.allclose(out, np.where(conv > 0, conv, conv * slope))
    q = quantize(net, {"data": 1.0, "conv": 3.0, "conv@1": 5.0})
    assert q.tensor_frac["conv"] == q.tensor_frac["conv@1"] == 4  # one format: the leaky side counts
    assert q.params["prelu"][1] == 5 and q.params["prelu"][0].tolist() == [16, -64]


# --------------------------------------------------------------------------- Sigmoid / TanH

ACTIVATIONS_C = Path(__file__).resolve().parent.parent / "firmware" / "cmsis_nn_portable" / "Source" / \
    "arm_nn_activations_q7.c"


def _c_tables(text: str, names) -> dict:
    import re

    tables = {}
    for name in names:
        body = re.search(r"q7_t %s\[256\] = \{(.*?)\};" % name, text, re.S).group(1)
        values = [int(v, 0) for v in re.findall(r"-?0x[0-9a-fA-F]+|-?\d+", body)]
        tables[name] = np.array(values, dtype=np.int64).astype(np.uint8).view(np.int8)
    return tables


def test_portable_activation_tables_are_the_formula():
    from cmsisgen.simulator.activations import activation_table_q7

    tables = _c_tables(ACTIVATIONS_C.read_text(), ["pnn_sigmoid_table_q7", "pnn_tanh_table_q7"])
    assert np.array_equal(tables["pnn_sigmoid_table_q7"], activation_table_q7("sigmoid"))
    assert np.array_equal(tables["pnn_tanh_table_q7"], activation_table_q7("tanh"))
    # the generator reproduces the committed file
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ACTIVATIONS_C.parents[3] / "scripts" /
                                                  "gen_activation_tables.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.render() == ACTIVATIONS_C.read_text()


@pytest.mark.skipif(not os.environ.get("CMSIS_NN_PATH"), reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS/NN")
def test_activation_tables_equal_upstream():
    from cmsisgen.simulator.activations import activation_table_q7

    text = (Path(os.environ["CMSIS_NN_PATH"]) / "Source" / "NNSupportFunctions" / "arm_nntables.c").read_text()
    tables = _c_tables(text, ["sigmoidTable_q7", "tanhTable_q7"])
    assert np.array_equal(tables["sigmoidTable_q7"], activation_table_q7("sigmoid"))
    assert np.array_equal(tables["tanhTable_q7"], activation_table_q7("tanh"))


def test_activations_direct_model():
    from cmsisgen.simulator.activations import activations_direct_q7

    x = np.array([0, 16, -16, 127, -128, 1], dtype=np.int8)
    # Q3.4 (int_width 3): 1.0 -> sigmoid 0.731 -> 94; -1.0 -> 34; 7.94 -> 127; -8 -> 0
    assert activations_direct_q7(x, 3, "sigmoid").tolist() == [64, 94, 34, 127, 0, 66]
    # Q0.7 (int_width 0): shift 3, 16 -> index 2 (0.125): tanh 0.124 -> 16
    assert activations_direct_q7(x, 0, "tanh").tolist() == [0, 16, -16, 94, -97, 0]
    # int_width -1 wraps to a shift of 4 as in upstream's uint16_t arithmetic
    assert activations_direct_q7(x, -1, "tanh").tolist() == activations_direct_q7(x >> 1, 0, "tanh").tolist()


def test_sigmoid_formats(tmp_path):
    layers = [L("conv", "Convolution", num_output=2, kernel_size=1),
              L("sig", "Sigmoid", inplace=True)]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 2, 2))
    net = load_net(proto, weights)
    q = quantize(net, {"data": 1.0, "conv": 30.0, "conv@1": 0.99})
    assert q.tensor_frac["conv"] == 4 and q.tensor_frac["conv@1"] == 7  # Q3.4 in (30 saturates), Q0.7 out


def test_sigmoid_output_tied_to_wide_values_refused(tmp_path):
    layers = [L("conv", "Convolution", num_output=2, kernel_size=1),
              L("sig", "Sigmoid", "conv", "sig"),
              L("conv2", "Convolution", "data", "conv2", num_output=2, kernel_size=1),
              L("cat", "Concat", ["sig", "conv2"], "cat")]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 2, 2))
    net = load_net(proto, weights)
    with pytest.raises(CmsisgenError) as e:
        quantize(net, {"data": 1.0, "conv": 3.0, "sig": 0.9, "conv2": 20.0, "cat": 20.0})
    assert str(e.value) == ("layer 'sig' (Sigmoid): arm_nn_activations_direct_q7 writes Q0.7, but its output "
                            "shares one format (through Pooling, ReLU, PReLU, Concat, Dropout, Split, Flatten, "
                            "Reshape, Slice, Crop, ShuffleChannel, Permute, Upsample) with 'conv2', whose values "
                            "reach 20")


# --------------------------------------------------------------------------- Reshape


@pytest.mark.parametrize("dims, shape", [
    ([0, -1], (36, 1, 1)), ([1, 36], (36, 1, 1)), ([0, 4, 9], (4, 9, 1)), ([0, 0, 9, -1], (4, 9, 1)),
    ([-1, 4, 3, 3], (4, 3, 3)), ([0, 2, 2, 9], (2, 2, 9)),
])
def test_reshape_shapes(tmp_path, dims, shape):
    from caffe_models import build_net, write_prototxt
    proto = write_prototxt(tmp_path / "r.prototxt",
                           build_net([L("r", "Reshape", "data", "r", shape={"dim": dims})], (4, 3, 3)))
    net = load_net(proto)
    assert net.shapes["r"] == shape
    x = np.arange(36, dtype=np.float32).reshape(1, 4, 3, 3)
    assert np.array_equal(forward(net, x)["r"].reshape(-1), x.reshape(-1))
    assert forward(net, x)["r"].shape == (1, *shape)


@pytest.mark.parametrize("dims, message", [
    ([0, -1, -1], "shape [0, -1, -1]: at most one -1 and no other negative dimension"),
    ([0, 5, -1], "shape [0, 5, -1] does not divide the input's 36 values"),
    ([2, 18], "shape [2, 18] must keep the batch as the first dimension"),
    ([0, 4, 4], "shape [0, 4, 4] holds 16 values, the input 36"),
])
def test_reshape_shape_errors(tmp_path, dims, message):
    from caffe_models import build_net, write_prototxt
    proto = write_prototxt(tmp_path / "r.prototxt",
                           build_net([L("r", "Reshape", "data", "r", shape={"dim": dims})], (4, 3, 3)))
    with pytest.raises(CmsisgenError) as e:
        load_net(proto)
    assert str(e.value) == f"{proto}: layer 'r' (Reshape): {message}"


def test_reshape_that_reorders_hwc_bytes_may_only_feed_inner_products(tmp_path):
    from cmsisgen.pipeline import compile_model

    layers = [L("conv", "Convolution", num_output=4, kernel_size=1),
              L("r", "Reshape", shape={"dim": [0, 2, 6, 3]}),
              L("ip", "InnerProduct", num_output=2),
              L("conv2", "Convolution", "r", "conv2", num_output=2, kernel_size=1),
              L("ip2", "InnerProduct", "conv2", "ip2", num_output=2),
              L("sum", "Eltwise", ["ip", "ip2"], "sum")]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 3, 3))
    with pytest.raises(CmsisgenError) as e:
        compile_model(proto, weights)
    assert str(e.value) == (f"{proto}: layer 'r' (Reshape): " + "A Flatten output, or a Reshape that reorders the HWC bytes activations are kept in, holds its input's HWC bytes "
                            "under Caffe's C, H, W order: only inner products (their weight columns are permuted to the "
                            "bytes' order) may read it, through aliases and ReLUs, or it is the network output (read by 'conv2' (Convolution)).")


# --------------------------------------------------------------------------- global pooling


def test_global_pool_model():
    x = np.array([[[[3, -7]], [[-4, 2]], [[2, -2]]]], dtype=np.int8)  # N=1, H=3, W=1, C=2
    whole = dict(kernel=(3, 1), stride=(1, 1), pad=(0, 0), out_hw=(1, 1))  # the window covers the image
    assert pool_q7(x, average=False, **whole).tolist() == [[[[3, 2]]]]
    # sums 1 and -7 over 3 pixels: (1 + 1) / 3 = 0, (-7 - 1) / 3 = -2 (half away from zero)
    assert pool_q7(x, average=True, **whole).tolist() == [[[[0, -2]]]]


def test_nonsquare_global_pooling_uses_the_generated_kernel(tmp_path):
    from cmsisgen.pipeline import compile_model

    layers = [L("conv", "Convolution", num_output=2, kernel_size=1),
              L("gap", "Pooling", pool="AVE", global_pooling=True),
              L("sq", "Pooling", "conv", "sq", pool="MAX", kernel_h=3, kernel_w=5),
              L("cat", "Concat", ["gap", "sq"], "cat")]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 3, 5))
    ops = {op.layer: op for op in compile_model(proto, weights).program.ops}
    assert (ops["gap"].function, ops["gap"].args) == ("nn_pool_q7", {
        "in_h": 3, "in_w": 5, "channels": 2, "kernel_h": 3, "kernel_w": 5, "stride_h": 1, "stride_w": 1, "pad_h": 0,
        "pad_w": 0, "out_h": 1, "out_w": 1, "average": 1, "shift": 0})  # tied to sq's format by the concat
    assert (ops["sq"].function, ops["sq"].args["average"]) == ("nn_pool_q7", 0)
    assert not ops["gap"].clobbers_input and not ops["gap"].in_place and ops["gap"].scratch_bytes == 0


# --------------------------------------------------------------------------- a ResNet-style prototxt

RESNET_STYLE = """name: "resnet_block"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false
    weight_filler { type: "msra" } } }
layer { name: "bn_conv1" type: "BatchNorm" bottom: "conv1" top: "conv1"
  param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }
  batch_norm_param { use_global_stats: true } }
layer { name: "scale_conv1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "conv1_relu" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "res2a_branch2a" type: "Convolution" bottom: "conv1" top: "res2a_branch2a"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn2a_branch2a" type: "BatchNorm" bottom: "res2a_branch2a" top: "res2a_branch2a"
  batch_norm_param { use_global_stats: true } }
layer { name: "scale2a_branch2a" type: "Scale" bottom: "res2a_branch2a" top: "res2a_branch2a"
  scale_param { bias_term: true } }
layer { name: "res2a" type: "Eltwise" bottom: "conv1" bottom: "res2a_branch2a" top: "res2a"
  eltwise_param { operation: SUM } }
layer { name: "res2a_relu" type: "ReLU" bottom: "res2a" top: "res2a" }
layer { name: "pool5" type: "Pooling" bottom: "res2a" top: "pool5" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool5" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_resnet_style_prototxt_compiles_with_folded_batchnorm(tmp_path):
    import int_reference
    from caffe_models import _fill_blob
    from cmsisgen.pipeline import compile_model
    from cmsisgen.proto import schema
    from cmsisgen.simulator.execute import run_program

    proto = tmp_path / "resnet.prototxt"
    proto.write_text(RESNET_STYLE)
    rng = np.random.default_rng(5)
    blobs = {"conv1": [rng.standard_normal((4, 3, 3, 3)) * 0.1],
             "bn_conv1": [rng.standard_normal(4) * 0.1, rng.uniform(0.5, 2, 4), np.array([1.0])],
             "scale_conv1": [rng.uniform(0.5, 1.5, 4), rng.standard_normal(4) * 0.1],
             "res2a_branch2a": [rng.standard_normal((4, 4, 3, 3)) * 0.1],
             "bn2a_branch2a": [rng.standard_normal(4) * 0.1, rng.uniform(0.5, 2, 4), np.array([1.0])],
             "scale2a_branch2a": [rng.uniform(0.5, 1.5, 4), rng.standard_normal(4) * 0.1],
             "fc": [rng.standard_normal((3, 4)) * 0.5, np.zeros(3)]}
    netp = schema.NetParameter()
    for name, arrays in blobs.items():
        lay = netp.layer.add(name=name)
        for a in arrays:
            _fill_blob(lay.blobs.add(), a, legacy=False)
    weights = tmp_path / "resnet.caffemodel"
    weights.write_bytes(netp.SerializeToString())
    compiled = compile_model(proto, weights)
    assert [(op.layer, op.function) for op in compiled.program.ops] == [
        ("data", "nn_input_q7"), ("conv1", "arm_convolve_HWC_q7_RGB"), ("conv1_relu", "arm_relu_q7"),
        ("res2a_branch2a", "arm_convolve_HWC_q7_fast"), ("res2a", "nn_eltwise_sum_q7"), ("res2a_relu", "arm_relu_q7"),
        ("pool5", "nn_pool_q7"), ("fc", "arm_fully_connected_q7_opt"), ("prob", "arm_softmax_q7")]
    # the global average's own format is finer than res2a's (issue 13): nn_pool_q7 shifts into it
    assert compiled.quant.tensor_frac["pool5"] > compiled.quant.tensor_frac["res2a"]
    raw = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(run_program(compiled.program, raw), int_reference.run(compiled, raw))


def _activation_lib(tmp_path, sources, includes, defines=()):
    import ctypes
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.skip("gcc not found on PATH")
    out = tmp_path / "libact.so"
    args = ["gcc", "-O1", "-shared", "-fPIC", *defines, *[f"-I{i}" for i in includes], *map(str, sources),
            "-o", str(out)]
    subprocess.run(args, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(out))


def _run_activation(lib, x: np.ndarray, int_width: int, kind: int) -> np.ndarray:
    import ctypes

    data = x.copy()
    lib.arm_nn_activations_direct_q7(data.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint16(data.size),
                                     ctypes.c_uint16(int_width % 65536), ctypes.c_int(kind))
    return data


ALL_Q7 = np.arange(-128, 128, dtype=np.int8)


def test_portable_activations_match_the_model(tmp_path):
    from cmsisgen.simulator.activations import activations_direct_q7

    portable = ACTIVATIONS_C.parents[1]
    lib = _activation_lib(tmp_path, [ACTIVATIONS_C], [portable / "Include"])
    for int_width in (-2, -1, 0, 1, 2, 3):
        for kind, name in ((0, "sigmoid"), (1, "tanh")):
            assert np.array_equal(_run_activation(lib, ALL_Q7, int_width, kind),
                                  activations_direct_q7(ALL_Q7, int_width, name)), (int_width, name)


@pytest.mark.skipif(not os.environ.get("CMSIS_NN_PATH"), reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS/NN")
def test_upstream_activations_match_the_model(tmp_path):
    from cmsisgen.simulator.activations import activations_direct_q7

    from test_kernels_upstream import SHIM  # the core intrinsics upstream's plain-C paths call

    nn = Path(os.environ["CMSIS_NN_PATH"])
    dsp = Path(os.environ.get("CMSIS_DSP_INCLUDE", nn.parent / "DSP" / "Include"))
    (tmp_path / "shim.h").write_text(SHIM)
    lib = _activation_lib(tmp_path, [nn / "Source" / "ActivationFunctions" / "arm_nn_activations_q7.c",
                                     nn / "Source" / "NNSupportFunctions" / "arm_nntables.c"],
                          [nn / "Include", dsp], ["-D__GNUC_PYTHON__", "-include", str(tmp_path / "shim.h")])
    for int_width in (-1, 0, 1, 2, 3):
        for kind, name in ((0, "sigmoid"), (1, "tanh")):
            assert np.array_equal(_run_activation(lib, ALL_Q7, int_width, kind),
                                  activations_direct_q7(ALL_Q7, int_width, name)), (int_width, name)


# --------------------------------------------------------------------------- q7 tracks the float net


@pytest.mark.parametrize("name", ["residual", "eltwise_ops", "batchnorm", "prelu", "sigmoid_tanh", "reshape",
                                  "global_nonsquare", "lenet", "mobilenet_block", "bn_on_input",
                                  "densenet_block"])
def test_quantized_tensors_track_the_float_net(tmp_path, name):
    """Bit-exactness only shows the C, the simulator and the integer reference agree; this
    shows what they compute is the (folded) Caffe net: every q7 tensor, scaled by 2^-frac,
    stays within a few percent of the float forward pass, on average over its elements.
    Excluded: arm_softmax_q7's base-2 outputs and tensors read only by Sigmoid/TanH (their
    format is capped at Q3.4 on purpose, so they saturate)."""
    import test_end_to_end as e2e
    from cmsisgen.simulator.execute import run_program

    compiled = e2e.build(tmp_path, name)
    raw = e2e.raw_images(compiled, count=8)
    _, h, w = compiled.program.input_shape
    images = compiled.pre.prepare_images(raw, h, w)
    floats = forward(compiled.net, compiled.pre.to_float(images))
    sim = run_program(compiled.program, images, keep_all=True)
    capped = {t for t in compiled.net.shapes
              if compiled.net.consumers(t) and all(r.type in ("Sigmoid", "TanH") for r in compiled.net.consumers(t))}
    softmax = {lay.tops[0] for lay in compiled.net.layers if lay.type == "Softmax"}
    checked = 0
    for tensor, info in compiled.program.tensors.items():
        if tensor not in sim or tensor not in floats or tensor in capped | softmax:
            continue
        expect = floats[tensor].transpose(0, 2, 3, 1).reshape(sim[tensor].shape)
        got = sim[tensor].astype(np.float64) * 2.0 ** -info.frac
        scale = np.abs(expect).max()
        assert np.abs(got - expect).mean() <= 0.06 * scale, (tensor, np.abs(got - expect).mean() / scale)
        checked += 1
    assert checked >= 5


def test_eltwise_prod_of_three_inputs_refused(tmp_path):
    from cmsisgen.pipeline import compile_model

    layers = [L("a", "Convolution", num_output=2, kernel_size=1),
              L("b", "Convolution", "data", "b", num_output=2, kernel_size=1),
              L("p", "Eltwise", ["a", "b", "a"], "p", operation="PROD")]
    proto, weights = write_model(tmp_path, layers, input_shape=(1, 3, 3))
    with pytest.raises(CmsisgenError) as e:
        compile_model(proto, weights)
    assert str(e.value) == (f"{proto}: layer 'p' (Eltwise): no kernel fits: nn_eltwise_prod_q7: "
                            "nn_eltwise_prod_q7 (the project's own kernel) multiplies two q7 inputs into one int32 "
                            "product: an Eltwise PROD must have exactly 2 inputs (3 inputs).")


def test_load_model_lists_the_folded_layers(tmp_path):
    from cmsisgen.pipeline import load_model

    layers = [L("conv", "Convolution", num_output=3, kernel_size=3),
              L("bn", "BatchNorm", inplace=True, weights=BN3),
              L("scale", "Scale", inplace=True, bias_term=True, weights=SCALE3),
              L("pool", "Pooling", pool="MAX", kernel_size=3),
              L("bn2", "BatchNorm", inplace=True, weights=BN3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 5, 5))
    model = load_model(proto, weights)
    assert model.folded == ["bn folded into conv", "scale folded into conv"]
    assert [lay.type for lay in model.net.layers] == ["Convolution", "Pooling", "Scale"]
