"""The s8 backend end to end: --backend s8 compiles, quantizes to the TFLite int8 spec, and
its generated C (CMSIS-NN v7.0.0 API) is bit-exact with the simulator on the host and on
QEMU's Cortex-M7, with the portable s8 kernels and (opt-in, CMSIS_NN_PATH) upstream v7.0.0."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen.cli import main
from cmsisgen.pipeline import compile_model
from cmsisgen.calibration_bounds import calibrate_bounds
from cmsisgen.quantizer_s8 import SOFTMAX_OUTPUT
from cmsisgen.s8 import scratch
from cmsisgen.simulator.execute import run_program
from random_nets import CATALOGUE, write_random_net
from s8_harness import qemu_available, upstream_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
EXAMPLE_ARGS = [EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel", "--mean", EXAMPLE / "mean.binaryproto",
                "--scale", "0.015625", "--calib", EXAMPLE / "images" / "train-2000.zip", "--calib-limit", "100"]
#: Every catalogue net (tests/random_nets.py) compiles with --backend s8 and verifies bit-exact.
S8_CATALOGUE = tuple(sorted(CATALOGUE))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _verify(args, target: str, vectors: int = 3) -> str:
    result = run("verify", *args, "--backend", "s8", "--vectors", vectors, "--target", target)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{vectors}/{vectors} vectors bit-exact"
    assert "and the output checksum of each of" in result.stdout  # (of all K outputs, with several)
    return result.stdout


# --- bit-exact ----------------------------------------------------------------------------------
def test_example_host_portable_bit_exact(monkeypatch):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    _verify(EXAMPLE_ARGS, "host")


@pytest.mark.skipif(not qemu_available(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_example_qemu_portable_bit_exact(monkeypatch):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    out = _verify(EXAMPLE_ARGS, "qemu", vectors=2)
    assert "instructions per inference: " in out


@pytest.mark.skipif(upstream_path() is None or not qemu_available(),
                    reason="CMSIS_NN_PATH does not point at CMSIS-NN v4.1+ (or no QEMU)")
def test_example_qemu_upstream_bit_exact():
    out = _verify(EXAMPLE_ARGS, "qemu", vectors=2)
    assert "instructions per inference: " in out


def _catalogue_args(directory: Path, name: str) -> list:
    files = write_random_net(directory, name)
    args = [files.prototxt, files.weights, "--calib", files.calib]
    for key, value in files.spec.extra.items():
        args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [value])
    return args


@pytest.mark.parametrize("name", S8_CATALOGUE)
def test_catalogue_host_portable_bit_exact(tmp_path, monkeypatch, name):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    _verify(_catalogue_args(tmp_path, name), "host", vectors=4)


@pytest.mark.skipif(upstream_path() is None or not qemu_available(),
                    reason="CMSIS_NN_PATH does not point at CMSIS-NN v4.1+ (or no QEMU)")
@pytest.mark.parametrize("name", S8_CATALOGUE)
def test_catalogue_qemu_upstream_bit_exact(tmp_path, name):
    _verify(_catalogue_args(tmp_path, name), "qemu", vectors=2)


# --- the option and the q7 default ----------------------------------------------------------------
NET = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), L("relu1", "ReLU", inplace=True),
       L("pool1", "Pooling", pool="AVE", kernel_size=2, stride=2), L("ip1", "InnerProduct", num_output=5),
       L("prob", "Softmax")]


def test_q7_is_the_default_and_unchanged(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    a = run("-q", "compile", proto, weights, "-o", tmp_path / "a")
    b = run("-q", "compile", proto, weights, "-o", tmp_path / "b", "--backend", "q7")
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    for name in ("nn.c", "nn.h", "parameters.h", "weights.c", "weights.h"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert "arm_convolve_HWC_q7" in (tmp_path / "a" / "nn.c").read_text()


def test_s8_output_calls_the_s8_api(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    result = run("-q", "compile", proto, weights, "-o", tmp_path / "s8", "--backend", "s8")
    assert result.exit_code == 0, result.output
    nn_c = (tmp_path / "s8" / "nn.c").read_text()
    for call in ("arm_convolve_wrapper_s8(", "arm_avgpool_s8(", "arm_fully_connected_s8(", "arm_softmax_s8(",
                 "arm_convolve_wrapper_s8_get_buffer_size(", "arm_avgpool_s8_get_buffer_size("):
        assert call in nn_c
    assert "arm_relu" not in nn_c and "arm_maximum_s8" not in nn_c  # fused into the convolution's range
    assert "const int32_t CONV1_MULT[CONV1_CHANNELS] NN_WEIGHT_SECTION" in (tmp_path / "s8" / "weights.c").read_text()


# --- errors -----------------------------------------------------------------------------------------
def _expect_error(tmp_path, layers, message: str):
    proto, weights = write_model(tmp_path, layers)
    result = run("compile", proto, weights, "-o", tmp_path / "out", "--backend", "s8")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"cmsisgen: error: {proto}: {message}"]
    assert not (tmp_path / "out").exists()


def test_unsupported_kind_names_layer_type_and_backend():
    """Every kind of today's registry runs on s8; a kind added without an s8 lowering is refused
    before calibration, naming the layer, its type and the backend."""
    from cmsisgen import ir
    from cmsisgen.errors import CmsisgenError
    from cmsisgen.ops.base import LayerKind

    class NewKind(LayerKind):
        types = ("NewKind",)

    layer = ir.Layer(name="new1", type="NewKind", bottoms=["data"], tops=["new1"], params=ir.NoParams())
    with pytest.raises(CmsisgenError) as error:
        NewKind().check_s8(None, layer, "opt", None)  # type: ignore[arg-type]
    assert str(error.value) == "layer 'new1' (NewKind): not supported by the s8 backend yet"


def test_padded_average_pooling_divides_as_caffe():
    """Where a window reaches into the padding, nn_avgpool_caffe_s8 divides by Caffe's count
    (the window clipped to the padded image): a corner of a k3 p1 pool of all-ones covers 4
    pixels but Caffe divides by 9 -> 4/9 rounds to 0; the centre's 9/9 is 1."""
    from cmsisgen.s8.own_kernels import avgpool_caffe_s8

    x = np.full((1, 3, 3, 1), 9, dtype=np.int8)
    out = avgpool_caffe_s8(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), out_hw=(3, 3))
    assert out[0, :, :, 0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]


