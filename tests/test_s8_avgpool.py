"""Average pooling on s8 with its own output scale (nn_avgpool_caffe_s8 with offsets and a shift).

arm_avgpool_s8 keeps its input's scale and zero point, so the mean of a wide tensor (a global
pool of large activations) would keep the input's coarse step: mobilenet_block's pool kept a
step of 0.74 for an average below 16. The quantizer gives an average pooling its own scale,
the input's / 2^shift, where that gains at least two bits (one where the pool runs on the
project's kernel anyway), and the kernel shifts the centred window sum into it as it divides.
Checked here: the model against a scalar definition, the C against the model (plain and
UBSan, extreme offsets and the largest shift), the quantizer's choice with exact shifts, and
the generated program bit-exact on the host (and, opt-in, QEMU with upstream CMSIS-NN v7.0.0).
"""
from __future__ import annotations

import ctypes
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen.pipeline import compile_model
from cmsisgen.s8.own_kernels import avgpool_caffe_s8, avgpool_max_shift
from s8_harness import qemu_available, upstream_path
from test_kernels import shared_library
from test_s8_pipeline import _verify

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"

# (h, w, c, kernel, stride, pad, out_hw): Caffe's ceil-mode output sizes
GEOMETRIES = [
    ((6, 6, 3), (6, 6), (1, 1), (0, 0), (1, 1)),    # global
    ((8, 8, 2), (3, 3), (2, 2), (1, 1), (4, 4)),    # padded, windows clipped at the padded border
    ((7, 5, 4), (3, 2), (2, 3), (0, 1), (3, 3)),    # ceil mode: the last windows overhang
    ((1, 1, 5), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((4, 9, 1), (2, 4), (1, 2), (1, 2), (5, 6)),
]


def definition(x, geometry, in_off: int, out_off: int, shift: int, act) -> np.ndarray:
    """Scalar loops: the sum over the window's pixels inside the image of (pixel + in_off),
    times 2**shift, over Caffe's count, rounded half away from zero, plus out_off, clamped."""
    (h, w, c), (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geometry
    out = np.empty((len(x), oh, ow, c), dtype=np.int8)
    for n in range(len(x)):
        for oy in range(oh):
            for ox in range(ow):
                y0, x0 = oy * sh - ph, ox * sw - pw
                count = (min(y0 + kh, h + ph) - y0) * (min(x0 + kw, w + pw) - x0)
                for ch in range(c):
                    total = sum(int(x[n, y, z, ch]) + in_off for y in range(max(y0, 0), min(y0 + kh, h))
                                for z in range(max(x0, 0), min(x0 + kw, w)))
                    mean = Fraction(total * 2**shift, count)
                    rounded = int(abs(mean) + Fraction(1, 2)) * (1 if mean >= 0 else -1)
                    out[n, oy, ox, ch] = min(max(rounded + out_off, act[0]), act[1])
    return out


def model(x, geometry, in_off, out_off, shift, act) -> np.ndarray:
    _, kernel, stride, pad, out_hw = geometry
    return avgpool_caffe_s8(x, kernel=kernel, stride=stride, pad=pad, out_hw=out_hw, act=act, input_offset=in_off,
                            output_offset=out_off, shift=shift)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_model_is_the_definition(geometry):
    rng = np.random.default_rng(len(str(geometry)))
    x = rng.integers(-128, 128, (2, *geometry[0]), dtype=np.int8)
    for in_off, out_off, shift, act in ((0, 0, 0, (-128, 127)), (128, -128, 3, (-128, 127)), (-5, 17, 2, (-20, 90))):
        np.testing.assert_array_equal(model(x, geometry, in_off, out_off, shift, act),
                                      definition(x, geometry, in_off, out_off, shift, act))


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (8, 8), (56, 56), (3, 7)])
def test_max_shift_keeps_the_sum_in_int32(kernel):
    """The largest window sum, 255 per pixel, times 2**shift, plus half the count, fits int32;
    one more bit would not."""
    peak = 255 * kernel[0] * kernel[1]
    shift = avgpool_max_shift(*kernel)
    assert (peak << shift) + peak // 2 < 2**31 <= (peak << (shift + 1)) + peak // 2


@pytest.fixture(scope="module", params=["plain", "ubsan"])
def lib(request, tmp_path_factory):
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("avgpool_s8") / f"libavgpool_{request.param}.so"
    return shared_library(out, [OWN / "nn_avgpool_caffe_s8.c"], [OWN], flags)


