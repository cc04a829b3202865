"""Quantizer: Qm.n choice per tensor, format groups, per-layer shifts, small biases."""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer, write_model
from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.quantizer import frac_bits_for, q_format, quantize, quantize_array


@pytest.mark.parametrize("max_abs, frac", [
    (1.0, 6), (0.9, 7), (127.0, 0), (300.0, -2), (0.0, 7), (-0.0, 7), (float("nan"), 7),
    (127.0 / 128, 7), (127.0 / 64, 6), (127.0 / 64 + 1e-9, 5), (63.5, 1), (64.0, 0),
    (0.003, 15), (1e-6, 26), (128.0, -1), (254.0, -1), (254.1, -2),
])
def test_frac_bits_for(max_abs, frac):
    assert frac_bits_for(max_abs) == frac


def test_frac_bits_for_is_the_largest_that_does_not_saturate():
    rng = np.random.default_rng(3)
    for value in np.exp(rng.uniform(-8, 8, size=500)):
        f = frac_bits_for(float(value))
        assert value * 2.0**f <= 127.0
        assert value * 2.0**(f + 1) > 127.0


def test_quantize_array_rounds_half_away_from_zero_and_saturates():
    values = np.array([0.5, -0.5, 1.5, -1.5, 2.49, -2.51, 200.0, -200.0, 127.4, -128.4, 0.0])
    assert quantize_array(values, 0).tolist() == [1, -1, 2, -2, 2, -3, 127, -128, 127, -128, 0]
    assert quantize_array(np.array([0.25, -0.125]), 3).tolist() == [2, -1]
    assert quantize_array(np.array([0.25]), 3).dtype == np.int8


def test_q_format():
    assert q_format(7) == "Q0.7"
    assert q_format(4) == "Q3.4"
    assert q_format(-2) == "Q9.-2"


# --- hand-built nets ---------------------------------------------------------------

def conv(name, bottom, top, weights, bias=None, n_out=None):
    w = np.asarray(weights, dtype=np.float32)
    blobs = [w] if bias is None else [w, np.asarray(bias, dtype=np.float32)]
    return ir.Layer(name, "Convolution", [bottom], [top],
                    ir.ConvParams(num_output=w.shape[0], kernel_h=w.shape[2], kernel_w=w.shape[3],
                                  bias_term=bias is not None), blobs)


def ip(name, bottom, top, weights, bias):
    w = np.asarray(weights, dtype=np.float32)
    return ir.Layer(name, "InnerProduct", [bottom], [top], ir.InnerProductParams(num_output=w.shape[0]),
                    [w, np.asarray(bias, dtype=np.float32)])


def simple(name, type_, bottoms, top, params=None):
    if params is None:
        params = ir.NoParams()
    return ir.Layer(name, type_, list(bottoms) if not isinstance(bottoms, str) else [bottoms], [top], params)


def net_of(layers, outputs, shape=(2, 4, 4)):
    return ir.Net(name="hand", input_shapes={"data": shape}, layers=layers, outputs=outputs)


def weights_with_max(shape, max_abs, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-max_abs / 2, max_abs / 2, size=shape)
    w.flat[0] = max_abs
    return w


def test_shifts_on_a_hand_built_conv():
    # in 1.0 -> Q1.6; |w| <= 0.5 -> Q0.7; |b| <= 0.25 -> Q-1.8; out 4.0 -> Q3.4
    w = weights_with_max((3, 2, 1, 1), 0.5)
    b = np.array([0.25, -0.1, 0.05])
    net = net_of([conv("conv1", "data", "conv1", w, b)], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 4.0})
    lq = q.layers["conv1"]
    assert (lq.in_frac, lq.weight_frac, lq.bias_frac, lq.out_frac) == (6, 7, 8, 4)
    assert lq.bias_lshift == 6 + 7 - 8 == 5
    assert lq.out_rshift == 6 + 7 - 4 == 9
    assert q.tensor_frac == {"data": 6, "conv1": 4}
    assert lq.bias.tolist() == [64, -26, 13]  # round(b * 256), half away from zero
    assert lq.weights.dtype == np.int8 and lq.weights.shape == (3, 2, 1, 1)
    assert lq.weights.flat[0] == 64 and np.array_equal(lq.weights, quantize_array(w, 7))
    assert q.warnings == []


