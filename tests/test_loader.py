"""Loader: schema, prototxt generations, weights formats, phases, SSA, mean files, errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from caffe_models import (build_net, layer, write_caffemodel, write_h5, write_mean_binaryproto,
                          write_model, write_prototxt, write_train_test)
from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.loader import load_net
from cmsisgen.loader.mean import parse_mean_option, read_mean_binaryproto
from cmsisgen.loader.weights import read_weights
from cmsisgen.proto import schema

RNG = np.random.default_rng(1)
W1 = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B1 = RNG.standard_normal(4).astype(np.float32)
W2 = RNG.standard_normal((10, 64)).astype(np.float32)
B2 = RNG.standard_normal(10).astype(np.float32)

#: The loader's reason for a layer type without a kernel: every supported type, by name.
UNSUPPORTED = ("not supported by cmsisgen; supported layer types: AbsVal, ArgMax, BNLL, BatchNorm, Clip, Concat, "
               "Convolution, ConvolutionDepthwise, Crop, Deconvolution, Dropout, ELU, Eltwise, Flatten, InnerProduct, "
               "LRN, PReLU, Permute, Pooling, Power, ReLU, ReLU6, Reshape, Scale, ShuffleChannel, Sigmoid, Slice, "
               "Softmax, Split, TanH, Threshold, Upsample (plus Input and data layers; Accuracy and loss layers are "
               "dropped)")


def small_net():
    return [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1, weights=[W1, B1]),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("ip1", "InnerProduct", num_output=10, weights=[W2, B2]),
        layer("prob", "Softmax"),
    ]


# --- schema -----------------------------------------------------------------------

def test_embedded_descriptor_matches_proto():
    pytest.importorskip("grpc_tools")
    import importlib.util

    from google.protobuf import descriptor_pb2

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("regen", root / "scripts" / "regen_schema.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    fresh = descriptor_pb2.FileDescriptorProto.FromString(regen.compile_descriptor())
    embedded = descriptor_pb2.FileDescriptorProto.FromString(schema.SERIALIZED_DESCRIPTOR)
    assert fresh == embedded, "run scripts/regen_schema.py"


def test_schema_uses_private_pool():
    from google.protobuf import descriptor_pool

    assert schema.NetParameter.DESCRIPTOR.file.pool is schema.POOL
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("cmsisgen.caffe.NetParameter")


def test_caffe_field_numbers():
    f = schema.LayerParameter.DESCRIPTOR.fields_by_name
    assert (f["convolution_param"].number, f["pooling_param"].number, f["input_param"].number,
            f["transform_param"].number, f["blobs"].number) == (106, 121, 143, 100, 7)
    v1 = schema.V1LayerParameter.DESCRIPTOR
    assert v1.fields_by_name["blobs"].number == 6
    assert v1.enum_types_by_name["LayerType"].values_by_name["INNER_PRODUCT"].number == 14
    assert schema.NetParameter.DESCRIPTOR.fields_by_name["layer"].number == 100
    assert schema.PoolingParameter.DESCRIPTOR.fields_by_name["round_mode"].number == 13


# --- generations x weight formats ---------------------------------------------------

@pytest.mark.parametrize("generation", ["current", "v1"])
@pytest.mark.parametrize("fmt", ["binary", "h5"])
def test_roundtrip(tmp_path, generation, fmt):
    proto, weights = write_model(tmp_path, small_net(), (3, 8, 8), generation=generation,
                                 weights_format=fmt)
    net = load_net(proto, weights)
    assert net.name == "testnet"
    assert net.input_shapes == {"data": (3, 8, 8)}
    assert [lay.type for lay in net.layers] == ["Convolution", "ReLU", "Pooling",
                                                "InnerProduct", "Softmax"]
    conv, relu, pool, ip, prob = net.layers
    assert conv.params == ir.ConvParams(num_output=4, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)
    assert pool.params == ir.PoolParams("max", 2, 2, 2, 2)
    assert ip.params == ir.InnerProductParams(10)
    assert relu.bottoms == ["conv1"] and relu.tops == ["conv1@1"]
    assert pool.bottoms == ["conv1@1"]
    np.testing.assert_array_equal(conv.blobs[0], W1)
    np.testing.assert_array_equal(conv.blobs[1], B1)
    np.testing.assert_array_equal(ip.blobs[0], W2)
    assert ip.blobs[0].dtype == np.float32 and ip.blobs[1].shape == (10,)
    assert net.outputs == ["prob"]
    assert net.shapes["pool1"] == (4, 4, 4) and net.shapes["prob"] == (10, 1, 1)
    assert net.source == str(proto)


def test_v1_blobs_have_legacy_4d_dims(tmp_path):
    proto, weights = write_model(tmp_path, small_net(), generation="current",
                                 weights_generation="v1")
    raw = schema.NetParameter.FromString(weights.read_bytes())
    ip = [lay for lay in raw.layers if lay.name == "ip1"][0]
    assert (ip.blobs[0].num, ip.blobs[0].channels, ip.blobs[0].height, ip.blobs[0].width) == (1, 1, 10, 64)
    assert not ip.blobs[0].HasField("shape")
    assert read_weights(weights)["ip1"][1].shape == (1, 1, 1, 10)
    net = load_net(proto, weights)  # reshaped to Caffe's (O, I) and (O,)
    np.testing.assert_array_equal(net.layers[3].blobs[0], W2)
    assert net.layers[3].blobs[1].shape == (10,)


@pytest.mark.parametrize("style", ["layer", "input_dim", "input_shape"])
def test_input_styles(tmp_path, style):
    net = build_net(small_net(), (3, 8, 8), input_style=style)
    n = load_net(write_prototxt(tmp_path / "m.prototxt", net))
    assert n.input_shapes == {"data": (3, 8, 8)}
    assert all(not lay.blobs for lay in n.layers)


def test_double_data_and_extra_layers(tmp_path):
    proto, _ = write_model(tmp_path, small_net())
    net = schema.NetParameter()
    for name, arrays in {"conv1": [W1, B1], "ip1": [W2, B2], "unused": [B1]}.items():
        lay = net.layer.add(name=name, type="X")
        for a in arrays:
            blob = lay.blobs.add()
            blob.shape.dim.extend(a.shape)
            blob.double_data.extend(a.astype(np.float64).ravel().tolist())
    wpath = tmp_path / "d.caffemodel"
    wpath.write_bytes(net.SerializeToString())
    n = load_net(proto, wpath)
    np.testing.assert_array_equal(n.layers[0].blobs[0], W1)


def test_h5_detected_by_content(tmp_path):
    proto, _ = write_model(tmp_path, small_net())
    h5 = write_h5(tmp_path / "w.bin", {"conv1": [W1, B1], "ip1": [W2, B2]})
    np.testing.assert_array_equal(load_net(proto, h5).layers[3].blobs[1], B2)


# --- graph structure ---------------------------------------------------------------

def test_inplace_chain_versions(tmp_path):
    layers = [
        layer("conv1", "Convolution", num_output=4, kernel_size=3),
        layer("relu1", "ReLU", inplace=True),
        layer("drop1", "Dropout", inplace=True, dropout_ratio=0.3),
        layer("ip1", "InnerProduct", "conv1", num_output=3),
        layer("relu2", "ReLU", inplace=True),
    ]
    net = load_net(write_prototxt(tmp_path / "m.prototxt", build_net(layers)))
    assert [(lay.bottoms, lay.tops) for lay in net.layers] == [
        (["data"], ["conv1"]), (["conv1"], ["conv1@1"]), (["conv1@1"], ["conv1@2"]),
        (["conv1@2"], ["ip1"]), (["ip1"], ["ip1@1"])]
    assert net.outputs == ["ip1@1"]
    assert net.producer("conv1@2").name == "drop1"


def test_branches_split_concat_outputs(tmp_path):
    layers = [
        layer("split", "Split", "data", ["s1", "s2"]),
        layer("a", "Convolution", "s1", num_output=2, kernel_size=1),
        layer("b", "Convolution", "s2", num_output=3, kernel_h=3, kernel_w=1, pad_h=1, pad_w=0),
        layer("cat", "Concat", ["a", "b"], concat_dim=1),
        layer("pool", "Pooling", "cat", pool="AVE", global_pooling=True),
        layer("side", "Pooling", "a", kernel_size=3, stride=2, round_mode="FLOOR"),
        layer("flat", "Flatten", "pool"),
    ]
    net = load_net(write_prototxt(tmp_path / "m.prototxt", build_net(layers, (3, 8, 8))))
    assert net.shapes["cat"] == (5, 8, 8)
    assert net.layers[2].params == ir.ConvParams(3, 3, 1, pad_h=1, pad_w=0)
    assert net.layers[3].params == ir.ConcatParams(1)
    assert net.layers[4].params == ir.PoolParams("ave", 8, 8, global_pooling=True)
    assert net.layers[5].params.ceil_mode is False and net.shapes["side"] == (2, 3, 3)
    assert net.outputs == ["side", "flat"]
    assert net.shapes["flat"] == (5, 1, 1)


def test_fork_ceil_mode_false(tmp_path):
    text = ('input: "data" input_dim: 1 input_dim: 1 input_dim: 16 input_dim: 16\n'
            'layer { name: "p" type: "Pooling" bottom: "data" top: "p"\n'
            '  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }\n')
    (tmp_path / "m.prototxt").write_text(text)
    net = load_net(tmp_path / "m.prototxt")
    assert net.layers[0].params.ceil_mode is False and net.shapes["p"] == (1, 7, 7)


def test_unknown_fields_tolerated(tmp_path):
    text = ('name: "n" force_backward: true debug_info: true\n'
            'layer { name: "data" type: "Input" top: "data"\n'
            '  input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n'
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
            '  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 }\n'
            '  convolution_param { num_output: 2 kernel_size: 3 engine: CAFFE\n'
            '    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0 } } }\n')
    (tmp_path / "m.prototxt").write_text(text)
    net = load_net(tmp_path / "m.prototxt")
    assert net.shapes["c"] == (2, 2, 2)


# --- train/test prototxts ----------------------------------------------------------

@pytest.mark.parametrize("generation", ["current", "v1"])
def test_train_test_keeps_test_phase(tmp_path, generation):
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3),
              layer("drop_train", "Dropout", inplace=True, include="TRAIN"),
              layer("relu1", "ReLU", inplace=True, exclude="TRAIN"),
              layer("ip1", "InnerProduct", num_output=5)]
    proto = write_train_test(tmp_path, layers, crop_size=24, mean_value=(104, 117, 123),
                             scale=0.5, generation=generation)
    net = load_net(proto)
    assert net.input_shapes == {"data": (3, 24, 24)}
    assert [lay.name for lay in net.layers] == ["conv1", "relu1", "ip1"]
    assert net.layers[1].tops == ["conv1@1"]
    assert net.outputs == ["ip1"]
    assert "label" not in net.shapes
    assert net.transform == ir.Transform(mean_file=None, mean_values=(104.0, 117.0, 123.0),
                                         scale=0.5, crop_size=24)


def test_data_layer_needs_input_shape(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_train_test(Path("."), [layer("ip1", "InnerProduct", num_output=5)],
                     mean_file="mean.binaryproto")
    with pytest.raises(CmsisgenError, match=r"^train_test.prototxt: layer 'data' \(Data\): "
                                            r"the input size is not in the prototxt"):
        load_net("train_test.prototxt")
    net = load_net("train_test.prototxt", input_shape=(3, 32, 32))
    assert net.input_shapes == {"data": (3, 32, 32)}
    assert net.transform == ir.Transform(mean_file="mean.binaryproto")


def test_data_layer_takes_its_shape_from_the_mean_file(tmp_path, monkeypatch):
    """As Caffe does: a Data layer without crop_size is as large as its mean file (issue 12, item 3);
    a mean file given to the compile takes the place of the prototxt's."""
    monkeypatch.chdir(tmp_path)
    write_train_test(Path("."), [layer("ip1", "InnerProduct", num_output=5)], mean_file="mean.binaryproto")
    write_mean_binaryproto(Path("mean.binaryproto"), np.zeros((3, 12, 10), dtype=np.float32))
    assert load_net("train_test.prototxt").input_shapes == {"data": (3, 12, 10)}
    other = write_mean_binaryproto(Path("other.binaryproto"), np.zeros((1, 6, 6), dtype=np.float32))
    assert load_net("train_test.prototxt", mean_file=other).input_shapes == {"data": (1, 6, 6)}
    assert load_net("train_test.prototxt", input_shape=(3, 8, 8)).input_shapes == {"data": (3, 8, 8)}
    Path("mean.binaryproto").unlink()
    with pytest.raises(CmsisgenError) as e:
        load_net("train_test.prototxt")
    assert str(e.value) == ("train_test.prototxt: layer 'data' (Data): the input size is not in the prototxt "
                            "(no crop_size) nor in a mean file; give it as input_shape C,H,W")
    assert str(e.value.named(lambda setting: "--input-shape")).endswith("give it as --input-shape C,H,W")


