"""The bundled CIFAR-10 example, trained in Caffe: every file flavour compiles to the same
program, and the quantized network keeps the float accuracy on the CIFAR-10 test set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmsisgen.dataset import load_dataset
from cmsisgen.evaluate import evaluate
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.program import run_program

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
PREPROCESSING = dict(mean="125.3,123.0,113.9", scale=0.015625)

needs_model = pytest.mark.skipif(not (EXAMPLE / "cifar10.caffemodel").exists(),
                                 reason="examples/cifar10/cifar10.caffemodel is not there")
needs_cifar = pytest.mark.skipif(not (CIFAR / "test.zip").exists(),
                                 reason="CIFAR-10 images not found at ../shared/data/cifar10")


def _calibration_images() -> np.ndarray:
    if (CIFAR / "train.zip").exists():
        return load_dataset(CIFAR / "train.zip", limit=500).x
    return np.random.default_rng(0).integers(0, 256, size=(200, 32, 32, 3), dtype=np.uint8)


@needs_model
def test_v1_prototxt_and_hdf5_weights_give_the_same_program():
    calib = _calibration_images()
    variants = [("cifar10.prototxt", "cifar10.caffemodel"), ("cifar10_v1.prototxt", "cifar10.caffemodel")]
    if (EXAMPLE / "cifar10.caffemodel.h5").exists():
        variants.append(("cifar10.prototxt", "cifar10.caffemodel.h5"))
    compiled = [compile_model(EXAMPLE / p, EXAMPLE / w, calib_images=calib, **PREPROCESSING) for p, w in variants]
    reference = compiled[0].program
    images = calib[:50]
    expected = run_program(reference, images)
    for other in compiled[1:]:
        assert [op.function for op in other.program.ops] == [op.function for op in reference.ops]
        for a, b in zip(other.program.ops, reference.ops):
            assert a.args == b.args and a.formats == b.formats
            if b.weight_data is not None:
                np.testing.assert_array_equal(a.weight_data, b.weight_data)
        np.testing.assert_array_equal(run_program(other.program, images), expected)


@needs_model
def test_example_maps_to_the_cmsis_nn_demo_kernels():
    compiled = compile_model(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel",
                             calib_images=_calibration_images(), **PREPROCESSING)
    functions = [op.function for op in compiled.program.ops]
    assert functions == ["nn_input_q7", "arm_convolve_HWC_q7_RGB", "arm_relu_q7", "arm_maxpool_q7_HWC",
                         "arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_avepool_q7_HWC",
                         "arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_avepool_q7_HWC",
                         "arm_fully_connected_q7_opt", "arm_softmax_q7"]
    shifts = [(op.formats["bias_lshift"], op.formats["out_rshift"]) for op in compiled.program.ops
              if "out_rshift" in op.formats]
    assert all(b >= 0 and o >= 0 for b, o in shifts)
    # Inputs (pixel - mean) / 64 lie within about +-2.2: Q2.5.
    assert compiled.program.ops[0].formats["out_frac"] == 5


@needs_model
@needs_cifar
@pytest.mark.data
def test_q7_top1_within_one_point_of_float_on_the_test_set():
    compiled = compile_model(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel",
                             calib_images=load_dataset(CIFAR / "train.zip", limit=2000).x, **PREPROCESSING)
    result = evaluate(compiled, load_dataset(CIFAR / "test.zip"))
    assert result["n"] == 10000
    assert result["float_top1"] > 0.70
    assert abs(result["float_top1"] - result["q7_top1"]) <= 0.01, result
    assert result["agreement"] > 0.90, result
