"""Real Caffe as the oracle for the loader and the float forward pass.

Every test writes a model (with tests/caffe_models.py, or the bundled CIFAR-10 example), runs
real pycaffe on it in a subprocess (tests/caffe_oracle_worker.py) and compares every Caffe
blob with ``cmsisgen.float_forward.forward`` on the loader's IR. An in-place Caffe blob is
compared with the newest SSA version of its tensor (``name@k``). Caffe's auto-inserted split
blobs have no IR counterpart and are skipped.

pycaffe is looked up in ``$CMSISGEN_PYCAFFE`` (an install PREFIX, containing
``python/caffe/_caffe.so``), else ``~/.cache/pycaffe``; build it with
``bash ../shared/pycaffe/build.sh PREFIX``. Without it the tests skip.

The Caffe used is an SSD-era fork: pooling takes ``ceil_mode: false`` where BVLC has
``round_mode: FLOOR``, so only the ceil_mode spelling is exercised here. Pooling of any
geometry (non-square images and windows, padding >= stride, kernels smaller than the stride,
ceil and floor mode) is compared here in float; nn_pool_q7 computes the same windows and
divisors in integers (tests/test_own_kernels.py checks it against this float forward).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from caffe_models import layer, write_model

pytestmark = pytest.mark.caffe

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "caffe_oracle_worker.py"
EXAMPLE = REPO / "examples" / "cifar10"

RTOL, ATOL = 1e-4, 1e-5


def _pycaffe_prefix() -> Path:
    return Path(os.environ.get("CMSISGEN_PYCAFFE") or Path.home() / ".cache" / "pycaffe")


@pytest.fixture(scope="session")
def pycaffe() -> Path:
    prefix = _pycaffe_prefix()
    if not (prefix / "python" / "caffe" / "_caffe.so").exists():
        pytest.skip(f"pycaffe not found in {prefix} (set CMSISGEN_PYCAFFE to its PREFIX, or "
                    f"build it with: bash ../shared/pycaffe/build.sh {prefix})")
    # pycaffe imports Python packages of its own (six, ...): a venv without them cannot run
    # the oracle, which is a reason to skip, not a failure of cmsisgen.
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(prefix / "python"))
    probe = subprocess.run([sys.executable, "-c", "import caffe"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"pycaffe in {prefix} does not import in this Python ({last}); "
                    "pip install -e '.[test]' installs what it needs")
    return prefix


def run_caffe(prefix: Path, prototxt: Path, weights: Path, inputs: dict[str, np.ndarray],
              workdir: Path, upgraded: bool = False):
    """Forward ``inputs`` through real Caffe; returns (blobs, meta, upgraded_prototxt)."""
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / "inputs.npz", **{k: v.astype(np.float32) for k, v in inputs.items()})
    job = {
        "prototxt": str(prototxt), "weights": str(weights),
        "inputs": str(workdir / "inputs.npz"), "out": str(workdir / "caffe_out.npz"),
        "meta": str(workdir / "caffe_meta.json"),
        "upgraded": str(workdir / "caffe_upgraded.prototxt") if upgraded else None,
    }
    (workdir / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, GLOG_minloglevel="2", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(prefix / "python"))
    proc = subprocess.run([sys.executable, str(WORKER), str(workdir / "job.json")], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"Caffe failed on {prototxt} (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with np.load(job["out"]) as f:
        blobs = {k: f[k] for k in f.files}
    meta = json.loads(Path(job["meta"]).read_text())
    return blobs, meta, (Path(job["upgraded"]) if upgraded else None)


def _latest_tensors(net) -> dict[str, str]:
    """Caffe blob name -> the IR's newest SSA tensor for it."""
    latest = {name.split("@")[0]: name for name in net.input_shapes}
    for lay in net.layers:
        for top in lay.tops:
            latest[top.split("@")[0]] = top
    return latest