def test_image_data_and_legacy_data_param(tmp_path):
    text = ('layers { name: "d" type: IMAGE_DATA top: "data" top: "label"\n'
            '  image_data_param { source: "x" new_height: 10 new_width: 12 is_color: false\n'
            '    mean_file: "m.binaryproto" scale: 0.25 } }\n'
            'layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip"\n'
            '  inner_product_param { num_output: 2 } }\n'
            'layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip" bottom: "label" }\n')
    (tmp_path / "m.prototxt").write_text(text)
    net = load_net(tmp_path / "m.prototxt")
    assert net.input_shapes == {"data": (1, 10, 12)}
    assert net.transform == ir.Transform(mean_file="m.binaryproto", scale=0.25)
    assert net.outputs == ["ip"]


# --- mean files --------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [True, False])
def test_mean_binaryproto(tmp_path, legacy):
    mean = RNG.uniform(0, 255, (3, 5, 6)).astype(np.float32)
    path = write_mean_binaryproto(tmp_path / "mean.binaryproto", mean, legacy=legacy)
    out = read_mean_binaryproto(path)
    assert out.shape == (3, 5, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, mean)


def test_parse_mean_option(tmp_path, monkeypatch):
    assert parse_mean_option("104,117,123") == {"mean_file": None, "mean_values": (104.0, 117.0, 123.0)}
    assert parse_mean_option(" 104, 117 ,123 ") == {"mean_file": None, "mean_values": (104.0, 117.0, 123.0)}
    assert parse_mean_option("128") == {"mean_file": None, "mean_values": (128.0,)}
    f = write_mean_binaryproto(tmp_path / "m.binaryproto", np.zeros((3, 2, 2)))
    assert parse_mean_option(str(f)) == {"mean_file": str(f), "mean_values": ()}
    assert parse_mean_option(f" {f} ") == {"mean_file": str(f), "mean_values": ()}
    t = dataclasses.replace(ir.Transform(mean_file="x"), **parse_mean_option("1,2,3"))
    assert t.mean_file is None and t.mean_values == (1.0, 2.0, 3.0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "128").write_bytes(b"")  # an existing file wins over a number
    assert parse_mean_option("128") == {"mean_file": "128", "mean_values": ()}


