"""An independent integer reference for a compiled network, written from the CMSIS-NN
semantics, not from cmsisgen's simulator.

It walks the loaded Caffe net (``compiled.net``) layer by layer in Caffe's own CHW layout
with Caffe-layout quantized weights (``compiled.quant``), so it also checks the mapper's
weight layouts (HWC conv weights, CHW->HWC inner-product columns, the _opt interleave)
and the buffer plan's copies, which it does not need. Plain Python/numpy integer loops:

* input: ``q = sat8((pixel * MUL - OFFSET + 2^15) >> 16)``, ``MUL = round(scale * 2^(f+16))``,
  ``OFFSET = round(mean * scale * 2^(f+16))`` (per channel or per pixel);
* conv / fc: ``acc = (bias << bias_shift) + NN_ROUND(out_shift) + sum(x * w)`` in int32,
  ``out = sat8(acc >> out_shift)`` (arithmetic shift, so NN_ROUND makes it round half up);
* pooling: the DSP (Cortex-M7) algorithm, a line-by-line port of upstream's
  ``arm_{max,ave}pool_q7_HWC``: an x pass in place over each input row (the window
  from ``i*stride - pad`` clipped to the row, starting at the target column when that is
  negative, always taking its first element), then a y pass over the rows; the average
  divides each pass by its own clipped count with C (truncating) division; where the program
  calls nn_pool_q7 instead, Caffe's own loops (the divisor clipped to the padded image), rounded
  half away from zero;
* relu: ``max(x, 0)``; softmax: upstream's base-2 integer arm_softmax_q7.
"""
from __future__ import annotations

import math

import numpy as np

ALIASES = ("Dropout", "Flatten", "Split", "Reshape")


def sat8(v: int) -> int:
    return -128 if v < -128 else 127 if v > 127 else int(v)


def wrap32(v: int) -> int:
    return ((int(v) + 2**31) % 2**32) - 2**31


def nn_round(shift: int) -> int:
    return (1 << shift) >> 1


def c_div(a: int, b: int) -> int:
    """C99 integer division: truncation towards zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# --------------------------------------------------------------------------- layers


def input_q7(image_hwc: np.ndarray, pre, frac: int) -> np.ndarray:
    """One uint8 image (H, W, 3 or 1) as run_nn() receives it -> int CHW."""
    h, w, _ = image_hwc.shape
    c = len(pre.channel_source)
    scale = float(pre.scale)
    mul = int(round(scale * 2.0 ** (frac + 16)))
    mean = np.asarray(pre.mean, dtype=np.float64)
    per_pixel = mean.shape[1:] != (1, 1)
    out = np.zeros((c, h, w), dtype=np.int64)
    for ch in range(c):
        src = pre.channel_source[ch]
        for y in range(h):
            for x in range(w):
                m = mean[ch, y, x] if per_pixel else mean[ch, 0, 0]
                offset = int(round(float(m) * scale * 2.0 ** (frac + 16)))
                acc = int(image_hwc[y, x, src]) * mul - offset + (1 << 15)
                out[ch, y, x] = sat8(acc >> 16)
    return out


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, pad, out_hw, bias_shift: int,
         out_shift: int, dilation=(1, 1)) -> np.ndarray:
    """x (C, H, W), w (O, C, kh, kw) Caffe layout, b (O,)."""
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    sh, sw = stride
    ph, pw = pad
    dh, dw = dilation
    oh, ow = out_hw
    padded = np.zeros((c, h + 2 * ph + dh * kh, wd + 2 * pw + dw * kw), dtype=np.int64)
    padded[:, ph:ph + h, pw:pw + wd] = x
    w64 = w.astype(np.int64)
    out = np.zeros((o, oh, ow), dtype=np.int64)
    for oc in range(o):
        start = (int(b[oc]) << bias_shift) + nn_round(out_shift)
        for oy in range(oh):
            for ox in range(ow):
                window = padded[:, oy * sh:oy * sh + dh * (kh - 1) + 1:dh, ox * sw:ox * sw + dw * (kw - 1) + 1:dw]
                acc = wrap32(start + int((window * w64[oc]).sum()))
                out[oc, oy, ox] = sat8(acc >> out_shift)
    return out


def deconv(x: np.ndarray, w: np.ndarray, b: np.ndarray, p, out_hw, bias_shift: int, out_shift: int) -> np.ndarray:
    """Caffe's Deconvolution (col2im of the weights times each input pixel): x (C, H, W),
    w (C, O / group, kh, kw) Caffe layout, b (O,)."""
    c, h, wd = x.shape
    _, out_g, kh, kw = w.shape
    in_g = c // p.group
    full = np.zeros((out_g * p.group, (h - 1) * p.stride_h + p.dilation_h * (kh - 1) + 1,
                     (wd - 1) * p.stride_w + p.dilation_w * (kw - 1) + 1), dtype=np.int64)
    for i in range(c):
        g = i // in_g
        for iy in range(h):
            for ix in range(wd):
                for ky in range(kh):
                    for kx in range(kw):
                        y, z = iy * p.stride_h + ky * p.dilation_h, ix * p.stride_w + kx * p.dilation_w
                        full[g * out_g:(g + 1) * out_g, y, z] += int(x[i, iy, ix]) * w[i, :, ky, kx].astype(np.int64)
    oh, ow = out_hw
    acc = full[:, p.pad_h:p.pad_h + oh, p.pad_w:p.pad_w + ow]
    start = (b.astype(np.int64) << bias_shift) + nn_round(out_shift)
    total = np.vectorize(wrap32)(acc + start[:, None, None])
    return np.clip(total >> out_shift, -128, 127)


def convolution(layer, x: np.ndarray, lq, out_shape) -> np.ndarray:
    """Convolution (any group, dilation) and ConvolutionDepthwise (group = channels) by Caffe's
    definition: each group's filters see only its input channels."""
    p = layer.params
    oc, oh, ow = out_shape
    group = x.shape[0] if layer.type == "ConvolutionDepthwise" else p.group
    in_g, out_g = x.shape[0] // group, oc // group
    return np.concatenate([
        conv(x[g * in_g:(g + 1) * in_g], lq.weights[g * out_g:(g + 1) * out_g], lq.bias[g * out_g:(g + 1) * out_g],
             (p.stride_h, p.stride_w), (p.pad_h, p.pad_w), (oh, ow), lq.bias_lshift, lq.out_rshift,
             (p.dilation_h, p.dilation_w)) for g in range(group)])


