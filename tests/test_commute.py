"""A ReLU before a max pool runs after it, and a ReLU of values that cannot be negative is
dropped (cmsisgen/mapper/commute.py, issue 14 item 1): the outputs do not change by a bit. Every catalogue net where the
rewrite applies is simulated with and without it; the generated C of those nets is checked
against the (rewritten) simulator by tests/test_generated_qemu.py as for every catalogue net.
"""
from __future__ import annotations

import numpy as np
import pytest

import cmsisgen.pipeline as pipeline
from caffe_models import layer, write_model
from random_nets import CATALOGUE, write_random_net
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.execute import run_program

#: Catalogue nets with a plain ReLU whose only reader is a max pool (the ReLUs that move).
REWRITTEN = {"batchnorm_scale": ["relu1"], "branches_concat": ["relu1"], "fast_pools_7x7": ["relu2"],
             "rgb_ceilpool_fcplain": ["relu1"]}


def compile_both(monkeypatch, compile_args):
    """(rewritten, as in Caffe's order) compiles of the same model and calibration."""
    rewritten = compile_model(*compile_args[0], **compile_args[1])
    with monkeypatch.context() as m:
        m.setattr(pipeline, "relu_after_max_pool", lambda program: [])
        m.setattr(pipeline, "drop_idle_relus", lambda program: [])
        plain = compile_model(*compile_args[0], **compile_args[1])
    return rewritten, plain


def images_for(compiled, count=40, seed=0):
    c, h, w = compiled.program.input_shape
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, h, w, 3), dtype=np.uint8)
    images[0], images[1] = 0, 255
    return compiled.pre.prepare_images(images, h, w)


def assert_same_outputs(rewritten, plain):
    images = images_for(plain)
    np.testing.assert_array_equal(run_program(rewritten.program, images), run_program(plain.program, images))
    # every tensor both programs hold keeps its format
    for name, info in plain.program.tensors.items():
        if name in rewritten.program.tensors:
            assert rewritten.program.tensors[name].frac == info.frac, name


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_outputs_do_not_change(tmp_path, monkeypatch, name):
    files = write_random_net(tmp_path, name, seed=sum(map(ord, name)) % 97)
    kwargs = dict(calib_images=np.load(files.calib)["x"], fc_variant=files.spec.fc_variant, **files.spec.extra)
    rewritten, plain = compile_both(monkeypatch, ((files.prototxt, files.weights), kwargs))
    moved = [note.split()[0] for note in rewritten.rewrites if " runs after " in note]
    if name in REWRITTEN:
        assert moved == REWRITTEN[name]
    assert_same_outputs(rewritten, plain)
    relus = {op.layer: op for op in rewritten.program.ops if op.layer in moved}
    order = [op.layer for op in rewritten.program.ops]
    for relu_name, relu in relus.items():
        before = next(op for op in plain.program.ops if op.layer == relu_name)
        assert relu.args["size"] < before.args["size"]
        pool = next(op for op in rewritten.program.ops if op.output == relu.inputs[0])
        assert pool.function in ("arm_maxpool_q7_HWC", "nn_global_pool_q7", "nn_pool_q7")
        assert order.index(pool.layer) < order.index(relu_name)


def relu_pool_net(tmp_path, extra_layers=(), relu=None, pool="MAX"):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              relu or layer("relu1", "ReLU", inplace=True),
              layer("pool1", "Pooling", pool=pool, kernel_size=2, stride=2), *extra_layers]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(1).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    return (proto, weights), dict(calib_images=calib)


def test_relu_moves_after_the_max_pool_and_reads_a_quarter(tmp_path, monkeypatch):
    args = relu_pool_net(tmp_path, [layer("ip1", "InnerProduct", num_output=3)])
    rewritten, plain = compile_both(monkeypatch, args)
    assert [op.layer for op in plain.program.ops] == ["data", "conv1", "relu1", "pool1", "ip1"]
    assert [op.layer for op in rewritten.program.ops] == ["data", "conv1", "pool1", "relu1", "ip1"]
    pool, relu = rewritten.program.ops[2:4]
    assert (pool.inputs, pool.output) == (["conv1"], "pool1@before_relu1")
    assert (relu.inputs, relu.output, relu.args) == (["pool1@before_relu1"], "pool1", {"size": 4 * 4 * 4})
    assert rewritten.program.ops[4].inputs == ["pool1"] and "conv1@1" not in rewritten.program.tensors
    assert rewritten.rewrites == ["relu1 runs after pool1 (max pooling and ReLU commute; the ReLU reads 64 "
                                  "values instead of 256)"]
    assert_same_outputs(rewritten, plain)


