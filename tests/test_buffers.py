"""Buffer plan: no output overlaps its inputs, in-place ReLU, copies for later readers,
RGB's extra byte, alignment, branching nets; checked by replaying the program on a
symbolic arena that records which tensor owns every byte."""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import layer, write_model
from cmsisgen.mapper.buffers import ALIGN, plan_buffers
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.program import run_program


def compile_layers(tmp_path, layers, input_shape=(3, 8, 8), **kwargs):
    proto, weights = write_model(tmp_path, layers, input_shape=input_shape)
    calib = np.random.default_rng(3).integers(0, 256, size=(4, *input_shape[1:], 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=calib, **kwargs)


def replay(program, plan):
    """Execute the plan symbolically; fail on any read of a byte its tensor no longer owns,
    and on any call whose output overlaps an input (other than an in-place ReLU)."""
    owner = [None] * plan.arena_bytes

    def span(name, extra=0):
        start = plan.offset(name)
        return range(start, start + program.tensors[name].size + extra)

    for index, op in enumerate(program.ops):
        for name in op.inputs:
            extra = 1 if op.function == "arm_convolve_HWC_q7_RGB" else 0
            assert span(name, extra)[-1] < plan.offset(name) + plan.sizes[plan.storage[name]], (op.layer, name)
            stale = [b for b in span(name) if owner[b] != name]
            assert not stale, f"op {index} ({op.layer}) reads '{name}' but bytes {stale[:4]}... were overwritten"
        out = set(span(op.output))
        for name in op.inputs:
            if op.in_place:
                assert plan.offset(op.output) == plan.offset(name), op.layer
                continue
            extra = 1 if op.function == "arm_convolve_HWC_q7_RGB" else 0
            assert not out & set(span(name, extra)), f"op {index} ({op.layer}) writes over its input '{name}'"
        if op.clobbers_input:
            for b in span(op.inputs[0]):
                owner[b] = None
        for b in out:
            owner[b] = op.output
    for b in span(program.output):
        assert owner[b] == program.output


def check_plan(compiled):
    program, plan = compiled.program, compiled.plan
    assert all(offset % ALIGN == 0 for offset in plan.offsets.values())
    assert all(size % ALIGN == 0 for size in plan.sizes.values())
    assert plan.arena_bytes == max(plan.offsets[n] + plan.sizes[n] for n in plan.offsets)
    assert plan.scratch_bytes == -(-max(op.scratch_bytes for op in program.ops) // ALIGN) * ALIGN
    replay(program, plan)


def kinds(program):
    return [(op.kind, op.layer) for op in program.ops]


def test_chain_relu_in_place_no_copies(tmp_path):
    compiled = compile_layers(tmp_path, [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
        layer("prob", "Softmax")])
    check_plan(compiled)
    assert "copy" not in [op.kind for op in compiled.program.ops]
    assert compiled.plan.storage["conv1@1"] == "conv1"
    assert compiled.plan.offset("conv1@1") == compiled.plan.offset("conv1")
    # 196 = 3*8*8 + RGB's extra byte, aligned; conv1 4*8*8 = 256
    assert compiled.plan.sizes["data"] == 196 and compiled.plan.sizes["conv1"] == 256
    assert compiled.plan.scratch_bytes == 2 * (4 * 8 * 8 // 4 * 1)  # FC: 2 * dim_vec = 128 > conv 108


@pytest.mark.parametrize("shape, size", [((3, 8, 8), 196), ((3, 7, 7), 148), ((3, 5, 5), 76),
                                         ((3, 6, 6), 112), ((3, 9, 9), 244)])
def test_rgb_input_gets_its_extra_byte(tmp_path, shape, size):
    """Square inputs, so every case maps to the RGB kernel (it needs square geometry)."""
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)], shape)
    assert compiled.program.ops[1].function == "arm_convolve_HWC_q7_RGB"
    c, h, w = shape
    assert size == -(-(c * h * w + 1) // ALIGN) * ALIGN  # C*H*W + 1, aligned
    assert compiled.plan.sizes["data"] == size
    data, conv = compiled.plan.offset("data"), compiled.plan.offset("conv1")
    out_bytes = compiled.program.tensors["conv1"].size
    assert conv >= data + c * h * w + 1 or conv + out_bytes <= data  # the extra byte is not the output's
    check_plan(compiled)


def test_nonsquare_rgb_input_maps_to_basic_without_extra_byte(tmp_path):
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 4, 8))
    assert compiled.program.ops[1].function == "arm_convolve_HWC_q7_basic_nonsquare"
    assert compiled.plan.sizes["data"] == 96  # 3*4*8, already aligned: no extra byte
    check_plan(compiled)


def test_rgb_extra_byte_when_input_size_is_a_multiple_of_4(tmp_path):
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 4, 4))
    assert compiled.program.ops[1].function == "arm_convolve_HWC_q7_RGB"
    assert compiled.plan.sizes["data"] == 52  # 48 + 1, aligned
    data, conv = compiled.plan.offset("data"), compiled.plan.offset("conv1")
    assert conv >= data + 49 or conv + 2 * 2 * 2 <= data


def test_no_extra_byte_without_rgb_conv(tmp_path):
    compiled = compile_layers(tmp_path, [layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2),
                                         layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 8, 8))
    assert compiled.plan.sizes["data"] == 192
    assert compiled.plan.sizes["pool"] == 48 + 4  # pool output feeds the RGB conv
    check_plan(compiled)