def test_softmax_not_at_the_output_refused(tmp_path):
    _expect_error(tmp_path, [L("ip1", "InnerProduct", num_output=4), L("prob", "Softmax"),
                             L("ip2", "InnerProduct", num_output=2)],
                  "layer 'prob' (Softmax): the s8 backend supports a Softmax only as a network output "
                  "(it writes scale 1/256)")


# --- quantization ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    directory = tmp_path_factory.mktemp("s8q")
    proto, weights = write_model(directory, NET)
    images = np.random.default_rng(3).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=images, backend="s8"), images


def test_ranges_keep_min_and_max(compiled):
    c, images = compiled
    ranges = calibrate_bounds(c.net, [c.pre.to_float(images)])
    lo, hi = ranges["conv1"]
    assert lo < 0 < hi  # the conv output before its ReLU goes negative


def test_tensor_quantizations_follow_the_int8_spec(compiled):
    c, _ = compiled
    q = c.quant.tensors
    assert q["prob"] == SOFTMAX_OUTPUT
    # the fused ReLU: conv1's output holds relu1's values, so zero is its lowest code
    relu_out = c.net.consumers("conv1")[0].tops[0]
    assert q["conv1"] == q[relu_out] and q["conv1"].zero_point == -128
    assert q["pool1"] == q[relu_out]  # pooling keeps its input's quantization
    conv = next(op for op in c.program.ops if op.layer == "conv1")
    assert conv.params["act"] == (-128, 127)
    assert conv.params["input_offset"] == -q["data"].zero_point
    assert conv.scratch_bytes == scratch.convolve_wrapper_s8((1, 8, 8, 3), (4, 3, 3, 3), (1, 8, 8, 4), pad=(1, 1))