def test_the_pool_may_be_the_network_output(tmp_path, monkeypatch):
    rewritten, plain = compile_both(monkeypatch, relu_pool_net(tmp_path))
    assert [op.layer for op in rewritten.program.ops] == ["data", "conv1", "pool1", "relu1"]
    assert rewritten.program.output == plain.program.output == "pool1" == rewritten.program.ops[-1].output
    assert_same_outputs(rewritten, plain)


@pytest.mark.parametrize("why, extra, relu, pool", [
    ("an average pool does not commute with ReLU", [], None, "AVE"),
    ("a leaky ReLU is not arm_relu_q7", [], layer("relu1", "ReLU", inplace=True, negative_slope=0.1), "MAX"),
    ("the ReLU's output has another reader", [layer("ip1", "InnerProduct", "conv1", num_output=3),
                                               layer("cat", "Concat", ["pool1", "ip1"], axis=1)], None, "MAX"),
])
def test_no_move(tmp_path, monkeypatch, why, extra, relu, pool):
    if "another reader" in why:
        extra = [layer("ip2", "InnerProduct", "conv1", "ip2", num_output=3),
                 layer("ip3", "InnerProduct", "pool1", "ip3", num_output=3),
                 layer("sum", "Eltwise", ["ip2", "ip3"], "sum")]
    rewritten, plain = compile_both(monkeypatch, relu_pool_net(tmp_path, extra, relu, pool))
    assert rewritten.rewrites == [], why
    assert [op.layer for op in rewritten.program.ops] == [op.layer for op in plain.program.ops]


