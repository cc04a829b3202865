"""Layers beyond conv/pool/relu/fc, stage by stage: loader params, shapes, float forward,
quantizer formats and shifts, mapper choice, and the generated kernels' numpy models.

End-to-end bit-exactness of the same layers (simulator vs tests/int_reference.py, host
gcc, QEMU) is in test_end_to_end.py and test_generated_qemu.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.float_forward import forward
from cmsisgen.loader import load_net
from cmsisgen.quantizer import eltwise_coefficients, quantize
from cmsisgen.simulator import generated_kernels as gk


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


@pytest.mark.parametrize("coeffs, ints, frac", [
    ((1.0, 1.0), (1, 1), 0), ((1.0, -1.0), (1, -1), 0), ((2.0, 1.0), (2, 1), 0),
    ((0.5, 1.5), (1, 3), 1), ((1.0, -0.5, 0.3), (64, -32, 19), 6), ((200.0, 1.0), (200, 1), 0),
    ((0.0, 1.0), (0, 1), 0),
])
def test_eltwise_coefficients(coeffs, ints, frac):
    assert eltwise_coefficients(coeffs) == (ints, frac)


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
    eq = q.eltwise["e"]
    assert (eq.in_fracs + (eq.out_frac,)) == fracs
    assert eq.lshifts == lshifts and eq.out_rshift == rshift and eq.coeffs == (1, 1)


def test_eltwise_prod_output_never_finer_than_the_product(tmp_path):
    net = _two_branch_net(tmp_path, "PROD")
    q = quantize(net, {"data": 1.0, "a": 12.0, "b": 12.0, "e": 1e-4})
    eq = q.eltwise["e"]
    assert eq.in_fracs == (3, 3) and eq.out_frac == 6 and eq.out_rshift == 0


def test_generated_kernel_models():
    a = np.array([[127, -128, 5, -5, 3]], dtype=np.int8)
    b = np.array([[127, -128, -3, 2, 1]], dtype=np.int8)
    # a (2 frac bits) + b (0 frac bits) into 0 frac bits: (a + 4b + 2) >> 2, saturated
    assert gk.eltwise_sum_q7([a, b], [1, 1], [0, 2], 2).tolist() == [[127, -128, -2, 1, 2]]
    assert gk.eltwise_sum_q7([a, b], [1, -1], [0, 0], 0).tolist() == [[0, 0, 8, -7, 2]]
    assert gk.eltwise_max_q7([a, b], [0, 1], 1).tolist() == [[127, -64, 3, 2, 2]]
    assert gk.eltwise_prod_q7(a, b, 7).tolist() == [[126, 127, 0, 0, 0]]
