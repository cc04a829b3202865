"""An average pooling's own output format (issue 13): on nn_pool_q7 the average gets the
format its calibrated range asks for, finer than its input's (the shift folded into the
division); MAX pooling and a pool forced onto arm_avepool_q7_HWC keep their input's; an own
format that comes out coarser than the input's is tied to it after all."""
from __future__ import annotations

import numpy as np

import int_reference
from caffe_models import layer, write_model
from cmsisgen import codegen, ir
from cmsisgen.ops.pooling_nn import max_shift
from cmsisgen.pipeline import compile_model
from cmsisgen.quantizer import quantize
from cmsisgen.simulator.execute import run_program


def global_average_net(kernel: int = 5):
    """conv (5x5: its average falls 2 fractional bits below its largest value; 3x3: 1) -> ReLU
    -> global average -> inner product."""
    return [layer("conv1", "Convolution", num_output=6, kernel_size=kernel, pad=kernel // 2),
            layer("relu1", "ReLU", bottom="conv1", top="conv1"),
            layer("pool", "Pooling", pool="AVE", global_pooling=True),
            layer("ip", "InnerProduct", num_output=4)]


def compile_layers(tmp_path, layers, **kwargs):
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(5).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=calib, **kwargs), calib


def op_of(compiled, name):
    (op,) = [op for op in compiled.program.ops if op.layer == name]
    return op


def test_global_average_gets_a_finer_format_on_nn_pool_q7(tmp_path):
    """The average of a ReLU map is far below its largest value: the pool's output takes more
    fractional bits, nn_pool_q7 runs it with that shift, nn.c passes it, and the simulator
    equals the integer reference (which scales the sum on its own)."""
    compiled, calib = compile_layers(tmp_path, global_average_net())
    frac = compiled.quant.tensor_frac
    op = op_of(compiled, "pool")
    in_frac = frac[compiled.net.layers[2].bottoms[0]]
    assert in_frac == frac["conv1"] and frac["pool"] > in_frac
    assert (op.function, op.args["shift"]) == ("nn_pool_q7", frac["pool"] - in_frac)
    assert compiled.quant.layers["ip"].in_frac == frac["pool"]
    files = codegen.render(compiled.program, compiled.plan, "m")
    assert f"POOL_OUT_H, POOL_OUT_W, 1u, {op.args['shift']}u, POOL_OUT);" in files["nn.c"]
    assert f"(the input's Q{7 - in_frac}.{in_frac} shifted left {op.args['shift']})" in files["parameters.h"]
    c, h, w = compiled.program.input_shape
    got = run_program(compiled.program, compiled.pre.prepare_images(calib, h, w))
    assert np.array_equal(got, int_reference.run(compiled, calib))


def test_one_bit_is_not_worth_leaving_arm_avepool(tmp_path):
    """A pool CMSIS-NN's arm_avepool_q7_HWC can run keeps it, and its input's format, when its
    own format would gain a single fractional bit (ops.pooling.MIN_GAIN_OFF_CMSIS_NN): that bit
    cost the example's pool3 about 30,000 instructions."""
    from cmsisgen.ops.pooling import MIN_GAIN_OFF_CMSIS_NN

    assert MIN_GAIN_OFF_CMSIS_NN == 2
    compiled, _ = compile_layers(tmp_path, global_average_net(kernel=3))
    frac = compiled.quant.tensor_frac
    assert op_of(compiled, "pool").function == "arm_avepool_q7_HWC"
    assert frac["pool"] == frac["conv1"]


def test_forced_arm_avepool_and_max_pooling_keep_the_input_format(tmp_path):
    """arm_avepool_q7_HWC cannot shift: forced, the pool shares its input's format; MAX pooling
    always does (its output is one of its input values)."""
    forced, _ = compile_layers(tmp_path, global_average_net(), kernels={"pool": "arm_avepool_q7_HWC"})
    assert op_of(forced, "pool").function == "arm_avepool_q7_HWC"
    assert forced.quant.tensor_frac["pool"] == forced.quant.tensor_frac["conv1"]
    layers = global_average_net()
    layers[2] = layer("pool", "Pooling", pool="MAX", global_pooling=True)
    (tmp_path / "max").mkdir()
    maximum, _ = compile_layers(tmp_path / "max", layers)
    assert maximum.quant.tensor_frac["pool"] == maximum.quant.tensor_frac["conv1"]
    assert op_of(maximum, "pool").function == "arm_maxpool_q7_HWC"


def hand_net(pool_range: float, after_range: float):
    """data -> conv -> AVE pool 2x2 -> concat with a second conv of ``after_range``."""
    w = np.full((2, 2, 1, 1), 0.5, dtype=np.float32)
    conv = lambda name: ir.Layer(name, "Convolution", ["data"], [name],  # noqa: E731
                                 ir.ConvParams(num_output=2, kernel_h=1, kernel_w=1, bias_term=False), [w])
    pool = ir.Layer("pool", "Pooling", ["a"], ["pool"],
                    ir.PoolParams(method="ave", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2))
    b = ir.Layer("b", "Convolution", ["half"], ["b"],
                 ir.ConvParams(num_output=2, kernel_h=1, kernel_w=1, bias_term=False), [w])
    half = ir.Layer("half", "Pooling", ["data"], ["half"],
                    ir.PoolParams(method="max", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2))
    cat = ir.Layer("cat", "Concat", ["pool", "b"], ["cat"], ir.ConcatParams())
    net = ir.Net(name="hand", input_shapes={"data": (2, 4, 4)}, layers=[conv("a"), pool, half, b, cat],
                 outputs=["cat"])
    net.shapes = {"data": (2, 4, 4), "a": (2, 4, 4), "pool": (2, 2, 2), "half": (2, 2, 2), "b": (2, 2, 2),
                  "cat": (4, 2, 2)}
    ranges = {"data": 1.0, "a": 8.0, "pool": pool_range, "half": 1.0, "b": after_range, "cat": after_range}
    return net, ranges


def test_own_format_coarser_than_the_input_is_tied_to_it():
    """The concat ties the pool's output to b's: with b's range small the pool keeps its own,
    finer format (Q1.6 over the input's Q4.3); with b's range large the group would be coarser
    than the pool's input, which nn_pool_q7 cannot shift into, so the pool shares its input's
    format and the group takes the coarser of the two."""
    net, ranges = hand_net(1.0, 1.5)
    q = quantize(net, ranges)
    assert (q.tensor_frac["a"], q.tensor_frac["pool"], q.tensor_frac["cat"]) == (3, 6, 6)
    net, ranges = hand_net(1.0, 30.0)
    q = quantize(net, ranges)
    assert q.tensor_frac["a"] == q.tensor_frac["pool"] == q.tensor_frac["cat"] == 2


def test_own_format_is_bounded_by_the_largest_shift():
    """A pool whose calibrated output is near zero gets at most max_shift more fractional bits."""
    net, ranges = hand_net(1e-9, 1.0)
    net.layers, net.outputs = net.layers[:2], ["pool"]
    q = quantize(net, ranges)
    assert q.tensor_frac["pool"] == q.tensor_frac["a"] + max_shift(2, 2) == 3 + 20
