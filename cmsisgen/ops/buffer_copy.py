"""The copy the buffer planner inserts when an in-place call would destroy a tensor that is
read later (not a Caffe layer)."""
from __future__ import annotations

from ..mapper.calls import Op, TensorInfo
from .base import Kernel, hwc

COPY = Kernel(
    kind="copy", simulate=lambda op, inputs: inputs[0].copy(),
    call="""\
    /* {{ prefix }}: keep {{ op.inputs[0] }} for later readers */
    memcpy({{ out }}, {{ buf[op.inputs[0]] }}, {{ prefix }}_SIZE);
""",
    parameters="""\
/* {{ op.layer }}: copy of its input, because an in-place kernel would overwrite values read later */
#define {{ prefix }}_SIZE {{ op.args.size }}
""")


def copy_op(layer: str, source: TensorInfo, copy: TensorInfo) -> Op:
    """A memcpy of ``source`` into ``copy`` for the call of ``layer``."""
    return Op(layer=layer, layer_type="Copy", kernel=COPY, function="memcpy", inputs=[source.name],
              output=copy.name, in_shape=hwc(source.shape), args={"size": source.size},
              formats={"out_frac": source.frac})
