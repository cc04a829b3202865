"""Buffer plan: liveness reuse in one arena, scratch as short-lived arena buffers, the input
converted in place in the caller's image buffer, in-place ReLU and pooling (only where the
pooling windows allow it), copies for later readers, bytes read past an input's end.

Checked by replaying every program on a symbolic memory that records which tensor owns
every byte, by running programs in their planned memory (cmsisgen.simulator.memory:
noise in scratch and clobbered bytes, pooling over its input in the kernels' order)
against the simulator, by the exact plan of the CIFAR-10 example network, by running
pooling with its output over its input in C (portable kernels) against the out-of-place
result, and by the CIFAR-10 network bit-exact on host gcc and QEMU (upstream CMSIS-NN too
when CMSIS_NN_PATH & co. are set).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from caffe_models import layer, write_model
from random_nets import CATALOGUE, write_random_net
from cmsisgen import codegen
from cmsisgen.mapper import rules
from cmsisgen.ops import pooling, relu
from cmsisgen.ops.base import in_place
from cmsisgen.mapper.buffers import ALIGN, ARENA, IMAGE, plan_buffers
from cmsisgen.pipeline import compile_model
from cmsisgen.report import build_report
from cmsisgen.mapper.calls import Op
from cmsisgen.simulator import kernels, memory
from cmsisgen.simulator.execute import run_program
from cmsisgen.verify import build_and_run, firmware_dir, format_result

ROOT = Path(__file__).resolve().parents[1]
PORTABLE = firmware_dir() / "cmsis_nn_portable"
UPSTREAM_NN = os.environ.get("CMSIS_NN_PATH")
UPSTREAM_CORE = os.environ.get("CMSIS_CORE_PATH")
UPSTREAM_DSP = os.environ.get("CMSIS_DSP_INCLUDE")
HAVE_GCC = shutil.which("gcc") is not None
HAVE_QEMU = (shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
             and shutil.which("make") is not None)

#: RAM budget of issue 5 for the CIFAR-10 example: arena + scratch beyond the image buffer.
CIFAR10_RAM_BUDGET = 34 * 1024

#: The CIFAR-10 example network (examples/cifar10/cifar10.prototxt), here with random weights.
CIFAR10 = [
    layer("conv1", "Convolution", num_output=32, kernel_size=5, pad=2),
    layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
    layer("relu1", "ReLU", "pool1", "pool1"),
    layer("conv2", "Convolution", num_output=32, kernel_size=5, pad=2),
    layer("relu2", "ReLU", "conv2", "conv2"),
    layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("conv3", "Convolution", num_output=64, kernel_size=5, pad=2),
    layer("relu3", "ReLU", "conv3", "conv3"),
    layer("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
    layer("prob", "Softmax"),
]


def compile_layers(tmp_path, layers, input_shape=(3, 8, 8), **kwargs):
    proto, weights = write_model(tmp_path, layers, input_shape=input_shape)
    calib = np.random.default_rng(3).integers(0, 256, size=(4, *input_shape[1:], 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=calib, **kwargs)


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    return compile_layers(tmp_path_factory.mktemp("cifar10"), CIFAR10, (3, 32, 32))


# --------------------------------------------------------------------------- plan replay


def replay(program, plan):
    """Run the plan on a symbolic memory (one owner per byte, per region) and fail on:
    a read of bytes their tensor no longer owns, bytes read past an input outside its
    reservation, an output or scratch overlapping an input other than an in-place op's
    input 0 (same first byte), a scratch overlapping the output, and an output that does
    not survive to the end."""
    memory = {IMAGE: [None] * plan.input_buffer_bytes, ARENA: [None] * plan.arena_bytes}

    def span(name, extra=0):
        p = plan.tensors[name]
        return p.region, set(range(p.offset, p.offset + program.tensors[name].size + extra))

    def overlap(a, b):
        return a[0] == b[0] and a[1] & b[1]

    for index, op in enumerate(program.ops):
        for k, name in enumerate(op.inputs):
            p = plan.tensors[name]
            extra = op.reads_past_end if k == 0 else 0
            assert program.tensors[name].size + extra <= p.bytes, (op.layer, name)
            region, cells = span(name)
            stale = sorted(b for b in cells if memory[region][b] != name)
            assert not stale, f"step {index} ({op.layer}) reads '{name}' but bytes {stale[:4]}... were overwritten"
        out = span(op.output)
        for k, name in enumerate(op.inputs):
            if op.in_place and k == 0:
                assert plan.offset(op.output) == plan.offset(name) and out[0] == span(name)[0], op.layer
                continue
            assert not overlap(out, span(name, op.reads_past_end if k == 0 else 0)), \
                f"step {index} ({op.layer}) writes over its input '{name}'"
        if index in plan.scratch:
            s = plan.scratch[index]
            assert s.region == ARENA and s.bytes >= op.scratch_bytes
            cells = (ARENA, set(range(s.offset, s.offset + op.scratch_bytes)))
            for name in op.inputs:
                assert not overlap(cells, span(name)), f"{op.layer}: scratch over input '{name}'"
            assert not overlap(cells, out), f"{op.layer}: scratch over its output"
            for b in cells[1]:
                memory[ARENA][b] = "scratch"
        else:
            assert op.scratch_bytes == 0
        if op.clobbers_input:
            region, cells = span(op.inputs[0])
            for b in cells:
                memory[region][b] = None
        for b in out[1]:
            memory[out[0]][b] = op.output
    for output in program.outputs:  # every output intact at the end, where run_nn() copies it out
        region, cells = span(output.tensor)
        assert all(memory[region][b] == output.tensor for b in cells), output.blob


def check_plan(compiled):
    program, plan = compiled.program, compiled.plan
    arena = [p for p in plan.placements() if p.region == ARENA]
    assert all(p.offset % ALIGN == 0 and p.bytes % ALIGN == 0 for p in arena)
    assert plan.arena_bytes == max((p.end for p in arena), default=0)
    assert plan.scratch_bytes == max((p.bytes for p in plan.scratch.values()), default=0)
    assert plan.tensors[program.input].region == IMAGE
    assert plan.input_buffer_bytes == max(p.end for p in plan.placements() if p.region == IMAGE)
    replay(program, plan)


def kinds(program):
    return [(op.kind, op.layer) for op in program.ops]


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_fits_34_kb(cifar10):
    """Arena (activations and scratch) within 34 KB; exactly this plan, largest first."""
    program, plan = cifar10.program, cifar10.plan
    assert "copy" not in [op.kind for op in program.ops]
    assert [op.in_place for op in program.ops if op.kind in ("maxpool", "avepool")] == [True, True, True]
    assert plan.arena_bytes == 32768 + 300 <= CIFAR10_RAM_BUDGET  # conv1's output and its im2col
    assert plan.scratch_bytes == 3200  # conv2/conv3 im2col: 2 * 2 * 32 * 5 * 5
    assert plan.input_buffer_bytes == 3 * 32 * 32 + 1  # + the byte arm_convolve_HWC_q7_RGB reads past it
    table = [(p.name, p.region, p.offset, p.bytes, p.first, p.last) for p in plan.placements()]
    assert table == [
        ("data", IMAGE, 0, 3073, 0, 1),
        ("conv1", ARENA, 0, 32768, 1, 2),
        ("pool1", ARENA, 0, 8192, 2, 3),       # pooled over conv1
        ("pool1@1", ARENA, 0, 8192, 3, 4),     # relu1 in place
        ("pool2/scratch", ARENA, 0, 512, 6, 6),
        ("conv3", ARENA, 0, 4096, 7, 8),
        ("conv3@1", ARENA, 0, 4096, 8, 9),
        ("pool3", ARENA, 0, 1024, 9, 10),
        ("prob", ARENA, 0, 12, 11, 11),
        ("ip1/scratch", ARENA, 1024, 2048, 10, 10),
        ("ip1", ARENA, 3072, 12, 10, 11),
        ("conv3/scratch", ARENA, 4096, 3200, 7, 7),
        ("pool3/scratch", ARENA, 4096, 512, 9, 9),
        ("conv2", ARENA, 8192, 8192, 4, 5),
        ("conv2@1", ARENA, 8192, 8192, 5, 6),
        ("pool2", ARENA, 8192, 2048, 6, 7),
        ("conv2/scratch", ARENA, 16384, 3200, 4, 4),
        ("conv1/scratch", ARENA, 32768, 300, 1, 1),
    ]
    check_plan(cifar10)


def test_cifar10_generated_code_and_report(cifar10):
    files = codegen.render(cifar10.program, cifar10.plan, "cifar10.prototxt")
    nn_c, nn_h = files["nn.c"], files["nn.h"]
    assert "#define NN_INPUT_BUFFER_SIZE (NN_INPUT_SIZE + 1)\n" in nn_h
    assert "arm_status run_nn(uint8_t *image, q7_t *scores);" in nn_h
    assert "#define NN_ARENA_BYTES 33068\n" in nn_c
    assert "static q7_t nn_arena[NN_ARENA_BYTES]" in nn_c and "static q15_t" not in nn_c
    # one buffer name per step's output (pool1 writes over conv1: one offset, two names)
    assert "#define NN_INPUT_Q7 ((q7_t *)image + NN_INPUT_Q7_OFFSET)\n" in nn_c
    assert ("#define CONV2_SCRATCH_OFFSET 16384\n#define CONV2_SCRATCH_BYTES 3200\n"
            "#define CONV2_SCRATCH ((q15_t *)(void *)(nn_arena + CONV2_SCRATCH_OFFSET))\n") in nn_c
    assert " *   POOL1_OUT                      arena        0    8192  2-3      pool1\n" in nn_c
    assert " *   RELU1_OUT                      arena        0    8192  3-4      pool1 after relu1\n" in nn_c
    assert "#define POOL1_OUT_OFFSET 0\n" in nn_c and "#define CONV1_OUT_OFFSET 0\n" in nn_c
    assert "arm_maxpool_q7_HWC(CONV1_OUT, POOL1_IN_DIM" in nn_c and "POOL1_OUT_DIM, NULL, POOL1_OUT);" in nn_c
    assert "arm_relu_q7(RELU1_OUT, RELU1_SIZE);" in nn_c and "RELU1_OUT, CONV2_IN_DIM" in nn_c
    assert "(q7_t *)nn_scratch, POOL2_OUT);" in nn_c
    assert ("NN_STATIC_ASSERT(nn_plan_POOL2_OUT_fits, POOL2_OUT_OFFSET + POOL2_OUT_BYTES <= NN_ARENA_BYTES);"
            in nn_c)
    report = build_report(cifar10.program, cifar10.plan)
    totals = report["totals"]
    assert (totals["arena_bytes"], totals["scratch_bytes"], totals["input_buffer_bytes"]) == (33068, 3200, 3073)
    assert totals["activation_bytes"] == 33068
    by_name = {row["name"]: row for row in report["layers"]}
    assert (by_name["conv2"]["output_offset"], by_name["conv2"]["scratch_offset"]) == (8192, 16384)
    assert (by_name["data"]["output_region"], by_name["ip1"]["output_offset"]) == ("image", 3072)
    assert by_name["pool1"]["scratch_offset"] is None
    assert report["buffers"][1] == {"name": "conv1", "region": "arena", "offset": 0, "bytes": 32768,
                                    "first_step": 1, "last_step": 2, "kind": "tensor"}
    assert sum(b["kind"] == "scratch" for b in report["buffers"]) == 6


def assert_runs_in_its_plan(compiled, images):
    """Every step's bytes in the planned memory equal the simulator's tensor."""
    values = run_program(compiled.program, images, keep_all=True)
    steps = memory.run_in_plan(compiled.program, compiled.plan, images)
    for op, got in zip(compiled.program.ops, steps):
        assert np.array_equal(got, values[op.output].reshape(len(images), -1)), op.output


def test_cifar10_runs_in_its_planned_memory(cifar10):
    images = np.random.default_rng(9).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    assert_runs_in_its_plan(cifar10, images)


def test_a_wrong_plan_gives_wrong_values_in_planned_memory(cifar10):
    """conv2's im2col moved over relu1's output, which conv2 reads: the model notices."""
    program, plan = cifar10.program, cifar10.plan
    images = np.random.default_rng(9).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    wrong = dataclasses.replace(plan, scratch={**plan.scratch, 4: dataclasses.replace(plan.scratch[4], offset=0)})
    values = run_program(program, images, keep_all=True)
    steps = memory.run_in_plan(program, wrong, images)
    assert np.array_equal(steps[3], values["pool1@1"].reshape(2, -1))
    assert not np.array_equal(steps[4], values["conv2"].reshape(2, -1))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_net_runs_in_its_planned_memory(tmp_path, name):
    files = write_random_net(tmp_path, name, seed=3)
    calib = np.load(files.calib)["x"]
    compiled = compile_model(files.prototxt, files.weights, calib_images=calib, **files.compile_kwargs())
    check_plan(compiled)
    c, h, w = compiled.program.input_shape
    images = np.random.default_rng(4).integers(0, 256, size=(3, h, w, c), dtype=np.uint8)
    assert_runs_in_its_plan(compiled, images)


# --------------------------------------------------------------------------- rules of the plan


def test_chain_relu_and_pool_in_place(tmp_path):
    compiled = compile_layers(tmp_path, [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
        layer("prob", "Softmax")])
    check_plan(compiled)
    plan = compiled.plan
    assert "copy" not in [op.kind for op in compiled.program.ops]
    # relu1 runs after pool1 (cmsisgen/mapper/commute.py), in place over the pooled values
    assert [op.layer for op in compiled.program.ops[1:4]] == ["conv1", "pool1", "relu1"]
    assert plan.storage["pool1@before_relu1"] == plan.storage["pool1"] == "conv1"
    assert plan.offset("pool1@before_relu1") == plan.offset("pool1") == plan.offset("conv1")
    assert plan.input_buffer_bytes == 193  # 3*8*8 + RGB's extra byte
    assert plan.tensors["conv1"].bytes == 256 and plan.tensors["pool1"].bytes == 64
    assert plan.scratch_bytes == 2 * 64  # FC: 2 * dim_vec > conv 2*2*3*9 = 108


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 7, 7), (3, 5, 5), (3, 4, 4)])
def test_rgb_input_buffer_gets_its_extra_byte(tmp_path, shape):
    """Square inputs, so every case maps to the RGB kernel (it needs square geometry)."""
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)], shape)
    assert compiled.program.ops[1].function == "arm_convolve_HWC_q7_RGB"
    c, h, w = shape
    assert compiled.plan.input_buffer_bytes == c * h * w + 1
    assert compiled.plan.tensors["data"].bytes == c * h * w + 1
    nn_h = codegen.render(compiled.program, compiled.plan, "m")["nn.h"]
    assert "#define NN_INPUT_BUFFER_SIZE (NN_INPUT_SIZE + 1)\n" in nn_h
    check_plan(compiled)


def test_no_extra_byte_without_rgb_conv(tmp_path):
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 4, 8))
    assert compiled.program.ops[1].function == "arm_convolve_HWC_q7_basic_nonsquare"
    assert compiled.plan.input_buffer_bytes == 96
    nn_h = codegen.render(compiled.program, compiled.plan, "m")["nn.h"]
    assert "#define NN_INPUT_BUFFER_SIZE NN_INPUT_SIZE\n" in nn_h
    check_plan(compiled)


def test_extra_byte_of_an_arena_tensor(tmp_path):
    compiled = compile_layers(tmp_path, [layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2),
                                         layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 8, 8))
    plan = compiled.plan
    assert plan.input_buffer_bytes == 192
    # the pool is not written over its input here: the input is the caller's image buffer,
    # the pooled tensor (48 bytes + RGB's extra byte) goes into the image buffer too
    assert compiled.program.ops[1].in_place and plan.tensors["pool"].region == IMAGE
    assert plan.tensors["pool"].bytes == 49
    check_plan(compiled)
    (tmp_path / "b").mkdir()
    compiled = compile_layers(tmp_path / "b", [
        layer("conv0", "Convolution", num_output=3, kernel_size=1),
        layer("pool", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("conv1", "Convolution", num_output=2, kernel_size=3)], (3, 8, 8))
    assert compiled.plan.tensors["pool"].bytes == 48 + ALIGN  # 49, aligned
    check_plan(compiled)


@pytest.fixture()
def caffe_order(monkeypatch):
    """The planner on the Caffe order: relu1 stays before the max pool pool_a (which
    cmsisgen/mapper/commute.py would otherwise run it after)."""
    import cmsisgen.pipeline

    monkeypatch.setattr(cmsisgen.pipeline, "relu_after_max_pool", lambda program: [])


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


def test_relu_copies_when_its_input_is_read_later(tmp_path, caffe_order):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    program = compiled.program
    ops = kinds(program)
    i = ops.index(("relu", "relu1"))
    assert ops[i - 1] == ("copy", "relu1")
    copy, relu = program.ops[i - 1], program.ops[i]
    assert (copy.inputs, copy.output, copy.function, copy.args) == (["conv1"], "relu1/input", "memcpy", {"size": 256})
    assert (relu.inputs, relu.output) == (["relu1/input"], "relu1")
    assert compiled.plan.offset("relu1") == compiled.plan.offset("relu1/input") != compiled.plan.offset("conv1")
    check_plan(compiled)


def test_pool_pools_a_copy_when_its_input_is_read_later(tmp_path, caffe_order):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    program = compiled.program
    ops = kinds(program)
    i = ops.index(("avepool", "pool_b"))
    assert ops[i - 1] == ("copy", "pool_b")
    assert program.ops[i - 1].inputs == ["conv1"] and program.ops[i - 1].output == "pool_b/input"
    assert program.ops[i].inputs == ["pool_b/input"] and program.ops[i].in_place
    assert compiled.plan.offset("pool_b") == compiled.plan.offset("pool_b/input")
    assert program.tensors["pool_b/input"].shape == (4, 8, 8)
    assert program.tensors["pool_b/input"].frac == program.tensors["conv1"].frac
    # pool_a's input (relu1) is not read later: no copy, pooled over it
    j = ops.index(("maxpool", "pool_a"))
    assert program.ops[j].inputs == ["relu1"] and ops[j - 1] != ("copy", "pool_a")
    assert compiled.plan.offset("pool_a") == compiled.plan.offset("relu1")
    check_plan(compiled)


def test_last_reader_pools_in_place(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("conv2", "Convolution", "conv1", "conv2", num_output=4, kernel_size=2, stride=2),
              layer("pool", "Pooling", "conv1", "pool", pool="MAX", kernel_size=2, stride=2),
              layer("cat", "Concat", ["conv2", "pool"], "cat")]
    compiled = compile_layers(tmp_path, layers)
    assert "copy" not in [op.kind for op in compiled.program.ops]
    assert compiled.plan.offset("pool") == compiled.plan.offset("conv1")
    check_plan(compiled)


def test_pool_not_in_place_gets_a_buffer_of_its_own(tmp_path, monkeypatch):
    """Without the in-place rule a pooling layer still destroys its input, and its output
    goes beside it."""
    monkeypatch.setattr(pooling, "MAX", dataclasses.replace(
        pooling.MAX, candidates=tuple(dataclasses.replace(c, in_place=None) for c in pooling.MAX.candidates)))
    compiled = compile_layers(tmp_path, [layer("conv1", "Convolution", num_output=4, kernel_size=1),
                                         layer("pool", "Pooling", pool="MAX", kernel_size=3, stride=1)])
    pool = compiled.program.ops[2]
    assert (pool.kind, pool.in_place, pool.clobbers_input) == ("maxpool", False, True)
    assert compiled.plan.offset("pool") == 256 and compiled.plan.offset("conv1") == 0
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


def test_relu_on_the_input_works_in_the_image_buffer(tmp_path):
    compiled = compile_layers(tmp_path, [layer("relu0", "ReLU", "data", "data"),
                                         layer("ip", "InnerProduct", num_output=3)], (1, 4, 4))
    plan = compiled.plan
    assert plan.tensors["data@1"].region == IMAGE and plan.input_buffer_bytes == 16
    assert plan.arena_bytes == 4 + 2 * 16  # ip output (3 -> 4) and its scratch
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


def test_plan_is_idempotent(tmp_path):
    compiled = compile_layers(tmp_path, branch_with_relu_and_pool())
    again = plan_buffers(compiled.program)  # copies are already there: nothing more is inserted
    assert [op.kind for op in compiled.program.ops].count("copy") == 2
    assert again == compiled.plan


def test_buffers_are_reused_once_their_last_reader_ran(tmp_path):
    compiled = compile_layers(tmp_path, [
        layer(f"conv{i}", "Convolution", num_output=4, kernel_size=3, pad=1) for i in range(5)])
    plan = compiled.plan
    convs = [plan.tensors[f"conv{i}"] for i in range(5)]
    # two 256-byte activations alternate, each conv's im2col beside them
    assert [p.offset for p in convs] == [0, 256, 0, 256, 0]
    assert plan.arena_bytes == 2 * 256 + 2 * 2 * 4 * 9
    assert sum(p.bytes for p in convs) > plan.arena_bytes
    check_plan(compiled)


# --------------------------------------------------------------------------- in-place pooling rule


def pool_site(dim, kernel, stride, pad):
    out = -(-(dim + 2 * pad - kernel) // stride) + 1  # Caffe's ceil mode
    if (out - 1) * stride >= dim + pad:
        out -= 1
    return rules.Site(layer="p", type="Pooling", in_ch=4, in_h=dim, in_w=dim, out_ch=4, out_h=out, out_w=out,
                      kernel_h=kernel, kernel_w=kernel, stride_h=stride, stride_w=stride, pad_h=pad, pad_w=pad,
                      method="max")


def supported(site):
    """Every rule of arm_avepool_q7_HWC (a superset of arm_maxpool_q7_HWC's) holds."""
    candidate = pooling.AVE.candidate("arm_avepool_q7_HWC")
    return all(rule(site) for rule in candidate.rules)


def kernel_runs(site):
    """The DSP kernels stay inside their buffers: output within input, windows start inside."""
    return 1 <= site.out_h <= site.in_h and (site.out_h - 1) * site.stride_h - site.pad_h < site.in_h


#: Pooling geometries with inputs up to 12x12, kernels up to 5, strides up to 4, padding up
#: to 2 that the kernels can run (padding >= stride included, which the arm_*pool_q7_HWC rules refuse).
GEOMETRIES = [(d, k, s, p) for d, k, s, p in itertools.product(range(1, 13), range(1, 6), range(1, 5), range(0, 3))
              if k <= d + 2 * p and kernel_runs(pool_site(d, k, s, p))]


def test_in_place_rule_holds_for_every_supported_pooling():
    """With the pooling rules (padding < stride, output within input) the output always fits
    over the input; the rule only refuses geometries those rules already refuse."""
    supported_geometries = [g for g in GEOMETRIES if supported(pool_site(*g))]
    assert len(supported_geometries) > 150
    assert all(pooling.pooling_output_fits_over_input(pool_site(*g)) for g in supported_geometries)
    assert in_place(pooling.MAX, "arm_maxpool_q7_HWC", pool_site(32, 3, 2, 0))  # CIFAR-10 pool1
    assert in_place(pooling.AVE, "arm_avepool_q7_HWC", pool_site(16, 3, 2, 0))  # pool2
    # padding >= stride: row 1's window starts at row 0, so output row 1 (pixels 3..5 of a
    # 4x4 input pooled to 3x3) lands on input row 1 (4..6), which it reads after row 0
    assert not pooling.pooling_output_fits_over_input(pool_site(4, 3, 1, 1))
    assert not in_place(relu.CHOICE, "arm_relu_q7", pool_site(8, 2, 2, 0))  # no in-place rule: ReLU is in place anyway


def pool_over_input(x, kernel, pad, stride, out_dim, mode):
    """The simulator's planned-memory model of pooling written over its own input."""
    n, d, _, c = x.shape
    op = Op(layer="p", layer_type="Pooling", kernel=pooling.MAXPOOL if mode == "max" else pooling.AVEPOOL,
            function="", inputs=["x"], output="y", in_place=True, clobbers_input=True,
            args={"dim_kernel": kernel, "padding": pad, "stride": stride, "dim_im_out": out_dim, "ch_im_in": c,
                  "dim_im_in": d})
    mem = x.reshape(n, -1).copy()
    op.kernel.over_input(op, mem, 0, d * d * c)
    return mem[:, :out_dim * out_dim * c].reshape(n, out_dim, out_dim, c)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_in_place_rule_is_exact_in_the_planned_memory_model(mode):
    """Where the rule holds, pooling over its own input (in the kernels' row order, on one
    buffer) gives the out-of-place result, for every geometry up to 12x12; and the rule is
    not vacuous: some geometries it rejects do differ."""
    rng = np.random.default_rng(5)
    reference = kernels.maxpool_q7_hwc if mode == "max" else kernels.avepool_q7_hwc
    differing = 0
    for d, k, s, p in GEOMETRIES:
        site = pool_site(d, k, s, p)
        x = rng.integers(-128, 128, size=(2, d, d, 3), dtype=np.int8)
        args = dict(kernel=k, pad=p, stride=s, out_dim=site.out_h)
        got, want = pool_over_input(x, mode=mode, **args), reference(x, **args)
        if pooling.pooling_output_fits_over_input(site):
            assert np.array_equal(got, want), (d, k, s, p)
        else:
            differing += not np.array_equal(got, want)
    assert differing > 0


POOL_MAIN_C = r"""
#include <stdio.h>
#include <string.h>
#include "arm_nnfunctions.h"

/* Pools random data out of place and in place (Im_out == Im_in) for each geometry given
   on stdin as "dim kernel stride pad out ch"; prints one line per geometry and kernel:
   "max|ave same|differ". */
static q7_t a[4096], b[4096], c[4096], out[4096];
static q15_t buffer[1024];

int main(void)
{
    int d, k, s, p, o, ch;
    unsigned seed = 1u;
    while (scanf("%d %d %d %d %d %d", &d, &k, &s, &p, &o, &ch) == 6) {
        for (int pass = 0; pass < 2; pass++) {
            int n = d * d * ch;
            for (int i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                a[i] = (q7_t)(seed >> 16);
            }
            memcpy(b, a, (size_t)n);
            memcpy(c, a, (size_t)n);
            if (pass == 0) {
                arm_maxpool_q7_HWC(b, d, ch, k, p, s, o, NULL, out);
                arm_maxpool_q7_HWC(c, d, ch, k, p, s, o, NULL, c);
            } else {
                arm_avepool_q7_HWC(b, d, ch, k, p, s, o, (q7_t *)buffer, out);
                arm_avepool_q7_HWC(c, d, ch, k, p, s, o, (q7_t *)buffer, c);
            }
            printf("%s %s\n", pass == 0 ? "max" : "ave", memcmp(out, c, (size_t)(o * o * ch)) ? "differ" : "same");
        }
    }
    return 0;
}
"""


def run_pool_in_place_c(tmp_path, include, sources, extra_flags=()):
    main = tmp_path / "pool_main.c"
    main.write_text(POOL_MAIN_C)
    exe = tmp_path / "pool_in_place"
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", *extra_flags, *[f"-I{i}" for i in include], str(main),
                    *map(str, sources), "-o", str(exe)], check=True, capture_output=True, text=True)
    cases = [(d, k, s, p, pool_site(d, k, s, p).out_h, ch) for d, k, s, p in GEOMETRIES for ch in (3, 4)]
    stdin = "".join(" ".join(map(str, case)) + "\n" for case in cases)
    run = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True, timeout=60)
    lines = run.stdout.split("\n")
    results = {}
    for n, case in enumerate(cases):
        results[case] = (lines[2 * n], lines[2 * n + 1])
    return results