@pytest.mark.parametrize("text, message", [
    ("", "--mean '': empty; give a mean.binaryproto file or per-channel values such as 104,117,123"),
    ("   ", "--mean '   ': empty; give a mean.binaryproto file or per-channel values such as 104,117,123"),
    (".", "--mean '.': is a directory; give a mean.binaryproto file or per-channel values such as "
          "104,117,123"),
    ("sub", "--mean 'sub': is a directory; give a mean.binaryproto file or per-channel values such as "
            "104,117,123"),
    ("104,117,", "--mean '104,117,': empty value in the list; give numbers such as 104,117,123"),
    (",104", "--mean ',104': empty value in the list; give numbers such as 104,117,123"),
    ("104,,117", "--mean '104,,117': empty value in the list; give numbers such as 104,117,123"),
    ("a,b,c", "--mean 'a,b,c': neither an existing file nor a list of numbers such as 104,117,123"),
    ("104;117;123", "--mean '104;117;123': neither an existing file nor a list of numbers such as "
                    "104,117,123"),
    ("nope.binaryproto", "--mean 'nope.binaryproto': neither an existing file nor a list of numbers "
                         "such as 104,117,123"),
    ("1,nan,3", "--mean '1,nan,3': mean values must be finite numbers"),
    ("inf", "--mean 'inf': mean values must be finite numbers"),
    ("1,\x01", "--mean '1,\\x01': neither an existing file nor a list of numbers such as 104,117,123"),
])
def test_parse_mean_option_errors(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(CmsisgenError) as e:
        parse_mean_option(text)
    # The library names its setting; the CLI names its option (errors.SettingError).
    assert str(e.value) == message.replace("--mean '", "mean '", 1)
    assert str(e.value.named(lambda setting: "--mean")) == message


def test_parse_mean_option_long_list():
    values = ",".join(["1"] * 300)  # longer than a file name may be: not an OSError
    assert parse_mean_option(values)["mean_values"] == (1.0,) * 300


def test_bad_mean_file(tmp_path):
    (tmp_path / "m.binaryproto").write_bytes(b"\xff\xff\xff")
    with pytest.raises(CmsisgenError, match="m.binaryproto: not a readable mean.binaryproto"):
        read_mean_binaryproto(tmp_path / "m.binaryproto")


# --- errors ------------------------------------------------------------------------

def test_unsupported_layer_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layers = [layer("conv1", "Convolution", num_output=4, kernel_size=3),
              layer("norm1", "MVN")]
    write_prototxt(Path("model.prototxt"), build_net(layers))
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt")
    assert str(e.value) == ("model.prototxt: layer 'norm1' (MVN): " + UNSUPPORTED)


def test_every_unsupported_layer_type_at_once(tmp_path, monkeypatch):
    """One refusal names every unsupported type of the net, with the first layer of each (issue 12, item 4)."""
    monkeypatch.chdir(tmp_path)
    Path("model.prototxt").write_text(
        'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
        'layer { name: "up" type: "SPP" bottom: "data" top: "up" }\n'
        'layer { name: "conv1" type: "Convolution" bottom: "up" top: "conv1" '
        'convolution_param { num_output: 4 kernel_size: 3 } }\n'
        'layer { name: "norm1" type: "MVN" bottom: "conv1" top: "norm1" }\n'
        'layer { name: "up2" type: "SPP" bottom: "norm1" top: "up2" }\n'
        'layer { name: "exp" type: "Exp" bottom: "up2" top: "up2" }\n')
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt")
    assert str(e.value) == ("model.prototxt: 3 layer types are " + UNSUPPORTED.replace(
        "cmsisgen;", "cmsisgen (layer 'up' (SPP), layer 'norm1' (MVN), layer 'exp' (Exp));"))


def test_unsupported_v1_layer_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = ('input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n'
            'layers { name: "exp" type: EXP bottom: "data" top: "exp" }\n')
    Path("v1.prototxt").write_text(text)
    with pytest.raises(CmsisgenError, match=r"^v1.prototxt: layer 'exp' \(Exp\): not supported"):
        load_net("v1.prototxt")


def test_leaky_relu_keeps_its_slope(tmp_path):
    layers = [layer("relu1", "ReLU", inplace=True, negative_slope=0.25)]
    p = write_prototxt(tmp_path / "m.prototxt", build_net(layers))
    assert load_net(p).layers[0].params == ir.NoParams(negative_slope=0.25)


def test_syntax_error_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.prototxt").write_text('name: "x"\nlayer {\n  name: "a"\n  convolution_param { num_output: abc }\n}\n')
    with pytest.raises(CmsisgenError) as e:
        load_net("bad.prototxt")
    assert str(e.value) == ("bad.prototxt:4:35: syntax error: '  convolution_param { num_output: abc }': "
                            "Couldn't parse integer: abc")
    assert "\n" not in str(e.value)


def test_missing_prototxt(tmp_path):
    with pytest.raises(CmsisgenError, match="cannot read prototxt"):
        load_net(tmp_path / "none.prototxt")


def test_weight_shape_mismatch_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proto, _ = write_model(Path("."), small_net())
    wrong = np.zeros((32, 3, 5, 5), np.float32)
    layers = small_net()
    write_caffemodel(Path("weights.caffemodel"), layers, {"conv1": [wrong, B1], "ip1": [W2, B2]})
    with pytest.raises(CmsisgenError) as e:
        load_net(proto, "weights.caffemodel")
    assert str(e.value) == ("weights.caffemodel: layer 'conv1' (Convolution) blob 0 has shape (32, 3, 5, 5), "
                            "the prototxt needs (4, 3, 3, 3)")


def test_missing_layer_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proto, _ = write_model(Path("."), small_net())
    write_caffemodel(Path("w.caffemodel"), small_net(), {"conv1": [W1, B1]})
    with pytest.raises(CmsisgenError, match=r"^w.caffemodel: no weights for layer 'ip1' "
                                            r"\(InnerProduct\), which needs 2 blobs$"):
        load_net(proto, "w.caffemodel")
    write_caffemodel(Path("w.caffemodel"), small_net(), {"conv1": [W1], "ip1": [W2, B2]})
    with pytest.raises(CmsisgenError, match=r"layer 'conv1' \(Convolution\) has 1 blobs, the prototxt needs 2"):
        load_net(proto, "w.caffemodel")


@pytest.mark.parametrize("name,content", [("w.caffemodel", b"\x0a\xff\xff\xff"),
                                          ("w.caffemodel", b""),
                                          ("w.caffemodel.h5", b"not hdf5 at all")])
def test_corrupt_weights(tmp_path, monkeypatch, name, content):
    monkeypatch.chdir(tmp_path)
    proto, _ = write_model(Path("."), small_net())
    Path(name).write_bytes(content)
    with pytest.raises(CmsisgenError, match=rf"^{name}: not a readable"):
        load_net(proto, name)


def test_missing_weights_file(tmp_path):
    proto, _ = write_model(tmp_path, small_net())
    with pytest.raises(CmsisgenError, match="weights file not found"):
        load_net(proto, tmp_path / "nope.caffemodel")


def test_unknown_bottom_and_duplicate_top(tmp_path):
    p = write_prototxt(tmp_path / "m.prototxt",
                       build_net([layer("ip", "InnerProduct", "label", num_output=2)]))
    with pytest.raises(CmsisgenError, match=r"layer 'ip' \(InnerProduct\): input 'label' is not produced"):
        load_net(p)
    p = write_prototxt(tmp_path / "m.prototxt",
                       build_net([layer("a", "ReLU", "data", "x"), layer("b", "ReLU", "data", "x")]))
    with pytest.raises(CmsisgenError, match=r"layer 'b' \(\w+\): top 'x' is already produced"):
        load_net(p)


def test_v0_layers_rejected(tmp_path):
    text = ('input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n'
            'layers { layer { name: "c" type: "conv" num_output: 2 kernelsize: 3 }\n'
            '  bottom: "data" top: "c" }\n')
    (tmp_path / "v0.prototxt").write_text(text)
    with pytest.raises(CmsisgenError, match="V0 format.*upgrade_net_proto_text"):
        load_net(tmp_path / "v0.prototxt")


def test_memory_data_shape(tmp_path):
    text = ('layer { name: "d" type: "MemoryData" top: "data" top: "label"\n'
            '  memory_data_param { batch_size: 2 channels: 1 height: 6 width: 5 } }\n'
            'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
            '  inner_product_param { num_output: 2 bias_term: false } }\n'
            'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" }\n')
    (tmp_path / "m.prototxt").write_text(text)
    net = load_net(tmp_path / "m.prototxt")
    assert net.input_shapes == {"data": (1, 6, 5)}
    assert net.layers[0].params == ir.InnerProductParams(2, bias_term=False)
    assert net.outputs == ["ip"]


@pytest.mark.parametrize("lay,msg", [
    (layer("p", "Pooling", pool="STOCHASTIC", kernel_size=2), r"'p' \(Pooling\): STOCHASTIC pooling"),
    (layer("p", "Pooling", stride=2), r"'p' \(Pooling\): pooling_param needs kernel_size"),
    (layer("c", "Convolution", num_output=2), r"'c' \(Convolution\): convolution_param needs kernel_size"),
    (layer("c", "Convolution", kernel_size=3), r"'c' \(Convolution\): convolution_param.num_output"),
    (layer("c", "Convolution", num_output=2, kernel_size=3, kernel_h=3, kernel_w=3),
     "either as kernel or as kernel_h/kernel_w"),
    (layer("c", "Convolution", num_output=2, kernel_size=3, dilation=[1, 2, 3]), "dilation has 3 values"),
    (layer("c", "Convolution", num_output=2, kernel_size=3, dilation=[2, 0]), r"dilation must be positive, got 2x0"),
    (layer("ip", "InnerProduct", num_output=2, axis=2), r"'ip' \(InnerProduct\): inner product axis 2"),
    (layer("f", "Flatten", axis=0), r"'f' \(Flatten\): Flatten from axis 0 to end_axis -1 is not supported"),
    (layer("d", "Deconvolution"), r"'d' \(Deconvolution\): convolution_param.num_output is required"),
    (layer("d", "ConvolutionDepthwise"), r"'d' \(ConvolutionDepthwise\): convolution_param needs kernel_size"),
])
def test_param_errors(tmp_path, lay, msg):
    p = write_prototxt(tmp_path / "m.prototxt", build_net([lay]))
    with pytest.raises(CmsisgenError, match=msg):
        load_net(p)


def test_pool_ceil_clipping_through_prototxt(tmp_path):
    layers = [layer("p", "Pooling", pool="AVE", kernel_size=2, stride=2, pad=1)]
    net = load_net(write_prototxt(tmp_path / "m.prototxt", build_net(layers, (2, 5, 5))))
    assert net.layers[0].params == ir.PoolParams("ave", 2, 2, 2, 2, 1, 1)
    assert net.shapes["p"] == (2, 3, 3)


def test_mixed_generations_rejected(tmp_path):
    net = build_net(small_net())
    net.layers.add(name="x", type=schema.V1LayerParameter.RELU)
    with pytest.raises(CmsisgenError, match="mixes 'layer' and legacy 'layers'"):
        load_net(write_prototxt(tmp_path / "m.prototxt", net))


def test_conv_pad_h_alone(tmp_path):
    layers = [layer("c", "Convolution", num_output=2, kernel_size=3, pad_h=1)]
    net = load_net(write_prototxt(tmp_path / "m.prototxt", build_net(layers, (1, 6, 6))))
    assert net.layers[0].params == ir.ConvParams(2, 3, 3, pad_h=1, pad_w=0)
    assert net.shapes["c"] == (2, 6, 4)


# --- malformed HDF5 layouts ---------------------------------------------------------

def _h5_data_dataset(f):
    f.create_dataset("data", data=np.zeros(3, np.float32))


def _h5_layer_dataset(f):
    f.create_group("data").create_dataset("conv1", data=W1)


def _h5_blob_group(f):
    f.create_group("data").create_group("conv1").create_group("0")


def _h5_blob_strings(f):
    f.create_group("data").create_group("conv1").create_dataset("0", data=np.array([b"ab", b"cd"]))


@pytest.mark.parametrize("build, message", [
    (_h5_data_dataset, "w.caffemodel.h5: not a Caffe HDF5 model ('data' is a dataset, "
                       "expected a group of layers)"),
    (_h5_layer_dataset, "w.caffemodel.h5: not a Caffe HDF5 model ('data/conv1' is not a group "
                        "of blobs)"),
    (_h5_blob_group, "w.caffemodel.h5: not a Caffe HDF5 model ('data/conv1/0' is not a dataset)"),
    (_h5_blob_strings, "w.caffemodel.h5: not a Caffe HDF5 model ('data/conv1/0' has dtype |S2, "
                       "expected numbers)"),
    (lambda f: f.create_group("other"), "w.caffemodel.h5: not a Caffe HDF5 model (no 'data' group)"),
])
def test_malformed_h5_layout(tmp_path, monkeypatch, build, message):
    import h5py

    monkeypatch.chdir(tmp_path)
    proto, _ = write_model(Path("."), small_net())
    with h5py.File("w.caffemodel.h5", "w") as f:
        build(f)
    with pytest.raises(CmsisgenError) as e:
        load_net(proto, "w.caffemodel.h5")
    assert str(e.value) == message


# --- --input-shape against the prototxt ----------------------------------------------

@pytest.mark.parametrize("style", ["layer", "input_dim", "input_shape"])
def test_input_shape_must_agree_with_prototxt(tmp_path, monkeypatch, style):
    monkeypatch.chdir(tmp_path)
    write_prototxt(Path("model.prototxt"), build_net(small_net(), (3, 32, 32), input_style=style))
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt", input_shape=(3, 16, 16))
    assert str(e.value) == ("input_shape 3,16,16 disagrees with the input shape (3, 32, 32) "
                            "in model.prototxt")
    assert str(e.value.named(lambda setting: "--input-shape")) == ("--input-shape 3,16,16 disagrees with the input shape "
                                                   "(3, 32, 32) in model.prototxt")
    assert load_net("model.prototxt", input_shape=(3, 32, 32)).input_shapes == {"data": (3, 32, 32)}


def test_input_shape_must_agree_with_crop_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_train_test(Path("."), [layer("ip1", "InnerProduct", num_output=5)], crop_size=24)
    with pytest.raises(CmsisgenError) as e:
        load_net("train_test.prototxt", input_shape=(3, 32, 32))
    assert str(e.value) == ("input_shape 3,32,32 disagrees with the input shape (3, 24, 24) "
                            "in train_test.prototxt")
    assert load_net("train_test.prototxt", input_shape=(3, 24, 24)).input_shapes == {"data": (3, 24, 24)}
    # a Data layer does not say its channels: crop_size fixes H and W only
    assert load_net("train_test.prototxt", input_shape=(1, 24, 24)).input_shapes == {"data": (1, 24, 24)}


def test_input_shape_must_agree_with_memory_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.prototxt").write_text(
        'layer { name: "d" type: "MemoryData" top: "data" top: "label"\n'
        '  memory_data_param { batch_size: 2 channels: 1 height: 6 width: 5 } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
        '  inner_product_param { num_output: 2 } }\n')
    with pytest.raises(CmsisgenError) as e:
        load_net("m.prototxt", input_shape=(3, 6, 5))
    assert str(e.value) == "input_shape 3,6,5 disagrees with the input shape (1, 6, 5) in m.prototxt"
    assert load_net("m.prototxt", input_shape=(1, 6, 5)).input_shapes == {"data": (1, 6, 5)}


