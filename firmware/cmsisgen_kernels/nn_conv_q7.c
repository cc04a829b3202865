/*
 * cmsisgen kernels: general q7 HWC convolution and transposed convolution (Caffe
 * Deconvolution) with per-axis kernel, stride, padding and dilation, and groups. See nn_kernels.h.
 *
 * The arithmetic is CMSIS-NN's q7 convolutions': the accumulator starts at
 * (bias << bias_lshift) + NN_ROUND(out_rshift), adds the int8 products and is shifted right
 * by out_rshift and saturated. It is kept in uint32_t, which wraps modulo 2^32 as the SMLAD
 * accumulators do, without the undefined behaviour of a signed overflow.
 */
#include "nn_kernels.h"

/* The input row (or column) output position pos reads at kernel offset tap (ky * dilation),
 * or size when it reads padding. A convolution reads pos * stride - pad + tap; a transposed
 * convolution the i with i * stride - pad + tap == pos. */
static uint32_t nn_conv_source(uint32_t pos, uint32_t tap, uint32_t stride, uint32_t pad, uint32_t size,
                               int transposed)
{
    uint32_t at;

    if (!transposed) {
        at = pos * stride + tap;
        return (at < pad || at - pad >= size) ? size : at - pad;
    }
    at = pos + pad;
    if (at < tap || (at - tap) % stride != 0) {
        return size;
    }
    at = (at - tap) / stride;
    return at < size ? at : size;
}

/* The two's complement value of a wrapped accumulator, shifted (arithmetically) and saturated. */
static q7_t nn_conv_requantize(uint32_t acc, uint32_t out_rshift)
{
    const int32_t value = acc > 0x7FFFFFFFu ? -(int32_t)(~acc) - 1 : (int32_t)acc;
    const int32_t shifted = value >> out_rshift;

    return (q7_t)(shifted < -128 ? -128 : (shifted > 127 ? 127 : shifted));
}

static uint32_t nn_conv_dot(const q7_t *x, const q7_t *w, uint32_t n, uint32_t acc)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        acc += (uint32_t)((int32_t)x[i] * (int32_t)w[i]);
    }
    return acc;
}

/* One output value: channel o at output pixel (oy, ox). */
static q7_t nn_conv_one(const q7_t *in, const nn_conv_shape_q7 *s, const q7_t *wt, q7_t bias, uint32_t oy,
                        uint32_t ox, uint32_t o, int transposed)
{
    const uint32_t in_g = s->in_ch / s->groups;
    const uint32_t first = (o / (s->out_ch / s->groups)) * in_g;
    const q7_t *filter = wt + o * s->kernel_h * s->kernel_w * in_g;
    uint32_t acc = ((uint32_t)(int32_t)bias << s->bias_lshift) + ((1u << s->out_rshift) >> 1);
    uint32_t ky;
    uint32_t kx;

    for (ky = 0; ky < s->kernel_h; ky++) {
        const uint32_t iy = nn_conv_source(oy, ky * s->dilation_h, s->stride_h, s->pad_h, s->in_h, transposed);

        for (kx = 0; kx < s->kernel_w && iy < s->in_h; kx++) {
            const uint32_t ix = nn_conv_source(ox, kx * s->dilation_w, s->stride_w, s->pad_w, s->in_w, transposed);

            if (ix < s->in_w) {
                acc = nn_conv_dot(in + (iy * s->in_w + ix) * s->in_ch + first,
                                  filter + (ky * s->kernel_w + kx) * in_g, in_g, acc);
            }
        }
    }
    return nn_conv_requantize(acc, s->out_rshift);
}

static void nn_conv_all(const q7_t *in, const nn_conv_shape_q7 *s, const q7_t *wt, const q7_t *bias, q7_t *out,
                        int transposed)
{
    uint32_t oy;
    uint32_t ox;
    uint32_t o;

    for (oy = 0; oy < s->out_h; oy++) {
        for (ox = 0; ox < s->out_w; ox++) {
            for (o = 0; o < s->out_ch; o++) {
                out[(oy * s->out_w + ox) * s->out_ch + o] = nn_conv_one(in, s, wt, bias[o], oy, ox, o, transposed);
            }
        }
    }
}

void nn_conv_q7(const q7_t *in, const nn_conv_shape_q7 *shape, const q7_t *wt, const q7_t *bias, q7_t *out)
{
    nn_conv_all(in, shape, wt, bias, out, 0);
}

void nn_deconv_q7(const q7_t *in, const nn_conv_shape_q7 *shape, const q7_t *wt, const q7_t *bias, q7_t *out)
{
    nn_conv_all(in, shape, wt, bias, out, 1);
}
