"""Mapper: kernel choice per rule, exact refusals, advisories, weight layouts, scratch."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from caffe_models import layer, write_model
from cmsisgen.errors import CmsisgenError
from cmsisgen.mapper import layout
from cmsisgen.pipeline import compile_model

CALIB = np.random.default_rng(7).integers(0, 256, size=(6, 12, 12, 3), dtype=np.uint8)


def compile_layers(tmp_path, layers, input_shape=(3, 8, 8), **kwargs):
    proto, weights = write_model(tmp_path, layers, input_shape=input_shape)
    h, w = input_shape[1:]
    calib = np.random.default_rng(7).integers(0, 256, size=(6, h, w, 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=calib, **kwargs)


def op_of(compiled, name):
    (op,) = [op for op in compiled.program.ops if op.layer == name and op.kind != "copy"]
    return op


def to5(name="to5"):
    """A first conv giving 5 channels, so the next conv sees in_ch = 5."""
    return layer(name, "Convolution", num_output=5, kernel_size=1)


@pytest.mark.parametrize("layers, shape, function", [
    # 3 input channels, square -> RGB
    ([layer("c", "Convolution", num_output=4, kernel_size=3, pad=1)], (3, 8, 8), "arm_convolve_HWC_q7_RGB"),
    ([layer("c", "Convolution", num_output=5, kernel_size=3, stride=2)], (3, 9, 9), "arm_convolve_HWC_q7_RGB"),
    # in % 4 == 0 and out even, square -> fast
    ([layer("a", "Convolution", num_output=8, kernel_size=1),
      layer("c", "Convolution", num_output=6, kernel_size=3, pad=1)], (3, 8, 8), "arm_convolve_HWC_q7_fast"),
    # in % 4 == 0 but out odd -> basic (the _nonsquare one: fewer instructions, see docs/design.md)
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=3, kernel_size=3)], (3, 8, 8), "arm_convolve_HWC_q7_basic_nonsquare"),
    # in = 5 -> basic_nonsquare
    ([to5(), layer("c", "Convolution", num_output=4, kernel_size=3)], (3, 8, 8), "arm_convolve_HWC_q7_basic_nonsquare"),
    # 1 input channel (gray) -> basic_nonsquare
    ([layer("c", "Convolution", num_output=4, kernel_size=3)], (1, 8, 8), "arm_convolve_HWC_q7_basic_nonsquare"),
    # fast-capable but non-square kernel / stride / pad / input -> fast_nonsquare
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=2, kernel_h=3, kernel_w=1)], (3, 8, 8), "arm_convolve_HWC_q7_fast_nonsquare"),
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=2, kernel_size=3, stride_h=2, stride_w=1)], (3, 8, 8),
     "arm_convolve_HWC_q7_fast_nonsquare"),
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=2, kernel_size=3, pad_h=1, pad_w=0)], (3, 8, 8),
     "arm_convolve_HWC_q7_fast_nonsquare"),
    ([layer("a", "Convolution", num_output=4, kernel_size=1),
      layer("c", "Convolution", num_output=2, kernel_size=3)], (3, 8, 6), "arm_convolve_HWC_q7_fast_nonsquare"),
    # not fast-capable and non-square -> basic_nonsquare
    ([to5(), layer("c", "Convolution", num_output=4, kernel_h=1, kernel_w=3)], (3, 8, 8),
     "arm_convolve_HWC_q7_basic_nonsquare"),
    ([to5(), layer("c", "Convolution", num_output=4, kernel_size=3, stride_h=1, stride_w=2)], (3, 8, 8),
     "arm_convolve_HWC_q7_basic_nonsquare"),
    # RGB but non-square -> basic_nonsquare
    ([layer("c", "Convolution", num_output=4, kernel_size=3)], (3, 7, 9), "arm_convolve_HWC_q7_basic_nonsquare"),
    ([layer("c", "Convolution", num_output=4, kernel_size=3, pad_h=0, pad_w=1)], (3, 8, 8),
     "arm_convolve_HWC_q7_basic_nonsquare"),
])
def test_convolution_variant(tmp_path, layers, shape, function):
    compiled = compile_layers(tmp_path, layers, shape)
    op = op_of(compiled, "c")
    assert op.function == function
    c, h, w = compiled.net.shapes[compiled.net.layers[-1].bottoms[0]]
    p = compiled.net.layers[-1].params
    assert op.args["ch_im_in"] == c and (op.args["dim_im_in_y"], op.args["dim_im_in_x"]) == (h, w)
    assert (op.args["dim_kernel_y"], op.args["dim_kernel_x"]) == (p.kernel_h, p.kernel_w)
    assert (op.args["stride_y"], op.args["stride_x"]) == (p.stride_h, p.stride_w)
    assert (op.args["padding_y"], op.args["padding_x"]) == (p.pad_h, p.pad_w)
    oc, oh, ow = compiled.net.shapes["c"]
    assert (op.args["ch_im_out"], op.args["dim_im_out_y"], op.args["dim_im_out_x"]) == (oc, oh, ow)
    lq = compiled.quant.layers["c"]
    assert (op.formats["bias_lshift"], op.formats["out_rshift"]) == (lq.bias_lshift, lq.out_rshift)
    # scratch: im2col of two columns in q15 -> 2 * 2 * cin * kh * kw bytes
    assert op.scratch_bytes == 4 * c * p.kernel_h * p.kernel_w
    # weights [O, kh, kw, I] and emitted in that order
    assert np.array_equal(op.weights, lq.weights.transpose(0, 2, 3, 1))
    assert np.array_equal(op.weight_data, lq.weights.transpose(0, 2, 3, 1).reshape(-1))
    assert np.array_equal(op.bias, lq.bias)


SQUARE = ("The square variants take one size for input, kernel, stride and padding: "
          "height and width must match in each ({}).")
OUTSIDE = ("Every pooling window must start inside the image: without padding, a kernel smaller than the stride can "
           "leave Caffe's last ceil-mode window outside it, where Caffe writes -FLT_MAX (MAX) or NaN (AVE); "
           "round_mode: FLOOR (ceil_mode: false) drops that window ({}).")


@pytest.mark.parametrize("layers, shape, message", [
    ([layer("p", "Pooling", pool="MAX", kernel_size=1, stride=2)], (3, 8, 8),  # Caffe: 5x5, the last row outside
     "layer 'p' (Pooling): no kernel fits: " + OUTSIDE.format("input 8x8, kernel 1x1, stride 2x2, "
                                                                         "padding 0x0")),  # said once for both
    ([layer("p", "Pooling", pool="AVE", kernel_h=2, kernel_w=1, stride_h=2, stride_w=3)], (3, 6, 6),
     "layer 'p' (Pooling): no kernel fits: arm_avepool_q7_HWC: "
     + SQUARE.format("input 6x6, kernel 2x1, stride 2x3, padding 0x0") + "; nn_pool_q7: "
     + OUTSIDE.format("input 6x6, kernel 2x1, stride 2x3, padding 0x0")),
    ([layer("c", "Convolution", num_output=4, kernel_size=3), layer("prob", "Softmax")], (3, 8, 8),
     "layer 'prob' (Softmax): no kernel fits: arm_softmax_q7: arm_softmax_q7 works on a vector: "
     "its input must be 1x1 spatially (a softmax over channels of a 1x1 tensor) (input 6x6x4)."),
])
def test_unmappable_layer_message(tmp_path, layers, shape, message):
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers, shape)
    assert str(info.value) == f"{tmp_path / 'model.prototxt'}: {message}"  # located at the prototxt


def test_padded_average_pooling_runs_as_caffe_divides(tmp_path):
    """arm_avepool_q7_HWC could run it, but divides border windows by the cells inside the image:
    nn_pool_q7 is taken, without a warning; forced, the CMSIS-NN function runs with the warning."""
    padded = [layer("p", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1)]
    compiled = compile_layers(tmp_path, padded)
    op = op_of(compiled, "p")
    assert (op.function, op.kind, op.scratch_bytes, op.clobbers_input, op.in_place) == ("nn_pool_q7", "pool", 0,
                                                                                        False, False)
    # Caffe's ceil mode: ceil((8 + 2 - 3) / 2) + 1 = 5
    assert (op.args["out_h"], op.args["out_w"], op.args["pad_h"], op.args["average"]) == (5, 5, 1, 1)
    assert not any("Caffe divides" in note for note in compiled.notes)
    forced = compile_layers(tmp_path, padded, kernels={"p": "arm_avepool_q7_HWC"})
    op = op_of(forced, "p")
    assert op.function == "arm_avepool_q7_HWC"
    assert ("layer 'p': Caffe divides a padded border window by its size including padding, CMSIS-NN by "
            "the cells inside the image: with padding, border outputs of average pooling differ from Caffe; "
            "nn_pool_q7, taken for such a layer unless --kernel says otherwise, divides as Caffe does "
            "(padding 1x1).") in forced.notes
    assert op.args == {"dim_im_in": 8, "ch_im_in": 3, "dim_kernel": 3, "padding": 1, "stride": 2, "dim_im_out": 5}
    assert op.scratch_bytes == 2 * 5 * 3


def test_unpadded_pooling_does_not_warn(tmp_path):
    """(The average forced onto arm_avepool_q7_HWC keeps its input's format; unforced it would
    take its own, finer one on nn_pool_q7: tests/test_pool_format.py.)"""
    compiled = compile_layers(tmp_path, [layer("p", "Pooling", pool="AVE", kernel_size=3, stride=2),
                                         layer("m", "Pooling", pool="MAX", kernel_size=2, stride=2, pad=1)],
                              kernels={"p": "arm_avepool_q7_HWC"})
    assert not any("Caffe divides" in note for note in compiled.notes)
    p, m = op_of(compiled, "p"), op_of(compiled, "m")
    assert (p.args["dim_im_out"], p.scratch_bytes) == (4, 2 * 4 * 3)  # ceil((8-3)/2)+1
    assert (m.function, m.scratch_bytes, m.args["dim_im_out"]) == ("arm_maxpool_q7_HWC", 0, 3)
    assert p.clobbers_input and m.clobbers_input


def test_global_pooling(tmp_path):
    compiled = compile_layers(tmp_path, [layer("c", "Convolution", num_output=4, kernel_size=3),
                                         layer("g", "Pooling", pool="AVE", global_pooling=True)],
                              kernels={"g": "arm_avepool_q7_HWC"})
    op = op_of(compiled, "g")
    assert op.args == {"dim_im_in": 6, "ch_im_in": 4, "dim_kernel": 6, "padding": 0, "stride": 1, "dim_im_out": 1}


def fc_net():
    return [layer("c", "Convolution", num_output=4, kernel_size=3),
            layer("p", "Pooling", pool="MAX", kernel_size=2, stride=2),
            layer("ip", "InnerProduct", num_output=6)]


def test_fc_opt_vs_plain(tmp_path):
    opt = compile_layers(tmp_path, fc_net())
    plain = compile_layers(tmp_path, fc_net(), fc_variant="plain")
    a, b = op_of(opt, "ip"), op_of(plain, "ip")
    assert (a.function, b.function) == ("arm_fully_connected_q7_opt", "arm_fully_connected_q7")
    assert np.array_equal(a.weights, b.weights)
    assert np.array_equal(b.weight_data, b.weights.reshape(-1))
    assert np.array_equal(a.weight_data, layout.interleave_fc_opt(a.weights))
    assert not np.array_equal(a.weight_data, b.weight_data)
    assert np.array_equal(layout.deinterleave_fc_opt(a.weight_data, 6, 36), a.weights)
    assert a.args == b.args == {"dim_vec": 36, "num_of_rows": 6}
    lq = opt.quant.layers["ip"]
    assert a.formats["bias_lshift"] == lq.bias_lshift and a.formats["out_rshift"] == lq.out_rshift
    assert a.scratch_bytes == b.scratch_bytes == 2 * 36


def test_interleave_fc_opt_known_order():
    # upstream's drawing for rows 0-3: per 4-column block, (r0c0 r1c0 r0c2 r1c2 r2c0 r3c0 r2c2 r3c2
    # r0c1 r1c1 r0c3 r1c3 r2c1 r3c1 r2c3 r3c3), then tail columns by column, then leftover rows.
    w = np.array([[10 * r + c for c in range(5)] for r in range(5)])
    assert layout.interleave_fc_opt(w).tolist() == [
        0, 10, 2, 12, 20, 30, 22, 32, 1, 11, 3, 13, 21, 31, 23, 33,
        4, 14, 24, 34,
        40, 41, 42, 43, 44]


def test_fc_after_spatial_input_permutes_columns_to_hwc(tmp_path):
    compiled = compile_layers(tmp_path, fc_net())
    op = op_of(compiled, "ip")
    lq = compiled.quant.layers["ip"]
    c, h, w = compiled.net.shapes["p"]
    assert (c, h, w) == (4, 3, 3)
    rng = np.random.default_rng(0)
    chw = rng.integers(-128, 128, size=(c, h, w))
    hwc = chw.transpose(1, 2, 0).reshape(-1)
    # the quantized Caffe IP on the CHW flatten equals the mapped weights on the HWC flatten
    assert np.array_equal(op.weights.astype(np.int64) @ hwc, lq.weights.astype(np.int64) @ chw.reshape(-1))
    # column (y*W + x)*C + ci holds Caffe column (ci*H + y)*W + x
    assert op.weights[2, (1 * w + 2) * c + 3] == lq.weights[2, (3 * h + 1) * w + 2]


def test_fc_after_spatial_input_matches_the_float_layer(tmp_path):
    """The float IP on a spatial input (Caffe's CHW flatten) vs the mapped int weights fed
    HWC: equal up to quantization."""
    from cmsisgen.ops.inner_product import inner_product

    compiled = compile_layers(tmp_path, fc_net())
    op = op_of(compiled, "ip")
    lq = compiled.quant.layers["ip"]
    ip_layer = next(l for l in compiled.net.layers if l.name == "ip")
    x = np.random.default_rng(1).integers(-20, 20, size=(1, 4, 3, 3)).astype(np.float32)
    ref = inner_product(x, ip_layer).reshape(-1) - ip_layer.blobs[1]
    got = (op.weights.astype(np.float64) @ x[0].transpose(1, 2, 0).reshape(-1)) * 2.0 ** -lq.weight_frac
    assert np.allclose(got, ref, atol=36 * 20 * 2.0 ** -lq.weight_frac)
    assert np.corrcoef(got, ref)[0, 1] > 0.99


def test_flatten_then_fc(tmp_path):
    layers = [layer("c", "Convolution", num_output=4, kernel_size=3),
              layer("flat", "Flatten"),
              layer("relu", "ReLU", inplace=True),
              layer("drop", "Dropout", inplace=True),
              layer("ip", "InnerProduct", num_output=3)]
    compiled = compile_layers(tmp_path, layers)
    op = op_of(compiled, "ip")
    lq = compiled.quant.layers["ip"]
    relu = op_of(compiled, "relu")
    # Flatten and Dropout are aliases: the ReLU reads the conv's tensor, the IP the ReLU's
    assert relu.inputs == ["c"] and relu.output == "flat@1" and op.inputs == ["flat@1"]
    assert compiled.plan.storage["flat@1"] == "c"
    assert np.array_equal(op.weights, layout.fc_columns_chw_to_hwc(lq.weights, 4, 6, 6))
    assert [o.kind for o in compiled.program.ops] == ["input", "conv", "relu", "fc"]


def test_fc_after_fc_keeps_columns(tmp_path):
    layers = [layer("ip1", "InnerProduct", num_output=7), layer("ip2", "InnerProduct", num_output=5)]
    compiled = compile_layers(tmp_path, layers)
    assert np.array_equal(op_of(compiled, "ip2").weights, compiled.quant.layers["ip2"].weights)
    # the first one reads the 3x8x8 input HWC
    assert np.array_equal(op_of(compiled, "ip1").weights,
                          layout.fc_columns_chw_to_hwc(compiled.quant.layers["ip1"].weights, 3, 8, 8))


def test_transposed_fc(tmp_path):
    layers = [layer("ip1", "InnerProduct", num_output=7),
              layer("ip2", "InnerProduct", num_output=5, transpose=True)]
    compiled = compile_layers(tmp_path, layers)
    assert np.array_equal(op_of(compiled, "ip2").weights, compiled.quant.layers["ip2"].weights.T)


def test_softmax_relu_concat_ops(tmp_path):
    layers = [layer("a", "Convolution", num_output=3, kernel_size=1),
              layer("b", "Convolution", "data", num_output=5, kernel_size=1),
              layer("cat", "Concat", ["a", "b"]),
              layer("relu", "ReLU", inplace=True),
              layer("ip", "InnerProduct", num_output=4),
              layer("prob", "Softmax")]
    compiled = compile_layers(tmp_path, layers)
    cat, relu, sm = op_of(compiled, "cat"), op_of(compiled, "relu"), op_of(compiled, "prob")
    assert cat.function == "nn_concat_channels_q7"
    assert cat.args == {"pixels": 64, "ch_out": 8, "ch_in0": 3, "ch_in1": 5}
    assert cat.inputs == ["a", "b"]
    assert (relu.function, relu.args, relu.in_place, relu.scratch_bytes) == ("arm_relu_q7", {"size": 512}, True, 0)
    assert (sm.function, sm.args, sm.scratch_bytes) == ("arm_softmax_q7", {"dim_vec": 4}, 0)
    assert compiled.program.tensors["prob"].frac == 7


def test_concat_on_other_axes_is_refused(tmp_path):
    layers = [layer("a", "Convolution", num_output=3, kernel_size=1),
              layer("b", "Convolution", "data", num_output=3, kernel_size=1),
              layer("cat", "Concat", ["a", "b"], axis=2)]
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers)
    assert str(info.value).endswith("model.prototxt: layer 'cat' (Concat): concatenation along axis 2 is not "
                                    "supported (only channels, axis 1)")


def test_leaky_relu_runs_the_generated_prelu_kernel(tmp_path):
    compiled = compile_layers(tmp_path, [layer("r", "ReLU", negative_slope=0.1)])
    op = compiled.program.ops[-1]
    assert (op.kind, op.function, op.in_place) == ("prelu", "nn_prelu_q7", True)
    assert op.args["slope_shift"] == 10 and set(op.weights.tolist()) == {102}  # 0.1 = 102 / 2^10


def test_flatten_may_only_feed_an_inner_product(tmp_path):
    layers = [layer("c", "Convolution", num_output=4, kernel_size=3), layer("flat", "Flatten"),
              layer("prob", "Softmax")]
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers)
    assert str(info.value) == (
        f"{tmp_path / 'model.prototxt'}: layer 'flat' (Flatten): A Flatten output, or a Reshape that reorders the HWC "
        "bytes activations are kept in, holds its input's HWC bytes under Caffe's C, H, W order: only inner products "
        "(their weight columns are permuted to the bytes' order) may read it, through aliases and ReLUs, or it is the "
        "network output (read by 'prob' (Softmax)).")


def test_input_op(tmp_path):
    compiled = compile_layers(tmp_path, [layer("c", "Convolution", num_output=2, kernel_size=1)],
                              mean="10,20,30", scale=0.5, bgr=True)
    op = compiled.program.ops[0]
    assert (op.kind, op.function, op.output) == ("input", "nn_input_q7", "data")
    assert op.args == {"size": 64, "channels": 3}
    assert op.params.channel_source == (2, 1, 0)
    f = compiled.quant.tensor_frac["data"]
    assert op.formats == {"out_frac": f}
    assert op.params.fixed_point.mul == 0.5 * 2 ** (f + 16)
    assert op.params.fixed_point.offsets.tolist() == [round(m * 0.5 * 2 ** (f + 16)) for m in (10, 20, 30)]


PAD_BELOW_STRIDE = ("The Cortex-M DSP pooling kernels pool rows in place: with padding >= stride a window "
                    "reads columns it already overwrote, so padding must be smaller than the stride (or the "
                    "output a single column) (padding {pad} >= stride {stride}).")


@pytest.mark.parametrize("pool, kernel, stride, pad, out", [("MAX", 2, 1, 1, 9), ("AVE", 3, 1, 1, 8),
                                                            ("MAX", 3, 2, 2, 5)])
def test_pooling_padding_not_below_stride_runs_as_nn_pool_q7(tmp_path, pool, kernel, stride, pad, out):
    """The CMSIS-NN functions cannot (k2 s1 p1's Caffe output, 9x9, is even larger than its 8x8
    input): nn_pool_q7 runs it, and forcing the CMSIS-NN function names the rule it breaks."""
    layers = [layer("c", "Convolution", num_output=4, kernel_size=1),
              layer("p", "Pooling", pool=pool, kernel_size=kernel, stride=stride, pad=pad)]
    op = op_of(compile_layers(tmp_path, layers), "p")
    assert (op.function, op.args["out_h"], op.args["out_w"]) == ("nn_pool_q7", out, out)
    function = "arm_maxpool_q7_HWC" if pool == "MAX" else "arm_avepool_q7_HWC"
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, layers, kernels={"p": function})
    assert str(info.value) == (f"{tmp_path / 'model.prototxt'}: layer 'p' (Pooling): {function} cannot run it: "
                               f"{PAD_BELOW_STRIDE.format(pad=pad, stride=stride)}")


def test_kernel_option_forces_nn_pool_q7(tmp_path):
    """--kernel LAYER=nn_pool_q7 on a layer arm_maxpool_q7_HWC would run (CIFAR-10's pool1 shape):
    the own kernel, out of place, bit-exact with its model; forced where a window lies outside the
    image, it is refused with its rule."""
    from cmsisgen.ops.pooling_nn import pool_q7
    from cmsisgen.simulator.execute import run_program

    layers = [layer("c", "Convolution", num_output=4, kernel_size=1),
              layer("p", "Pooling", pool="MAX", kernel_size=3, stride=2)]
    assert op_of(compile_layers(tmp_path, layers), "p").function == "arm_maxpool_q7_HWC"
    compiled = compile_layers(tmp_path, layers, kernels={"p": "nn_pool_q7"})
    op = op_of(compiled, "p")
    assert (op.function, op.in_place, op.clobbers_input) == ("nn_pool_q7", False, False)
    assert (op.args["out_h"], op.args["out_w"]) == (4, 4)  # ceil((8 - 3) / 2) + 1
    x = np.random.default_rng(3).integers(-128, 128, size=(2, 8, 8, 4), dtype=np.int8)
    np.testing.assert_array_equal(op.kernel.simulate(op, [x]), pool_q7(x, (3, 3), (2, 2), (0, 0), (4, 4), False))
    assert run_program(compiled.program, np.zeros((1, 8, 8, 3), np.int8)).shape == (1, 64)
    with pytest.raises(CmsisgenError) as info:  # the removed global kernel: every candidate named once
        compile_layers(tmp_path, layers, kernels={"p": "nn_global_pool_q7"})
    assert str(info.value).endswith("layer 'p' (Pooling): kernel nn_global_pool_q7 is not a function for this layer "
                                    "(candidates: arm_maxpool_q7_HWC, nn_pool_q7, arm_avepool_q7_HWC)")
    with pytest.raises(CmsisgenError) as info:
        compile_layers(tmp_path, [layer("p", "Pooling", pool="AVE", kernel_size=1, stride=2)],
                       kernels={"p": "nn_pool_q7"})
    assert str(info.value) == (f"{tmp_path / 'model.prototxt'}: layer 'p' (Pooling): nn_pool_q7 cannot run it: "
                               + OUTSIDE.format("input 8x8, kernel 1x1, stride 2x2, padding 0x0"))


def test_cmsis_pooling_is_chosen_only_where_it_pools_as_caffe():
    """Over every square geometry up to 10x10 (kernel <= 4, stride <= 3, pad < kernel, ceil and
    floor): where the rules take arm_maxpool_q7_HWC it gives nn_pool_q7's bytes (Caffe's maximum)
    exactly; where they take arm_avepool_q7_HWC its windows and divisors are Caffe's, and only
    its two-step truncation differs from nn_pool_q7's rounding (by at most 1)."""
    from cmsisgen import ir
    from cmsisgen.mapper.rules import Site
    from cmsisgen.ops.pooling import _choose_q7, pool_out_hw
    from cmsisgen.ops.pooling_nn import pool_q7
    from cmsisgen.simulator import kernels

    rng = np.random.default_rng(4)
    taken = {"arm_maxpool_q7_HWC": 0, "arm_avepool_q7_HWC": 0}
    for d, k, st, pad, ceil_mode in itertools.product(range(1, 11), range(1, 5), range(1, 4), range(4), (True, False)):
        if pad >= k or k > d + 2 * pad:
            continue
        oh, ow = pool_out_hw(d, d, ir.PoolParams("max", k, k, st, st, pad, pad, ceil_mode=ceil_mode))
        x = rng.integers(-128, 128, size=(2, d, d, 3), dtype=np.int8)
        for method, model in (("max", kernels.maxpool_q7_hwc), ("ave", kernels.avepool_q7_hwc)):
            site = Site(layer="p", type="Pooling", in_ch=3, in_h=d, in_w=d, out_ch=3, out_h=oh, out_w=ow, kernel_h=k,
                        kernel_w=k, stride_h=st, stride_w=st, pad_h=pad, pad_w=pad, method=method)
            try:
                _, function = _choose_q7(site, None)
            except CmsisgenError:
                continue  # a window outside the image: refused by every function
            if function == "nn_pool_q7":
                continue
            taken[function] += 1
            got = model(x.copy(), kernel=k, pad=pad, stride=st, out_dim=oh).astype(int)
            caffe = pool_q7(x, (k, k), (st, st), (pad, pad), (oh, ow), method == "ave").astype(int)
            assert np.abs(got - caffe).max() <= (1 if method == "ave" else 0), (method, d, k, st, pad, ceil_mode)
    assert min(taken.values()) > 50, taken


def test_padded_pooling_below_stride_is_fine(tmp_path):
    compiled = compile_layers(tmp_path, [layer("c", "Convolution", num_output=4, kernel_size=1),
                                         layer("p", "Pooling", pool="MAX", kernel_size=3, stride=2, pad=1)])
    assert op_of(compiled, "p").args["dim_im_out"] == 5  # ceil((8 + 2 - 3) / 2) + 1