@pytest.mark.parametrize("shape, message", [
    ((3, 0, 32), "model.prototxt: --input-shape 3,0,32 has a non-positive dimension"),
    ((-3, 32, 32), "model.prototxt: --input-shape -3,32,32 has a non-positive dimension"),
    ((3, 32), "model.prototxt: --input-shape 3,32 must be three integers C,H,W such as 3,32,32"),
    ((3, 32, 2.5), "model.prototxt: --input-shape 3,32,2.5 must be three integers C,H,W such as 3,32,32"),
])
def test_input_shape_must_be_positive(tmp_path, monkeypatch, shape, message):
    monkeypatch.chdir(tmp_path)
    write_train_test(Path("."), [layer("ip1", "InnerProduct", num_output=5)], stem="model")
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt", input_shape=shape)
    assert str(e.value.named(lambda setting: "--input-shape")) == message
    assert str(e.value) == message.replace("--input-shape", "input_shape")


# --- binary files given as the prototxt ---------------------------------------------

def test_binary_prototxt_is_one_printable_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.prototxt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt")
    assert str(e.value) == ("model.prototxt: not a text prototxt "
                            r"(line 1: \x00\x01\x02\x03\x04\x05\x06\x07\x08)")


def test_caffemodel_given_as_prototxt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, weights = write_model(Path("."), small_net())
    with pytest.raises(CmsisgenError) as e:
        load_net(weights)
    # NetParameter: name (tag 0x0a, a newline) of length 7, then layer 1 (tag 0xa2 0x06,
    # length 0x81 0x04) whose own name tag is the next newline
    assert str(e.value) == (r"model.caffemodel: not a text prototxt (line 2: \x07testnet\xa2\x06\x81\x04); "
                            "is this the weights file? give the prototxt first, then the weights")


def test_binary_excerpt_is_trimmed_and_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.prototxt").write_bytes(b'name: "ok"\n' + b"\xff\xfe\x00" + b"A" * 500 + b"\n")
    with pytest.raises(CmsisgenError) as e:
        load_net("model.prototxt")
    msg = str(e.value)
    excerpt = r"\xff\xfe\x00" + "A" * (120 - 3 - 12) + "..."
    assert msg == f"model.prototxt: not a text prototxt (line 2: {excerpt})"
    assert msg.isprintable() and len(excerpt) == 120


def test_control_characters_in_layer_names_are_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.prototxt").write_text('input: "data" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n'
                                  'layer { name: "a\\nb\\001" type: "MVN" bottom: "data" top: "x" }\n')
    with pytest.raises(CmsisgenError) as e:
        load_net("m.prototxt")
    assert str(e.value) == r"m.prototxt: layer 'a\x0ab\x01' (MVN): " + UNSUPPORTED
