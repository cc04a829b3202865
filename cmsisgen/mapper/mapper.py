"""Layer mapper: a quantized Net becomes a Program of CMSIS-NN calls.

Per layer it picks the function through :mod:`cmsisgen.mapper.rules`, lays the weights
out the way that function reads them (:mod:`cmsisgen.mapper.layout`) and records the
exact scratch each call needs.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .. import ir
from ..errors import CmsisgenError
from ..preprocess import Preprocessing
from ..quantizer import Quantization
from . import layout, lrn, rules
from .program import Op, Program, TensorInfo

#: Layers that only rename a buffer (no code, no copy).
ALIASES = ("Dropout", "Flatten", "Split", "Reshape")
#: Bytes a function reads beyond the end of its input (Op.reads_past_end):
#: arm_convolve_HWC_q7_RGB fetches each pixel's 3 channels with one 4-byte read.
READS_PAST_END = {"arm_convolve_HWC_q7_RGB": 1}


def map_network(net: ir.Net, quant: Quantization, pre: Preprocessing, fc_variant: str = "opt") -> Program:
    """Build the Program for ``net``, which must have passed :func:`check_supported`."""
    (input_name, input_shape), = net.input_shapes.items()
    tensors = {name: TensorInfo(name, tuple(shape), quant.tensor_frac[name]) for name, shape in net.shapes.items()}
    alias: dict[str, str] = {}  # alias tensor -> tensor that holds its bytes
    hwc_source = _flattened(net)

    def storage(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    ops = [_input_op(input_name, input_shape, quant.tensor_frac[input_name], pre)]
    warnings = list(quant.warnings)
    for layer in net.layers:
        if layer.type in ALIASES:
            for top in layer.tops:
                alias[top] = layer.bottoms[0]
            continue
        bottoms = [storage(b) for b in layer.bottoms]
        site = _site(layer, net)
        op = _map_layer(layer, site, net, quant, bottoms, hwc_source.get(layer.bottoms[0]), fc_variant)
        warnings.extend(rules.advisories(op.function, site))
        ops.append(op)
    output = storage(net.outputs[0])
    c, h, w = net.shapes[net.outputs[0]]
    output_hwc = hwc_source.get(net.outputs[0]) or ((c, h, w) if h * w > 1 else None)
    return Program(name=net.name or "net", ops=ops, tensors=tensors, input=input_name, output=output,
                   input_shape=tuple(input_shape), warnings=warnings, output_hwc=output_hwc)


def check_supported(net: ir.Net, fc_variant: str = "opt") -> None:
    """Fail fast, before calibration: one input, one output, every layer with a CMSIS-NN
    function whose rules hold, and the wiring the generated code relies on."""
    if len(net.input_shapes) != 1:
        raise CmsisgenError(f"{net.source}: cmsisgen supports one network input, found {len(net.input_shapes)}")
    if len(net.outputs) != 1:
        raise CmsisgenError(f"{net.source}: cmsisgen supports one network output, found {len(net.outputs)}: "
                            + ", ".join(net.outputs))
    flattened = _flattened(net)
    for layer in net.layers:
        if layer.type not in ALIASES + ("InnerProduct", "ReLU") and any(b in flattened for b in layer.bottoms):
            raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): a Flatten output may only feed an InnerProduct")
        if layer.type == "Reshape":
            _check_reshape(net, layer, flattened)
        readers = net.consumers(layer.tops[0]) if layer.type == "Softmax" else []
        if readers:
            # The quantizer gives a Softmax output arm_softmax_q7's fixed Q0.7; a later
            # layer tying that tensor to another format would read it wrongly.
            raise CmsisgenError(
                f"layer '{layer.name}' (Softmax): arm_softmax_q7 writes Q0.7 whatever follows, so a Softmax "
                f"is supported only as a network output (it feeds '{readers[0].name}')")
        key = _rule_key(layer, fc_variant)
        if key is not None and key.startswith("Pooling/"):
            _pool_choice(_site(layer, net))
        elif key == "Convolution/group":
            _conv_choice(_site(layer, net))
        elif key is not None:
            rules.choose(key, _site(layer, net))


def _reshape_keeps_bytes(held: tuple[int, int, int], out: tuple[int, int, int]) -> bool:
    """Whether HWC bytes of shape ``held`` are also the HWC bytes of the Caffe reshape to
    ``out``: pixels regrouped row-major with the channel count kept, or a vector (CHW order is
    HWC order) viewed as a 1-channel image."""
    c, h, w = held
    oc, _, _ = out
    return oc == c or (h * w == 1 and oc == 1)


def _check_reshape(net: ir.Net, layer: ir.Layer, flattened: dict[str, tuple[int, int, int]]) -> None:
    """A Reshape is an alias (no code). Its output's bytes are its input's; that is its own
    HWC layout for a reshape to (N, K) or one that keeps the bytes (_reshape_keeps_bytes).
    Any other reshape keeps the Caffe (C, H, W) element order only as its source's HWC bytes:
    fine for inner products (their weight columns are permuted, as after a Flatten) and as
    the network output (reordered on the host), refused for every other reader."""
    held = flattened.get(layer.bottoms[0]) or net.shapes[layer.bottoms[0]]
    out = net.shapes[layer.tops[0]]
    if out[1] * out[2] == 1 or _reshape_keeps_bytes(held, out):
        return
    readers = net.consumers(layer.tops[0])
    if all(reader.type == "InnerProduct" for reader in readers):
        return
    c, h, w = held
    raise CmsisgenError(
        f"layer '{layer.name}' (Reshape): ({c}, {h}, {w}) -> {out} would reorder the bytes of the HWC layout "
        f"activations are kept in, and '{next(r for r in readers if r.type != 'InnerProduct').name}' reads it; "
        "such a reshape may only feed inner products (a reshape to (N, K), or one that keeps the channel count, "
        "may feed anything)")


def _flattened(net: ir.Net) -> dict[str, tuple[int, int, int]]:
    """Tensors that hold a spatial tensor's HWC bytes under a flat (N, 1, 1) shape (a Flatten
    output, and its aliases and ReLUs) -> the spatial (C, H, W) of those bytes."""
    source: dict[str, tuple[int, int, int]] = {}
    for layer in net.layers:
        if layer.type not in ALIASES + ("ReLU",):
            continue
        c, h, w = net.shapes[layer.bottoms[0]]
        _, oh, ow = net.shapes[layer.tops[0]]
        held = source.get(layer.bottoms[0]) or (c, h, w)  # the shape whose HWC bytes the input holds
        if layer.type in ("Flatten", "Reshape") and h * w > 1 and oh * ow == 1:
            spatial: Optional[tuple[int, int, int]] = (c, h, w)
        elif layer.type == "Reshape" and oh * ow > 1:
            # a spatial output: its own shape describes its bytes, unless the reshape reorders
            # them (then, like a Flatten output, only inner products may read it)
            spatial = None if _reshape_keeps_bytes(held, net.shapes[layer.tops[0]]) else held
        else:
            spatial = source.get(layer.bottoms[0])
        if spatial is not None:
            source.update((top, spatial) for top in layer.tops)
    return source


def _rule_key(layer: ir.Layer, fc_variant: str) -> Optional[str]:
    if layer.type == "Pooling":
        return f"Pooling/{layer.params.method}" if layer.params.method in ("max", "ave") else "Pooling/max"  # type: ignore[union-attr]
    if layer.type == "InnerProduct":
        return "InnerProduct" if fc_variant == "opt" else "InnerProduct/plain"
    if layer.type == "Eltwise":
        return f"Eltwise/{layer.params.operation}"  # type: ignore[union-attr]
    if layer.type == "Convolution" and layer.params.group > 1:  # type: ignore[union-attr]
        return "Convolution/group"
    return layer.type if layer.type in rules.FUNCTIONS else None


def _pool_choice(site: rules.Site) -> str:
    """The CMSIS-NN pooling function when one fits; else, for a window covering the whole
    image (global pooling of a non-square image, say), the generated nn_global_pool_q7."""
    try:
        return rules.choose(f"Pooling/{site.method}" if site.method in ("max", "ave") else "Pooling/max", site)
    except CmsisgenError:
        if not rules.whole_image_window(site):
            raise
        return rules.choose("Pooling/global", site)


def _conv_choice(site: rules.Site) -> tuple[str, str]:
    """(op kind, function) of a convolution: "conv" for a dense one, "depthwise" when a
    depthwise function fits a grouped one, else "group_conv" with the dense function the
    rules pick for one group's channel slice."""
    if site.group == 1:
        return "conv", rules.choose("Convolution", site)
    function = rules.choose("Convolution/group", site)
    if function != rules.PER_GROUP:
        return "depthwise", function
    one_group = dataclasses.replace(site, in_ch=site.in_ch // site.group, out_ch=site.out_ch // site.group, group=1)
    return "group_conv", rules.choose("Convolution", one_group)


def _input_op(name: str, shape: tuple[int, int, int], frac: int, pre: Preprocessing) -> Op:
    c, h, w = shape
    return Op(layer=name, layer_type="Input", kind="input", function="nn_input_q7", inputs=[], output=name,
              args={"size": h * w, "channels": c}, input_fp=pre.fixed_point(frac, shape),
              channel_source=pre.channel_source, formats={"out_frac": frac})


def _site(layer: ir.Layer, net: ir.Net) -> rules.Site:
    c, h, w = net.shapes[layer.bottoms[0]]
    oc, oh, ow = net.shapes[layer.tops[0]]
    p = layer.params
    common = dict(layer=layer.name, type=layer.type, in_ch=c, in_h=h, in_w=w, out_ch=oc, out_h=oh, out_w=ow,
                  inputs=len(layer.bottoms))
    if isinstance(p, ir.ConvParams):
        return rules.Site(**common, kernel_h=p.kernel_h, kernel_w=p.kernel_w, stride_h=p.stride_h,
                          stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w, group=p.group, dilation=p.dilation)
    if isinstance(p, ir.LRNParams):
        return rules.Site(**common, kernel_h=p.local_size, kernel_w=p.local_size, method=p.region)
    if isinstance(p, ir.PoolParams):  # global pooling: shapes.infer_shapes set the kernel to H x W
        return rules.Site(**common, kernel_h=p.kernel_h, kernel_w=p.kernel_w, stride_h=p.stride_h,
                          stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w, method=p.method)
    if layer.type == "InnerProduct":
        common.update(in_ch=c * h * w, in_h=1, in_w=1)
    if isinstance(p, ir.NoParams):
        return rules.Site(**common, negative_slope=p.negative_slope)
    return rules.Site(**common)


def _map_layer(layer: ir.Layer, site: rules.Site, net: ir.Net, quant: Quantization, bottoms: list[str],
               hwc_source: Optional[tuple[int, int, int]], fc_variant: str) -> Op:
    top = layer.tops[0]
    c, h, w = net.shapes[layer.bottoms[0]]
    oc, oh, ow = net.shapes[top]
    fmt = {"in_frac": quant.tensor_frac[layer.bottoms[0]], "out_frac": quant.tensor_frac[top]}
    if layer.type == "Convolution":
        kind, function = _conv_choice(site)
        lq = quant.layers[layer.name]
        weights = layout.conv_weights_hwc(lq.weights)
        args = {"ch_im_in": c, "ch_im_out": oc, "dim_im_in_x": w, "dim_im_in_y": h,
                "dim_kernel_x": site.kernel_w, "dim_kernel_y": site.kernel_h,
                "padding_x": site.pad_w, "padding_y": site.pad_h, "stride_x": site.stride_w,
                "stride_y": site.stride_h, "dim_im_out_x": ow, "dim_im_out_y": oh,
                "bias_shift": lq.bias_lshift, "out_shift": lq.out_rshift}
        fmt.update(weight_frac=lq.weight_frac, bias_frac=lq.bias_frac, bias_lshift=lq.bias_lshift,
                   out_rshift=lq.out_rshift)
        if kind != "conv":
            return _grouped_conv_op(layer, kind, function, site, args, weights, lq.bias, bottoms, fmt)
        return Op(layer=layer.name, layer_type=layer.type, kind="conv", function=function, inputs=bottoms,
                  output=top, args=args, weights=weights, bias=lq.bias, weight_data=weights.reshape(-1),
                  scratch_bytes=2 * 2 * c * site.kernel_h * site.kernel_w,
                  reads_past_end=READS_PAST_END.get(function, 0),
                  macs=oh * ow * oc * c * site.kernel_h * site.kernel_w, formats=fmt)
    if layer.type == "Pooling":
        method = layer.params.method  # type: ignore[union-attr]
        function = _pool_choice(site)
        if function == "nn_global_pool_q7":
            args = {"channels": c, "pixels": h * w, "average": int(method == "ave")}
            return Op(layer=layer.name, layer_type=layer.type, kind="global_pool", function=function,
                      inputs=bottoms, output=top, args=args, macs=h * w * c, formats=fmt)
        args = {"dim_im_in": h, "ch_im_in": c, "dim_kernel": site.kernel_h, "padding": site.pad_h,
                "stride": site.stride_h, "dim_im_out": oh}
        return Op(layer=layer.name, layer_type=layer.type, kind="maxpool" if method == "max" else "avepool",
                  function=function, inputs=bottoms, output=top, args=args,
                  scratch_bytes=2 * oh * c if method == "ave" else 0, clobbers_input=True,
                  in_place=rules.works_in_place(function, site),
                  macs=oh * ow * c * site.kernel_h * site.kernel_w, formats=fmt)
    if layer.type == "PReLU" or (layer.type == "ReLU" and site.negative_slope != 0.0):
        function = rules.choose(layer.type, site)
        slopes, slope_frac = quant.slopes[layer.name]
        fmt.update(slope_frac=slope_frac)
        return Op(layer=layer.name, layer_type=layer.type, kind="prelu", function=function, inputs=bottoms,
                  output=top, args={"channels": c, "pixels": h * w, "slope_shift": slope_frac}, weights=slopes,
                  weight_data=slopes, in_place=True, macs=c * h * w, formats=fmt)
    if layer.type == "ReLU":
        function = rules.choose("ReLU", site)
        return Op(layer=layer.name, layer_type=layer.type, kind="relu", function=function, inputs=bottoms,
                  output=top, args={"size": c * h * w}, in_place=True, macs=c * h * w, formats=fmt)
    if layer.type == "InnerProduct":
        p: ir.InnerProductParams = layer.params  # type: ignore[assignment]
        function = rules.choose("InnerProduct" if fc_variant == "opt" else "InnerProduct/plain", site)
        lq = quant.layers[layer.name]
        matrix = lq.weights.T if p.transpose else lq.weights
        source = hwc_source or ((c, h, w) if h * w > 1 else None)
        if source is not None:
            matrix = layout.fc_columns_chw_to_hwc(matrix, *source)
        data = layout.interleave_fc_opt(matrix) if function.endswith("_opt") else matrix.reshape(-1)
        dim_vec = c * h * w
        args = {"dim_vec": dim_vec, "num_of_rows": oc, "bias_shift": lq.bias_lshift, "out_shift": lq.out_rshift}
        fmt.update(weight_frac=lq.weight_frac, bias_frac=lq.bias_frac, bias_lshift=lq.bias_lshift,
                   out_rshift=lq.out_rshift)
        return Op(layer=layer.name, layer_type=layer.type, kind="fc", function=function, inputs=bottoms,
                  output=top, args=args, weights=matrix, bias=lq.bias, weight_data=data,
                  scratch_bytes=2 * dim_vec, macs=dim_vec * oc, formats=fmt)
    if layer.type == "Softmax":
        function = rules.choose("Softmax", site)
        return Op(layer=layer.name, layer_type=layer.type, kind="softmax", function=function, inputs=bottoms,
                  output=top, args={"dim_vec": c}, macs=c, formats=fmt)
    if layer.type == "LRN":
        function = rules.choose("LRN", site)
        lrn_p: ir.LRNParams = layer.params  # type: ignore[assignment]
        table = lrn.lrn_table(layer.name, lrn_p, fmt["in_frac"], fmt["out_frac"])
        args = {"height": h, "width": w, "channels": c, "local_size": lrn_p.local_size,
                "mantissa_bits": table.mantissa_bits, "out_shift": table.out_shift, "table_size": table.table.size}
        fmt.update(mul_frac=table.mul_frac, out_rshift=table.out_shift)
        return Op(layer=layer.name, layer_type=layer.type, kind="lrn", function=function, inputs=bottoms,
                  output=top, args=args, weight_data=table.table,
                  macs=c * h * w * (lrn.window_size(lrn_p) + 1), formats=fmt)
    if layer.type == "Concat":
        axis = layer.params.axis  # type: ignore[union-attr]
        channels = [net.shapes[b][0] for b in layer.bottoms]
        args = {"pixels": h * w, "ch_out": oc, **{f"ch_in{i}": ch for i, ch in enumerate(channels)}}
        return Op(layer=layer.name, layer_type=layer.type, kind="concat", function="nn_concat_channels_q7",
                  inputs=bottoms, output=top, args=args, formats=fmt)
    if layer.type in ("Sigmoid", "TanH"):
        function = rules.choose(layer.type, site)
        if fmt["in_frac"] < 4 or fmt["out_frac"] != 7:
            formats = " and ".join(f"Q{7 - fmt[k]}.{fmt[k]}" for k in ("in_frac", "out_frac"))
            raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): {function} needs its input with at most "
                                f"3 integer bits and writes Q0.7; the formats are {formats}")
        return Op(layer=layer.name, layer_type=layer.type, kind="activation", function=function, inputs=bottoms,
                  output=top, args={"size": c * h * w, "int_width": 7 - fmt["in_frac"],
                                    "type": 0 if layer.type == "Sigmoid" else 1},
                  in_place=True, macs=c * h * w, formats=fmt)
    if layer.type == "Scale":  # a BatchNorm/Scale that fold.fold_affine could not fold
        function = rules.choose("Scale", site)
        lq = quant.layers[layer.name]
        args = {"channels": c, "pixels": h * w, "bias_shift": lq.bias_lshift, "out_shift": lq.out_rshift}
        fmt.update(weight_frac=lq.weight_frac, bias_frac=lq.bias_frac, bias_lshift=lq.bias_lshift,
                   out_rshift=lq.out_rshift)
        return Op(layer=layer.name, layer_type=layer.type, kind="scale", function=function, inputs=bottoms,
                  output=top, args=args, weights=lq.weights, bias=lq.bias, weight_data=lq.weights.reshape(-1),
                  in_place=True, macs=c * h * w, formats=fmt)
    if layer.type == "Eltwise":
        operation = layer.params.operation  # type: ignore[union-attr]
        function = rules.choose(f"Eltwise/{operation}", site)
        eq = quant.eltwise[layer.name]
        args = {"size": oc * oh * ow, "inputs": len(bottoms), "out_rshift": eq.out_rshift,
                **{f"lshift{i}": shift for i, shift in enumerate(eq.lshifts)},
                **{f"coeff{i}": coeff for i, coeff in enumerate(eq.coeffs)}}
        fmt.update({f"in{i}_frac": f for i, f in enumerate(eq.in_fracs)}, coeff_frac=eq.coeff_frac,
                   out_rshift=eq.out_rshift)
        return Op(layer=layer.name, layer_type=layer.type, kind="eltwise", function=function, inputs=bottoms,
                  output=top, args=args, macs=oc * oh * ow * len(bottoms), formats=fmt)
    raise CmsisgenError(f"layer '{layer.name}' ({layer.type}): not supported by cmsisgen")


