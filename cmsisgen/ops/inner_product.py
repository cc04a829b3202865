"""Caffe InnerProduct onto arm_fully_connected_q7_opt (default) or arm_fully_connected_q7.

Caffe flattens a spatial input in C, H, W order; activations are held HWC, so the weight
columns are permuted to the bytes' order (also after a Flatten or a byte-reordering
Reshape, whose output is its source's bytes). The _opt function reads rows interleaved in
groups of four.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .. import ir
from ..mapper import layout
from ..mapper.calls import Op
from ..mapper.rules import UINT16_MAX, Site, rule
from ..simulator import kernels
from .caffe_params import ErrorMaker
from .base import Candidate, Choice, Kernel, LayerKind, LoweringContext, Shape, choose, generic_site, one_input, stem
from .weighted import WEIGHT_ARRAYS, absorb_affine, weighted_formats

#: --fc: which fully connected function the inner products use.
FC_VARIANTS = ("opt", "plain")


@rule("input length {in_ch}, {out_ch} outputs")
def vector_sizes_fit_uint16(site: Site) -> bool:
    """CMSIS-NN passes the input length and the number of outputs of an inner product as uint16_t: each must be at most 65535."""
    return site.in_ch <= UINT16_MAX and site.out_ch <= UINT16_MAX


OPT = Choice("InnerProduct", (Candidate("arm_fully_connected_q7_opt", (vector_sizes_fit_uint16,)),))
PLAIN = Choice("InnerProduct/plain", (Candidate("arm_fully_connected_q7", (vector_sizes_fit_uint16,)),),
               note="with --fc plain")


def _simulate(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    n = inputs[0].shape[0]
    out = kernels.fully_connected_q7(inputs[0].reshape(n, -1), op.weights, op.bias,
                                     bias_lshift=op.formats["bias_lshift"], out_rshift=op.formats["out_rshift"])
    return out.reshape(n, 1, 1, -1)


FC = Kernel(
    "fc", _simulate,
    call="""\
    /* {{ op.layer }} */
    status = {{ op.function }}(
            {{ buf[op.inputs[0]] }}, {{ prefix }}_WT, {{ prefix }}_DIM_VEC, {{ prefix }}_NUM_ROWS,
            {{ prefix }}_BIAS_LSHIFT, {{ prefix }}_OUT_RSHIFT, {{ prefix }}_BIAS, {{ out }}, nn_scratch);
    if (status != ARM_MATH_SUCCESS) {
        return status;
    }
""",
    parameters="""\
