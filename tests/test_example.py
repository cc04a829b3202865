"""The bundled CIFAR-10 example: the committed model is the network of the CMSIS-NN CIFAR-10
guide, every deploy file flavour compiles to the same program (the train/test net to the same
program without the final Softmax, as the example's README says), and float and q7 accuracy
are what examples/cifar10/README.md says (nothing is trained here)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cmsisgen import ir
from cmsisgen.dataset import load_dataset
from cmsisgen.evaluate import evaluate
from cmsisgen.loader import load_net
from cmsisgen.pipeline import compile_model
from cmsisgen.shapes import infer_shapes
from cmsisgen.simulator.execute import run_program

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
PREPROCESSING = dict(mean=str(EXAMPLE / "mean.binaryproto"), scale=0.015625)
# The example's own images (examples/cifar10/make_images.py): the first 2,000 training images
# (what the default --calib-limit 2000 takes from the full train.zip) and the first 1,000 test
# images (the README's subset), both in round-robin class order.
CALIB = EXAMPLE / "images" / "train-2000.zip"
SUBSET = EXAMPLE / "images" / "test-1000.zip"

needs_cifar = pytest.mark.skipif(not (CIFAR / "test.zip").exists(),
                                 reason="CIFAR-10 images not found at ../shared/data/cifar10")


def _calibration_images() -> np.ndarray:
    return load_dataset(CALIB).x


def _compile(prototxt: str = "cifar10.prototxt", weights: str = "cifar10.caffemodel", calib=None):
    return compile_model(EXAMPLE / prototxt, EXAMPLE / weights,
                         calib_images=_calibration_images() if calib is None else calib, **PREPROCESSING)


def _readme_figures() -> dict[str, tuple[float, float]]:
    """Rows of the README's results table: name -> (full test set %, subset %)."""
    rows = {}
    for line in (EXAMPLE / "README.md").read_text().splitlines():
        m = re.match(r"\| (float|q7|float/q7 agreement)( \(cmsisgen[^|]*\))? \| ([\d.]+) % \| ([\d.]+) % \|", line)
        if m and (m.group(2) or m.group(1) == "float/q7 agreement"):
            rows[m.group(1)] = (float(m.group(3)), float(m.group(4)))
    assert set(rows) == {"float", "q7", "float/q7 agreement"}, rows
    return rows