def _grouped_conv_op(layer: ir.Layer, kind: str, function: str, site: rules.Site, args: dict[str, int],
                     weights: np.ndarray, bias: np.ndarray, bottoms: list[str], fmt: dict[str, int]) -> Op:
    """A convolution with group > 1: one depthwise call, or one dense call per group.

    Depthwise weights are read as ``[kh][kw][C]`` (Caffe's ``[C, 1, kh, kw]`` transposed).
    Per group, nn.c gathers the group's input channels into scratch, runs the dense
    function there into a second scratch area, then copies the result into the group's
    output channels; so scratch holds the function's im2col buffer, the gathered input
    (plus the byte arm_convolve_HWC_q7_RGB reads past its input) and the group's output,
    each 4-byte aligned (the template recomputes the same offsets).
    """
    taps = site.kernel_h * site.kernel_w
    macs_per_pixel = site.out_ch * (site.in_ch // site.group) * taps
    common = dict(layer=layer.name, layer_type=layer.type, kind=kind, function=function, inputs=bottoms,
                  output=layer.tops[0], bias=bias, macs=site.out_h * site.out_w * macs_per_pixel, formats=fmt)
    if kind == "depthwise":
        dw = np.ascontiguousarray(weights[:, :, :, 0].transpose(1, 2, 0))  # [O, kh, kw, 1] -> [kh, kw, C]
        return Op(**common, args=args, weights=dw, weight_data=dw.reshape(-1), scratch_bytes=2 * site.in_ch * taps)
    in_g, out_g = site.in_ch // site.group, site.out_ch // site.group
    group_args = dict(args, groups=site.group, ch_in_group=in_g, ch_out_group=out_g,
                      im2col_bytes=_align4(2 * 2 * in_g * taps),
                      group_in_bytes=_align4(site.in_h * site.in_w * in_g + 1),
                      group_out_bytes=_align4(site.out_h * site.out_w * out_g))
    scratch = group_args["im2col_bytes"] + group_args["group_in_bytes"] + group_args["group_out_bytes"]
    return Op(**common, args=group_args, weights=weights, weight_data=weights.reshape(-1), scratch_bytes=scratch)


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4
