"""Caffe shape rules, checked against hand-worked examples."""
from __future__ import annotations

import pytest

from cmsisgen import ir
from cmsisgen.errors import CmsisgenError
from cmsisgen.ops.convolution import conv_out
from cmsisgen.ops.pooling import pool_out, pool_out_hw
from cmsisgen.shapes import expected_blob_shapes, infer_shapes


def _net(layers, shape=(3, 16, 16)):
    return ir.Net(name="t", input_shapes={"data": shape}, layers=layers, outputs=[],
                  source="m.prototxt")


def _pool(**kw):
    base = dict(method="max", kernel_h=2, kernel_w=2, stride_h=2, stride_w=2)
    base.update(kw)
    return ir.PoolParams(**base)


@pytest.mark.parametrize("size,k,s,p,d,out", [
    (32, 5, 1, 2, 1, 32),   # same padding
    (32, 5, 1, 0, 1, 28),
    (8, 3, 2, 1, 1, 4),     # floor((8+2-3)/2)+1 = 3+1
    (7, 3, 2, 0, 1, 3),     # floor(4/2)+1
    (10, 3, 1, 0, 2, 6),    # dilated extent 5: floor(5/1)+1
])
def test_conv_out(size, k, s, p, d, out):
    assert conv_out(size, k, s, p, d) == out


def test_pool_ceil_no_pad():
    # in=16, k=3, s=2, p=0: ceil(13/2)+1 = 7+1 = 8 (floor mode would give 7)
    assert pool_out_hw(16, 16, _pool(kernel_h=3, kernel_w=3)) == (8, 8)
    assert pool_out_hw(16, 16, _pool(kernel_h=3, kernel_w=3, ceil_mode=False)) == (7, 7)


def test_pool_ceil_clips_window_starting_in_padding():
    # in=5, k=2, s=2, p=1: ceil((5+2-2)/2)+1 = 4; window 3 would start at 3*2=6 >= 5+1,
    # i.e. entirely in the bottom padding, so Caffe drops it -> 3.
    assert pool_out(5, 2, 2, 1) == 4
    assert pool_out_hw(5, 5, _pool(pad_h=1, pad_w=1)) == (3, 3)


def test_pool_clip_only_when_start_in_padding():
    # in=6, k=3, s=2, p=1: ceil(5/2)+1 = 4; last start 6 < 6+1, kept.
    assert pool_out_hw(6, 6, _pool(kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)) == (4, 4)
    # no padding -> no clipping even if ceil adds a partial window: in=7,k=2,s=2 -> 4
    assert pool_out_hw(7, 7, _pool()) == (4, 4)


def test_pool_clip_applies_to_both_axes_if_any_pad():
    # pad only on h; w axis: in=5,k=2,s=2,p=0 -> ceil(3/2)+1 = 3, start 4 < 5 kept
    assert pool_out_hw(5, 5, _pool(pad_h=1)) == (3, 3)


def test_infer_chain_and_global_pool():
    layers = [
        ir.Layer("conv1", "Convolution", ["data"], ["conv1"],
                 ir.ConvParams(num_output=8, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)),
        ir.Layer("relu1", "ReLU", ["conv1"], ["conv1@1"], ir.NoParams()),
        ir.Layer("pool1", "Pooling", ["conv1@1"], ["pool1"],
                 _pool(kernel_h=3, kernel_w=3, stride_h=2, stride_w=2)),
        ir.Layer("gap", "Pooling", ["pool1"], ["gap"],
                 ir.PoolParams("ave", 0, 0, 1, 1, global_pooling=True)),
        ir.Layer("flat", "Flatten", ["pool1"], ["flat"], ir.NoParams()),
        ir.Layer("ip", "InnerProduct", ["pool1"], ["ip"], ir.InnerProductParams(10)),
        ir.Layer("split", "Split", ["ip"], ["a", "b"], ir.NoParams()),
    ]
    net = _net(layers)
    infer_shapes(net)
    assert net.shapes["conv1@1"] == (8, 16, 16)
    assert net.shapes["pool1"] == (8, 8, 8)
    assert net.shapes["gap"] == (8, 1, 1)
    assert (layers[3].params.kernel_h, layers[3].params.kernel_w) == (8, 8)
    assert net.shapes["flat"] == (512, 1, 1)
    assert net.shapes["ip"] == (10, 1, 1)
    assert net.shapes["a"] == net.shapes["b"] == (10, 1, 1)
    assert expected_blob_shapes(net, layers[0]) == [(8, 3, 3, 3), (8,)]
    assert expected_blob_shapes(net, layers[5]) == [(10, 512), (10,)]
    assert expected_blob_shapes(net, layers[1]) == []