def test_input_conversion_is_the_rounded_affine_map(compiled):
    c, images = compiled
    expected = c.quant.tensors["data"].quantize(c.pre.to_float(images).transpose(0, 2, 3, 1))
    got = c.program.ops[0].kernel.simulate(c.program.ops[0], [images])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_simulated_scores_follow_the_float_net(compiled):
    c, images = compiled
    from cmsisgen.float_forward import forward
    scores = run_program(c.program, images)
    probs = forward(c.net, c.pre.to_float(images), keep=["prob"])["prob"].reshape(len(images), -1)
    assert np.abs((scores.astype(np.float64) + 128) / 256 - probs).max() < 0.08


# --- C hygiene --------------------------------------------------------------------------------------
@pytest.mark.parametrize("compiler", (["gcc"], ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb"]))
def test_generated_c_is_warning_free(tmp_path, compiler):
    import shutil
    import subprocess

    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} not installed")
    proto, weights = write_model(tmp_path, NET)
    out = tmp_path / "s8"
    assert run("-q", "compile", proto, weights, "-o", out, "--backend", "s8").exit_code == 0
    include = ROOT / "firmware" / "cmsis_nn_s8_portable" / "Include"
    for source in ("nn.c", "weights.c"):
        subprocess.run([*compiler, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{out}", f"-I{include}",
                        "-c", str(out / source), "-o", str(tmp_path / "x.o")], check=True)


def test_run_nn_refuses_a_library_that_wants_more_scratch_than_planned(tmp_path):
    """The plan's scratch for conv1 edited below what arm_convolve_wrapper_s8_get_buffer_size
    returns: run_nn() fails with ARM_CMSIS_NN_ARG_ERROR (-1) before the call; as planned it runs."""
    import re
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    proto, weights = write_model(tmp_path, NET)
    out = tmp_path / "s8"
    assert run("-q", "compile", proto, weights, "-o", out, "--backend", "s8").exit_code == 0
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "nn.h"\nint main(void)\n{\n    static uint8_t image[NN_INPUT_BUFFER_SIZE];\n'
        '    int8_t scores[NN_OUTPUT_SIZE];\n    printf("%d\\n", (int)run_nn(image, scores));\n    return 0;\n}\n')
    portable = ROOT / "firmware" / "cmsis_nn_s8_portable"
    nn_c = (out / "nn.c").read_text()
    statuses = []
    for text in (nn_c, re.sub(r"(arm_convolve_wrapper_s8_get_buffer_size\([^;]*\)), \d+\);", r"\1, 1);", nn_c)):
        (out / "nn.c").write_text(text)
        program = tmp_path / "run"
        subprocess.run(["gcc", "-std=c99", f"-I{out}", f"-I{portable / 'Include'}", str(tmp_path / "main.c"),
                        str(out / "nn.c"), str(out / "weights.c"), *map(str, sorted((portable / "Source").glob("*.c"))),
                        "-o", str(program)], check=True)
        statuses.append(subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.strip())
    assert statuses == ["0", "-1"]


def test_kernel_option_refused_on_s8(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    result = run("compile", proto, weights, "-o", tmp_path / "out", "--backend", "s8",
                 "--kernel", "conv1=arm_convolve_HWC_q7_basic")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"cmsisgen: error: {proto}: layer 'conv1' (Convolution): kernel arm_convolve_HWC_q7_basic: --kernel is not "
        "supported by the s8 backend"]


@pytest.mark.parametrize("options, message", [
    (["--optimize"], "--optimize: not supported by the s8 backend (it searches power-of-two formats; s8 scales "
                     "come from each tensor's calibrated bounds)"),
    (["--fc", "plain"], "--fc plain: not supported by the s8 backend (arm_fully_connected_s8 is its one "
                        "inner-product kernel)"),
])
def test_q7_only_options_refused_on_s8(tmp_path, options, message):
    proto, weights = write_model(tmp_path, NET)
    result = run("compile", proto, weights, "-o", tmp_path / "out", "--backend", "s8", *options)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"cmsisgen: error: {message}"]
    assert not (tmp_path / "out").exists()


