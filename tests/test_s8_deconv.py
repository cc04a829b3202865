"""nn_deconv_s8 (firmware/cmsisgen_kernels/nn_deconv_s8.c), the s8 backend's Deconvolution.

Its model (cmsisgen.s8.own_kernels.deconv_s8) is first checked against a scalar loop written
from Caffe's definition (input pixel (iy, ix) adds to output (iy*s - p + ky*d, ...), the full
output cropped by the padding); the C, built with host gcc plain and with UBSan trapping, must
then equal the model on random inputs and edge cases: every value -128 or 127, the extreme
offsets, biases that make the 32-bit sum wrap, the largest left and right requantization
shifts, narrow activation ranges, groups, dilation and strides larger than the kernel. (The
Cortex-M7 and upstream-header compiles of the file are in tests/test_own_kernels.py.)
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from test_kernels import shared_library
from cmsisgen.ops.deconvolution import deconv_out
from cmsisgen.s8.arith import requantize, wrap_int32
from cmsisgen.s8.own_kernels import deconv_s8
from cmsisgen.s8.quantization import quantize_multiplier

OWN = Path(__file__).resolve().parents[1] / "firmware" / "cmsisgen_kernels"

# (h, w, c, o, groups, kh, kw, stride, pad, dilation)
CASES = [
    (4, 3, 8, 6, 1, 4, 4, (2, 2), (1, 1), (1, 1)),     # FCN's 2x upsampling: pad not a multiple of stride
    (5, 4, 6, 6, 3, 3, 2, (1, 3), (2, 0), (2, 1)),     # groups and dilation
    (3, 3, 4, 4, 4, 2, 2, (3, 3), (0, 0), (1, 1)),     # one group per channel, stride above the kernel (gaps)
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0), (1, 1)),
    (6, 5, 3, 5, 1, 5, 5, (1, 1), (2, 2), (1, 1)),
    (2, 7, 2, 4, 2, 3, 3, (2, 1), (1, 1), (1, 2)),
    (3, 2, 5, 3, 1, 4, 3, (3, 2), (2, 1), (2, 2)),
]


def out_hw(case) -> tuple[int, int]:
    h, w, _, _, _, kh, kw, s, p, d = case
    return deconv_out(h, kh, s[0], p[0], d[0]), deconv_out(w, kw, s[1], p[1], d[1])


def reference(x, w, bias, mult, shift, in_off, out_off, act, case) -> np.ndarray:
    """Scalar loops over Caffe's definition, the sum wrapped to int32, then requantized."""
    h, wd, c, o_ch, g, kh, kw, s, p, d = case
    oh, ow = out_hw(case)
    in_g, out_g = c // g, o_ch // g
    acc = np.zeros((len(x), oh, ow, o_ch), dtype=np.int64)
    for o in range(o_ch):
        first = (o // out_g) * in_g
        for ky in range(kh):
            for kx in range(kw):
                for iy in range(h):
                    for ix in range(wd):
                        y, z = iy * s[0] - p[0] + ky * d[0], ix * s[1] - p[1] + kx * d[1]
                        if 0 <= y < oh and 0 <= z < ow:
                            pixel = x[:, iy, ix, first:first + in_g].astype(np.int64) + in_off
                            acc[:, y, z, o] += pixel @ w[o, ky, kx].astype(np.int64)
    total = requantize(wrap_int32(acc + bias.astype(np.int64)), mult.astype(np.int64), shift.astype(np.int64))
    return np.clip(total + out_off, *act).astype(np.int8)


def model(x, w, bias, mult, shift, in_off, out_off, act, case) -> np.ndarray:
    _, _, _, _, g, _, _, s, p, d = case
    return deconv_s8(x, w, bias, mult=mult, shift=shift, input_offset=in_off, output_offset=out_off, act=act,
                     groups=g, stride=s, pad=p, dilation=d, out_hw=out_hw(case))


def operands(rng, case, fill=None):
    """Random (x, w, bias, mult, shift) for a case, or every value ``fill`` (-128 or 127)."""
    h, wd, c, o_ch, g, kh, kw, *_ = case
    x = rng.integers(-128, 128, (2, h, wd, c)).astype(np.int8) if fill is None else np.full((1, h, wd, c), fill, np.int8)
    w = rng.integers(-127, 128, (o_ch, kh, kw, c // g)).astype(np.int8) if fill is None else np.full(
        (o_ch, kh, kw, c // g), fill, np.int8)
    bias = rng.integers(-5000, 5000, o_ch).astype(np.int32)
    pairs = [quantize_multiplier(float(r)) for r in rng.uniform(0.0005, 0.02, o_ch)]
    return x, w, bias, np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


@pytest.fixture(scope="module", params=["plain", "ubsan"])
def lib(request, tmp_path_factory):
    flags = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error") if request.param == "ubsan" else ()
    out = tmp_path_factory.mktemp("deconv_s8") / f"libdeconv_{request.param}.so"
    return shared_library(out, [OWN / "nn_deconv_s8.c"], [OWN], flags)


def run_c(lib, x, w, bias, mult, shift, in_off, out_off, act, case) -> np.ndarray:
    h, wd, c, o_ch, g, kh, kw, s, p, d = case
    oh, ow = out_hw(case)
    dims = np.array([h, wd, c, oh, ow, o_ch, kh, kw, *s, *p, *d, g], dtype=np.uint32)
    quant = np.array([in_off, out_off, *act], dtype=np.int32)
    args = [np.ascontiguousarray(a) for a in (w, bias, mult, shift)]
    outs = []
    for image in x:
        out = np.full((oh, ow, o_ch), 0x55, dtype=np.int8)
        lib.nn_deconv_s8(*(a.ctypes.data_as(ctypes.c_void_p) for a in (np.ascontiguousarray(image), dims, quant,
                                                                       *args, out)))
        outs.append(out)
    return np.stack(outs)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_model_is_caffes_definition(case):
    rng = np.random.default_rng(len(str(case)))
    x, w, bias, mult, shift = operands(rng, case)
    np.testing.assert_array_equal(model(x, w, bias, mult, shift, 7, -3, (-128, 127), case),
                                  reference(x, w, bias, mult, shift, 7, -3, (-128, 127), case))


def edge_quantizations(o_ch: int):
    """(bias, mult, shift) pushing the arithmetic to its ends: a sum that wraps past int32, the
    largest left shift (val << 30 wraps), the largest right shift, multiplier 2^31 - 1."""
    full = np.full(o_ch, 2**31 - 1, np.int32)
    return [(full, full, np.full(o_ch, 30, np.int32)), (np.full(o_ch, -2**31, np.int32), full,
                                                        np.full(o_ch, -31, np.int32)),
            (np.zeros(o_ch, np.int32), np.full(o_ch, 2**30, np.int32), np.zeros(o_ch, np.int32))]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_c_equals_the_model(lib, case):
    rng = np.random.default_rng(len(str(case)) + 1)
    quants = [(128, -128, (-128, 127)), (-127, 127, (-128, 127)), (3, -20, (-20, 90))]
    for fill in (None, -128, 127):
        x, w, bias, mult, shift = operands(rng, case, fill)
        extremes = [(bias, mult, shift)] + ([] if fill is None else edge_quantizations(case[3]))
        for (b, m, s), (in_off, out_off, act) in ((e, q) for e in extremes for q in quants):
            want = model(x, w, b, m, s, in_off, out_off, act, case)
            np.testing.assert_array_equal(run_c(lib, x, w, b, m, s, in_off, out_off, act, case), want)
