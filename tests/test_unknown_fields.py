"""Fields the schema does not know are never dropped in silence (issue 11, item 2).

A misspelt field (``poll: AVE``) or enum value used to compile another network than the one
written; Caffe refuses both, and so does cmsisgen, at the field's line and column. Every
field of BVLC Caffe parses, fork fields cmsisgen accepts are named when they change nothing,
and unknown fields of a binary .caffemodel are named (outside a blob) or refused (inside one).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caffe_models import build_net, layer, make_weights, write_caffemodel, write_mean_binaryproto
from cli_run import run
from cmsisgen.loader import load_net
from cmsisgen.proto import schema

POOL_NET = """name: "n"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 }
}
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "conv1"
  top: "pool1"
  pooling_param {
    %s
    kernel_size: 3
    stride: 2
  }
}
layer {
  name: "ip1"
  type: "InnerProduct"
  bottom: "pool1"
  top: "ip1"
  inner_product_param { num_output: 5 }
}
"""
LAYERS = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
          layer("pool1", "Pooling", pool="MAX", kernel_size=3, stride=2),
          layer("ip1", "InnerProduct", num_output=5)]


pytestmark = pytest.mark.usefixtures("cli_tmp")



def weights_for(proto: Path, name: str = "w.caffemodel") -> Path:
    return write_caffemodel(Path(name), LAYERS, make_weights(proto, LAYERS))


def expect_error(args, message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"cmsisgen: error: {message}"]
    assert result.stdout == ""


def pool_net(line: str, name: str = "m.prototxt") -> Path:
    Path(name).write_text(POOL_NET % line)
    return Path(name)


def test_misspelt_field_is_an_error_at_its_line_and_column():
    """`poll: AVE` compiled a MAX pooling before; now line 17, column 5 is named."""
    good = pool_net("pool: AVE", "good.prototxt")
    weights = weights_for(good)
    expect_error(["compile", pool_net("poll: AVE"), weights, "-o", "out"],
                 "m.prototxt:17:5: unknown field 'poll' in PoolingParameter (did you mean 'pool'?)")
    assert not Path("out").exists()


def test_unknown_enum_value_is_an_error_naming_the_field():
    expect_error(["inspect", pool_net("pool: AVG")],
                 "m.prototxt:17:11: unknown value 'AVG' for 'pool' (did you mean 'AVE'?); "
                 "PoolingParameter.PoolMethod has MAX, AVE, STOCHASTIC")


def test_unknown_enum_number_is_an_error():
    expect_error(["inspect", pool_net("pool: 7")],
                 "m.prototxt:17:11: unknown value '7' for 'pool'; PoolingParameter.PoolMethod has MAX, AVE, STOCHASTIC")


def test_unknown_layer_field_and_unknown_v1_type():
    Path("a.prototxt").write_text('layer {\n  name: "x"\n  tpye: "ReLU"\n}\n')
    expect_error(["inspect", "a.prototxt"], "a.prototxt:3:3: unknown field 'tpye' in LayerParameter (did you mean 'type'?)")
    Path("b.prototxt").write_text('layers {\n  name: "x"\n  type: CONVOLUTON\n}\n')
    expect_error(["inspect", "b.prototxt"],
                 "b.prototxt:3:9: unknown value 'CONVOLUTON' for 'type' (did you mean 'CONVOLUTION'?)")


def test_extension_syntax_is_refused():
    Path("e.prototxt").write_text("layer { [foo.bar]: 1 }\n")
    expect_error(["inspect", "e.prototxt"], "e.prototxt:1:14: extension fields ([...]) are not part of Caffe's LayerParameter")


def test_every_bvlc_field_cmsisgen_does_not_use_still_parses():
    """Training-time fields (param, fillers, engine, loss_param, ...) and layers of types
    that are dropped: a real Caffe training prototxt parses and loads."""
    Path("t.prototxt").write_text("""name: "t"
force_backward: false
state { phase: TEST level: 0 }
debug_info: false
layer {
  name: "data" type: "Data" top: "data" top: "label"
  include { phase: TEST }
  transform_param { scale: 0.5 mirror: false crop_size: 8 }
  data_param { source: "db" batch_size: 4 backend: LMDB prefetch: 4 }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  propagate_down: true
  convolution_param {
    num_output: 4 kernel_size: 3 engine: CAFFE
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 }
  }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { engine: DEFAULT } }
