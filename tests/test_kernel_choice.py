"""A kernel chosen per layer (compile --kernel LAYER=FUNCTION) and the generated list of rules."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model
from cmsisgen.cli import main
from cmsisgen.errors import CmsisgenError
from cmsisgen.ops.catalogue import supported_operators_markdown
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator.execute import run_program

REPO = Path(__file__).resolve().parents[1]
LAYERS = [layer("a", "Convolution", num_output=4, kernel_size=1),
          layer("c", "Convolution", num_output=6, kernel_size=3, pad=1),
          layer("dw", "Convolution", num_output=6, group=6, kernel_size=3, pad=1),
          layer("ip", "InnerProduct", num_output=5)]
CALIB = np.random.default_rng(3).integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path, LAYERS, input_shape=(3, 8, 8))


def functions(compiled) -> dict[str, str]:
    return {op.layer: op.function for op in compiled.program.ops if op.kind != "copy"}


@pytest.mark.parametrize("kernels, expected", [
    ({}, {"c": "arm_convolve_HWC_q7_fast", "dw": "arm_depthwise_separable_conv_HWC_q7_nonsquare",
          "ip": "arm_fully_connected_q7_opt"}),
    ({"c": "arm_convolve_HWC_q7_basic_nonsquare"}, {"c": "arm_convolve_HWC_q7_basic_nonsquare"}),
    ({"c": "arm_convolve_HWC_q7_basic"}, {"c": "arm_convolve_HWC_q7_basic"}),
    ({"c": "arm_convolve_HWC_q7_fast_nonsquare"}, {"c": "arm_convolve_HWC_q7_fast_nonsquare"}),
    ({"dw": "arm_depthwise_separable_conv_HWC_q7"}, {"dw": "arm_depthwise_separable_conv_HWC_q7"}),
    ({"dw": "per-group dense convolution"}, {"dw": "arm_convolve_HWC_q7_basic_nonsquare"}),
    ({"dw": "arm_convolve_HWC_q7_basic"}, {"dw": "arm_convolve_HWC_q7_basic"}),  # the per-group calls' function
    ({"ip": "arm_fully_connected_q7"}, {"ip": "arm_fully_connected_q7"}),
])
def test_forced_kernel_is_used_and_computes_the_same_layer(model, kernels, expected):
    """A forced function runs the layer; every variant gives the same outputs (same quantization)."""
    default = compile_model(*model, calib_images=CALIB)
    forced = compile_model(*model, calib_images=CALIB, kernels=kernels)
    got = functions(forced)
    assert {name: got[name] for name in expected} == expected
    assert {name: f for name, f in got.items() if name not in kernels} == \
        {name: f for name, f in functions(default).items() if name not in kernels}
    assert np.array_equal(run_program(forced.program, CALIB), run_program(default.program, CALIB))


@pytest.mark.parametrize("kernels, message", [
    ({"a": "arm_convolve_HWC_q7_fast"},
     "layer 'a' (Convolution): arm_convolve_HWC_q7_fast cannot run it: The _fast convolutions read input channels "
     "four at a time: input channels must be a multiple of 4 (3 input channels)."),
    ({"a": "arm_relu_q7"},
     "layer 'a' (Convolution): kernel arm_relu_q7 is not a function for this layer (candidates: "
     "arm_convolve_1x1_HWC_q7_fast_nonsquare, arm_convolve_HWC_q7_RGB, arm_convolve_HWC_q7_fast, "
     "arm_convolve_HWC_q7_fast_nonsquare, arm_convolve_HWC_q7_basic_nonsquare, arm_convolve_HWC_q7_basic, "
     "nn_conv_q7, arm_depthwise_separable_conv_HWC_q7_nonsquare, per-group dense convolution, "
     "arm_depthwise_separable_conv_HWC_q7)"),
    ({"c": "arm_depthwise_separable_conv_HWC_q7_nonsquare"},
     "layer 'c' (Convolution): kernel arm_depthwise_separable_conv_HWC_q7_nonsquare is not a function for this "
     "layer (candidates: arm_convolve_1x1_HWC_q7_fast_nonsquare, arm_convolve_HWC_q7_RGB, arm_convolve_HWC_q7_fast, "
     "arm_convolve_HWC_q7_fast_nonsquare, arm_convolve_HWC_q7_basic_nonsquare, arm_convolve_HWC_q7_basic, nn_conv_q7)"),
    ({"nope": "arm_relu_q7"}, "kernel nope=arm_relu_q7: the network has no layer 'nope'"),
])
def test_unfit_forced_kernel_is_refused_naming_layer_function_and_rule(model, kernels, message):
    with pytest.raises(CmsisgenError) as info:
        compile_model(*model, calib_images=CALIB, kernels=kernels)
    assert str(info.value) == f"{model[0]}: {message}"


def test_a_plain_relu_forced_onto_the_prelu_kernel(tmp_path):
    """nn_prelu_q7 runs a ReLU too (slope 0): forced, it gives the arm_relu_q7 outputs."""
    model = write_model(tmp_path, [layer("c", "Convolution", num_output=4, kernel_size=1),
                                   layer("r", "ReLU", inplace=True)], input_shape=(3, 8, 8))
    default = compile_model(*model, calib_images=CALIB)
    forced = compile_model(*model, calib_images=CALIB, kernels={"r": "nn_prelu_q7"})
    assert functions(forced)["r"] == "nn_prelu_q7" and functions(default)["r"] == "arm_relu_q7"
    assert np.array_equal(run_program(forced.program, CALIB), run_program(default.program, CALIB))


def test_kernel_option_on_the_command_line(model, tmp_path):
    proto, weights = model
    runner = CliRunner()
    ok = runner.invoke(main, ["-q", "compile", str(proto), str(weights), "-o", str(tmp_path / "o"),
                              "--kernel", "c=arm_convolve_HWC_q7_basic", "--kernel", "ip=arm_fully_connected_q7"])
    assert ok.exit_code == 0, ok.output
    nn_c = (tmp_path / "o" / "nn.c").read_text()
    assert "arm_convolve_HWC_q7_basic(" in nn_c and "arm_fully_connected_q7(" in nn_c
    for args, line in [
        (["--kernel", "c"], "cmsisgen: error: --kernel 'c': expected LAYER=FUNCTION, such as "
                            "conv1=arm_convolve_HWC_q7_basic_nonsquare"),
        (["--kernel", "c=arm_convolve_HWC_q7_basic", "--kernel", "c=arm_convolve_HWC_q7_fast"],
         "cmsisgen: error: --kernel c=arm_convolve_HWC_q7_fast: layer 'c' is already given arm_convolve_HWC_q7_basic"),
        (["--kernel", "a=arm_convolve_HWC_q7_fast"],
         f"cmsisgen: error: {proto}: layer 'a' (Convolution): arm_convolve_HWC_q7_fast cannot run it: The _fast "
         "convolutions read input channels four at a time: input channels must be a multiple of 4 (3 input channels)."),
    ]:
        bad = runner.invoke(main, ["compile", str(proto), str(weights), "-o", str(tmp_path / "bad"), *args])
        assert (bad.exit_code, bad.output.strip()) == (2, line)
        assert not (tmp_path / "bad").exists()


def test_supported_operators_doc_is_generated_from_the_rules():
    """docs/supported-operators.md is exactly what `python -m cmsisgen.ops.catalogue` prints."""
    assert (REPO / "docs" / "supported-operators.md").read_text() == supported_operators_markdown()