def compare_with_caffe(net, ours: dict[str, np.ndarray], blobs: dict[str, np.ndarray], meta: dict):
    """Every IR tensor's final version equals Caffe's blob; layers agree on names/types/wiring."""
    latest = _latest_tensors(net)
    compared = set()
    for blob_name, caffe_value in blobs.items():
        if blob_name not in latest:
            assert "_split_" in blob_name, f"Caffe blob '{blob_name}' has no IR tensor"
            continue
        mine = ours[latest[blob_name]]
        assert mine.size == caffe_value.size, (
            f"{blob_name}: ours {mine.shape} vs Caffe {caffe_value.shape}")
        assert mine.shape[0] == caffe_value.shape[0]
        np.testing.assert_allclose(mine.reshape(caffe_value.shape), caffe_value, rtol=RTOL,
                                   atol=ATOL, err_msg=f"blob '{blob_name}' ({latest[blob_name]})")
        compared.add(blob_name)
    assert compared == set(latest), f"not compared: {set(latest) - compared}"
    for out in net.outputs:
        assert out.split("@")[0] in compared
    # Shapes from cmsisgen.shapes agree with Caffe's (batch and trailing 1s aside).
    for base, tensor in latest.items():
        caffe_shape = tuple(meta["blob_shapes"][base][1:])
        ours_shape = tuple(net.shapes[tensor])
        assert int(np.prod(ours_shape)) == int(np.prod(caffe_shape)), (base, ours_shape, caffe_shape)
        if len(caffe_shape) == 3:
            assert ours_shape == caffe_shape, (base, ours_shape, caffe_shape)
    # Layer names, types and wiring (Caffe's Input and auto-split layers have no IR layer).
    caffe_layers = {d["name"]: d for d in meta["layers"]}
    for lay in net.layers:
        c = caffe_layers.get(lay.name)
        assert c is not None, f"layer '{lay.name}' not in Caffe's net"
        assert c["type"] == lay.type
        assert [t.split("@")[0] for t in lay.tops] == c["tops"]
        caffe_bottoms = [b for b in c["bottoms"]]
        for ours_b, caffe_b in zip(lay.bottoms, caffe_bottoms):
            base = ours_b.split("@")[0]
            assert caffe_b == base or (caffe_b.startswith(base + "_") and "_split_" in caffe_b), (
                lay.name, ours_b, caffe_b)
        assert len(lay.bottoms) == len(caffe_bottoms)
        assert [list(b.shape) for b in lay.blobs] == c["blob_shapes"] or all(
            int(np.prod(b.shape)) == int(np.prod(s)) for b, s in zip(lay.blobs, c["blob_shapes"]))
    ir_names = {lay.name for lay in net.layers}
    for c in meta["layers"]:
        if c["type"] not in ("Input", "Split"):
            assert c["name"] in ir_names, f"Caffe layer '{c['name']}' ({c['type']}) missing"


def check_model(pycaffe: Path, prototxt: Path, weights: Path, x: np.ndarray, workdir: Path,
                upgraded: bool = False):
    from cmsisgen.float_forward import forward
    from cmsisgen.loader import load_net

    net = load_net(prototxt, weights)
    (input_name,) = net.input_shapes
    blobs, meta, up = run_caffe(pycaffe, prototxt, weights, {input_name: x}, workdir, upgraded)
    ours = forward(net, x)
    compare_with_caffe(net, ours, blobs, meta)
    return net, blobs, ours, up


# --------------------------------------------------------------------------- random models

#: BatchNorm blobs (mean and variance sums, moving-average factor 0.5) and Scale blobs, 3 channels.
BN3 = [np.array([0.1, -0.2, 0.05]) * 0.5, np.array([0.3, 0.02, 1.5]) * 0.5, np.array([0.5])]
SCALE3 = [np.array([1.2, -0.7, 0.4]), np.array([0.1, 0.0, -0.3])]