def test_group_and_transpose_blob_shapes():
    conv = ir.Layer("c", "Convolution", ["data"], ["c"],
                    ir.ConvParams(num_output=6, kernel_h=1, kernel_w=3, group=3, bias_term=False))
    ip = ir.Layer("ip", "InnerProduct", ["c"], ["ip"], ir.InnerProductParams(5, transpose=True))
    net = _net([conv, ip], (6, 4, 4))
    infer_shapes(net)
    assert net.shapes["c"] == (6, 4, 2)
    assert expected_blob_shapes(net, conv) == [(6, 2, 1, 3)]
    assert expected_blob_shapes(net, ip) == [(48, 5), (5,)]


def test_concat():
    a = ir.Layer("a", "Convolution", ["data"], ["a"], ir.ConvParams(4, 1, 1))
    b = ir.Layer("b", "Convolution", ["data"], ["b"], ir.ConvParams(6, 3, 3, pad_h=1, pad_w=1))
    c = ir.Layer("cat", "Concat", ["a", "b"], ["cat"], ir.ConcatParams())
    net = _net([a, b, c])
    infer_shapes(net)
    assert net.shapes["cat"] == (10, 16, 16)


def test_concat_mismatch_names_layer():
    a = ir.Layer("a", "Convolution", ["data"], ["a"], ir.ConvParams(4, 1, 1))
    b = ir.Layer("b", "Convolution", ["data"], ["b"], ir.ConvParams(6, 3, 3))
    c = ir.Layer("cat", "Concat", ["a", "b"], ["cat"], ir.ConcatParams())
    with pytest.raises(CmsisgenError, match=r"^m.prototxt: layer 'cat' \(Concat\): inputs differ "
                                            r"in height/width: a \(4, 16, 16\), b \(6, 14, 14\)$"):
        infer_shapes(_net([a, b, c]))


def test_concat_other_axis_rejected():
    a = ir.Layer("cat", "Concat", ["data", "data"], ["cat"], ir.ConcatParams(axis=2))
    with pytest.raises(CmsisgenError, match="layer 'cat'.*axis 2"):
        infer_shapes(_net([a]))


def test_kernel_too_large():
    conv = ir.Layer("conv1", "Convolution", ["data"], ["c"], ir.ConvParams(4, 5, 5, pad_h=1, pad_w=1))
    with pytest.raises(CmsisgenError, match=r"layer 'conv1' \(Convolution\): kernel 5x5 "
                                            r"\(dilation 1x1\) does not fit the padded input 2x2"):
        infer_shapes(_net([conv], (3, 2, 2)))
    pool = ir.Layer("pool1", "Pooling", ["data"], ["p"], _pool(kernel_h=3, kernel_w=3))
    with pytest.raises(CmsisgenError, match=r"layer 'pool1' \(Pooling\): kernel 3x3"):
        infer_shapes(_net([pool], (3, 2, 2)))


def test_group_must_divide():
    conv = ir.Layer("conv1", "Convolution", ["data"], ["c"], ir.ConvParams(4, 1, 1, group=2))
    with pytest.raises(CmsisgenError, match=r"layer 'conv1'.*group 2 does not divide input channels 3"):
        infer_shapes(_net([conv]))


def test_pool_pad_must_be_below_kernel():
    pool = ir.Layer("p", "Pooling", ["data"], ["p"], _pool(pad_h=2, pad_w=2))
    with pytest.raises(CmsisgenError, match="layer 'p'.*pad must be smaller"):
        infer_shapes(_net([pool]))