def test_committed_model_is_the_cmsis_nn_guide_network():
    net = load_net(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel")
    infer_shapes(net)
    conv = lambda n: ir.ConvParams(num_output=n, kernel_h=5, kernel_w=5, pad_h=2, pad_w=2)  # noqa: E731
    pool = lambda m: ir.PoolParams(method=m, kernel_h=3, kernel_w=3, stride_h=2, stride_w=2)  # noqa: E731
    expected = [
        ("conv1", "Convolution", conv(32), (32, 32, 32), [(32, 3, 5, 5), (32,)]),
        ("pool1", "Pooling", pool("max"), (32, 16, 16), []),
        ("relu1", "ReLU", ir.NoParams(), (32, 16, 16), []),
        ("conv2", "Convolution", conv(32), (32, 16, 16), [(32, 32, 5, 5), (32,)]),
        ("relu2", "ReLU", ir.NoParams(), (32, 16, 16), []),
        ("pool2", "Pooling", pool("ave"), (32, 8, 8), []),
        ("conv3", "Convolution", conv(64), (64, 8, 8), [(64, 32, 5, 5), (64,)]),
        ("relu3", "ReLU", ir.NoParams(), (64, 8, 8), []),
        ("pool3", "Pooling", pool("ave"), (64, 4, 4), []),
        ("ip1", "InnerProduct", ir.InnerProductParams(num_output=10), (10, 1, 1), [(10, 1024), (10,)]),
        ("prob", "Softmax", ir.NoParams(), (10, 1, 1), []),
    ]
    assert net.input_shapes == {"data": (3, 32, 32)}
    got = [(l.name, l.type, l.params, net.shapes[l.tops[0]], [b.shape for b in l.blobs]) for l in net.layers]
    assert got == expected
    assert all(np.isfinite(b).all() for l in net.layers for b in l.blobs)


def test_mean_file_is_a_per_pixel_rgb_mean_image():
    from cmsisgen.loader.mean import read_mean_binaryproto

    mean = read_mean_binaryproto(EXAMPLE / "mean.binaryproto")
    assert mean.shape == (3, 32, 32)
    # CIFAR-10's channel means are about R 125, G 123, B 114.
    np.testing.assert_allclose(mean.mean(axis=(1, 2)), [125.3, 123.0, 113.9], atol=1.0)


def test_v1_prototxt_train_test_net_and_hdf5_weights_give_the_same_program():
    calib = _calibration_images()[:500]
    reference = _compile(calib=calib).program
    others = [_compile("cifar10_v1.prototxt", calib=calib).program,
              _compile(weights="cifar10.caffemodel.h5", calib=calib).program]
    images = calib[:50]
    expected = run_program(reference, images)
    for other in others:
        assert [op.function for op in other.ops] == [op.function for op in reference.ops]
        for a, b in zip(other.ops, reference.ops):
            assert a.args == b.args and a.formats == b.formats
            if b.weight_data is not None:
                np.testing.assert_array_equal(a.weight_data, b.weight_data)
        np.testing.assert_array_equal(run_program(other, images), expected)


def test_train_test_net_is_the_deploy_program_without_its_softmax():
    """What the example's README says: the same steps, arguments, formats and weights up
    to ip1, no softmax step, so the outputs are ip1's scores, with the same top-1."""
    calib = _calibration_images()[:500]
    deploy = _compile(calib=calib)
    train_test = compile_model(EXAMPLE / "cifar10_train_test.prototxt", EXAMPLE / "cifar10.caffemodel",
                               calib_images=calib, input_shape=(3, 32, 32))
    ops, reference = train_test.program.ops, deploy.program.ops
    assert [op.function for op in reference[len(ops):]] == ["arm_softmax_q7"]
    for a, b in zip(ops, reference):
        assert (a.function, a.args, a.formats) == (b.function, b.args, b.formats)
        if b.weight_data is not None:
            np.testing.assert_array_equal(a.weight_data, b.weight_data)
    images = calib[:200]
    scores = run_program(train_test.program, train_test.pre.prepare_images(images, 32, 32))
    probs = run_program(deploy.program, deploy.pre.prepare_images(images, 32, 32))
    assert not np.array_equal(scores, probs)  # ip1's Q format, not the softmax's Q0.7
    np.testing.assert_array_equal(scores.reshape(len(images), -1).argmax(1), probs.reshape(len(images), -1).argmax(1))
    readme = " ".join((EXAMPLE / "README.md").read_text().split())
    assert "The train/test net compiles to the same program up to `ip1`" in readme
    assert "It has no `prob` step" in readme


def test_train_test_prototxt_carries_the_example_preprocessing():
    tnet = load_net(EXAMPLE / "cifar10_train_test.prototxt", input_shape=(3, 32, 32))
    assert tnet.transform.mean_file == "mean.binaryproto"
    assert tnet.transform.scale == 0.015625
    deploy = load_net(EXAMPLE / "cifar10.prototxt")
    assert [(l.name, l.type, l.params) for l in deploy.layers] == [
        (l.name, l.type, l.params) for l in tnet.layers] + [("prob", "Softmax", ir.NoParams())]


def test_example_maps_to_the_cmsis_nn_demo_kernels():
    compiled = _compile()
    functions = [op.function for op in compiled.program.ops]
    assert functions == ["nn_input_q7", "arm_convolve_HWC_q7_RGB", "arm_maxpool_q7_HWC", "arm_relu_q7",
                         "arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_avepool_q7_HWC",
                         "arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_avepool_q7_HWC",
                         "arm_fully_connected_q7_opt", "arm_softmax_q7"]
    shifts = [(op.formats["bias_lshift"], op.formats["out_rshift"]) for op in compiled.program.ops
              if "out_rshift" in op.formats]
    assert all(b >= 0 and o >= 0 for b, o in shifts)
    # (pixel - mean) / 64 lies within about +-2.2: Q2.5.
    assert compiled.program.ops[0].formats["out_frac"] == 5
    # Issue budget: at most 34 KB beside the caller's image buffer (README: 33,068 bytes).
    plan = compiled.plan
    assert (plan.arena_bytes, plan.scratch_bytes, plan.input_buffer_bytes) == (33068, 3200, 3073)
    assert plan.arena_bytes <= 34 * 1024


def test_subset_accuracy_is_the_readme_figure():
    """Float and q7 top-1 on the first 1,000 test images, exactly as the README reports them."""
    result = evaluate(_compile(), load_dataset(SUBSET))
    figures = _readme_figures()
    assert result["n"] == 1000
    assert round(result["float_top1"] * 100, 2) == figures["float"][1]
    assert round(result["q7_top1"] * 100, 2) == figures["q7"][1]
    assert round(result["agreement"] * 100, 2) == figures["float/q7 agreement"][1]


@needs_cifar
@pytest.mark.data
def test_full_test_set_reproduces_the_readme_and_the_issue_targets():
    result = evaluate(_compile(), load_dataset(CIFAR / "test.zip"))
    figures = _readme_figures()
    assert result["n"] == 10000
    assert round(result["float_top1"] * 100, 2) == figures["float"][0]
    assert round(result["q7_top1"] * 100, 2) == figures["q7"][0]
    assert round(result["agreement"] * 100, 2) == figures["float/q7 agreement"][0]
    assert result["float_top1"] >= 0.78
    assert result["float_top1"] - result["q7_top1"] <= 0.01