def check_c_results(results):
    differing = 0
    for (d, k, s, p, o, ch), (max_line, ave_line) in results.items():
        if pooling.pooling_output_fits_over_input(pool_site(d, k, s, p)):
            assert (max_line, ave_line) == ("max same", "ave same"), (d, k, s, p, ch)
        else:
            differing += (max_line, ave_line) != ("max same", "ave same")
    assert differing > 0


@pytest.mark.skipif(not HAVE_GCC, reason="gcc not found")
def test_in_place_rule_holds_for_the_portable_kernels(tmp_path):
    results = run_pool_in_place_c(tmp_path, [PORTABLE / "Include"], [PORTABLE / "Source" / "arm_pool_q7_HWC.c"])
    check_c_results(results)


# --------------------------------------------------------------------------- bit-exact runs


def write_cifar10_model(tmp_path):
    """cmsisgen compile of the CIFAR-10 topology with random weights and 3 test vectors."""
    from click.testing import CliRunner

    from cmsisgen.cli import main

    proto, weights = write_model(tmp_path, CIFAR10, input_shape=(3, 32, 32), seed=7)
    calib = tmp_path / "calib.npz"
    rng = np.random.default_rng(8)
    np.savez(calib, x=rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8), y=np.arange(8) % 10)
    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["compile", str(proto), str(weights), "-o", str(out), "--calib", str(calib),
                                       "--test-vectors", "3"])
    assert result.exit_code == 0, result.output
    assert "NN_ARENA_BYTES 33068" in (out / "nn.c").read_text()
    return out