def run_c(lib, x, geometry, in_off, out_off, shift, act) -> np.ndarray:
    (h, w, c), kernel, stride, pad, (oh, ow) = geometry
    dims = np.array([h, w, c, *kernel, *stride, *pad, oh, ow], dtype=np.uint16)
    quant = np.array([in_off, out_off, shift, *act], dtype=np.int32)
    outs = []
    for image in x:
        out = np.full((oh, ow, c), 0x55, dtype=np.int8)
        lib.nn_avgpool_caffe_s8(*(a.ctypes.data_as(ctypes.c_void_p)
                                  for a in (np.ascontiguousarray(image), dims, quant, out)))
        outs.append(out)
    return np.stack(outs)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_c_equals_the_model(lib, geometry):
    """Random bytes and every byte -128 or 127, with the extreme offsets (pixel + offset from
    -255 to 255), the largest shift the window takes, and a narrow activation range."""
    rng = np.random.default_rng(len(str(geometry)) + 1)
    top = avgpool_max_shift(*geometry[1])
    quants = [(0, 0, 0, (-128, 127)), (128, -128, top, (-128, 127)), (-127, 127, top, (-128, 127)),
              (3, -20, 2, (-20, 90))]
    for fill in (None, -128, 127):
        x = (rng.integers(-128, 128, (2, *geometry[0]), dtype=np.int8) if fill is None
             else np.full((1, *geometry[0]), fill, np.int8))
        for in_off, out_off, shift, act in quants:
            np.testing.assert_array_equal(run_c(lib, x, geometry, in_off, out_off, shift, act),
                                          model(x, geometry, in_off, out_off, shift, act))


# --- the quantizer's choice ---------------------------------------------------------------------
#: A 2x2 pool whose mean spans its input's range (no gain: arm_avgpool_s8 at the input's scale),
#: a padded 3x3 pool before a ReLU (the project's kernel anyway; its output needs only the
#: positive side of conv2's range, two bits finer), and a global pool whose mean would gain one
#: bit (too little to leave arm_avgpool_s8).
POOLS = [L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
         L("relu1", "ReLU", "conv1", "conv1"),
         L("pool1", "Pooling", "conv1", "pool1", pool="AVE", kernel_size=2, stride=2),
         L("conv2", "Convolution", "pool1", "conv2", num_output=8, kernel_size=3, pad=1),
         L("pool2", "Pooling", "conv2", "pool2", pool="AVE", kernel_size=3, stride=1, pad=1),
         L("relu2", "ReLU", "pool2", "pool2"),
         L("gap", "Pooling", "pool2", "gap", pool="AVE", global_pooling=True),
         L("ip1", "InnerProduct", "gap", "ip1", num_output=5)]


def _pools_args(directory: Path) -> list:
    proto, weights = write_model(directory, POOLS)
    calib = directory / "calib.npz"
    np.savez(calib, x=np.random.default_rng(4).integers(0, 256, size=(16, 8, 8, 3), dtype=np.uint8),
             y=np.zeros(16, dtype=np.int64))
    return [proto, weights, "--calib", calib]


def test_average_pools_get_their_own_scale_where_it_gains(tmp_path):
    """Calibrated ranges: conv2 [-95.6, 61.0] at step 0.614, pool2 after its ReLU [0, 33.8]
    (step 0.133 on its own: 2 bits finer), gap [0, 13.1] (step 0.051 against pool2's 0.153:
    1 bit)."""
    args = _pools_args(tmp_path)
    c = compile_model(args[0], args[1], calib_images=np.load(args[3])["x"], backend="s8")
    ops = {op.layer: op for op in c.program.ops}
    q = c.quant.tensors
    assert [ops[name].function for name in ("pool1", "pool2", "gap")] == [
        "arm_avgpool_s8", "nn_avgpool_caffe_s8", "arm_avgpool_s8"]
    assert q["pool1"] == q["conv1"] and q["gap"] == q["pool2"]
    assert ops["pool2"].params["shift"] == 2
    assert q["pool2"].scale == q["conv2"].scale / 4
    assert (q["conv2"].zero_point, q["pool2"].zero_point) == (28, -128)
    assert (ops["pool2"].params["input_offset"], ops["pool2"].params["output_offset"]) == (-28, -128)


def test_one_bit_is_enough_only_off_arm_avgpool_s8(tmp_path):
    from cmsisgen.s8.roles import own_scale_min_gain

    proto, weights = write_model(tmp_path, POOLS)
    c = compile_model(proto, weights, calib_images=np.zeros((1, 8, 8, 3), np.uint8), backend="s8")
    layers = {layer.name: layer for layer in c.net.layers}
    assert [own_scale_min_gain(c.net, layers[name]) for name in ("pool1", "pool2", "gap")] == [2, 1, 2]


def test_own_scale_pools_host_portable_bit_exact(tmp_path, monkeypatch):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    _verify(_pools_args(tmp_path), "host", vectors=4)


@pytest.mark.skipif(upstream_path() is None or not qemu_available(),
                    reason="CMSIS_NN_PATH does not point at CMSIS-NN v4.1+ (or no QEMU)")