def test_evaluate_names_the_s8_figure(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(5)
    np.savez(data, x=rng.integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8), y=np.arange(6) % 5)
    result = run("-q", "evaluate", proto, weights, "--data", data, "--calib", data, "--backend", "s8", "--json")
    assert result.exit_code == 0, result.output
    import json
    assert list(json.loads(result.stdout)) == ["n", "float_top1", "s8_top1", "agreement"]


#: Nets that between them make every s8 call and own s8 kernel (the byte copies and several outputs too).
S8_HYGIENE = ("fast_pools_7x7", "branches_concat", "residual_sum", "eltwise_prod_max", "mobilenet_block",
              "prelu_leaky", "ave_remainder_padded", "argmax_whole", "batchnorm_scale", "lrn_across",
              "shufflenet_unit", "fcn_upsample_crop", "mobilenet_dw_fork", "face_onet_3heads", "fcn_deconv")


def _compiled_s8(tmp_path: Path, name: str) -> Path:
    args = _catalogue_args(tmp_path / "net", name)
    model = tmp_path / "model"
    result = run("-q", "compile", *args[:2], "-o", model, "--backend", "s8", "--test-vectors", 3, *args[2:])
    assert result.exit_code == 0, result.output
    return model


@pytest.mark.parametrize("name", S8_HYGIENE)
def test_sanitized_werror_host_run_is_clean(tmp_path, monkeypatch, name):
    import re
    import shutil
    import subprocess

    from cmsisgen.verify import build, firmware_dir, parse_output

    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("host gcc and make needed")
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    program = build(_compiled_s8(tmp_path, name), "host", tmp_path / "asan",
                    portable_path=firmware_dir() / "cmsis_nn_s8_portable",
                    extra_make_vars={"SANITIZE": "1", "EXTRA_CFLAGS": "-Werror"})
    assert "warning:" not in (tmp_path / "asan" / "build.log").read_text().lower()
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    proc = subprocess.run([str(program)], capture_output=True, text=True, timeout=300, env=env)
    assert not re.findall(r"(?m)^.*(?:runtime error|AddressSanitizer|UndefinedBehaviorSanitizer).*$", proc.stderr)
    result = parse_output(proc.stdout)
    assert proc.returncode == 0 and result.total == result.passed == 3, proc.stdout + proc.stderr


SATURATING = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), L("sig1", "Sigmoid"),
              L("ip1", "InnerProduct", num_output=5), L("tanh1", "TanH")]


def test_a_sigmoid_or_tanh_input_stops_where_its_output_saturates(tmp_path):
    """Values beyond where the function's output reaches its end code need no codes: the
    input's range stops there, and every clipped value still gives the output code it would."""
    from cmsisgen.float_forward import forward
    proto, weights = write_model(tmp_path, SATURATING)
    images = np.random.default_rng(5).integers(0, 256, size=(16, 8, 8, 3), dtype=np.uint8)
    c = compile_model(proto, weights, calib_images=images, backend="s8")
    x = c.pre.to_float(images)
    floats = forward(c.net, x, keep=["conv1", "ip1"])
    q = c.quant.tensors
    lo, hi = calibrate_bounds(c.net, [x])["conv1"]
    assert lo < q["conv1"].dequantize(-128) and q["conv1"].dequantize(127) < hi  # narrowed on both sides
    for tensor, layer, function in (("conv1", "sig1", lambda v: 1 / (1 + np.exp(-v))), ("ip1", "tanh1", np.tanh)):
        q_in, q_out = q[tensor], q[layer]
        table = next(op for op in c.program.ops if op.layer == layer).params["tables"][0]
        v = floats[tensor].ravel().astype(np.float64)
        clipped = (v < q_in.dequantize(-128)) | (v > q_in.dequantize(127))
        codes = table[q_in.quantize(v[clipped]).astype(int) + 128]
        np.testing.assert_array_equal(codes, q_out.quantize(function(v[clipped])))
    assert (table[0], table[-1]) == (-128, 127)  # the TanH's end codes are still reached
