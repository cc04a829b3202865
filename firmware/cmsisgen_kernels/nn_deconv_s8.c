/*
 * cmsisgen kernels, s8 backend: Caffe's Deconvolution (transposed convolution) with any kernel,
 * stride, padding, dilation and groups. Model: cmsisgen/s8/own_kernels.py (deconv_s8).
 *
 * CMSIS-NN v7.0.0's arm_transpose_conv_s8 has no groups or dilation, and its rolling row buffer
 * places rows as Caffe does only when the kernel is at least the stride and the padding a
 * multiple of it (not for the FCN-style kernel 4, stride 2, padding 1; a kernel below the stride
 * writes past the output); this kernel gathers, per output value, the products
 * Caffe's col2im adds there. Arithmetic as the library's convolutions: acc = bias[o] +
 * sum (x + input_offset) * w in 32 bits (wrapping as SMLAD does; kept in uint32_t, free of
 * signed overflow), then the default double-rounding requantization with the channel's
 * multiplier and shift, plus the output offset, clamped to the activation range.
 * Self-contained (stdint and nn_s8_requantize.h only): the s8 API has no q7_t.
 */
#include <stdint.h>

#include "nn_s8_requantize.h"

/* dims: in_h, in_w, in_ch, out_h, out_w, out_ch, kernel_h, kernel_w, stride_h, stride_w,
 *       pad_h, pad_w, dilation_h, dilation_w, groups
 * quant: input_offset, output_offset, act_min, act_max
 * wt: [out_ch][kernel_h][kernel_w][in_ch / groups]; bias, mult, shift: one per output channel */
void nn_deconv_s8(const int8_t *in, const uint32_t *dims, const int32_t *quant, const int8_t *wt,
                  const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);

/* The input row (or column) that adds to output position pos through kernel offset tap, or
 * size when none does: the i with i * stride - pad + tap == pos. */
static uint32_t nn_s8_deconv_source(uint32_t pos, uint32_t tap, uint32_t stride, uint32_t pad, uint32_t size)
{
    const uint32_t at = pos + pad;

    if (at < tap || (at - tap) % stride != 0) {
        return size;
    }
    return (at - tap) / stride < size ? (at - tap) / stride : size;
}

/* The wrapped sum bias[o] + sum (x + input_offset) * w of output channel o at pixel (oy, ox). */
static uint32_t nn_s8_deconv_sum(const int8_t *in, const uint32_t *d, int32_t input_offset, const int8_t *wt,
                                 uint32_t bias, uint32_t oy, uint32_t ox, uint32_t o)
{
    const uint32_t in_g = d[2] / d[14];
    const uint32_t first = (o / (d[5] / d[14])) * in_g;
    uint32_t acc = bias;
    uint32_t ky, kx, i;

    for (ky = 0; ky < d[6]; ky++) {
        const uint32_t iy = nn_s8_deconv_source(oy, ky * d[12], d[8], d[10], d[0]);

        for (kx = 0; kx < d[7] && iy < d[0]; kx++) {
            const uint32_t ix = nn_s8_deconv_source(ox, kx * d[13], d[9], d[11], d[1]);

            if (ix < d[1]) {
                const int8_t *x = in + (iy * d[1] + ix) * d[2] + first;
                const int8_t *w = wt + ((o * d[6] + ky) * d[7] + kx) * in_g;

                for (i = 0; i < in_g; i++) {
                    acc += (uint32_t)(((int32_t)x[i] + input_offset) * (int32_t)w[i]);
                }
            }
        }
    }
    return acc;
}

void nn_deconv_s8(const int8_t *in, const uint32_t *dims, const int32_t *quant, const int8_t *wt,
                  const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out)
{
    uint32_t oy, ox, o;

    for (oy = 0; oy < dims[3]; oy++) {
        for (ox = 0; ox < dims[4]; ox++) {
            for (o = 0; o < dims[5]; o++) {
                const uint32_t acc = nn_s8_deconv_sum(in, dims, quant[0], wt, (uint32_t)bias[o], oy, ox, o);
                int64_t v = (int64_t)nn_s8_requantize(nn_s8_bits(acc), mult[o], shift[o]) + quant[1];

                v = v < quant[2] ? quant[2] : (v > quant[3] ? quant[3] : v);
                out[(oy * dims[4] + ox) * dims[5] + o] = (int8_t)v;
            }
        }
    }
}
