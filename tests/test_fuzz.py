"""Property-based fuzzing of the loaders: mutated prototxt, .caffemodel and .caffemodel.h5
bytes either load or fail with a CmsisgenError -- never another exception.

Seeds are valid files built by tests/caffe_models.py (current and V1 nets, Data layers
with transform_param, binary and HDF5 weights); hypothesis mutates them with byte flips,
truncations, insertions, deletions, duplicated chunks and, for the text format, numbers
replaced by extreme ones. The runs are derandomized so that CI is reproducible, and sized
so that a few thousand examples run in about a minute. A smaller run goes through the CLI
(``cmsisgen inspect``) and checks the one-line error and the exit status (0 or 2).
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_models import (build_net, layer, make_weights, write_caffemodel, write_h5, write_mean_binaryproto,
                          write_prototxt)
from cmsisgen.cli import main
from cmsisgen.errors import CmsisgenError
from cmsisgen.ir import Net
from cmsisgen.loader import load_net
from cmsisgen.proto import schema

#: Examples per property; a few thousand in all (the issue's CI bar).
PROTOTXT_EXAMPLES = 2000
CAFFEMODEL_EXAMPLES = 2000
RESTRUCTURED_EXAMPLES = 1000
MODEL_CHECK_EXAMPLES = 1000
HDF5_EXAMPLES = 300
MEAN_EXAMPLES = 500
CLI_EXAMPLES = 200
COMPILE_EXAMPLES = 300


def fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


NETS = {
    "chain": ([layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
               layer("relu1", "ReLU", inplace=True),
               layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
               layer("ip1", "InnerProduct", num_output=5),
               layer("prob", "Softmax")], "current"),
    "branches": ([layer("conv1", "Convolution", num_output=4, kernel_size=1),
                  layer("a", "Pooling", "conv1", "a", pool="AVE", kernel_size=2, stride=2),
                  layer("b", "Pooling", "conv1", "b", pool="MAX", kernel_size=2, stride=2),
                  layer("cat", "Concat", ["a", "b"], "cat"),
                  layer("drop", "Dropout", inplace=True),
                  layer("flat", "Flatten"),
                  layer("ip1", "InnerProduct", num_output=3)], "current"),
    "v1": ([layer("conv1", "Convolution", num_output=2, kernel_size=3, stride=2),
            layer("relu1", "ReLU", inplace=True),
            layer("ip1", "InnerProduct", num_output=3)], "v1"),
}


class Seeds:
    """Valid seed files, written once per session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.prototxt: dict[str, bytes] = {}
        self.caffemodel: dict[str, bytes] = {}
        self.h5: dict[str, bytes] = {}
        for name, (layers, generation) in NETS.items():
            proto = write_prototxt(folder / f"{name}.prototxt", build_net(layers, (3, 6, 6), generation=generation))
            blobs = make_weights(proto, layers)
            model = write_caffemodel(folder / f"{name}.caffemodel", layers, blobs, generation=generation)
            h5 = write_h5(folder / f"{name}.caffemodel.h5", blobs)
            self.prototxt[name] = proto.read_bytes()
            self.caffemodel[name] = model.read_bytes()
            self.h5[name] = h5.read_bytes()
            assert isinstance(load_net(proto, model), Net) and isinstance(load_net(proto, h5), Net)
        # A training prototxt: data layers per phase with transform_param, a loss layer.
        self.prototxt["train_test"] = b"""name: "tt"
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { crop_size: 6 mirror: true mean_value: 104 } }
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 6 mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.5 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 5 } }
layer { name: "acc" type: "Accuracy" bottom: "ip1" bottom: "label" top: "acc" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""
        (folder / "train_test.prototxt").write_bytes(self.prototxt["train_test"])


@pytest.fixture(scope="session")
def seeds(tmp_path_factory) -> Seeds:
    return Seeds(tmp_path_factory.mktemp("fuzz_seeds"))


@st.composite
def mutated(draw, seeds: dict[str, bytes], text: bool = False, numbers_only: bool = False) -> bytes:
    """A seed with 1..4 random mutations (``numbers_only``: only numbers replaced, so the
    text still parses and the checks behind the parser are reached)."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 4))):
        kinds = ["flip", "truncate", "insert", "delete", "duplicate", "set"] + (["number"] * 2 if text else [])
        kind = "number" if numbers_only else draw(st.sampled_from(kinds))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        elif kind == "number":
            numbers = [m.span() for m in re.finditer(rb"(?<=: )-?\d+(\.\d+)?(e-?\d+)?", bytes(data))]
            if numbers:
                start, end = draw(st.sampled_from(numbers))
                value = draw(st.sampled_from([b"0", b"-1", b"-7", b"1", b"2", b"3", b"4", b"5", b"7", b"9",
                                              b"16", b"33", b"65536", b"2147483647", b"4294967296",
                                              b"99999999999999999999", b"1e400", b"nan", b"inf", b"-0.0",
                                              b"0.25"]))
                data[start:end] = value
    return bytes(data)


