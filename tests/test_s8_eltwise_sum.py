"""nn_eltwise_add_s8 (firmware/cmsisgen_kernels/nn_eltwise_add_s8.c), the s8 backend's Eltwise
SUM of more than two inputs (CMSIS-NN v7.0.0's arm_elementwise_add_s8 adds two).

Its model (cmsisgen.s8.own_kernels.eltwise_add_s8) is first checked against a scalar loop in
Python integers written from the kernel's definition, and, for two inputs, against the model
of arm_elementwise_add_s8's plain-C build it generalises; the C, built with host gcc plain and
with UBSan trapping, must then equal the model on random inputs and edge cases (every byte -128
or 127, offsets -128..128, zero, negative and extreme multipliers, 1 and 3..8 inputs). The
quantizer's headroom keeps the int32 sum from overflowing at the widest operands; a 3-input
SUM net (a negative and a zero coefficient) gets the multipliers TFLite's ADD preparation gives
for N and verifies bit-exact on the host (and, opt-in, on QEMU against upstream v7.0.0). (The
Cortex-M7 and upstream-header compiles of the file are in tests/test_own_kernels.py.)
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer as L
from caffe_models import write_model
from s8_harness import qemu_available, random_calib, upstream_path
from test_kernels import shared_library
from test_s8_pipeline import _expect_error, _verify
from cmsisgen.cli import main
from cmsisgen.pipeline import compile_model
from cmsisgen.s8 import kernels
from cmsisgen.s8.own_kernels import eltwise_add_s8
from cmsisgen.s8.quantization import (ADD_LEFT_SHIFT, INT32_MAX, add_params, quantize_multiplier, sum_headroom,
                                      sum_params)

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"
#: Offsets the kernel may get (the negated zero points, -127..128) and the byte ends.
OFFSETS = (-128, -127, 127, 128)


# ----------------------------------------------------------------------------- the model
def scalar_requantize(val: int, mult: int, shift: int) -> int:
    """arm_nn_requantize's default double rounding on Python integers."""
    val = wrap(val << max(shift, 0))
    high = wrap((val * mult + (1 << 30)) >> 31)
    right = max(-shift, 0)
    if right == 0:
        return high
    quotient, remainder = high >> right, high & ((1 << right) - 1)
    threshold = ((1 << right) - 1) // 2 + (1 if quotient < 0 else 0)
    return quotient + (1 if remainder > threshold else 0)


def wrap(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def reference(inputs, in_params, out_params) -> np.ndarray:
    """Element by element: the sum of each input's (x + offset) << 20 requantized, wrapped to
    int32, requantized onto the output, plus its offset, clamped."""
    out_off, out_mult, out_shift, lo, hi = out_params
    out = []
    for values in zip(*(np.asarray(x).reshape(-1).tolist() for x in inputs)):
        total = sum(scalar_requantize(wrap((x + off) << ADD_LEFT_SHIFT), m, s)
                    for x, (off, m, s) in zip(values, in_params))
        out.append(min(max(scalar_requantize(wrap(total), out_mult, out_shift) + out_off, lo), hi))
    return np.array(out, dtype=np.int8).reshape(np.shape(inputs[0]))


def random_params(rng, count: int):
    """Offsets and multipliers as the quantizer gives them for random signed scales (one zero
    among several)."""
    scales = rng.uniform(-0.2, 0.2, count)
    if count > 1:
        scales[rng.integers(count)] = 0.0
    p = sum_params([float(s) for s in scales], float(rng.uniform(0.1, 0.5)))
    in_params = [(int(rng.integers(-127, 129)), *m) for m in p.inputs]
    return in_params, (int(rng.integers(-128, 128)), *p.output, -128, 127)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_model_is_the_scalar_definition(count):
    rng = np.random.default_rng(count)
    inputs = [rng.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8) for _ in range(count)]
    in_params, out_params = random_params(rng, count)
    np.testing.assert_array_equal(eltwise_add_s8(inputs, in_params=in_params, out_params=out_params),
                                  reference(inputs, in_params, out_params))


def test_two_inputs_are_arm_elementwise_add_s8():
    """For two inputs the kernel computes what arm_elementwise_add_s8's plain-C build does."""
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = (rng.integers(-128, 128, (1, 97)).astype(np.int8) for _ in range(2))
        in_params, out_params = random_params(rng, 2)
        want = kernels.elementwise_add_s8(a, b, input_1=in_params[0], input_2=in_params[1], output=out_params[:3],
                                          act=out_params[3:], dsp=False)
        np.testing.assert_array_equal(eltwise_add_s8([a, b], in_params=in_params, out_params=out_params), want)


