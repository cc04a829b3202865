"""--cpu cortex-m55: the s8 code planned for CMSIS-NN v7.0.0's Helium (MVE) build.

Exact scratch sizes per call (cmsisgen.s8.scratch's "mve" core), the inner products' kernel
sums in flash (arm_vector_sum_s8's values), arm_convolve_s8 for a one-row convolution whose
padding the MVE 1xN kernel refuses, the default unchanged, and one-line refusals of a --cpu
that contradicts verify's target. The runs on QEMU's Cortex-M55 are tests/test_qemu_m55.py.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen.cli import main
from cmsisgen.pipeline import compile_model
from cmsisgen.s8 import cpu, kernels, scratch
from cmsisgen.s8.kernel_sums import fc_kernel_sums

ROOT = Path(__file__).resolve().parents[1]
PORTABLE = ROOT / "firmware" / "cmsis_nn_s8_portable"
#: a 3x3 convolution, a 3x3 depthwise one, an average pool and an inner product on 3x8x8
NET = [L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1), L("relu1", "ReLU", inplace=True),
       L("dw1", "Convolution", num_output=6, kernel_size=3, pad=1, group=6),
       L("pool1", "Pooling", pool="AVE", kernel_size=2, stride=2), L("ip1", "InnerProduct", num_output=5),
       L("prob", "Softmax")]
#: on 1x1x16: a pointwise convolution to 4 channels, then a 1x3 one with stride 2 and padding 1
#: (Caffe's total padding 1, not TFLite's 2)
ROW_NET = [L("conv0", "Convolution", num_output=4, kernel_size=1),
           L("conv1", "Convolution", num_output=4, kernel_h=1, kernel_w=3, stride_h=1, stride_w=2, pad_h=0, pad_w=1),
           L("ip1", "InnerProduct", num_output=3)]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _compiled(tmp_path: Path, layers, cpu_name: str, shape=(3, 8, 8)):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    images = np.random.default_rng(3).integers(0, 256, (8, shape[1], shape[2], shape[0]), dtype=np.uint8)
    return compile_model(proto, weights, calib_images=images, backend="s8", cpu=cpu_name)


def _op(compiled, layer: str):
    return next(op for op in compiled.program.ops if op.layer == layer)


def test_scratch_is_the_mve_builds(tmp_path):
    m7, m55 = (_compiled(tmp_path / name, NET, name) for name in ("cortex-m7", "cortex-m55"))
    conv_dims = ((1, 8, 8, 3), (6, 3, 3, 3), (1, 8, 8, 6))
    dw_dims = ((1, 8, 8, 6), (1, 3, 3, 6), (1, 8, 8, 6))
    for compiled, core in ((m7, "dsp"), (m55, "mve")):
        assert _op(compiled, "conv1").scratch_bytes == scratch.convolve_wrapper_s8(*conv_dims, pad=(1, 1), core=core)
        assert _op(compiled, "dw1").scratch_bytes == scratch.depthwise_conv_wrapper_s8(*dw_dims, pad=(1, 1), core=core)
        assert _op(compiled, "pool1").scratch_bytes == scratch.avgpool_s8(4, 6, core)
    # the figures themselves: int8 im2col in 16-byte lanes; the 3x3 depthwise needs none on the
    # DSP build and 4 x 124 channels x 9 taps on MVE; the average pool sums in registers on MVE
    assert [_op(m7, name).scratch_bytes for name in ("conv1", "dw1", "pool1", "ip1")] == [112, 0, 24, 0]
    assert [_op(m55, name).scratch_bytes for name in ("conv1", "dw1", "pool1", "ip1")] == [128, 4464, 0, 0]


def test_kernel_sums_are_precomputed_into_flash(tmp_path):
    compiled = _compiled(tmp_path, NET, "cortex-m55")
    fc = _op(compiled, "ip1")
    sums = fc.params["kernel_sums"]
    offset = fc.params["input_offset"]
    expected = fc.bias.astype(np.int64) + offset * fc.weights.astype(np.int64).sum(axis=1)
    assert sums.dtype == np.int32 and np.array_equal(sums, expected.astype(np.int32))
    assert np.array_equal(sums, kernels.vector_sum_s8(fc.weights, lhs_offset=offset, bias=fc.bias))
    assert fc.scratch_bytes == 0  # flash, not the arena
    assert "kernel_sums" not in _op(_compiled(tmp_path / "m7", NET, "cortex-m7"), "ip1").params


def test_kernel_sums_wrap_as_int32():
    w = np.full((2, 300), 127, np.int8)
    bias = np.array([2**31 - 10, -2**31 + 10], np.int32)
    sums = fc_kernel_sums(w, bias, 128)
    exact = bias.astype(np.int64) + 128 * 300 * 127
    assert np.array_equal(sums, ((exact + 2**31) % 2**32 - 2**31).astype(np.int32))


def test_generated_code_hands_the_sums_to_the_library(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    for name in ("cortex-m7", "cortex-m55"):
        assert run("-q", "compile", proto, weights, "-o", tmp_path / name, "--backend", "s8", "--cpu", name).exit_code == 0
    m55_nn, m55_weights = ((tmp_path / "cortex-m55" / f).read_text() for f in ("nn.c", "weights.c"))
    assert "const cmsis_nn_context ctx = { (void *)IP1_KSUM, IP1_ROWS * (int32_t)sizeof(int32_t) };" in m55_nn
    assert "NN_CHECK_SCRATCH(arm_fully_connected_s8_get_buffer_size(&filter_dims), IP1_ROWS * (int32_t)sizeof(int32_t));" in m55_nn
    assert "const int32_t IP1_KSUM[IP1_ROWS] NN_WEIGHT_SECTION = {" in m55_weights
    assert "extern const int32_t IP1_KSUM[IP1_ROWS];" in (tmp_path / "cortex-m55" / "weights.h").read_text()
    assert "Cortex-M55" in m55_nn and "KSUM" not in (tmp_path / "cortex-m7" / "nn.c").read_text()


def test_default_is_the_cortex_m7(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    assert run("-q", "compile", proto, weights, "-o", tmp_path / "default", "--backend", "s8").exit_code == 0
    assert run("-q", "compile", proto, weights, "-o", tmp_path / "m7", "--backend", "s8", "--cpu", "cortex-m7").exit_code == 0
    for name in ("nn.c", "nn.h", "parameters.h", "weights.c", "weights.h"):
        assert (tmp_path / "default" / name).read_text() == (tmp_path / "m7" / name).read_text()


def test_one_row_convolution_calls_arm_convolve_s8_on_mve(tmp_path):
    assert cpu.mve_1xn_fails(in_w=16, kernel_w=3, stride_w=2, pad_w=1, out_w=8)
    assert not cpu.mve_1xn_fails(in_w=9, kernel_w=3, stride_w=2, pad_w=1, out_w=5)  # total 2: SAME's split
    m7, m55 = (_compiled(tmp_path / name, ROW_NET, name, shape=(1, 1, 16)) for name in ("cortex-m7", "cortex-m55"))
    assert _op(m7, "conv1").function == "arm_convolve_wrapper_s8"
    conv = _op(m55, "conv1")
    assert conv.function == "arm_convolve_s8"
    assert conv.scratch_bytes == scratch.convolve_s8((1, 1, 16, 4), (4, 1, 3, 4), "mve") == 64


@pytest.mark.parametrize("compiler", (["gcc"], ["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]))
def test_generated_c_is_warning_free(tmp_path, compiler):
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} not installed")
    for name, layers, shape in (("net", NET, (3, 8, 8)), ("row", ROW_NET, (1, 1, 16))):
        (tmp_path / name).mkdir()
        proto, weights = write_model(tmp_path / name, layers, input_shape=shape)
        out = tmp_path / name / "s8"
        assert run("-q", "compile", proto, weights, "-o", out, "--backend", "s8", "--cpu", "cortex-m55").exit_code == 0
        for source in ("nn.c", "weights.c"):
            subprocess.run([*compiler, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{out}",
                            f"-I{PORTABLE / 'Include'}", "-c", str(out / source), "-o", str(tmp_path / "x.o")],
                           check=True)


@pytest.mark.parametrize("options, message", [
    (["--target", "qemu-m55", "--cpu", "cortex-m7"],
     "--cpu cortex-m7: contradicts --target qemu-m55, which runs the code as on a cortex-m55 (give --cpu cortex-m55 "
     "or leave it out)"),
    (["--target", "qemu", "--cpu", "cortex-m55"],
     "--cpu cortex-m55: contradicts --target qemu, which runs the code as on a cortex-m7 (give --cpu cortex-m7 or "
     "leave it out)"),
    (["--cpu", "cortex-m55"],
     "--cpu cortex-m55: contradicts --target host, which runs the code as on a cortex-m7 (give --cpu cortex-m7 or "
     "leave it out)"),
])
def test_contradicting_cpu_refused_in_one_line(tmp_path, options, message):
    proto, weights = write_model(tmp_path, NET)
    result = run("verify", proto, weights, "--backend", "s8", *options)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"cmsisgen: error: {message}"]


def test_simulated_add_takes_the_cores_lanes(tmp_path):
    """arm_elementwise_add_s8: zero-extended 16-bit lanes on the DSP build, sign-extended on MVE
    (equal for the left shift of 20 cmsisgen emits, so the scores agree)."""
    layers = [L("conv1", "Convolution", num_output=4, kernel_size=1), L("conv2", "Convolution", num_output=4, kernel_size=1),
              L("sum", "Eltwise", bottom=["conv1", "conv2"], operation="SUM")]
    layers[1]["bottom"] = "data"
    adds = [_op(_compiled(tmp_path / name, layers, name), "sum") for name in ("cortex-m7", "cortex-m55")]
    assert [op.params["dsp_lanes"] for op in adds] == [True, False]
    assert all(op.params["rescale"].left_shift == 20 for op in adds)


@pytest.mark.parametrize("planned, built", (("cortex-m55", "cortex-m7"), ("cortex-m7", "cortex-m55")))
def test_nn_c_refuses_a_build_for_the_other_core(tmp_path, planned, built):
    """Helium's trap at compile time: nn.c planned for one CMSIS-NN build (DSP or MVE, as the
    library's ARM_MATH_MVEI says) stops with #error naming --cpu when compiled for the other;
    compiled for its own core it builds (test_generated_c_is_warning_free)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    proto, weights = write_model(tmp_path, NET)
    out = tmp_path / "out"
    assert run("-q", "compile", proto, weights, "-o", out, "--backend", "s8", "--cpu", planned).exit_code == 0
    proc = subprocess.run(["arm-none-eabi-gcc", f"-mcpu={built}", "-mthumb", "-mfloat-abi=hard", "-std=c99", f"-I{out}",
                           f"-I{PORTABLE / 'Include'}", "-c", str(out / "nn.c"), "-o", str(tmp_path / "x.o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    expected = {"cortex-m55": "nn.c is planned for CMSIS-NN's Helium (MVE) build (cmsisgen --cpu cortex-m55)",
                "cortex-m7": "nn.c is planned for CMSIS-NN's DSP build (cmsisgen --cpu cortex-m7) and this build has "
                             "Helium (MVE)"}[planned]
    assert "#error" in proc.stderr and expected in proc.stderr, proc.stderr
