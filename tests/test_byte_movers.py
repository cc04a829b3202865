"""Slice, Crop, ShuffleChannel, Permute, Flatten and Upsample: what compiles to what, and the
one-line refusals of settings that move bytes in a way cmsisgen does not compile.

The float forward of each is checked against pycaffe in tests/test_caffe_oracle.py (model
byte_movers; pycaffe has no ShuffleChannel), the kernels in tests/test_copy_kernels.py and
whole networks bit-exact on host and QEMU through the catalogue (tests/random_nets.py:
shufflenet_unit, fcn_upsample_crop, ssd_permute_flatten).
"""
from __future__ import annotations

import numpy as np
import pytest

from caffe_models import build_net, write_model, write_prototxt
from caffe_models import layer as L
from cmsisgen import pipeline
from cmsisgen.errors import CmsisgenError
from cmsisgen.proto import schema
from cmsisgen.float_forward import forward
from cmsisgen.loader import load_net
from cmsisgen.simulator.execute import run_program


def _error(tmp_path, layers, shape=(4, 6, 5)) -> str:
    """The error loading a prototxt of ``layers`` (no weights needed), with its path as model.prototxt."""
    proto = write_prototxt(tmp_path / "model.prototxt", build_net(layers, shape))
    with pytest.raises(CmsisgenError) as caught:
        load_net(proto)
    return str(caught.value).replace(str(proto), "model.prototxt")


REFUSED = [
    ([L("s", "Slice", top=["a", "b"], axis=0)],
     "layer 's' (Slice): slicing along axis 0 is not supported (only 1, 2 or 3: channels, height, width; "
     "axis 0 is the batch)"),
    ([L("s", "Slice", top=["a", "b"], axis=1, slice_dim=1)], "layer 's' (Slice): slice_param: give axis or "
                                                             "slice_dim, not both"),
    ([L("s", "Slice", top=["a", "b", "c"], slice_point=[2])],
     "layer 's' (Slice): 1 slice_point values for 3 tops (Caffe needs one fewer than the tops)"),
    ([L("s", "Slice", top=["a", "b"], slice_point=[4])],
     "layer 's' (Slice): slice_point [4] must increase strictly inside the input's 4 channels"),
    ([L("s", "Slice", top=["a", "b", "c"], axis=2, slice_point=[3, 3])],
     "layer 's' (Slice): slice_point [3, 3] must increase strictly inside the input's height 6"),
    ([L("s", "Slice", top=["a", "b", "c"], axis=-1)],
     "layer 's' (Slice): 3 tops do not divide the input's width 5 evenly (give slice_point)"),
    ([L("c", "Crop", ["data", "data"], "c", offset=[1])],
     "layer 'c' (Crop): cannot crop 6 at offset 1 from 6 along axis 2 ('data' (4, 6, 5), 'data' (4, 6, 5))"),
    ([L("c", "Crop", ["data"], "c")],
     "layer 'c' (Crop): expects 2 inputs (the blob to crop and the blob whose shape it takes), got 1"),
    ([L("c", "Crop", ["data", "data"], "c", axis=1, offset=[0, 1])],
     "layer 'c' (Crop): crop_param has 2 offsets: give none, one, or one per axis from axis 1 (3)"),
    ([L("c", "Crop", ["data", "data"], "c", axis=4)],
     "layer 'c' (Crop): crop_param.axis 4 is not an axis of an (N, C, H, W) blob"),
    ([L("p", "Permute", order=[1, 0, 2, 3])],
     "layer 'p' (Permute): Permute with order [1, 0, 2, 3] moves the batch axis: not supported (axis 0 must "
     "stay first)"),
    ([L("p", "Permute", order=[0, 2, 2])],
     "layer 'p' (Permute): permute_param.order [0, 2, 2] must name distinct axes of an (N, C, H, W) blob (0-3)"),
    ([L("p", "Permute", order=[4])],
     "layer 'p' (Permute): permute_param.order [4] must name distinct axes of an (N, C, H, W) blob (0-3)"),
    ([L("g", "ShuffleChannel", group=3)], "layer 'g' (ShuffleChannel): group 3 does not divide the 4 input "
                                          "channels"),
    ([L("g", "ShuffleChannel", group=0)], "layer 'g' (ShuffleChannel): shuffle_channel_param.group must be at "
                                          "least 1"),
    ([L("u", "Upsample", scale=0)], "layer 'u' (Upsample): upsample_param.scale must be at least 1 (got 0)"),
    ([L("u", "Upsample", scale=2, dims_num=3)],
     "layer 'u' (Upsample): upsample_param.dims_num 3 is not supported (only 4: an (N, C, H, W) blob)"),
    ([L("f", "Flatten", axis=0)],
     "layer 'f' (Flatten): Flatten from axis 0 to end_axis -1 is not supported (only axes 1-3 of an "
     "(N, C, H, W) blob, axis <= end_axis: the batch stays)"),
    ([L("f", "Flatten", axis=3, end_axis=2)],
     "layer 'f' (Flatten): Flatten from axis 3 to end_axis 2 is not supported (only axes 1-3 of an "
     "(N, C, H, W) blob, axis <= end_axis: the batch stays)"),
]