def fully_connected(vec: np.ndarray, w: np.ndarray, b: np.ndarray, bias_shift: int, out_shift: int) -> np.ndarray:
    """vec (K,) in Caffe's CHW flatten order, w (O, K) Caffe layout."""
    out = np.zeros(w.shape[0], dtype=np.int64)
    for row in range(w.shape[0]):
        acc = (int(b[row]) << bias_shift) + nn_round(out_shift)
        for k in range(w.shape[1]):
            acc += int(vec[k]) * int(w[row, k])
        out[row] = sat8(wrap32(acc) >> out_shift)
    return out


def _window(i: int, dim_in: int, k: int, pad: int, stride: int, x_pass: bool) -> tuple[int, int]:
    t = i * stride - pad
    if t < 0:
        start = i if x_pass else 0
    else:
        start = t
    stop = dim_in if t + k >= dim_in else t + k
    return start, stop


def pool_dsp(x: np.ndarray, k: int, pad: int, stride: int, out_dim: int, method: str) -> np.ndarray:
    """Upstream's DSP pooling on one (C, D, D) tensor; returns (C, out, out)."""
    c, d, _ = x.shape
    out = np.zeros((c, out_dim, out_dim), dtype=np.int64)
    for ch in range(c):
        im = [[int(v) for v in row] for row in x[ch]]  # Im_in, pooled in place along x
        for y in range(d):
            row = im[y]
            for i in range(out_dim):
                start, stop = _window(i, d, k, pad, stride, x_pass=True)
                if method == "max":
                    row[i] = row[start]  # memmove of the first column over the target
                    for j in range(start + 1, stop):
                        if row[j] > row[i]:
                            row[i] = row[j]
                else:
                    total, count = row[start], 1
                    for j in range(start + 1, stop):
                        total += row[j]
                        count += 1
                    row[i] = c_div(total, count)
        for i in range(out_dim):
            start, stop = _window(i, d, k, pad, stride, x_pass=False)
            for col in range(out_dim):
                if method == "max":
                    value = im[start][col]
                    for r in range(start + 1, stop):
                        value = max(value, im[r][col])
                else:
                    total, count = im[start][col], 1
                    for r in range(start + 1, stop):
                        total += im[r][col]
                        count += 1
                    value = c_div(total, count)
                out[ch, i, col] = value
    return out


def softmax(vec: np.ndarray) -> np.ndarray:
    """arm_softmax_q7, upstream's integer arithmetic."""
    values = [int(v) for v in vec]
    base = -128
    for v in values:
        if v > base:
            base = v
    base = base - 8
    total = 0
    for v in values:
        total += 1 << min(max(v - base, 0), 7)  # __USAT(v - base, 3)
    output_base = (1 << 20) // total
    out = []
    for v in values:
        shift = min(max(13 + base - v, 0), 31)  # __USAT(13 + base - v, 5)
        out.append(sat8(output_base >> shift))
    return np.array(out, dtype=np.int64)