def test_output_format_lowered_until_out_rshift_is_non_negative():
    # in 100 -> Q7.0, |w| 100 -> Q7.0: the accumulator has 0 fractional bits, so the
    # output (range 0.01, would be) is lowered to Q7.0 and out_rshift is 0.
    w = weights_with_max((2, 2, 1, 1), 100.0)
    net = net_of([conv("conv1", "data", "conv1", w, [0.5, -0.5])], ["conv1"])
    q = quantize(net, {"data": 100.0, "conv1": 0.01})
    lq = q.layers["conv1"]
    assert (lq.in_frac, lq.weight_frac, lq.out_frac) == (0, 0, 0)
    assert lq.out_rshift == 0
    # the bias wants Q0.7 but is capped at the accumulator's 0 fractional bits
    assert lq.bias_frac == 0 and lq.bias_lshift == 0
    assert lq.bias.tolist() == [1, -1]


def test_negative_formats_for_large_values():
    w = weights_with_max((2, 2, 1, 1), 300.0)  # Q9.-2
    net = net_of([conv("conv1", "data", "conv1", w, [0.0, 0.0])], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 10000.0})  # in Q1.6, out -> frac_bits_for(1e4) = -7
    lq = q.layers["conv1"]
    assert (lq.in_frac, lq.weight_frac, lq.out_frac) == (6, -2, -7)
    assert lq.out_rshift == 6 - 2 + 7 == 11
    assert lq.weights.flat[0] == 75  # 300 / 4 = 75
    # all-zero bias: Q0.7 unless the accumulator has fewer fractional bits
    assert lq.bias_frac == 4 and lq.bias_lshift == 0 and not lq.bias.any()


def test_zero_bias_takes_default_format():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w, [0.0, 0.0])], ["conv1"])
    lq = quantize(net, {"data": 1.0, "conv1": 4.0}).layers["conv1"]
    assert lq.bias_frac == 7 and lq.bias_lshift == 6 + 7 - 7 == 6


def test_no_bias_term():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w)], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 4.0})
    lq = q.layers["conv1"]
    assert lq.bias.tolist() == [0, 0] and lq.bias.dtype == np.int8
    assert lq.bias_lshift >= 0 and q.warnings == []


def test_small_bias_gets_more_fractional_bits():
    # in 0.9 -> Q0.7, |w| <= 0.1 -> Q-3.10: accumulator 2^-17; max |b| = 0.003 -> Q-8.15
    w = weights_with_max((3, 2, 1, 1), 0.1)
    b = np.array([0.003, -0.001, 0.0005])
    net = net_of([conv("conv1", "data", "conv1", w, b)], ["conv1"])
    lq = quantize(net, {"data": 0.9, "conv1": 2.0}).layers["conv1"]
    assert (lq.in_frac, lq.weight_frac) == (7, 10)
    assert lq.bias_frac == 15 > 7
    assert lq.bias_lshift == 17 - 15 == 2
    assert lq.bias.tolist() == [98, -33, 16]  # round(b * 2^15)
    assert lq.out_rshift == 17 - 5


def test_small_bias_capped_at_the_accumulator():
    # in 1.0 -> Q1.6, |w| 0.5 -> Q0.7: accumulator 2^-13 < the bias's wish of 2^-15
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w, [0.003, -0.002])], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 4.0})
    lq = q.layers["conv1"]
    assert lq.bias_frac == 13 and lq.bias_lshift == 0
    assert lq.bias.tolist() == [25, -16]  # round(0.003 * 8192) = 25, round(-0.002*8192) = -16
    assert q.warnings == []


def test_bias_below_accumulator_resolution_warns():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w, [1e-6, -2e-6])], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 4.0})
    assert not q.layers["conv1"].bias.any()
    assert q.warnings == ["layer 'conv1': every bias is below the accumulator resolution 2^-13 "
                          "and quantizes to zero"]


def test_bias_partly_representable_does_not_warn():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w, [0.01, 1e-6])], ["conv1"])
    q = quantize(net, {"data": 1.0, "conv1": 4.0})
    assert q.layers["conv1"].bias.tolist() == [82, 0] and q.warnings == []


def test_large_bias_uses_fewer_bits_than_the_accumulator():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    net = net_of([conv("conv1", "data", "conv1", w, [3.0, -1.0])], ["conv1"])
    lq = quantize(net, {"data": 1.0, "conv1": 4.0}).layers["conv1"]
    assert lq.bias_frac == 5 and lq.bias_lshift == 8
    assert lq.bias.tolist() == [96, -32]