EXTREME_INT64 = st.sampled_from([0, 1, 2, 3, 4, 5, 27, -1, 2**31 - 1, 2**32, 2**40, 2**62, 2**63 - 1, -2**63])
EXTREME_INT32 = st.sampled_from([0, 1, 2, 3, 4, -1, 2**31 - 1, -2**31])
ODD_FLOATS = st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 1e38, -1e-45])


@st.composite
def restructured(draw, seeds: dict[str, bytes]) -> bytes:
    """A seed .caffemodel decoded, its blobs and layer names changed, and encoded again:
    reaches the shape, size and name checks that random bytes rarely get past."""
    net = schema.NetParameter()
    net.ParseFromString(seeds[draw(st.sampled_from(sorted(seeds)))])
    layers = list(net.layer) or list(net.layers)
    trained = [lay for lay in layers if len(lay.blobs)]
    for _ in range(draw(st.integers(1, 3))):
        lay = draw(st.sampled_from(trained))
        kind = draw(st.sampled_from(["dims", "legacy", "data", "double", "odd", "name", "drop", "add"]))
        if not len(lay.blobs):
            kind = "add"
        blob = lay.blobs[draw(st.integers(0, len(lay.blobs) - 1))] if len(lay.blobs) else None
        if kind == "dims":
            blob.shape.Clear()
            blob.shape.dim.extend(draw(st.lists(EXTREME_INT64, max_size=5)))
        elif kind == "legacy":
            blob.ClearField("shape")
            blob.num, blob.channels, blob.height, blob.width = (draw(EXTREME_INT32) for _ in range(4))
        elif kind == "data":
            del blob.data[draw(st.integers(0, len(blob.data))):]
        elif kind == "double":
            values = list(blob.data)
            blob.ClearField("data")
            blob.double_data.extend(values[:draw(st.integers(0, len(values)))])
        elif kind == "odd" and len(blob.data):
            blob.data[draw(st.integers(0, len(blob.data) - 1))] = draw(ODD_FLOATS)
        elif kind == "name":
            lay.name = draw(st.sampled_from([other.name for other in layers] + ["", "x\u00e9", "a*/b"]))
        elif kind == "drop":
            del lay.blobs[-1]
        elif kind == "add":
            lay.blobs.add().data.extend(draw(st.lists(ODD_FLOATS, max_size=4)))
    return net.SerializeToString()


def load_outcome(prototxt: Path, weights: Path | None) -> None:
    """The property: a Net or a CmsisgenError with a one-line message naming a file."""
    try:
        net = load_net(prototxt, weights)
    except CmsisgenError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert message.startswith((str(prototxt), str(weights), "--input-shape")), message
        return
    assert isinstance(net, Net)


def _file(folder: Path, name: str, data: bytes) -> Path:
    """A per-content file name, so hypothesis' replays never read a stale file."""
    path = folder / f"{zlib.crc32(data):08x}_{len(data)}_{name}"
    path.write_bytes(data)
    return path


def test_mutated_prototxt_loads_or_fails_cleanly(seeds):
    @fuzz_settings(PROTOTXT_EXAMPLES)
    @given(mutated(seeds.prototxt, text=True))
    def check(data):
        path = _file(seeds.folder, "m.prototxt", data)
        try:
            load_outcome(path, None)
        finally:
            path.unlink()

    check()