@pytest.mark.parametrize("middle, dropped", [
    # relu1 moves after pool1; relu2 then reads relu1's output
    ([layer("relu1", "ReLU", inplace=True), layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
      layer("relu2", "ReLU", inplace=True)], ["relu2"]),
    # twice in a row, and after an average pool of ReLU'd values
    ([layer("relu1", "ReLU", inplace=True), layer("relu2", "ReLU", inplace=True),
      layer("pool1", "Pooling", pool="AVE", kernel_size=2, stride=2), layer("relu3", "ReLU", inplace=True)],
     ["relu2", "relu3"]),
    # an average pool of a convolution can be negative; a leaky ReLU is not the identity there
    ([layer("pool1", "Pooling", pool="AVE", kernel_size=2, stride=2), layer("relu1", "ReLU", inplace=True)], []),
    ([layer("relu1", "ReLU", inplace=True), layer("leaky", "ReLU", inplace=True, negative_slope=0.1)], []),
])
def test_relu_of_non_negative_values_is_dropped(tmp_path, monkeypatch, middle, dropped):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), *middle,
              layer("ip1", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(1).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    rewritten, plain = compile_both(monkeypatch, ((proto, weights), dict(calib_images=calib)))
    assert [note.split()[0] for note in rewritten.rewrites if "dropped" in note] == dropped
    assert sorted(op.layer for op in rewritten.program.ops) == sorted(op.layer for op in plain.program.ops
                                                                      if op.layer not in dropped)
    assert_same_outputs(rewritten, plain)


def test_a_relu_that_is_the_network_output_stays(tmp_path, monkeypatch):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
              layer("relu1", "ReLU", inplace=True), layer("relu2", "ReLU", inplace=True)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(1).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    rewritten, plain = compile_both(monkeypatch, ((proto, weights), dict(calib_images=calib)))
    assert rewritten.rewrites == [] and rewritten.program.ops[-1].layer == "relu2"


@pytest.mark.parametrize("target, tool", [("host", "gcc"), ("qemu", "qemu-system-arm")])
def test_rewritten_program_is_bit_exact_in_c(tmp_path, monkeypatch, target, tool):
    """A net where both rewrites apply (relu1 after pool1, relu2 and relu3 dropped): the
    generated C matches the simulator step by step on the host and on the Cortex-M7, with the
    portable kernels (upstream's plain-C average pool on the host is not the DSP build the
    simulator models, so CMSIS_NN_PATH is not passed on)."""
    import shutil

    for name in ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE"):
        monkeypatch.delenv(name, raising=False)

    from cli_run import run

    if shutil.which(tool) is None or shutil.which("make") is None:
        pytest.skip(f"{tool} not installed")
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), layer("relu1", "ReLU", inplace=True),
              layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2), layer("relu2", "ReLU", inplace=True),
              layer("pool2", "Pooling", pool="AVE", kernel_size=2, stride=2), layer("relu3", "ReLU", inplace=True),
              layer("ip1", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    result = run("-v", "verify", proto, weights, "--vectors", "8", "--target", target, "--scale", "1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "8/8 vectors bit-exact"
    assert "relu1 runs after pool1" in result.stderr and "relu3 dropped" in result.stderr


def test_nn_c_says_which_relu_moved_or_was_dropped(tmp_path):
    """The generated code tells a reader comparing it with the prototxt why a ReLU is not where
    Caffe has it: a comment before the moved ReLU's step and before the step that reads a
    dropped ReLU's input."""
    from cli_run import run

    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), layer("relu1", "ReLU", inplace=True),
              layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2), layer("relu2", "ReLU", inplace=True),
              layer("pool2", "Pooling", pool="AVE", kernel_size=2, stride=2), layer("relu3", "ReLU", inplace=True),
              layer("ip1", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    assert run("-q", "compile", proto, weights, "-o", tmp_path / "out", "--scale", "1").exit_code == 0
    nn_c = (tmp_path / "out" / "nn.c").read_text()
    assert ("    /* relu1 runs after pool1, before it in the prototxt: max pooling and ReLU commute, and it reads "
            "64 values instead of 256 */\n    /* relu1 */\n    arm_relu_q7(") in nn_c
    comments = [line.strip() for line in nn_c.splitlines() if "dropped" in line]
    assert comments == ["/* relu2 (ReLU) dropped before this step: its input pool1 is never negative */",
                        "/* relu3 (ReLU) dropped before this step: its input pool2 is never negative */"]
    assert nn_c.index(comments[0]) < nn_c.index("/* pool2") < nn_c.index(comments[1]) < nn_c.index("/* ip1")


@pytest.mark.parametrize("layers, outputs, kept", [
    # relu2 is the second output, and idle (its input, a max pool of ReLU'd values, is never negative)
    ([layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), layer("relu1", "ReLU", inplace=True),
      layer("ip1", "InnerProduct", "conv1", "ip1", num_output=5),
      layer("pool1", "Pooling", "conv1", "pool1", pool="MAX", kernel_size=2, stride=2),
      layer("relu2", "ReLU", "pool1", "relu2")], None, "relu2"),
    # relu1 is the second of three outputs and read by a max pool alone
    ([layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
      layer("ip0", "InnerProduct", "conv1", "ip0", num_output=3), layer("relu1", "ReLU", "conv1", "relu1"),
      layer("pool1", "Pooling", "relu1", "pool1", pool="MAX", kernel_size=2, stride=2),
      layer("ip1", "InnerProduct", "pool1", "ip1", num_output=5)], "ip0,relu1,ip1", "relu1"),
])
def test_a_relu_that_is_any_of_several_outputs_stays(tmp_path, monkeypatch, layers, outputs, kept):
    """Not only the first output: a later output's ReLU, moved or dropped, lost its tensor (an
    internal error at compile time)."""
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(1).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    rewritten, plain = compile_both(monkeypatch, ((proto, weights), dict(calib_images=calib, output=outputs)))
    assert kept in [op.layer for op in rewritten.program.ops]
    assert kept in [out.blob for out in rewritten.program.outputs]
    assert_same_outputs(rewritten, plain)