def branch_with_relu_and_pool():
    return [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("relu1", "ReLU", "conv1", "relu1"),            # conv1 is read again below
        layer("pool_a", "Pooling", "relu1", "pool_a", pool="MAX", kernel_size=2, stride=2),
        layer("pool_b", "Pooling", "conv1", "pool_b", pool="AVE", kernel_size=2, stride=2),  # conv1 read again
        layer("conv_c", "Convolution", "conv1", "conv_c", num_output=4, kernel_size=2, stride=2),
        layer("cat", "Concat", ["pool_a", "pool_b", "conv_c"], "cat"),
        layer("ip", "InnerProduct", num_output=5),
    ]


def test_relu_copies_when_its_input_is_read_later(tmp_path):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    program = compiled.program
    ops = kinds(program)
    i = ops.index(("relu", "relu1"))
    assert ops[i - 1] == ("copy", "relu1")
    copy, relu = program.ops[i - 1], program.ops[i]
    assert (copy.inputs, copy.output, copy.function, copy.args) == (["conv1"], "relu1", "memcpy", {"size": 256})
    assert (relu.inputs, relu.output) == (["relu1"], "relu1")
    assert compiled.plan.offset("relu1") != compiled.plan.offset("conv1")
    check_plan(compiled)


def test_pool_pools_a_copy_when_its_input_is_read_later(tmp_path):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    program = compiled.program
    ops = kinds(program)
    i = ops.index(("avepool", "pool_b"))
    assert ops[i - 1] == ("copy", "pool_b")
    assert program.ops[i - 1].inputs == ["conv1"] and program.ops[i - 1].output == "pool_b/input"
    assert program.ops[i].inputs == ["pool_b/input"]
    assert program.tensors["pool_b/input"].shape == (4, 8, 8)
    assert program.tensors["pool_b/input"].frac == program.tensors["conv1"].frac
    # pool_a's input (relu1) is not read later: no copy
    j = ops.index(("maxpool", "pool_a"))
    assert program.ops[j].inputs == ["relu1"] and ops[j - 1] != ("copy", "pool_a")
    check_plan(compiled)


def test_last_reader_pools_in_place(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("conv2", "Convolution", "conv1", "conv2", num_output=4, kernel_size=2, stride=2),
              layer("pool", "Pooling", "conv1", "pool", pool="MAX", kernel_size=2, stride=2),
              layer("cat", "Concat", ["conv2", "pool"], "cat")]
    compiled = compile_layers(tmp_path, layers)
    assert "copy" not in [op.kind for op in compiled.program.ops]
    check_plan(compiled)


def test_two_relus_on_one_tensor(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=1),
              layer("r1", "ReLU", "conv1", "r1"),
              layer("r2", "ReLU", "conv1", "r2"),
              layer("cat", "Concat", ["r1", "r2"], "cat")]
    compiled = compile_layers(tmp_path, layers)
    assert [k for k, _ in kinds(compiled.program)] == ["input", "conv", "copy", "relu", "relu", "concat"]
    assert compiled.plan.storage["r2"] == "conv1"
    check_plan(compiled)


def test_split_and_concat_branching_net(tmp_path):
    layers = [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("split", "Split", "conv1", ["s1", "s2"]),
        layer("conv_a", "Convolution", "s1", "conv_a", num_output=6, kernel_size=3, pad=1),
        layer("relu_a", "ReLU", "conv_a", "conv_a", ),
        layer("relu_s2", "ReLU", "s2", "s2"),
        layer("conv_b", "Convolution", "s2", "conv_b", num_output=2, kernel_size=1),
        layer("cat", "Concat", ["conv_a", "conv_b", "s1"], "cat"),
        layer("pool", "Pooling", pool="MAX", kernel_size=3, stride=2),
        layer("ip", "InnerProduct", num_output=3),
        layer("prob", "Softmax"),
    ]
    compiled = compile_layers(tmp_path, layers)
    program = compiled.program
    # the ReLU on s2 (= conv1's bytes) must not destroy s1, which Concat reads later
    i = kinds(program).index(("relu", "relu_s2"))
    assert program.ops[i - 1].kind == "copy" and program.ops[i - 1].inputs == ["conv1"]
    cat = next(op for op in program.ops if op.kind == "concat")
    assert cat.inputs == ["conv_a@1", "conv_b", "conv1"]
    assert cat.args == {"pixels": 64, "ch_out": 12, "ch_in0": 6, "ch_in1": 2, "ch_in2": 4}
    check_plan(compiled)
    # the plan's copies do not change the results
    images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    values = run_program(program, images, keep_all=True)
    assert (values["conv_a@1"] >= 0).all() and (values["s2@1"] >= 0).all()
    assert values["conv1"].min() < 0  # the pre-ReLU tensor survived for the concat
    assert np.array_equal(values["cat"][..., 8:], values["conv1"])


def test_plan_is_idempotent_in_layout(tmp_path):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    again = plan_buffers(compiled.program)  # copies are already there: nothing more is inserted
    assert [op.kind for op in compiled.program.ops].count("copy") == 2
    assert again.offsets == compiled.plan.offsets and again.arena_bytes == compiled.plan.arena_bytes


def test_buffers_are_shared_when_lifetimes_do_not_overlap(tmp_path):
    compiled = compile_layers(tmp_path, [
        layer(f"conv{i}", "Convolution", num_output=4, kernel_size=3, pad=1) for i in range(5)])
    sizes = compiled.plan.sizes
    assert compiled.plan.arena_bytes < sum(sizes.values())
    assert compiled.plan.arena_bytes <= 196 + 2 * 256
    check_plan(compiled)