layer {
  name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 round_mode: CEIL engine: CAFFE }
}
layer {
  name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" variance_norm: FAN_IN } }
}
layer {
  name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss"
  loss_weight: 1 loss_param { ignore_label: -1 normalization: VALID } softmax_param { axis: 1 }
}
layer { name: "acc" type: "Accuracy" bottom: "ip1" bottom: "label" top: "acc" accuracy_param { top_k: 1 } }
""")
    net = load_net("t.prototxt")
    assert [lay.name for lay in net.layers] == ["conv1", "relu1", "pool1", "ip1"]
    assert net.warnings == []


def test_schema_has_every_bvlc_message():
    """The embedded schema is all of BVLC Caffe's caffe.proto (63 messages), plus the fork
    fields (ceil_mode, brocolli-caffe's ReLU6Parameter, the SSD forks' detection head
    parameters) and fork messages of the byte movers; spot checks of fields no cmsisgen stage reads."""
    from google.protobuf import descriptor_pb2

    fork_messages = {"ReLU6Parameter", "PriorBoxParameter", "NonMaximumSuppressionParameter", "SaveOutputParameter",
                     "DetectionOutputParameter", "PermuteParameter", "ShuffleChannelParameter",
                     "UpsampleParameter", "InterpParameter"}
    fdp = descriptor_pb2.FileDescriptorProto.FromString(schema.SERIALIZED_DESCRIPTOR)
    assert len([m for m in fdp.message_type if m.name not in fork_messages]) == 63
    assert fork_messages <= {m.name for m in fdp.message_type}
    layer_fields = schema.LayerParameter.DESCRIPTOR.fields_by_name
    for name in ("param", "propagate_down", "loss_param", "accuracy_param", "power_param", "spp_param",
                 "recurrent_param", "swish_param", "clip_param", "embed_param", "tile_param"):
        assert name in layer_fields
    assert schema.PoolingParameter.DESCRIPTOR.fields_by_name["ceil_mode"].number == 1013
    assert (layer_fields["prior_box_param"].number, layer_fields["detection_output_param"].number) == (203, 204)
    assert schema.SolverParameter.DESCRIPTOR.fields_by_name["base_lr"].number == 5


def test_fork_field_that_changes_nothing_is_named_in_a_warning():
    good = pool_net("ceil_mode: true\n    pool: MAX")
    weights = weights_for(good)
    result = run("compile", good, weights, "-o", "out", "--scale", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "cmsisgen: warning: m.prototxt: ceil_mode: true in layer 'pool1' changes nothing (ceil_mode is a field "
        "of SSD-era forks (BVLC/caffe PR #3057), not of BVLC Caffe; false rounds the output size down "
        "(round_mode: FLOOR); true is BVLC's default rounding)")


def test_fork_field_that_changes_the_network_is_read_without_a_warning():
    net = load_net(pool_net("ceil_mode: false"))
    assert net.shapes["pool1"] == (4, 3, 3)  # floor((8 - 3) / 2) + 1; ceil would give 4x4
    assert net.warnings == []


def caffemodel_with(extra: bytes, where: str) -> Path:
    """The model's weights with ``extra`` (serialized fields) appended to layer pool1 or to
    conv1's first blob."""
    proto = pool_net("pool: MAX")
    blobs = make_weights(proto, LAYERS)
    net = build_net(LAYERS, None)
    for lay in net.layer:
        for arr in blobs.get(lay.name, []):
            b = lay.blobs.add()
            b.shape.dim.extend(arr.shape)
            b.data.extend(arr.ravel().tolist())
    target = net.layer[1] if where == "layer" else net.layer[0].blobs[0]
    target.MergeFromString(extra)
    Path("x.caffemodel").write_bytes(net.SerializeToString())
    return proto


# Field 1000 of LayerParameter (unused by BVLC): varint 1 -- tag (1000 << 3 | 0) = 0xc0 0x3e.
UNKNOWN_VARINT = b"\xc0\x3e\x01"


def test_unknown_field_in_a_binary_layer_is_named_and_the_blobs_are_read_unchanged():
    proto = caffemodel_with(UNKNOWN_VARINT, "layer")
    result = run("compile", proto, "x.caffemodel", "-o", "out", "--scale", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "cmsisgen: warning: x.caffemodel: layer 'pool1': skipped field 1000, unknown to BVLC Caffe "
        "(only the blobs are read from a .caffemodel)")
    plain = write_caffemodel(Path("plain.caffemodel"), LAYERS, make_weights(proto, LAYERS))
    assert run("compile", proto, plain, "-o", "out2", "--scale", "1").exit_code == 0
    for name in ("weights.h", "weights.c", "nn.c", "parameters.h"):
        assert Path("out", name).read_text() == Path("out2", name).read_text()


def test_unknown_field_inside_a_binary_blob_is_an_error():
    """NVIDIA Caffe keeps half-precision blob data in raw_data (field 12): never read
    such a blob as empty or as other numbers."""
    proto = caffemodel_with(b"\x62\x02\x00\x3c", "blob")  # field 12, length-delimited, 2 bytes
    expect_error(["compile", proto, "x.caffemodel", "-o", "out", "--scale", "1"],
                 "x.caffemodel: layer 'conv1': blobs[0] holds fields this reader does not know "
                 "(numbers 12): blob data in a Caffe fork's format?")


@pytest.mark.parametrize("generation, fmt", [("v1", "binary"), ("current", "h5")])
def test_v1_and_hdf5_weights_still_load(generation, fmt):
    from caffe_models import write_model

    proto, weights = write_model(Path("."), LAYERS, generation=generation, weights_format=fmt)
    net = load_net(proto, weights)
    assert [lay.name for lay in net.layers] == ["conv1", "pool1", "ip1"]
    assert net.warnings == []
    assert net.layers[0].blobs[0].shape == (4, 3, 3, 3)


def test_unknown_field_in_a_mean_file_is_an_error():
    write_mean_binaryproto(Path("mean.binaryproto"), np.zeros((3, 8, 8)))
    with open("mean.binaryproto", "ab") as f:
        f.write(b"\x62\x02\x00\x3c")  # field 12, length-delimited: NVIDIA Caffe's raw_data
    proto = pool_net("pool: MAX")
    expect_error(["compile", proto, weights_for(proto), "-o", "out", "--mean", "mean.binaryproto"],
                 "mean.binaryproto: the mean blob holds fields this reader does not know (numbers 12): "
                 "a Caffe fork's format?")