MODELS = {
    # conv pad+stride, ReLU in place, max and ave pooling with ceil-mode remainders, IP.
    "conv_stride_pool_ceil": ((3, 10, 11), [
        layer("conv1", "Convolution", num_output=5, kernel_size=3, pad=1, stride=2),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
        layer("conv2", "Convolution", num_output=4, kernel_size=1),
        layer("pool2", "Pooling", bottom="conv1", pool="AVE", kernel_size=3, stride=2),
        layer("ip1", "InnerProduct", bottom="pool2", num_output=7),
    ]),
    # non-square kernels/strides/pads; ave pooling with padding; max pooling with padding.
    "nonsquare_padded_pool": ((3, 13, 12), [
        layer("conv1", "Convolution", num_output=4, kernel_h=3, kernel_w=5, pad_h=1, pad_w=2,
              stride_h=1, stride_w=2),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1),
        layer("conv2", "Convolution", num_output=3, kernel_size=2),
        layer("pool2", "Pooling", pool="MAX", kernel_h=2, kernel_w=3, stride_h=2, stride_w=1,
              pad_h=1, pad_w=0),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # grouped convolutions.
    "group_conv": ((4, 7, 7), [
        layer("conv1", "Convolution", num_output=6, kernel_size=3, pad=1, group=2),
        layer("relu1", "ReLU", inplace=True),
        layer("conv2", "Convolution", num_output=3, kernel_size=1, group=3),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # depthwise (group == channels) then pointwise, a channel multiplier (group 4, 4 -> 8).
    "depthwise_pointwise": ((4, 7, 6), [
        layer("dw1", "Convolution", num_output=4, kernel_size=3, pad=1, stride=2, group=4),
        layer("pw1", "Convolution", num_output=8, kernel_size=1),
        layer("relu1", "ReLU", inplace=True),
        layer("mult", "Convolution", num_output=16, kernel_h=3, kernel_w=1, group=8, bias_term=False),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # LRN across channels (AlexNet's local_size 5, and a strong k/alpha) and within a channel
    # (BVLC cifar10_full's norm1), on signed and on ReLU'd values.
    "lrn": ((3, 8, 9), [
        layer("conv1", "Convolution", num_output=7, kernel_size=3, pad=1),
        layer("norm0", "LRN", local_size=5, alpha=1e-4, beta=0.75),
        layer("norm1", "LRN", local_size=3, alpha=3.0, beta=0.6, k=2.0),
        layer("relu1", "ReLU", inplace=True),
        layer("norm2", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
        layer("norm3", "LRN", local_size=5, alpha=2.0, beta=0.75, norm_region="WITHIN_CHANNEL"),
        layer("ip1", "InnerProduct", num_output=4),
    ]),
    # BVLC examples/cifar10/cifar10_full.prototxt's TEST net (LRN WITHIN_CHANNEL).
    "cifar10_full": ((3, 32, 32), [
        layer("conv1", "Convolution", num_output=32, kernel_size=5, pad=2),
        layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
        layer("relu1", "ReLU", inplace=True),
        layer("norm1", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
        layer("conv2", "Convolution", num_output=32, kernel_size=5, pad=2),
        layer("relu2", "ReLU", inplace=True),
        layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
        layer("norm2", "LRN", local_size=3, alpha=5e-05, beta=0.75, norm_region="WITHIN_CHANNEL"),
        layer("conv3", "Convolution", num_output=64, kernel_size=5, pad=2),
        layer("relu3", "ReLU", inplace=True),
        layer("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
        layer("prob", "Softmax"),
    ]),
    # a branch: two convs on the input, in-place ReLU on one, Concat, pool, IP, Softmax.
    "concat_softmax": ((3, 8, 8), [
        layer("conv_a", "Convolution", bottom="data", num_output=3, kernel_size=3, pad=1),
        layer("relu_a", "ReLU", inplace=True),
        layer("conv_b", "Convolution", bottom="data", num_output=2, kernel_size=1),
        layer("concat", "Concat", bottom=["conv_a", "conv_b"]),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
        layer("prob", "Softmax"),
    ]),
    # IP straight on a conv output (CHW flatten order), Dropout in place, IP -> ReLU -> IP.
    "ip_after_conv_dropout": ((2, 6, 5), [
        layer("conv1", "Convolution", num_output=3, kernel_size=3),
        layer("relu1", "ReLU", inplace=True),
        layer("drop1", "Dropout", inplace=True, dropout_ratio=0.5),
        layer("ip1", "InnerProduct", num_output=6),
        layer("relu2", "ReLU", inplace=True),
        layer("ip2", "InnerProduct", num_output=4),
        layer("prob", "Softmax"),
    ]),
    # global average pooling, Flatten, IP without bias, conv without bias.
    "global_pool_flatten_nobias": ((3, 9, 7), [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, bias_term=False),
        layer("relu1", "ReLU", inplace=True),
        layer("gap", "Pooling", pool="AVE", global_pooling=True),
        layer("flat", "Flatten"),
        layer("ip1", "InnerProduct", num_output=3, bias_term=False),
    ]),
    # floor-mode pooling (this fork's ceil_mode: false), max and ave.
    "pool_floor_mode": ((2, 9, 10), [
        layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2, ceil_mode=False),
        layer("conv1", "Convolution", num_output=3, kernel_size=1),
        layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1, ceil_mode=False),
        layer("ip1", "InnerProduct", num_output=4),
    ]),
    # residual block (conv -> relu -> conv + identity, Eltwise SUM), SUM with coefficients over
    # three inputs, PROD and MAX.
    "eltwise": ((3, 7, 6), [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("conv2", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("add", "Eltwise", bottom=["conv2", "conv1"], top="add"),
        layer("conv3", "Convolution", bottom="data", top="conv3", num_output=4, kernel_size=1),
        layer("wsum", "Eltwise", bottom=["add", "conv3", "conv1"], top="wsum", coeff=[0.5, -1.0, 2.0]),
        layer("prod", "Eltwise", bottom=["wsum", "conv3"], top="prod", operation="PROD"),
        layer("max", "Eltwise", bottom=["prod", "add"], top="max", operation="MAX"),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # BatchNorm (+ Scale) in place after a conv, BatchNorm alone (moving-average factor 0.5,
    # non-default eps), Scale without bias, all with Caffe-trained-like blobs.
    "batchnorm_scale": ((3, 6, 6), [
        layer("conv1", "Convolution", num_output=3, kernel_size=3, pad=1),
        layer("bn1", "BatchNorm", inplace=True, weights=BN3),
        layer("scale1", "Scale", inplace=True, bias_term=True, weights=SCALE3),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("bn2", "BatchNorm", inplace=True, eps=1e-3, weights=BN3),
        layer("scale2", "Scale", inplace=True, weights=SCALE3[:1]),
        layer("ip1", "InnerProduct", num_output=4),
    ]),
    # leaky ReLU, PReLU per channel and shared, Sigmoid, TanH, Reshape to (N, K) and spatially.
    "activations_reshape": ((3, 6, 6), [
        layer("conv1", "Convolution", num_output=3, kernel_size=3, pad=1),
        layer("leaky", "ReLU", inplace=True, negative_slope=0.1),
        layer("conv2", "Convolution", num_output=3, kernel_size=3),
        layer("prelu", "PReLU", inplace=True, weights=[np.array([0.25, -0.5, 0.01])]),
        layer("sig", "Sigmoid", bottom="conv2", top="sig"),
        layer("tanh", "TanH", bottom="conv1", top="tanh"),
        layer("prelu_s", "PReLU", inplace=True, channel_shared=True, weights=[np.array(0.3)]),
        layer("regroup", "Reshape", bottom="tanh", top="regroup", shape={"dim": [0, 3, 4, 9]}),
        layer("flat", "Reshape", bottom="sig", top="flat", shape={"dim": [0, -1]}),
        layer("ip1", "InnerProduct", num_output=4),
        layer("ip2", "InnerProduct", bottom="regroup", top="ip2", num_output=4),
        layer("sum", "Eltwise", bottom=["ip1", "ip2"], top="sum"),
    ]),
    # pooling of any geometry (what nn_pool_q7 runs), each on the 30x14 input, read by an IP:
    # non-square image, padded average, 3x3/s1/p1 max (pad >= stride, GoogLeNet), a 3x2
    # average with pad >= stride on both axes (Caffe clips its last row), kernel 2 < stride 3
    # with padding (clipped last column), kernel 1 < stride 2 without padding.
    "pool_any_geometry": ((2, 30, 14), [
        layer("p1", "Pooling", bottom="data", top="p1", pool="MAX", kernel_size=2, stride=2),
        layer("p2", "Pooling", bottom="data", top="p2", pool="AVE", kernel_size=3, stride=2, pad=1),
        layer("p3", "Pooling", bottom="data", top="p3", pool="MAX", kernel_size=3, stride=1, pad=1),
        layer("p4", "Pooling", bottom="data", top="p4", pool="AVE", kernel_h=3, kernel_w=2, stride_h=2, stride_w=1,
              pad_h=2, pad_w=1),
        layer("p5", "Pooling", bottom="data", top="p5", pool="AVE", kernel_size=2, stride=3, pad=1),
        layer("p6", "Pooling", bottom="p1", top="p6", pool="MAX", kernel_size=1, stride=2),
        *[layer(f"ip{i}", "InnerProduct", bottom=f"p{i}", top=f"ip{i}", num_output=3) for i in range(2, 7)],
        layer("sum", "Eltwise", bottom=[f"ip{i}" for i in range(2, 7)], top="sum"),
    ]),
    # the same kinds in floor mode (this fork's ceil_mode: false) on a 66x16 plate image.
    "pool_any_geometry_floor": ((3, 66, 16), [
        layer("f1", "Pooling", bottom="data", top="f1", pool="MAX", kernel_size=1, stride=2, ceil_mode=False),
        layer("f2", "Pooling", bottom="data", top="f2", pool="AVE", kernel_h=3, kernel_w=2, stride_h=3, stride_w=2,
              pad=1, ceil_mode=False),
        layer("f3", "Pooling", bottom="data", top="f3", pool="MAX", kernel_size=3, stride=2, pad=2, ceil_mode=False),
        *[layer(f"ip{i}", "InnerProduct", bottom=f"f{i}", top=f"ip{i}", num_output=3) for i in range(1, 4)],
        layer("sum", "Eltwise", bottom=[f"ip{i}" for i in range(1, 4)], top="sum"),
    ]),
    # the CIFAR-10 example topology in miniature (ceil pooling 3/2 chain down to 1x1... 2x2).
    "cifar_like": ((3, 16, 16), [
        layer("conv1", "Convolution", num_output=8, kernel_size=5, pad=2),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
        layer("conv2", "Convolution", num_output=4, kernel_size=5, pad=2),
        layer("relu2", "ReLU", inplace=True),
        layer("pool2", "Pooling", pool="AVE", kernel_size=3, stride=2),
        layer("conv3", "Convolution", num_output=8, kernel_size=5, pad=2),
        layer("relu3", "ReLU", inplace=True),
        layer("pool3", "Pooling", pool="AVE", kernel_size=3, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
    ]),
    # dilated convolutions: one rate, per-axis rates with a stride, grouped with a rate.
    "dilated_conv": ((4, 13, 11), [
        layer("conv1", "Convolution", num_output=5, kernel_size=3, pad=2, dilation=2),
        layer("conv2", "Convolution", num_output=6, kernel_h=3, kernel_w=2, pad_h=3, pad_w=1, stride_h=2, stride_w=1,
              dilation=[3, 2]),
        layer("relu2", "ReLU", inplace=True),
        layer("conv3", "Convolution", num_output=4, kernel_size=3, group=2, dilation=[1, 3], bias_term=False),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # Deconvolution: FCN's stride 2 upsampling, grouped, per-axis kernel/stride/pad with dilation.
    "deconvolution": ((4, 5, 6), [
        layer("up1", "Deconvolution", num_output=6, kernel_size=4, stride=2, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("up2", "Deconvolution", num_output=4, kernel_size=3, stride=2, group=2, bias_term=False),
        layer("up3", "Deconvolution", num_output=3, kernel_h=3, kernel_w=2, stride_h=1, stride_w=3, pad_h=2,
              pad_w=1, dilation=2),
        layer("ip1", "InnerProduct", num_output=5),
    ]),
    # layers that only move bytes: Slice of channels (slice_point, 3 tops) and of height (equal
    # parts, legacy slice_dim), Crop (FCN-style to a reference blob; per-axis offsets from axis 1),
    # Upsample (nearest, scale 2 and 3), Permute (SSD's NHWC order, and another) + Flatten into an
    # inner product, Flatten of axes 2-3 and of axes 1-2.
    "byte_movers": ((3, 6, 5), [
        layer("conv1", "Convolution", num_output=9, kernel_size=3, pad=1),
        layer("slice", "Slice", bottom="conv1", top=["a", "b", "c"], slice_point=[2, 7]),
        layer("rows", "Slice", bottom="c", top=["top_rows", "bottom_rows"], slice_dim=2),
        layer("up", "Upsample", bottom="a", top="up", scale=2),
        layer("crop", "Crop", bottom=["up", "data"], top="crop", offset=[3, 2]),
        layer("crop_c", "Crop", bottom=["b", "top_rows"], top="crop_c", axis=1, offset=[1, 2, 0]),
        layer("up3", "Upsample", bottom="crop_c", top="up3", scale=3),
        layer("perm", "Permute", bottom="crop", top="perm", order=[0, 2, 3, 1]),
        layer("flat", "Flatten", bottom="perm", top="flat"),
        layer("ip1", "InnerProduct", bottom="flat", top="ip1", num_output=4),
        layer("perm2", "Permute", bottom="bottom_rows", top="perm2", order=[0, 3, 1]),
        layer("flat2", "Flatten", bottom="perm2", top="flat2", axis=2),
        layer("flat3", "Flatten", bottom="up3", top="flat3", axis=1, end_axis=2),
        layer("ip2", "InnerProduct", bottom="flat2", top="ip2", num_output=3),
        layer("ip3", "InnerProduct", bottom="flat3", top="ip3", num_output=3),
    ]),
}


def _inputs(shape, n=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("weights_format", ["binary", "h5"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_random_model_matches_caffe(pycaffe, tmp_path, model, weights_format):
    shape, layers = MODELS[model]
    proto, weights = write_model(tmp_path, layers, input_shape=shape,
                                 weights_format=weights_format, seed=3)
    net, *_ = check_model(pycaffe, proto, weights, _inputs(shape), tmp_path / "run")
    if model == "pool_floor_mode":  # Caffe agreed on floor sizes (ceil would give 4x5, 3x3)
        assert net.shapes["pool1"] == (2, 4, 4) and net.shapes["pool2"] == (3, 2, 2)
    if model == "conv_stride_pool_ceil":  # ceil mode: 5x6 -> 2x3 with a clipped last window
        assert net.shapes["pool1"] == (5, 2, 3) and net.shapes["pool2"] == (5, 2, 3)
    if model == "pool_any_geometry":  # Caffe agreed on every size, the clipped ones included
        assert [net.shapes[f"p{i}"][1:] for i in range(1, 7)] == [(15, 7), (16, 8), (30, 14), (16, 15), (11, 5),
                                                                  (8, 4)]
    if model == "pool_any_geometry_floor":
        assert [net.shapes[f"f{i}"][1:] for i in range(1, 4)] == [(33, 8), (22, 9), (34, 9)]


@pytest.mark.parametrize("input_style", ["input_dim", "input_shape"])
def test_legacy_input_fields(pycaffe, tmp_path, input_style):
    shape, layers = MODELS["conv_stride_pool_ceil"]
    proto, weights = write_model(tmp_path, layers, input_shape=shape, input_style=input_style)
    check_model(pycaffe, proto, weights, _inputs(shape, n=2), tmp_path / "run")


# ---------------------------------------------------------------------------- V1 upgrade


def _ir_view(net):
    return {
        "inputs": dict(net.input_shapes),
        "outputs": list(net.outputs),
        "shapes": dict(net.shapes),
        "layers": [(l.name, l.type, list(l.bottoms), list(l.tops), l.params) for l in net.layers],
        "blobs": {l.name: [b.shape for b in l.blobs] for l in net.layers},
    }


@pytest.mark.parametrize("model", ["conv_stride_pool_ceil", "concat_softmax",
                                   "ip_after_conv_dropout", "nonsquare_padded_pool"])
def test_v1_net_matches_caffe_upgrade(pycaffe, tmp_path, model):
    """A V1 (``layers { type: CONVOLUTION }``) net with V1 weights: Caffe upgrades it itself;
    the loader's IR of the V1 file equals its IR of Caffe's upgraded net, and both forwards
    match Caffe."""
    from cmsisgen.loader import load_net

    shape, layers = MODELS[model]
    proto, weights = write_model(tmp_path, layers, input_shape=shape, generation="v1", seed=5)
    assert "layers {" in proto.read_text()
    net_v1, blobs, _, upgraded = check_model(pycaffe, proto, weights, _inputs(shape),
                                             tmp_path / "run", upgraded=True)
    text = upgraded.read_text()
    assert "layer {" in text and "layers {" not in text
    net_up = load_net(upgraded, weights)
    assert _ir_view(net_up) == _ir_view(net_v1)
    for a, b in zip(net_v1.layers, net_up.layers):
        for wa, wb in zip(a.blobs, b.blobs):
            np.testing.assert_array_equal(wa, wb)


# ------------------------------------------------------------------------ CIFAR-10 example


def _example_inputs(n: int = 16) -> np.ndarray:
    from cmsisgen.loader import load_net
    from cmsisgen.loader.mean import read_mean_binaryproto

    tnet = load_net(EXAMPLE / "cifar10_train_test.prototxt", input_shape=(3, 32, 32))
    mean = read_mean_binaryproto(EXAMPLE / tnet.transform.mean_file)[None]
    scale = np.float32(tnet.transform.scale)
    from cmsisgen.dataset import load_dataset

    # The example's own test images: the first n of the full test.zip.
    pixels = load_dataset(EXAMPLE / "images" / "test-1000.zip", limit=n).x
    return ((pixels.transpose(0, 3, 1, 2).astype(np.float32) - mean) * scale).astype(np.float32)


@pytest.mark.parametrize("weights_name", ["cifar10.caffemodel", "cifar10.caffemodel.h5"])
def test_cifar10_example_matches_caffe(pycaffe, tmp_path, weights_name):
    weights = EXAMPLE / weights_name
    if not weights.exists():
        pytest.skip(f"{weights} not present")
    x = _example_inputs()
    net, blobs, ours, _ = check_model(pycaffe, EXAMPLE / "cifar10.prototxt", weights, x,
                                      tmp_path / "run")
    assert net.shapes["pool3"] == (64, 4, 4)
    np.testing.assert_array_equal(ours["prob"].reshape(len(x), -1).argmax(1),
                                  blobs["prob"].argmax(1))


def test_cifar10_v1_example_matches_caffe_upgrade(pycaffe, tmp_path):
    """The example's V1 prototxt: Caffe's own upgrade of it, the loader's view of it and the
    current-format deploy prototxt are one net, and the forward matches Caffe."""
    from cmsisgen.loader import load_net

    v1 = EXAMPLE / "cifar10_v1.prototxt"
    weights = EXAMPLE / "cifar10.caffemodel"
    if not (v1.exists() and weights.exists()):
        pytest.skip(f"{v1.name} or {weights.name} not present")
    net_v1, _, _, upgraded = check_model(pycaffe, v1, weights, _example_inputs(4),
                                         tmp_path / "run", upgraded=True)
    assert _ir_view(load_net(upgraded, weights)) == _ir_view(net_v1)
    assert _ir_view(load_net(EXAMPLE / "cifar10.prototxt", weights)) == _ir_view(net_v1)


def test_convolution_depthwise_is_caffe_grouped_convolution(pycaffe, tmp_path):
    """This Caffe has no ConvolutionDepthwise: the same weights in a Convolution with group ==
    channels (what the forks compute) run in Caffe, blob for blob against our forward of the
    ConvolutionDepthwise net."""
    from cmsisgen.float_forward import forward
    from cmsisgen.loader import load_net

    def layers(depthwise: bool) -> list:
        dw = (dict(type="ConvolutionDepthwise") if depthwise else dict(type="Convolution", num_output=6, group=6))
        kind = dw.pop("type")
        return [layer("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
                layer("dw1", kind, kernel_size=3, stride=2, pad=1, **dw),
                layer("relu1", "ReLU", inplace=True),
                layer("dw2", kind, kernel_h=3, kernel_w=1, pad=[2, 0], dilation=2, bias_term=False, **dw),
                layer("ip1", "InnerProduct", num_output=5)]

    (tmp_path / "dw").mkdir()
    (tmp_path / "grouped").mkdir()
    proto, weights = write_model(tmp_path / "dw", layers(True), input_shape=(3, 9, 8), seed=4)
    twin, twin_weights = write_model(tmp_path / "grouped", layers(False), input_shape=(3, 9, 8), seed=4)
    x = _inputs((3, 9, 8))
    blobs, meta, _ = run_caffe(pycaffe, twin, twin_weights, {"data": x}, tmp_path / "run")
    net = load_net(proto, weights)
    ours = forward(net, x)
    latest = _latest_tensors(net)
    assert set(blobs) == set(latest)
    for name, value in blobs.items():
        np.testing.assert_allclose(ours[latest[name]].reshape(value.shape), value, rtol=RTOL, atol=ATOL, err_msg=name)


# --------------------------------------------------------------------------- detection heads

SSD_HEAD = """
layer { name: "priorbox" type: "PriorBox" bottom: "conv1" bottom: "data" top: "priorbox"
  prior_box_param { min_size: 4.0 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_flat"
  bottom: "priorbox" top: "detection_out"
  detection_output_param { num_classes: 2 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CENTER_SIZE keep_top_k: 10
    confidence_threshold: 0.01 } }
"""


def test_output_cuts_a_real_ssd_head_where_caffe_computes_the_same_blobs(pycaffe, tmp_path):
    """Real Caffe runs the whole SSD-like net (PriorBox, DetectionOutput); the net cut with
    --output at what DetectionOutput reads computes those blobs (and every blob before them,
    conv1 after its in-place ReLU) as Caffe does."""
    from cmsisgen.float_forward import forward
    from cmsisgen.loader import load_net

    trunk = [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1, stride=2),
        layer("relu1", "ReLU", inplace=True),
        layer("loc", "Convolution", "conv1", "loc", num_output=4, kernel_size=1),
        layer("loc_flat", "Flatten", "loc", "loc_flat"),
        layer("conf", "Convolution", "conv1", "conf", num_output=2, kernel_size=1),
        layer("conf_flat", "Flatten", "conf", "conf_flat"),
    ]
    proto, weights = write_model(tmp_path, trunk, input_shape=(3, 8, 8), seed=3)
    ssd = tmp_path / "ssd.prototxt"
    ssd.write_text(proto.read_text() + SSD_HEAD)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    blobs, meta, _ = run_caffe(pycaffe, ssd, weights, {"data": x}, tmp_path / "caffe")
    assert {"PriorBox", "DetectionOutput"} <= {d["type"] for d in meta["layers"]}
    net = load_net(ssd, weights, outputs=["loc_flat", "conf_flat"])
    assert net.outputs == ["loc_flat", "conf_flat"]
    ours = forward(net, x)
    latest = _latest_tensors(net)
    assert set(latest) == {"data", "conv1", "loc", "loc_flat", "conf", "conf_flat"}
    for name, tensor in latest.items():
        np.testing.assert_allclose(ours[tensor].reshape(blobs[name].shape), blobs[name], rtol=RTOL, atol=ATOL,
                                   err_msg=name)