def test_own_scale_pools_qemu_upstream_bit_exact(tmp_path):
    _verify(_pools_args(tmp_path), "qemu", vectors=2)


#: A padded 3x3 pool whose output shares its input's quantization (the Concat with that input):
#: no own scale, but Caffe's divisor, so nn_avgpool_caffe_s8 at shift 0.
PADDED_SHARED = [L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
                 L("pool", "Pooling", "conv1", "pool", pool="AVE", kernel_size=3, stride=1, pad=1),
                 L("cat", "Concat", ["conv1", "pool"], "cat")]


def test_padded_pool_at_the_input_scale_counts_the_padding_as_zero(tmp_path):
    """Caffe pads with 0.0, the zero point's code: a window reaching into the padding must add
    (pixel - zero point) for the pixels inside, or each padded place counts as -zero_point * scale.
    With conv1's zero point away from 0, every output is within one step of the float forward
    (an input step averaged, plus the rounding), corners and edges included."""
    from cmsisgen.float_forward import forward
    from cmsisgen.pipeline import float_batches
    from cmsisgen.simulator.execute import run_program

    proto, weights = write_model(tmp_path, PADDED_SHARED)
    images = np.random.default_rng(5).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    c = compile_model(proto, weights, calib_images=images, mean="128,128,128", backend="s8")
    q = c.quant.tensors
    pool = next(op for op in c.program.ops if op.layer == "pool")
    assert pool.function == "nn_avgpool_caffe_s8" and pool.params["shift"] == 0 and q["pool"] == q["conv1"]
    assert q["conv1"].zero_point != 0
    assert (pool.params["input_offset"], pool.params["output_offset"]) == (-q["conv1"].zero_point,
                                                                           q["conv1"].zero_point)
    got = run_program(c.program, images, keep_all=True)["pool"].astype(np.float64)
    want = forward(c.net, next(float_batches(c.pre, images, (3, 8, 8))))["pool"].transpose(0, 2, 3, 1)
    error = np.abs((got.reshape(want.shape) - q["pool"].zero_point) * q["pool"].scale - want)
    assert error.max() <= q["pool"].scale * (1 + 1e-6)


# --- pools that meet: one scale per group, each pool's shift against its input's final scale --------
#: Two global pools into one Concat (one output group: at most one of them may set its scale),
#: and a pool reading another's output (the second's shift is taken against the first's
#: finer scale, so the first must be settled first).
MEETING = {
    "two_into_concat": [L("conva", "Convolution", "data", "conva", num_output=6, kernel_size=5, pad=2),
                        L("gapa", "Pooling", "conva", "gapa", pool="AVE", global_pooling=True),
                        L("convb", "Convolution", "data", "convb", num_output=4, kernel_size=3, pad=1),
                        L("gapb", "Pooling", "convb", "gapb", pool="AVE", global_pooling=True),
                        L("cat", "Concat", ["gapa", "gapb"], "cat"),
                        L("ip1", "InnerProduct", "cat", "ip1", num_output=5)],
    "chain": [L("conv1", "Convolution", "data", "conv1", num_output=6, kernel_size=5, pad=2),
              L("pool1", "Pooling", "conv1", "pool1", pool="AVE", kernel_size=4, stride=4),
              L("pool2", "Pooling", "pool1", "pool2", pool="AVE", global_pooling=True),
              L("ip1", "InnerProduct", "pool2", "ip1", num_output=5)],
}


@pytest.mark.parametrize("name, functions", [
    ("two_into_concat", {"gapa": "arm_avgpool_s8", "gapb": "arm_avgpool_s8"}),
    ("chain", {"pool1": "nn_avgpool_caffe_s8", "pool2": "nn_avgpool_caffe_s8"})])
def test_pools_that_meet_keep_one_scale_per_group(tmp_path, name, functions):
    """Each own-scale pool's output is exactly its input's scale / 2^shift, whatever the order
    the pools are looked at. Two pools into one Concat cannot both set its scale; once the
    second rejoins its input, the Concat spans conv_b's range and the first gains too little
    as well. In the chain pool2's shift is taken against pool1's finer scale."""
    proto, weights = write_model(tmp_path, MEETING[name], input_shape=(3, 16, 16))
    images = np.random.default_rng(4).integers(0, 256, size=(64, 16, 16, 3), dtype=np.uint8)
    c = compile_model(proto, weights, calib_images=images, backend="s8", mean="128,128,128")
    q = c.quant.tensors
    ops = {op.layer: op for op in c.program.ops}
    assert {layer: ops[layer].function for layer in functions} == functions
    for op in c.program.ops:
        if op.function == "nn_avgpool_caffe_s8":
            assert q[op.output].scale * 2 ** op.params["shift"] == q[op.inputs[0]].scale
    if name == "chain":
        assert (ops["pool1"].params["shift"], ops["pool2"].params["shift"]) == (2, 2)