@pytest.mark.parametrize("layers, message", REFUSED, ids=[m.split(":")[1][:40] for _, m in REFUSED])
def test_refusals_are_one_line(tmp_path, layers, message):
    got = _error(tmp_path, layers)
    assert got.endswith(message), got
    assert got.startswith("model.prototxt") and "\n" not in got


def _program(tmp_path, layers, shape=(3, 6, 5)):
    proto, weights = write_model(tmp_path, layers, input_shape=shape)
    images = np.random.default_rng(0).integers(0, 256, size=(8, shape[1], shape[2], 3), dtype=np.uint8)
    return pipeline.compile_model(proto, weights, calib_images=images).program


def test_what_changes_no_byte_is_an_alias(tmp_path):
    program = _program(tmp_path, [
        L("conv1", "Convolution", num_output=4, kernel_size=1),
        L("one", "Slice", top="one", slice_dim=1),
        L("same", "Permute", order=[0, 1]),
        L("whole", "Crop", ["same", "data"], "whole"),
        L("g1", "ShuffleChannel", group=1),
        L("g4", "ShuffleChannel", group=4),
        L("x1", "Upsample", scale=1),
        L("ip", "InnerProduct", num_output=3),
    ])
    assert [(op.layer, op.function) for op in program.ops[1:]] == [
        ("conv1", "arm_convolve_HWC_q7_basic_nonsquare"), ("ip", "arm_fully_connected_q7_opt")]


def test_slice_is_one_call_per_top_in_one_format(tmp_path):
    program = _program(tmp_path, [
        L("conv1", "Convolution", num_output=6, kernel_size=1),
        L("parts", "Slice", top=["a", "b", "c"], slice_point=[1, 4]),
        L("cat", "Concat", ["c", "a", "b"], "cat"),
        L("ip", "InnerProduct", num_output=3),
    ])
    copies = [op for op in program.ops if op.function == "nn_copy_strided_q7"]
    assert [(op.layer, op.output, op.args) for op in copies] == [
        ("parts/a", "a", {"offset": 0, "n0": 1, "s0": 0, "n1": 1, "s1": 0, "n2": 30, "s2": 6}),  # byte by byte
        ("parts/b", "b", {"offset": 1, "n0": 1, "s0": 0, "n1": 30, "s1": 6, "n2": 3, "s2": 1}),  # a run per pixel
        ("parts/c", "c", {"offset": 4, "n0": 1, "s0": 0, "n1": 30, "s1": 6, "n2": 2, "s2": 1}),
    ]
    assert len({program.tensors[t].frac for t in ("conv1", "a", "b", "c", "cat")}) == 1


def test_interp_is_refused_by_name(tmp_path):
    """Interp (DeepLab, PSPNet) is bilinear: its interp_param parses, and the type is refused."""
    got = _error(tmp_path, [L("conv1", "Convolution", num_output=4, kernel_size=1),
                            L("zoom", "Interp", zoom_factor=2)])
    assert got.startswith("model.prototxt: layer 'zoom' (Interp): not supported by cmsisgen; supported layer "
                          "types: "), got


SCALE = 1 / 128  # images 0..255 -> [0, 2): the input fits q7


def _float_and_q7(tmp_path, layers, shape=(3, 6, 5)):
    """The network output as the float forward computes it and as the simulator does, dequantized,
    both in Caffe's order, for eight random images."""
    proto, weights = write_model(tmp_path, layers, input_shape=shape, seed=5)
    images = np.random.default_rng(1).integers(0, 256, size=(8, shape[1], shape[2], 3), dtype=np.uint8)
    compiled = pipeline.compile_model(proto, weights, calib_images=images, scale=SCALE)
    program = compiled.program
    ref = forward(compiled.net, images.transpose(0, 3, 1, 2).astype(np.float32) * SCALE)[compiled.net.outputs[0]]
    q7 = program.output_in_caffe_order(run_program(program, images))
    return ref.reshape(len(images), -1), q7 * 2.0 ** -program.tensors[program.output].frac, program


MOVERS = {  # each ends in a layer whose output depends on where every byte went
    "ssd_heads": [L("conv1", "Convolution", num_output=5, kernel_size=3, pad=1),
                  L("perm", "Permute", order=[0, 2, 3, 1]), L("flat", "Flatten"),
                  L("conv2", "Convolution", "data", "conv2", num_output=3, kernel_size=1),
                  L("perm2", "Permute", order=[0, 2, 3, 1]), L("flat2", "Flatten"),
                  L("cat", "Concat", ["flat", "flat2"], "cat"), L("ip", "InnerProduct", num_output=6)],
    "ssd_output": [L("conv1", "Convolution", num_output=5, kernel_size=3, pad=1),
                   L("perm", "Permute", order=[0, 2, 3, 1])],
    "permute_copy": [L("conv1", "Convolution", num_output=5, kernel_size=3, pad=1),
                     L("perm", "Permute", order=[0, 3, 1, 2]), L("conv2", "Convolution", num_output=4, kernel_size=3),
                     L("ip", "InnerProduct", num_output=6)],
    "shuffle_slice": [L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
                      L("shuffle", "ShuffleChannel", group=3), L("parts", "Slice", top=["a", "b"], slice_point=[4]),
                      L("cat", "Concat", ["b", "a"], "cat"), L("ip", "InnerProduct", num_output=6)],
    "shuffle_ip": [L("conv1", "Convolution", num_output=6, kernel_size=3, pad=1),
                   L("shuffle", "ShuffleChannel", group=2), L("ip", "InnerProduct", num_output=6)],
    "upsample_crop": [L("conv1", "Convolution", num_output=4, kernel_size=3, stride=2),
                      L("up", "Upsample", scale=3), L("crop", "Crop", ["up", "data"], "crop", offset=[0, 1])],
}