def assert_all_pass(result, build_dir):
    assert result.passed == result.total == 3 and result.exit_code == 0, format_result(result) + result.output
    assert result.steps_checked == 12  # every step's checksum, the in-place ones included
    warnings = [line for line in (build_dir / "build.log").read_text().splitlines() if "warning:" in line.lower()]
    assert not warnings, "\n".join(warnings)


@pytest.fixture
def portable_env(monkeypatch):
    for name in ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE", "CMSIS_NN_PORTABLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.skipif(not HAVE_GCC or shutil.which("make") is None, reason="gcc and make needed")
def test_cifar10_bit_exact_on_host(tmp_path, portable_env):
    model = write_cifar10_model(tmp_path)
    result = build_and_run(model, target="host", build_dir=tmp_path / "host")
    assert_all_pass(result, tmp_path / "host")


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc, qemu-system-arm and make needed")
def test_cifar10_bit_exact_on_qemu(tmp_path, portable_env):
    model = write_cifar10_model(tmp_path)
    result = build_and_run(model, target="qemu", build_dir=tmp_path / "qemu")
    assert_all_pass(result, tmp_path / "qemu")


@pytest.mark.qemu
@pytest.mark.skipif(not (HAVE_QEMU and UPSTREAM_NN), reason="opt-in: set CMSIS_NN_PATH & co. (upstream CMSIS-NN)")
def test_cifar10_bit_exact_on_qemu_with_upstream(tmp_path):
    model = write_cifar10_model(tmp_path)
    result = build_and_run(model, target="qemu", build_dir=tmp_path / "qemu_upstream", cmsis_nn_path=Path(UPSTREAM_NN),
                           cmsis_core_path=Path(UPSTREAM_CORE) if UPSTREAM_CORE else None,
                           cmsis_dsp_include=Path(UPSTREAM_DSP) if UPSTREAM_DSP else None)
    assert_all_pass(result, tmp_path / "qemu_upstream")
