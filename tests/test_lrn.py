"""LRN: Caffe's float semantics, the integer kernel's accuracy against them, the loader and
the mapper. (The generated C is checked bit-exact by the catalogue nets lrn_across and
cifar10_full_style in test_generated_qemu.py / test_end_to_end.py; real Caffe by
test_caffe_oracle.py's "lrn" model.)"""
from __future__ import annotations


import numpy as np
import pytest

from caffe_models import build_net, layer, write_model, write_prototxt
from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.loader import load_net
from cmsisgen.ops.lrn import index_middles, lrn, lrn_q7, lrn_table, table_index
from cmsisgen.pipeline import compile_model
from cmsisgen.quantizer import frac_bits_for

ALEXNET = ir.LRNParams(local_size=5, alpha=1e-4, beta=0.75)
CIFAR10_FULL = ir.LRNParams(local_size=3, alpha=5e-05, beta=0.75, region="within")
STRONG_ACROSS = ir.LRNParams(local_size=3, alpha=3.0, beta=0.6, k=2.0)
STRONG_WITHIN = ir.LRNParams(local_size=5, alpha=2.0, beta=0.75, region="within")


def caffe_lrn_loops(x: np.ndarray, p: ir.LRNParams) -> np.ndarray:
    """Caffe's LRN written out for one image (C, H, W): across channels the window is
    clipped to the channels, within a channel Caffe pools the squares with AVE pooling
    (pad (n-1)/2, stride 1), dividing by the window clipped to the PADDED image."""
    c, h, w = x.shape
    half = (p.local_size - 1) // 2
    out = np.zeros_like(x, dtype=np.float64)
    for ch in range(c):
        for y in range(h):
            for xx in range(w):
                if p.region == "across":
                    s = sum(float(x[j, y, xx]) ** 2 for j in range(max(0, ch - half), min(c, ch + half + 1)))
                    scale = p.k + p.alpha / p.local_size * s
                else:
                    y0, x0 = y - half, xx - half
                    y1, x1 = min(y0 + p.local_size, h + half), min(x0 + p.local_size, w + half)
                    pool_size = (y1 - y0) * (x1 - x0)
                    s = sum(float(x[ch, yy, xw]) ** 2 for yy in range(max(y0, 0), min(y1, h))
                            for xw in range(max(x0, 0), min(x1, w)))
                    scale = 1.0 + p.alpha * s / pool_size
                out[ch, y, xx] = x[ch, y, xx] * scale ** -p.beta
    return out