/* {{ op.layer }} ({{ op.layer_type }}): {{ op.function }}; in Q{{ 7 - f.in_frac }}.{{ f.in_frac }}, weights Q{{ 7 - f.weight_frac }}.{{ f.weight_frac }}, bias Q{{ 7 - f.bias_frac }}.{{ f.bias_frac }}, out Q{{ 7 - f.out_frac }}.{{ f.out_frac }} */
#define {{ prefix }}_DIM_VEC {{ a.dim_vec }}
#define {{ prefix }}_NUM_ROWS {{ a.num_of_rows }}
#define {{ prefix }}_BIAS_LSHIFT {{ f.bias_lshift }}
#define {{ prefix }}_OUT_RSHIFT {{ f.out_rshift }}
#define {{ prefix }}_WT_SIZE {{ op.weight_data.size }}
#define {{ prefix }}_BIAS_SIZE {{ op.bias.size }}
""",
    weights="{% set about = (', rows interleaved in groups of four as the _opt kernel reads them' "
            "if op.function == 'arm_fully_connected_q7_opt' else ', [row][column]') + '; columns in HWC order' %}\n"
            + WEIGHT_ARRAYS)


class InnerProduct(LayerKind):
    types = ("InnerProduct",)
    weighted = True
    absorbs_affine = True
    reads_any_byte_order = True

    def parse(self, layer: Any, err: ErrorMaker) -> ir.InnerProductParams:
        ip = layer.inner_product_param
        if not ip.HasField("num_output"):
            raise err("inner_product_param.num_output is required")
        if ip.axis != 1:
            raise err(f"inner product axis {ip.axis} is not supported (only 1)")
        return ir.InnerProductParams(num_output=ip.num_output, bias_term=ip.bias_term, axis=ip.axis,
                                     transpose=ip.transpose)

    def output_shape(self, net: ir.Net, layer: ir.Layer) -> Shape:
        one_input(net, layer)
        return (layer.params.num_output, 1, 1)  # type: ignore[union-attr]

    def blob_shapes(self, net: ir.Net, layer: ir.Layer) -> list[tuple[int, ...]]:
        p: ir.InnerProductParams = layer.params  # type: ignore[assignment]
        c, h, w = net.shapes[layer.bottoms[0]]
        shape = (c * h * w, p.num_output) if p.transpose else (p.num_output, c * h * w)
        return [shape, (p.num_output,)] if p.bias_term else [shape]

    def forward(self, layer: ir.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inner_product(inputs[0], layer)]

    def absorb_affine(self, layer: ir.Layer, factor: np.ndarray, offset: np.ndarray) -> None:
        transpose = layer.params.transpose  # type: ignore[union-attr]
        absorb_affine(layer, factor[None, :] if transpose else factor[:, None], factor, offset)

    def site(self, net: ir.Net, layer: ir.Layer) -> Site:
        c, h, w = net.shapes[layer.bottoms[0]]
        return generic_site(net, layer, in_ch=c * h * w, in_h=1, in_w=1)

    def choices(self, layer: Optional[ir.Layer] = None, fc_variant: str = "opt") -> Sequence[Choice]:
        return (OPT if fc_variant == "opt" else PLAIN,) if layer is not None else (OPT, PLAIN)

    def check_q7(self, net: ir.Net, layer: ir.Layer, fc_variant: str, forced: Optional[str]) -> None:
        _choose_q7(self.site(net, layer), fc_variant, forced)

    def lower_q7(self, layer: ir.Layer, ctx: LoweringContext) -> Op:
        p: ir.InnerProductParams = layer.params  # type: ignore[assignment]
        site = self.site(ctx.net, layer)
        function = _choose_q7(site, ctx.fc_variant, ctx.forced.get(layer.name))
        lq = ctx.quant.layers[layer.name]
        matrix = lq.weights.T if p.transpose else lq.weights
        c, h, w = ctx.shape(layer.bottoms[0])
        source = ctx.held or ((c, h, w) if h * w > 1 else None)
        if source is not None:
            matrix = layout.fc_columns_chw_to_hwc(matrix, *source)
        data = layout.interleave_fc_opt(matrix) if function.endswith("_opt") else matrix.reshape(-1)
        dim_vec = c * h * w
        return Op(**stem(layer), kernel=FC, function=function, inputs=ctx.bottoms, in_shape=(1, 1, dim_vec),
                  args={"dim_vec": dim_vec, "num_of_rows": site.out_ch}, weights=matrix, bias=lq.bias,
                  weight_data=data, weight_bytes=data.size + lq.bias.size, scratch_bytes=2 * dim_vec,
                  macs=dim_vec * site.out_ch, formats=weighted_formats(ctx, layer, lq))


def _choose_q7(site: Site, fc_variant: str, forced: Optional[str]) -> str:
    """The --fc variant's function, or the --kernel one (either variant, checked by its rules)."""
    plain = forced in PLAIN.functions() if forced is not None else fc_variant == "plain"
    return choose(PLAIN if plain else OPT, site, forced)


def inner_product(x: np.ndarray, layer: ir.Layer) -> np.ndarray:
    """Caffe flattens each sample in C, H, W order before the matrix product."""
    p: ir.InnerProductParams = layer.params  # type: ignore[assignment]
    flat = x.reshape(x.shape[0], -1)
    weights = layer.blobs[0].astype(np.float32)
    if p.transpose:
        weights = weights.T
    out = flat @ weights.T
    if p.bias_term:
        out = out + layer.blobs[1].astype(np.float32)
    return out.reshape(x.shape[0], -1, 1, 1).astype(np.float32)