@pytest.mark.parametrize("tied", ["Pooling", "Dropout", "Flatten"])
def test_format_preserving_layers_tie_input_and_output(tied):
    w = weights_with_max((2, 2, 1, 1), 0.5)
    params = ir.PoolParams(method="max", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2) \
        if tied == "Pooling" else None
    layers = [conv("conv1", "data", "conv1", w, [0.1, 0.1]),
              simple("t", tied, "conv1", "t", params),
              ip("ip1", "t", "ip1", weights_with_max((3, 8), 0.25), [0.0] * 3)]
    # conv1 alone would be Q2.5 (3.0) and t Q0.7 (0.9): the group takes the smaller
    q = quantize(net_of(layers, ["ip1"]), {"data": 1.0, "conv1": 3.0, "t": 0.9, "ip1": 1.0})
    assert q.tensor_frac["conv1"] == q.tensor_frac["t"] == 5
    assert q.layers["ip1"].in_frac == 5
    assert q.layers["conv1"].out_frac == 5
    assert q.layers["conv1"].out_rshift == 6 + 7 - 5
    assert q.layers["ip1"].out_rshift == 5 + 8 - 6


def test_relu_input_is_sized_by_what_survives_the_relu():
    """A conv output read only by a ReLU needs only its positive side: values that saturate
    at -128 still become 0. If another layer also reads it, its full range counts."""
    w = weights_with_max((2, 2, 1, 1), 0.5)
    only_relu = [conv("conv1", "data", "conv1", w, [0.1, 0.1]),
                 simple("relu", "ReLU", "conv1", "conv1@1"),
                 ip("ip1", "conv1@1", "ip1", weights_with_max((3, 8), 0.25), [0.0] * 3)]
    ranges = {"data": 1.0, "conv1": 3.0, "conv1@1": 0.9, "ip1": 1.0}
    q = quantize(net_of(only_relu, ["ip1"]), ranges)
    assert q.tensor_frac["conv1"] == q.tensor_frac["conv1@1"] == 7
    assert q.layers["conv1"].out_rshift == 6 + 7 - 7
    also_read = only_relu + [ip("ip2", "conv1", "ip2", weights_with_max((3, 8), 0.25), [0.0] * 3)]
    q = quantize(net_of(also_read, ["ip1", "ip2"]), {**ranges, "ip2": 1.0})
    assert q.tensor_frac["conv1"] == q.tensor_frac["conv1@1"] == 5


def test_concat_ties_all_inputs_and_the_chain_around_it():
    w = weights_with_max((2, 2, 1, 1), 0.5)
    layers = [conv("a", "data", "a", w, [0.0, 0.0]),
              conv("b", "data", "b", w, [0.0, 0.0]),
              simple("relu_b", "ReLU", "b", "b@1"),
              simple("cat", "Concat", ["a", "b@1"], "cat", ir.ConcatParams()),
              simple("pool", "Pooling", "cat", "pool",
                     ir.PoolParams(method="max", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2))]
    ranges = {"data": 1.0, "a": 0.5, "b": 10.0, "b@1": 9.0, "cat": 10.0, "pool": 6.0}
    q = quantize(net_of(layers, ["pool"]), ranges)
    assert {q.tensor_frac[t] for t in ("a", "b", "b@1", "cat", "pool")} == {3}
    assert q.layers["a"].out_frac == q.layers["b"].out_frac == 3
    assert q.tensor_frac["data"] == 6


def test_lowering_propagates_through_a_group():
    # conv2's accumulator (in Q?.7 + w Q-3.10 -> 17) is fine, but conv1 has an accumulator
    # of 2^-(6+0): its output group (conv1, relu, and conv2's input) drops to 6 fractional bits
    # even though relu1's range alone would allow 7.
    w1 = weights_with_max((2, 2, 1, 1), 100.0)
    w2 = weights_with_max((2, 2, 1, 1), 0.1)
    layers = [conv("conv1", "data", "conv1", w1, [0.0, 0.0]),
              simple("relu1", "ReLU", "conv1", "conv1@1"),
              conv("conv2", "conv1@1", "conv2", w2, [0.0, 0.0])]
    q = quantize(net_of(layers, ["conv2"]), {"data": 1.0, "conv1": 0.5, "conv1@1": 0.5, "conv2": 0.01})
    assert q.tensor_frac["conv1"] == q.tensor_frac["conv1@1"] == 6
    assert q.layers["conv1"].out_rshift == 0
    assert q.layers["conv2"].in_frac == 6
    assert q.layers["conv2"].out_frac == 13  # frac_bits_for(0.01) = 13 <= 6 + 10
    assert q.layers["conv2"].out_rshift == 3