@pytest.mark.parametrize("p", [ALEXNET, CIFAR10_FULL, STRONG_ACROSS, STRONG_WITHIN], ids=lambda p: p.region)
def test_float_lrn_is_caffes(p):
    x = np.random.default_rng(0).normal(0, 4, size=(2, 6, 5, 7)).astype(np.float32)
    got = lrn(x, p)
    for i in range(2):
        np.testing.assert_allclose(got[i], caffe_lrn_loops(x[i], p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", [ALEXNET, CIFAR10_FULL, STRONG_ACROSS, STRONG_WITHIN], ids=lambda p: p.region)
@pytest.mark.parametrize("in_frac", [-2, 2, 5])
def test_integer_lrn_within_one_lsb_of_caffe(p, in_frac):
    rng = np.random.default_rng(in_frac + 10)
    xq = rng.integers(-128, 128, size=(3, 6, 7, 9), dtype=np.int8)  # NHWC
    value = xq.astype(np.float64) * 2.0 ** -in_frac
    exact = lrn(value.transpose(0, 3, 1, 2), p).astype(np.float64).transpose(0, 2, 3, 1)
    out_frac = frac_bits_for(float(np.abs(exact).max()))
    t = lrn_table("norm", p, in_frac, out_frac)
    assert t.table.dtype == np.int32
    got = lrn_q7(xq, t.table, local_size=p.local_size, region=p.region, mantissa_bits=t.mantissa_bits,
                   out_rshift=t.out_rshift).astype(np.float64) * 2.0 ** -out_frac
    err = np.abs(got - exact) / 2.0 ** -out_frac  # in output LSBs
    assert err.max() <= 0.75, err.max()  # output rounding 0.5 + multiplier <= beta * 2^-9 relative
    assert err.mean() <= 0.3, err.mean()


def test_table_and_shifts():
    t = lrn_table("norm", CIFAR10_FULL, in_frac=4, out_frac=4)
    # 9 taps of 128^2 = 147456 (18 bits): exponent 10, mantissa 144 -> 256 + 9*128 + 16 = 1424
    assert (t.mantissa_bits, t.table.size) == (8, 1425)
    assert t.mul_frac == 30 and t.out_rshift == 30  # multipliers <= 1.0 < 2^31 / 2^30
    assert t.table[0] == 1 << 30 and np.all(np.diff(t.table.astype(int)) <= 0)
    t = lrn_table("norm", ir.LRNParams(local_size=3, alpha=1.0, beta=0.75, k=0.1), in_frac=0, out_frac=0)
    assert t.mul_frac == 28  # largest multiplier 0.1^-0.75 = 5.6: entries below 2^31
    with pytest.raises(CmsisgenError, match=r"layer 'norm' \(LRN\): k \+ alpha \* sum must stay positive"):
        lrn_table("norm", ir.LRNParams(local_size=3, alpha=1.0, beta=0.75, k=0.0), in_frac=0, out_frac=0)


def test_table_index_is_a_small_float():
    sums = np.arange(0, 1 << 19, 7)
    index = table_index(sums)
    assert np.array_equal(index[sums < 256], sums[sums < 256])  # exact below 2^8
    assert np.all(np.diff(index) >= 0)  # monotone
    # every sum lies within half a step (2^-8 relative) of its entry's middle
    middle = index_middles(int(index.max()) + 1)[index]
    assert np.all(np.abs(sums - middle) <= np.maximum(0.5, middle * 2.0 ** -8))
    assert table_index(np.array([256, 511, 512, 1023, 1024])).tolist() == [256, 383, 384, 511, 512]


def test_loader_reads_lrn_param(tmp_path):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3),
              layer("norm1", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
              layer("norm2", "LRN")]
    net = load_net(write_prototxt(tmp_path / "m.prototxt", build_net(layers)))
    assert net.layers[1].params == ir.LRNParams(local_size=3, alpha=pytest.approx(5e-05), beta=0.75,
                                                region="within")
    assert net.layers[2].params == ir.LRNParams()  # Caffe's defaults: 5, 1, 0.75, k 1, across


def test_v1_lrn(tmp_path):
    text = ('input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n'
            'layers { name: "norm" type: LRN bottom: "data" top: "norm" '
            'lrn_param { local_size: 3 alpha: 0.5 beta: 0.5 k: 2 } }\n')
    (tmp_path / "v1.prototxt").write_text(text)
    net = load_net(tmp_path / "v1.prototxt")
    assert net.layers[0].type == "LRN"
    assert net.layers[0].params == ir.LRNParams(local_size=3, alpha=0.5, beta=0.5, k=2.0)


def test_even_local_size_refused(tmp_path):
    layers = [layer("norm1", "LRN", local_size=4)]
    path = write_prototxt(tmp_path / "m.prototxt", build_net(layers))
    with pytest.raises(CmsisgenError) as info:
        load_net(path)
    assert str(info.value) == f"{path}: layer 'norm1' (LRN): local_size 4 must be odd (as Caffe requires)"


@pytest.mark.parametrize("region, function", [("ACROSS_CHANNELS", "nn_lrn_across_q7"),
                                              ("WITHIN_CHANNEL", "nn_lrn_within_q7")])
def test_mapper_emits_own_kernel(tmp_path, region, function):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3),
              layer("relu1", "ReLU", inplace=True),
              layer("norm1", "LRN", local_size=3, alpha=1.0, beta=0.75, norm_region=region)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))
    calib = np.random.default_rng(1).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    compiled = compile_model(proto, weights, calib_images=calib)
    op = next(op for op in compiled.program.ops if op.layer == "norm1")
    assert (op.kind, op.function) == ("lrn", function)
    t = lrn_table("norm1", compiled.net.layers[-1].params, op.formats["in_frac"], op.formats["out_frac"])
    assert np.array_equal(op.weight_data, t.table)
    assert op.args["mantissa_bits"] == t.mantissa_bits and op.formats["out_rshift"] == t.out_rshift
    assert not op.in_place  # the window reads neighbours: the output has its own buffer
    from cmsisgen.report import build_report

    row = next(r for r in build_report(compiled.program, compiled.plan)["layers"] if r["name"] == "norm1")
    assert row["function"] == function and row["weight_bytes"] == 4 * t.table.size  # int32 entries


#: BVLC examples/cifar10/cifar10_full.prototxt (TEST net), layer for layer.
CIFAR10_FULL_LAYERS = [
    layer("conv1", "Convolution", num_output=32, kernel_size=5, pad=2, stride=1),
    layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
    layer("relu1", "ReLU", inplace=True),
    layer("norm1", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
    layer("conv2", "Convolution", num_output=32, kernel_size=5, pad=2, stride=1),
    layer("relu2", "ReLU", inplace=True),
    layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("norm2", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
    layer("conv3", "Convolution", num_output=64, kernel_size=5, pad=2, stride=1),
    layer("relu3", "ReLU", inplace=True),
    layer("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
    layer("prob", "Softmax"),
]


def test_cifar10_full_compiles_and_evaluates(tmp_path):
    """The BVLC CIFAR-10 "full" net (LRN WITHIN_CHANNEL) compiles through the CLI, and
    evaluate reports float top-1, q7 top-1 and their agreement."""
    import json

    from click.testing import CliRunner

    from cmsisgen.cli import main

    proto, weights = write_model(tmp_path, CIFAR10_FULL_LAYERS, input_shape=(3, 32, 32), seed=5)
    rng = np.random.default_rng(6)
    npz = tmp_path / "data.npz"
    np.savez(npz, x=rng.integers(0, 256, size=(48, 32, 32, 3), dtype=np.uint8), y=np.arange(48) % 10)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["compile", str(proto), str(weights), "-o", str(out), "--calib", str(npz)])
    assert result.exit_code == 0, result.output
    assert "nn_lrn_within_q7" in (out / "nn.c").read_text()
    result = runner.invoke(main, ["evaluate", str(proto), str(weights), "--data", str(npz), "--calib", str(npz),
                                  "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert "agreement:" in result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["n"] == 48
    assert report["agreement"] >= 0.75, report  # random weights: a low bar, but not chance (0.1)