def pool_caffe(x: np.ndarray, kernel, stride, pad, out_hw, method: str, shift: int = 0) -> np.ndarray:
    """nn_pool_q7, a transliteration of Caffe's PoolingLayer::Forward_cpu on ints: each window
    clipped to the image; the average's divisor is the window clipped to the padded image
    (before the image clip), the quotient of the sum times 2^shift (an output format with
    ``shift`` more fractional bits) rounded half away from zero and saturated."""
    c, h, w = x.shape
    out = np.zeros((c, *out_hw), dtype=np.int64)
    for ch in range(c):
        for ph in range(out_hw[0]):
            for pw in range(out_hw[1]):
                hstart, wstart = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
                hend, wend = min(hstart + kernel[0], h + pad[0]), min(wstart + kernel[1], w + pad[1])
                pool_size = (hend - hstart) * (wend - wstart)
                hstart, wstart, hend, wend = max(hstart, 0), max(wstart, 0), min(hend, h), min(wend, w)
                values = [int(x[ch, y, xx]) for y in range(hstart, hend) for xx in range(wstart, wend)]
                if method == "max":
                    out[ch, ph, pw] = max(values)
                else:
                    total = sum(values) * 2 ** shift
                    half = pool_size // 2
                    out[ch, ph, pw] = sat8(c_div(total + half if total >= 0 else total - half, pool_size))
    return out


def table_activation(x: np.ndarray, in_frac: int, kind: str) -> np.ndarray:
    """arm_nn_activations_direct_q7: x >> (in_frac - 4) is a Q3.4 value v (as int8), the
    output round(f(v / 16) * 128) saturated, f the logistic function or tanh."""
    import math

    f = (lambda t: 1.0 / (1.0 + math.exp(-t))) if kind == "Sigmoid" else math.tanh
    out = np.zeros_like(x)
    for idx, value in np.ndenumerate(x):
        v = ((int(value) >> (in_frac - 4)) + 128) % 256 - 128
        out[idx] = sat8(math.floor(f(v / 16.0) * 128.0 + 0.5))
    return out


def prelu(x: np.ndarray, layer, net) -> np.ndarray:
    """Negative values times the slope quantized with k fractional bits (k the most that
    keep max|slope| in int8, 0..23), rounded half up: (x * a + 2^(k-1)) >> k."""
    import math

    c = x.shape[0]
    if layer.type == "PReLU":
        slopes = np.broadcast_to(layer.blobs[0].reshape(-1), (c,))
    else:
        slopes = np.full(c, layer.params.negative_slope)
    top = float(np.abs(slopes).max())
    k = min(23, max(0, math.floor(math.log2(127.0 / top)))) if top > 0 else 7
    out = x.copy()
    for ch in range(c):
        s = float(slopes[ch]) * 2**k
        a = sat8(int(math.floor(abs(s) + 0.5)) * (1 if s >= 0 else -1))
        for idx in zip(*np.nonzero(x[ch] < 0)):
            out[ch][idx] = sat8((int(x[ch][idx]) * a + nn_round(k)) >> k)
    return out