def test_mutated_prototxt_with_weights_loads_or_fails_cleanly(seeds):
    """Mutated text against the seed weights: shape and name checks are exercised too."""
    @fuzz_settings(PROTOTXT_EXAMPLES // 4)
    @given(st.sampled_from(sorted(NETS)), st.data())
    def check(name, data):
        text = data.draw(mutated({name: seeds.prototxt[name]}, text=True))
        path = _file(seeds.folder, "mw.prototxt", text)
        try:
            load_outcome(path, seeds.folder / f"{name}.caffemodel")
        finally:
            path.unlink()

    check()


def test_mutated_prototxt_through_the_model_checks(seeds):
    """Past the loader: the mapper rules and the preprocessing (data layers' transform_param)
    that ``compile`` checks before reading any image."""
    from cmsisgen.pipeline import Model, load_model

    @fuzz_settings(MODEL_CHECK_EXAMPLES)
    @given(st.sampled_from(["chain", "train_test"]), st.data())
    def check(name, data):
        text = data.draw(mutated({name: seeds.prototxt[name]}, text=True))
        path = _file(seeds.folder, "mc.prototxt", text)
        weights = seeds.folder / "chain.caffemodel"
        try:
            model = load_model(path, weights)
            assert isinstance(model, Model)
        except CmsisgenError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith((str(path), str(weights), "--")), message
        finally:
            path.unlink()

    check()


def test_mutated_caffemodel_loads_or_fails_cleanly(seeds):
    @fuzz_settings(CAFFEMODEL_EXAMPLES)
    @given(st.sampled_from(sorted(NETS)), st.data())
    def check(name, data):
        model = data.draw(mutated({name: seeds.caffemodel[name]}))
        path = _file(seeds.folder, "m.caffemodel", model)
        try:
            load_outcome(seeds.folder / f"{name}.prototxt", path)
        finally:
            path.unlink()

    check()


def test_restructured_caffemodel_loads_or_fails_cleanly(seeds):
    @fuzz_settings(RESTRUCTURED_EXAMPLES)
    @given(st.sampled_from(sorted(NETS)), st.data())
    def check(name, data):
        model = data.draw(restructured({name: seeds.caffemodel[name]}))
        path = _file(seeds.folder, "r.caffemodel", model)
        try:
            load_outcome(seeds.folder / f"{name}.prototxt", path)
        finally:
            path.unlink()

    check()


def test_mutated_hdf5_loads_or_fails_cleanly(seeds):
    @fuzz_settings(HDF5_EXAMPLES)
    @given(st.sampled_from(sorted(NETS)), st.data())
    def check(name, data):
        model = data.draw(mutated({name: seeds.h5[name]}))
        path = _file(seeds.folder, "m.caffemodel.h5", model)
        try:
            load_outcome(seeds.folder / f"{name}.prototxt", path)
        finally:
            path.unlink()

    check()


def test_mutated_mean_binaryproto_loads_or_fails_cleanly(tmp_path_factory):
    import numpy as np

    from cmsisgen.loader.mean import read_mean_binaryproto

    folder = tmp_path_factory.mktemp("fuzz_mean")
    mean = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    means = {legacy: write_mean_binaryproto(folder / f"m{legacy}.binaryproto", mean, legacy=legacy).read_bytes()
             for legacy in (True, False)}
    seeds = {str(k): v for k, v in means.items()}

    @fuzz_settings(MEAN_EXAMPLES)
    @given(mutated(seeds))
    def check(data):
        path = _file(folder, "m.binaryproto", data)
        try:
            arr = read_mean_binaryproto(path)
            assert arr.ndim == 3 and arr.dtype == np.float32
        except CmsisgenError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        finally:
            path.unlink()

    check()


def test_mutated_files_through_the_cli(seeds):
    """``cmsisgen inspect`` on mutated files: exit 0, or exit 2 with exactly one stderr line."""
    @fuzz_settings(CLI_EXAMPLES)
    @given(st.sampled_from(sorted(NETS)), st.booleans(), st.data())
    def check(name, mutate_text, data):
        if mutate_text:
            proto = _file(seeds.folder, "c.prototxt", data.draw(mutated({name: seeds.prototxt[name]}, text=True)))
            weights = seeds.folder / f"{name}.caffemodel"
        else:
            proto = seeds.folder / f"{name}.prototxt"
            weights = _file(seeds.folder, "c.caffemodel", data.draw(mutated({name: seeds.caffemodel[name]})))
        try:
            result = CliRunner().invoke(main, ["inspect", str(proto), str(weights)])
        finally:
            (weights if not mutate_text else proto).unlink()
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            assert result.stdout == ""
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("cmsisgen: error: "), result.stderr

    check()


#: A net whose weights do not depend on the spatial sizes, strides, pads or pooling: most
#: number mutations keep the weights valid and reach shapes, the mapper, quantizer and codegen.
SPATIAL = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1, stride=1),
           layer("relu1", "ReLU", inplace=True),
           layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
           layer("conv2", "Convolution", num_output=4, kernel_size=1),
           layer("pool2", "Pooling", pool="AVE", global_pooling=True),
           layer("prob", "Softmax")]


def test_mutated_prototxt_through_compile(tmp_path_factory):
    """Whole compiles of mutated prototxts (the weights stay valid for most mutations):
    exit 0 with the files written, or exit 2 with one line on stderr -- never an internal
    error (exit 1)."""
    folder = tmp_path_factory.mktemp("fuzz_compile")
    proto = write_prototxt(folder / "s.prototxt", build_net(SPATIAL, (3, 8, 8)))
    weights = write_caffemodel(folder / "s.caffemodel", SPATIAL, make_weights(proto, SPATIAL))
    seed = {"spatial": proto.read_bytes()}

    @fuzz_settings(COMPILE_EXAMPLES)
    @given(mutated(seed, text=True, numbers_only=True))
    def check(text):
        path = _file(folder, "c.prototxt", text)
        out = folder / "out"
        try:
            result = CliRunner().invoke(main, ["-q", "compile", str(path), str(weights), "-o", str(out)])
        finally:
            path.unlink()
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("cmsisgen: error: "), result.stderr
        else:
            assert (out / "nn.c").is_file()

    check()
