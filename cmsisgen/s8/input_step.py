"""The s8 program's first step: run_nn()'s uint8 image to the int8 network input at its
calibrated scale and zero point, through the q7 backend's input kernel (as nn_input_s8) with the
zero point folded into its per-channel offsets."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..mapper.calls import Op
from ..ops.base import Shape, hwc
from ..ops.network_input import InputConstants
from ..preprocess import INPUT_SHIFT, InputFixedPoint, Preprocessing
from . import calls

if TYPE_CHECKING:
    from ..quantizer_s8 import QuantizationS8


def input_fixed_point(pre: Preprocessing, scale: float, zero_point: int, shape: Shape) -> InputFixedPoint:
    """q = saturate((pixel * MUL - OFFSET + 2**(S-1)) >> S) with the zero point folded into OFFSET:
    ``MUL = round(scale_pre / s_in * 2**S)``, ``OFFSET = round(mean * scale_pre / s_in * 2**S) - zp * 2**S``."""
    c, h, w = shape
    factor = pre.scale / scale * 2.0 ** INPUT_SHIFT
    mean = np.broadcast_to(pre.mean, (c, 1, 1) if pre.mean.shape[1:] == (1, 1) else (c, h, w))
    offsets = np.round(mean.astype(np.float64) * factor).astype(np.int64) - (int(zero_point) << INPUT_SHIFT)
    per_pixel = offsets.shape[1:] != (1, 1)
    flat = offsets.transpose(1, 2, 0).reshape(-1) if per_pixel else offsets.reshape(-1)
    fp = InputFixedPoint(mul=int(round(factor)), offsets=flat, per_pixel=per_pixel, shift=INPUT_SHIFT)
    fp.check_range()
    return fp


def lower_input_s8(name: str, shape: Shape, quant: "QuantizationS8", pre: Preprocessing) -> Op:
    """The first op: run_nn()'s uint8 image -> the int8 network input at its scale and zero point."""
    c, h, w = shape
    tq = quant.tensors[name]
    constants = InputConstants(pre, 0, shape, fixed_point=input_fixed_point(pre, tq.scale, tq.zero_point, shape),
                               quant=tq)
    return Op(layer=name, layer_type="Input", kernel=calls.INPUT_S8, function="nn_input_s8", inputs=[], output=name,
              in_shape=hwc(shape), args={"size": h * w, "channels": c}, params=constants,
              weight_bytes=constants.form.flash_bytes, formats={"out_frac": 0})