@pytest.mark.parametrize("name", sorted(MOVERS))
def test_q7_output_follows_the_float_forward(tmp_path, name):
    """The bytes land where Caffe's blob has them: the dequantized simulator output is the float
    forward's within the quantization error (a byte moved to the wrong place would be far off)."""
    ref, q7, _ = _float_and_q7(tmp_path, MOVERS[name])
    assert np.abs(q7 - ref).max() <= 0.05 * np.abs(ref).max(), np.abs(q7 - ref).max() / np.abs(ref).max()


def test_ssd_permute_is_an_alias_read_as_caffe_order(tmp_path):
    *_, program = _float_and_q7(tmp_path, MOVERS["ssd_heads"])
    assert [op.layer for op in program.ops[1:]] == ["conv1", "conv2", "cat", "ip"]
    *_, program = _float_and_q7(tmp_path, MOVERS["permute_copy"])
    assert [op.function for op in program.ops[1:3]] == ["arm_convolve_HWC_q7_basic_nonsquare", "nn_copy_strided_q7"]


def test_yolo_fork_upsample_param_number_in_a_binary_file_is_skipped(tmp_path):
    """YOLOv3 forks number upsample_param 149 (this schema: 500, as the tests' pycaffe): their
    .caffemodel still loads, the field skipped with a warning naming the layer."""
    layers = [L("conv1", "Convolution", num_output=4, kernel_size=1), L("up", "Upsample", scale=2)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4))
    net = schema.NetParameter.FromString(weights.read_bytes())
    (up,) = [lay for lay in net.layer if lay.name == "up"]
    up.ClearField("upsample_param")
    up.MergeFromString(b"\xaa\x09\x02\x08\x02")  # field 149 (length-delimited): { scale: 2 }
    weights.write_bytes(net.SerializeToString())
    loaded = load_net(proto, weights)
    assert loaded.shapes["up"] == (4, 8, 8)
    assert any("'up'" in w and "149" in w for w in loaded.warnings), loaded.warnings


def test_v1_slice_and_flatten(tmp_path):
    """A V1 net's SLICE (slice_dim, slice_point) and FLATTEN (no parameters in V1) load as the
    current layers do."""
    layers = [L("conv1", "Convolution", num_output=5, kernel_size=1),
              L("parts", "Slice", top=["a", "b"], slice_dim=1, slice_point=[2]),
              L("flat", "Flatten", "b", "flat"), L("ip", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4), generation="v1")
    net = load_net(proto, weights)
    assert [net.shapes[t] for t in ("a", "b", "flat")] == [(2, 4, 4), (3, 4, 4), (48, 1, 1)]


def test_crop_reference_keeps_its_own_format(tmp_path):
    """Crop reads its second input for the shape only: the image keeps its Q format while the
    cropped score map has the upsampled one's."""
    big = [np.full((4, 3, 3, 3), 1.0, np.float32), np.zeros(4, np.float32)]  # outputs up to 54
    layers = [L("conv1", "Convolution", num_output=4, kernel_size=3, stride=2, weights=big),
              L("up", "Upsample", scale=3), L("crop", "Crop", ["up", "data"], "crop", offset=[0, 1])]
    *_, program = _float_and_q7(tmp_path, layers)
    frac = {name: info.frac for name, info in program.tensors.items()}
    assert frac["crop"] == frac["up"] == frac["conv1"] == 1 and frac["data"] > 1


def test_kernel_forced_on_a_byte_mover_that_emits_no_call_is_refused(tmp_path):
    layers = [L("conv1", "Convolution", num_output=4, kernel_size=1), L("g", "ShuffleChannel", group=1),
              L("ip", "InnerProduct", num_output=3)]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 4, 4))
    with pytest.raises(CmsisgenError) as caught:
        pipeline.load_model(proto, weights, kernels={"g": "nn_copy_strided_q7"})
    assert str(caught.value) == (f"{proto}: layer 'g' (ShuffleChannel): kernel nn_copy_strided_q7: the layer "
                                 "emits no call (its output is its input's bytes)")
    pipeline.load_model(proto, weights, kernels={"ip": "arm_fully_connected_q7"})  # (a call: fine)
