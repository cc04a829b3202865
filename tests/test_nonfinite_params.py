"""NaN and infinite layer parameters are refused, naming the layer and the field (issue 11,
item 3). Caffe reads ``nan`` in a prototxt without a word; a NaN negative_slope used to give
a NaN float forward and a q7 slope of 0."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from caffe_models import build_net, layer, write_prototxt, write_train_test
from cli_run import run

NAN, INF = math.nan, math.inf
CONV = layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1)


pytestmark = pytest.mark.usefixtures("cli_tmp")


def expect_error(args, message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"cmsisgen: error: {message}"]


@pytest.mark.parametrize("extra, where", [
    (layer("relu1", "ReLU", inplace=True, negative_slope=NAN), "layer 'relu1' (ReLU): relu_param.negative_slope is nan"),
    (layer("sum", "Eltwise", ["conv1", "conv1"], operation="SUM", coeff=[1.0, INF]),
     "layer 'sum' (Eltwise): eltwise_param.coeff[1] is inf"),
    (layer("bn", "BatchNorm", eps=NAN), "layer 'bn' (BatchNorm): batch_norm_param.eps is nan"),
    (layer("lrn", "LRN", alpha=NAN), "layer 'lrn' (LRN): lrn_param.alpha is nan"),
    (layer("lrn", "LRN", beta=-INF), "layer 'lrn' (LRN): lrn_param.beta is -inf"),
    (layer("lrn", "LRN", k=INF), "layer 'lrn' (LRN): lrn_param.k is inf"),
    (layer("sc", "Scale", bias_term=True, filler={"value": NAN}), "layer 'sc' (Scale): scale_param.filler.value is nan"),
    (layer("drop", "Dropout", inplace=True, dropout_ratio=NAN), "layer 'drop' (Dropout): dropout_param.dropout_ratio is nan"),
])
def test_non_finite_layer_parameter(extra, where):
    proto = write_prototxt(Path("m.prototxt"), build_net([CONV, extra]))
    expect_error(["inspect", proto], f"m.prototxt: {where}; parameters must be finite numbers")


def test_power_layer_parameter_is_named_before_the_type_is_refused():
    net = build_net([CONV])
    power = net.layer.add(name="pow", type="Power", bottom=["conv1"], top=["pow"])
    power.power_param.scale = NAN
    proto = write_prototxt(Path("m.prototxt"), net)
    expect_error(["inspect", proto], "m.prototxt: layer 'pow' (Power): power_param.scale is nan; "
                 "parameters must be finite numbers")


@pytest.mark.parametrize("kwargs, where", [
    ({"scale": INF}, "transform_param.scale is inf"),
    ({"mean_value": (104.0, NAN, 123.0)}, "transform_param.mean_value[1] is nan"),
])
def test_non_finite_transform_parameter(kwargs, where):
    proto = write_train_test(Path("."), [CONV], crop_size=8, **kwargs)
    expect_error(["inspect", proto], f"train_test.prototxt: layer 'data' (Data): {where}; parameters must be finite numbers")


def test_non_finite_legacy_data_param_scale():
    net = build_net([layer("data", "Data", top=["data", "label"], source="db", batch_size=1, scale=NAN,
                           crop_size=8), CONV], None)
    proto = write_prototxt(Path("m.prototxt"), net)
    expect_error(["inspect", proto], "m.prototxt: layer 'data' (Data): data_param.scale is nan; "
                 "parameters must be finite numbers")