def test_every_shift_non_negative_on_random_models(tmp_path):
    from cmsisgen.pipeline import compile_model

    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("relu1", "ReLU", inplace=True),
              layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
              layer("conv2", "Convolution", num_output=6, kernel_size=3),
              layer("ip1", "InnerProduct", num_output=5)]
    for seed in range(4):
        proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8), seed=seed, stem=f"m{seed}")
        compiled = compile_model(proto, weights)
        for name, lq in compiled.quant.layers.items():
            assert lq.bias_lshift >= 0 and lq.out_rshift >= 0, name
            assert lq.bias_lshift == lq.in_frac + lq.weight_frac - lq.bias_frac
            assert lq.out_rshift == lq.in_frac + lq.weight_frac - lq.out_frac
        tf = compiled.quant.tensor_frac
        assert tf["conv1"] == tf["conv1@1"] == tf["pool1"]


def test_softmax_output_is_q0_7():
    """arm_softmax_q7 always writes Q0.7 (127 ~ 1.0), whatever the calibrated range."""
    layers = [ip("ip1", "data", "ip1", weights_with_max((4, 32), 0.5), [0.0] * 4),
              simple("prob", "Softmax", "ip1", "prob")]
    q = quantize(net_of(layers, ["prob"]), {"data": 1.0, "ip1": 3.0, "prob": 1.0})
    assert q.tensor_frac["prob"] == 7


def test_conv_inside_its_own_format_group_is_refused():
    """A conv whose output shares its input's format (via Concat) cannot have a
    non-negative out_rshift when its weights need negative fractional bits."""
    w = weights_with_max((2, 2, 1, 1), 300.0)  # Q9.-2
    layers = [conv("conv1", "data", "conv1", w, [0.0, 0.0]),
              simple("cat", "Concat", ["data", "conv1"], "cat", ir.ConcatParams())]
    with pytest.raises(CmsisgenError, match="layer 'conv1'"):
        quantize(net_of(layers, ["cat"]), {"data": 1.0, "conv1": 1.0, "cat": 1.0})


def test_tiny_weights_keep_out_rshift_within_the_int32_accumulator():
    """|w| <= 1e-8 would want Q-26.33 and out_rshift 35 (undefined in C, and an int32
    accumulator that cannot hold the output range): weights get fewer fractional bits."""
    w = weights_with_max((2, 2, 1, 1), 1e-8)
    net = net_of([conv("conv1", "data", "conv1", w, [200.0, 0.0])], ["conv1"])
    lq = quantize(net, {"data": 1.0, "conv1": 250.0}).layers["conv1"]
    assert (lq.in_frac, lq.out_frac) == (6, -1)
    assert lq.out_rshift == 23 and lq.weight_frac == 23 - 1 - 6 + 0 == 16
    assert lq.bias_lshift == lq.in_frac + lq.weight_frac - lq.bias_frac == 22 - (-1)
    # the bias still reaches the output: (100 << 23) >> 23 == 100 -> 200.0
    assert lq.bias.tolist() == [100, 0]
    assert (int(lq.bias[0]) << lq.bias_lshift) + 127 * 2**lq.out_rshift < 2**31


def test_prod_tied_to_its_own_input_is_refused_not_a_hang(tmp_path):
    """PROD(data, data) concatenated with data: the output format must equal data's and be
    2 x data's; with data's fractional bits negative no format fits, and the fixed-point
    loop would lower it forever."""
    from cmsisgen.pipeline import compile_model

    proto, weights = write_model(tmp_path, [
        layer("prod", "Eltwise", ["data", "data"], "prod", operation="PROD"),
        layer("cat", "Concat", ["prod", "data"], "cat"),
    ], input_shape=(3, 4, 4))
    with pytest.raises(CmsisgenError, match=r"layer 'prod' \(Eltwise PROD\): no Q format fits both its output"):
        compile_model(proto, weights)