# ----------------------------------------------------------------------------- the quantizer
def test_two_inputs_keep_tflites_add_multipliers():
    """sum_params of two is add_params (TFLite's ADD: both onto twice the larger scale)."""
    for scales in [(0.05 * 0.5, 0.02 * -3, 0.07), (0.04, -0.04, 0.1), (0.0, -0.05, 0.03), (0.0, 0.0, 0.03)]:
        p, q = sum_params(scales[:2], scales[2]), add_params(*scales)
        assert (p.inputs, p.output, p.left_shift) == ((q.input_1, q.input_2), q.output, q.left_shift)
    assert add_params(0.1, 0.05, 0.2).input_1 == quantize_multiplier(0.5)


def test_headroom_is_the_smallest_power_of_two_that_bounds_the_sum():
    """H = 2 up to 16 inputs: N * (255 * 2**20 / H + 1) <= 2**31 - 1, and not with H / 2."""
    assert [sum_headroom(n) for n in (1, 2, 3, 8, 16, 17, 32, 33, 64, 65)] == [2, 2, 2, 2, 2, 4, 4, 8, 8, 16]
    for n in range(1, 70):
        h = sum_headroom(n)
        assert n * ((255 << 20) // h + 1) <= INT32_MAX
        assert h == 2 or n * ((255 << 20) // (h // 2) + 1) > INT32_MAX


@pytest.mark.parametrize("count", [2, 3, 8, 16, 17, 33])
def test_the_sum_cannot_overflow_at_the_widest_operands(count):
    """Every input at the largest |scale| (and just below it, where the multiplier rounds up
    to 1/H) and every operand at +-255: the exact sum of the requantized terms stays in int32."""
    for scales in ([0.3] * count, [0.3 * (1 - 1e-12)] * (count - 1) + [-0.3]):
        p = sum_params(scales, 10.0)
        for operand in (255, -255):
            signs = [1 if s > 0 else -1 for s in scales]
            terms = [int(kernels.requantize(np.int64(operand * sign << ADD_LEFT_SHIFT), m, s))
                     for sign, (m, s) in zip(signs, p.inputs)]
            assert abs(sum(terms)) <= INT32_MAX, (count, operand)
            assert all(abs(t) <= (255 << 20) // sum_headroom(count) + 1 for t in terms)


# ----------------------------------------------------------------------------- the C
@pytest.fixture(scope="module", params=["plain", "ubsan"])
def lib(request, tmp_path_factory):
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("eltwise_add_s8") / f"libsum_{request.param}.so"
    return shared_library(out, [OWN / "nn_eltwise_add_s8.c"], [OWN], flags)


def run_c(lib, inputs, in_params, out_params, in_place: bool = False) -> np.ndarray:
    data = [np.ascontiguousarray(x).reshape(-1).copy() for x in inputs]
    pointers = (ctypes.c_void_p * len(data))(*(x.ctypes.data for x in data))
    params = np.array(in_params, dtype=np.int32).reshape(-1)
    out_p = np.array(out_params, dtype=np.int32)
    out = data[-1] if in_place else np.full(data[0].size, 0x55, dtype=np.int8)
    lib.nn_eltwise_add_s8(pointers, ctypes.c_uint32(len(data)), params.ctypes.data_as(ctypes.c_void_p),
                          out_p.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint32(out.size),
                          out.ctypes.data_as(ctypes.c_void_p))
    return out.reshape(np.shape(inputs[0]))


def check(lib, inputs, in_params, out_params):
    want = eltwise_add_s8(inputs, in_params=in_params, out_params=out_params)
    np.testing.assert_array_equal(run_c(lib, inputs, in_params, out_params), want)
    np.testing.assert_array_equal(run_c(lib, inputs, in_params, out_params, in_place=True), want)


@pytest.mark.parametrize("count", [1, 3, 4, 5, 6, 7, 8])
def test_c_equals_the_model_on_random_inputs(lib, count):
    rng = np.random.default_rng(100 + count)
    for size in (1, 7, 64):
        inputs = [rng.integers(-128, 128, size).astype(np.int8) for _ in range(count)]
        in_params, out_params = random_params(rng, count)
        check(lib, inputs, in_params, out_params)
        check(lib, inputs, in_params, (out_params[0], *out_params[1:3], -20, 90))


#: (multiplier, shift) pairs at the ends: the largest magnitudes of both signs, int32's minimum,
#: zero, the deepest right shift, and left shifts the quantizer never emits (the sum then wraps).
EXTREME_MULTS = [(2**31 - 1, 0), (-(2**31 - 1), 0), (-2**31, -1), (0, 0), (2**30, -31), (2**31 - 1, 10),
                 (-(2**30), 3)]


@pytest.mark.parametrize("count", [3, 5, 8])
def test_c_equals_the_model_at_the_extremes(lib, count):
    rng = np.random.default_rng(200 + count)
    ends = [np.full(9, v, np.int8) for v in (-128, 127)]
    for offsets in ([OFFSETS[i % 4] for i in range(count)], [128] * count, [-128] * count):
        for inputs in ([ends[0]] * count, [ends[1]] * count, [ends[i % 2] for i in range(count)],
                       [rng.integers(-128, 128, 9).astype(np.int8) for _ in range(count)]):
            for k in range(len(EXTREME_MULTS)):
                in_params = [(offsets[i], *EXTREME_MULTS[(k + i) % len(EXTREME_MULTS)]) for i in range(count)]
                for out_mult in EXTREME_MULTS:
                    check(lib, inputs, in_params, (int(rng.integers(-128, 128)), *out_mult, -128, 127))


# ----------------------------------------------------------------------------- the pipeline
SUM3 = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        L("conv2", "Convolution", "conv1", "conv2", num_output=4, kernel_size=3, pad=1),
        L("conv3", "Convolution", "conv1", "conv3", num_output=4, kernel_size=1),
        L("sum3", "Eltwise", ["conv1", "conv2", "conv3"], "sum3", coeff=[0.5, -2, 0]),
        L("relu3", "ReLU", "sum3", "sum3"),
        L("sum4", "Eltwise", ["sum3", "conv2", "conv3", "conv1"], "sum4"),
        L("ip1", "InnerProduct", "sum4", "ip1", num_output=5)]


def _sum3_args(directory: Path) -> list:
    return [*write_model(directory, SUM3), "--calib", random_calib(directory, seed=11)]


def test_three_inputs_get_the_multipliers_of_tflites_add_for_n(tmp_path):
    """Each input onto twice the largest |coefficient * scale|, its coefficient's sign kept (-2:
    a negated multiplier; 0: multiplier 0), the output from 2 * max * 2**-20 / s_out; sum4's
    four inputs the same way with coefficients 1."""
    args = _sum3_args(tmp_path)
    c = compile_model(args[0], args[1], calib_images=np.load(args[3])["x"], backend="s8")
    ops = {op.layer: op for op in c.program.ops}
    scale = {name: q.scale for name, q in c.quant.tensors.items()}
    sum3, sum4 = ops["sum3"], ops["sum4"]
    assert (sum3.function, sum3.kernel.source, sum4.function) == ("nn_eltwise_add_s8", "nn_eltwise_add_s8.c",
                                                                  "nn_eltwise_add_s8")
    top = 2 * max(0.5 * scale["conv1"], 2 * scale["conv2"])
    m2, s2 = quantize_multiplier(2 * scale["conv2"] / top)
    r = sum3.params["rescale"]
    assert r.inputs == (quantize_multiplier(0.5 * scale["conv1"] / top), (-m2, s2), (0, 0))
    assert r.output == quantize_multiplier(top / (2**20 * scale["sum3"])) and r.left_shift == 20
    assert sum3.params["offsets"] == [-c.quant.tensors[b].zero_point for b in ("conv1", "conv2", "conv3")]
    inputs4 = ("sum3", "conv2", "conv3", "conv1")
    top4 = 2 * max(scale[b] for b in inputs4)
    assert sum4.params["rescale"].inputs == tuple(quantize_multiplier(scale[b] / top4) for b in inputs4)
    assert sum4.params["rescale"].output == quantize_multiplier(top4 / (2**20 * scale["sum4"]))


def test_compile_copies_the_kernel_with_its_requantize_header(tmp_path):
    args = _sum3_args(tmp_path)
    result = CliRunner().invoke(main, ["compile", *map(str, args), "-o", str(tmp_path / "out"), "--backend", "s8"])
    assert result.exit_code == 0, result.output
    copied = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("nn_"))
    assert copied == ["nn_eltwise_add_s8.c", "nn_kernels.h", "nn_s8_requantize.h"]
    assert all((tmp_path / "out" / name).read_bytes() == (OWN / name).read_bytes() for name in copied)
    nn_c = (tmp_path / "out" / "nn.c").read_text()
    assert "nn_eltwise_add_s8(inputs, SUM3_INPUTS, in_params, out_params, SUM3_SIZE, SUM3_OUT);" in nn_c


def test_three_input_sum_host_portable_bit_exact(tmp_path, monkeypatch):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    _verify(_sum3_args(tmp_path), "host", vectors=4)


@pytest.mark.skipif(upstream_path() is None or not qemu_available(),
                    reason="CMSIS_NN_PATH does not point at CMSIS-NN v4.1+ (or no QEMU)")
def test_three_input_sum_qemu_upstream_bit_exact(tmp_path):
    _verify(_sum3_args(tmp_path), "qemu", vectors=2)


def test_prod_of_three_inputs_refused(tmp_path):
    _expect_error(tmp_path, [L("conv1", "Convolution", num_output=4, kernel_size=1),
                             L("prod", "Eltwise", ["conv1", "conv1", "conv1"], "prod", operation="PROD")],
                  "layer 'prod' (Eltwise): PROD of 3 inputs: the s8 backend runs PROD of two inputs only "
                  "(arm_elementwise_mul_s8)")