def coefficient_ints(coeffs, lshifts) -> tuple[list[int], int]:
    """Eltwise SUM coefficients as c * 2^k rounded half away from zero: k the most fractional
    bits (<= 15) with every |c * 2^k| <= 32767 and sum(max(|c|, 1) * 128 * 2^lshift) <= 2^31 - 2^30,
    then reduced while every integer is even (1.0 -> 1 with k = 0)."""
    import math

    for k in range(15, -1, -1):
        ints = [int(math.floor(abs(float(c)) * 2**k + 0.5)) * (1 if c >= 0 else -1) for c in coeffs]
        bound = sum(max(abs(c), 1) * 128 * 2**s for c, s in zip(ints, lshifts))
        if max(abs(c) for c in ints) <= 32767 and bound <= 2**31 - 2**30:
            break
    while k > 0 and all(c % 2 == 0 for c in ints):
        k, ints = k - 1, [c // 2 for c in ints]
    return ints, k


def eltwise(ins: list[np.ndarray], fracs: list[int], out_frac: int, operation: str, coeffs) -> np.ndarray:
    """Inputs in Q formats ``fracs``: SUM/MAX bring each to F = max(out_frac, fracs) bits by
    a left shift (SUM also times its coefficient c * 2^k), PROD multiplies (f_a + f_b bits);
    then one rounding right shift into ``out_frac`` and saturation."""
    flat = [[int(v) for v in x.reshape(-1)] for x in ins]
    out = []
    if operation == "prod":
        shift = fracs[0] + fracs[1] - out_frac
        for a, b in zip(*flat):
            out.append(sat8((a * b + nn_round(shift)) >> shift))
    else:
        common = max(out_frac, *fracs)
        lshifts = [common - f for f in fracs]
        ints, k = coefficient_ints(coeffs or [1.0] * len(ins), lshifts) if operation == "sum" else ([1] * len(ins), 0)
        shift = common + k - out_frac
        for values in zip(*flat):
            scaled = [v * 2 ** (common - f) for v, f in zip(values, fracs)]
            acc = sum(c * v for c, v in zip(ints, scaled)) if operation == "sum" else max(scaled)
            out.append(sat8((acc + nn_round(shift)) >> shift))
    return np.array(out, dtype=np.int64).reshape(ins[0].shape)


def lrn(x: np.ndarray, p, in_frac: int, out_frac: int, name: str) -> np.ndarray:
    """x (C, H, W): the sum of squares of every window by explicit loops, the multiplier
    from the compile-time table, rounded and saturated product."""
    from cmsisgen.ops.lrn import lrn_table

    t = lrn_table(name, p, in_frac, out_frac)
    c, h, w = x.shape
    half = (p.local_size - 1) // 2
    out = np.zeros_like(x)
    for ch in range(c):
        for y in range(h):
            for xx in range(w):
                if p.region == "across":
                    window = [int(x[j, y, xx]) for j in range(max(0, ch - half), min(c, ch + half + 1))]
                else:
                    window = [int(x[ch, wy, wx]) for wy in range(max(0, y - half), min(h, y + half + 1))
                              for wx in range(max(0, xx - half), min(w, xx + half + 1))]
                s = sum(v * v for v in window)
                e = 0
                while (s >> e) >= 1 << t.mantissa_bits:
                    e += 1
                step = 1 << (t.mantissa_bits - 1)
                index = s if e == 0 else (1 << t.mantissa_bits) + (e - 1) * step + (s >> e) - step
                index = min(index, t.table.size - 1)
                out[ch, y, xx] = sat8((int(x[ch, y, xx]) * int(t.table[index]) + nn_round(t.out_rshift)) >> t.out_rshift)
    return out


# --------------------------------------------------------------------------- network


def _power(x: float, p) -> float:
    if p.power * p.scale == 0:
        return 1.0 if p.power == 0 else p.shift ** p.power
    base = p.shift + p.scale * x
    if base < 0 and not float(p.power).is_integer():
        return math.nan
    if base == 0 and p.power < 0:
        return math.inf
    return base ** p.power


POINTWISE = {
    "ReLU6": lambda x, p: min(max(x, 0.0), p.threshold) + p.negative_slope * min(x, 0.0),
    "Clip": lambda x, p: max(p.low, min(x, p.high)),
    "Power": _power,
    "AbsVal": lambda x, p: abs(x),
    "ELU": lambda x, p: max(x, 0.0) + p.alpha * (math.exp(min(x, 0.0)) - 1.0),
    "BNLL": lambda x, p: x + math.log(1.0 + math.exp(-x)) if x > 0 else math.log(1.0 + math.exp(x)),
    "Threshold": lambda x, p: 1.0 if x > p.threshold else 0.0,
}


def pointwise(x: np.ndarray, kind: str, p, in_frac: int, out_frac: int) -> np.ndarray:
    """The function of each value (in Q(7-in_frac).in_frac) as a real number, scaled to the
    output's format, rounded half away from zero and saturated; no value (NaN) gives 0."""
    out = np.zeros_like(x)
    for idx, value in np.ndenumerate(x):
        y = POINTWISE[kind](int(value) * 2.0 ** -in_frac, p) * 2.0 ** out_frac
        out[idx] = 0 if math.isnan(y) else -128 if y == -math.inf else 127 if y == math.inf else \
            sat8(int(math.copysign(math.floor(abs(y) + 0.5), y)))
    return out


def argmax(x: np.ndarray, per_pixel: bool) -> np.ndarray:
    """Caffe's ArgMax: the index of the largest value, the highest index among equals;
    per pixel over channels, else over the whole CHW blob in C, H, W order."""
    c, h, w = x.shape
    groups = [x[:, i, j].tolist() for i in range(h) for j in range(w)] if per_pixel else [x.reshape(-1).tolist()]
    best = [max(range(len(g)), key=lambda k: (g[k], k)) for g in groups]
    return np.array(best).reshape((1, h, w) if per_pixel else (1, 1, 1))


def run_image(compiled, image_hwc: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor (CHW ints) of the network for one raw image."""
    net, quant = compiled.net, compiled.quant
    (input_name, _), = net.input_shapes.items()
    values = {input_name: input_q7(image_hwc, compiled.pre, quant.tensor_frac[input_name])}
    functions = {op.layer: op.function for op in compiled.program.ops}  # which pooling kernel runs a layer
    for layer in net.layers:
        ins = [values[b] for b in layer.bottoms]
        top = layer.tops[0]
        oc, oh, ow = net.shapes[top]
        p = layer.params
        if layer.type in ALIASES:
            for t in layer.tops:
                values[t] = ins[0].reshape(net.shapes[t])
            continue
        if layer.type in ("Convolution", "ConvolutionDepthwise"):
            out = convolution(layer, ins[0], quant.layers[layer.name], (oc, oh, ow))
        elif layer.type == "Deconvolution":
            lq = quant.layers[layer.name]
            bias = lq.bias if p.bias_term else np.zeros(oc, dtype=np.int8)
            out = deconv(ins[0], lq.weights, bias, p, (oh, ow), lq.bias_lshift, lq.out_rshift)
        elif layer.type == "InnerProduct":
            lq = quant.layers[layer.name]
            w = lq.weights.T if p.transpose else lq.weights
            out = fully_connected(ins[0].reshape(-1), w, lq.bias, lq.bias_lshift, lq.out_rshift)
        elif layer.type == "Pooling":
            c, h, w = ins[0].shape
            if functions[layer.name] == "nn_pool_q7":  # Caffe's pooling, the project's own kernel
                out = pool_caffe(ins[0], (p.kernel_h, p.kernel_w), (p.stride_h, p.stride_w), (p.pad_h, p.pad_w),
                                 (oh, ow), p.method, quant.tensor_frac[top] - quant.tensor_frac[layer.bottoms[0]])
                values[top] = out
                continue
            if p.global_pooling:
                k, pad, stride = h, 0, 1
            else:
                k, pad, stride = p.kernel_h, p.pad_h, p.stride_h
            out = pool_dsp(ins[0], k, pad, stride, oh, p.method)
        elif layer.type in ("Sigmoid", "TanH"):
            out = table_activation(ins[0], quant.tensor_frac[layer.bottoms[0]], layer.type)
        elif layer.type == "PReLU" or (layer.type == "ReLU" and p.negative_slope != 0):
            out = prelu(ins[0], layer, net)
        elif layer.type == "ReLU":
            out = np.maximum(ins[0], 0)
        elif layer.type == "Softmax":
            out = softmax(ins[0].reshape(-1))
        elif layer.type == "LRN":
            out = lrn(ins[0], p, quant.tensor_frac[layer.bottoms[0]], quant.tensor_frac[top], layer.name)
        elif layer.type == "Concat":
            out = np.concatenate(ins, axis=0)
        elif layer.type == "Scale":  # unfolded BatchNorm/Scale: a 1x1 depthwise convolution
            lq = quant.layers[layer.name]
            out = np.stack([conv(ins[0][ch:ch + 1], lq.weights[ch].reshape(1, 1, 1, 1), lq.bias[ch:ch + 1], (1, 1),
                                 (0, 0), (oh, ow), lq.bias_lshift, lq.out_rshift)[0] for ch in range(oc)])
        elif layer.type == "Eltwise":
            out = eltwise(ins, [quant.tensor_frac[b] for b in layer.bottoms], quant.tensor_frac[top],
                          p.operation, p.coeffs)
        elif layer.type in POINTWISE:
            out = pointwise(ins[0], layer.type, p, quant.tensor_frac[layer.bottoms[0]], quant.tensor_frac[top])
        elif layer.type == "ArgMax":
            out = argmax(ins[0], p.per_pixel)
        else:
            raise AssertionError(f"no reference for {layer.type}")
        values[top] = np.asarray(out, dtype=np.int64).reshape(oc, oh, ow)
    return values


def run(compiled, images: np.ndarray) -> np.ndarray:
    """Raw uint8 images (N, H, W, C) as run_nn() receives them -> int8 (N, K): every output in
    HWC order, side by side in the net's output order (as the simulator returns them)."""
    rows = []
    for image in images:
        values = run_image(compiled, image)
        rows.append(np.concatenate([values[output].transpose(1, 2, 0).reshape(-1)
                                    for output in compiled.net.outputs]))
    return np.array(rows, dtype=np.int64).astype(np.int8)
