/*
 * cmsisgen portable CMSIS-NN subset: the depthwise HWC q7 convolutions (square and
 * non-square).
 *
 * Channel c of the output is channel c of the input convolved with filter c alone:
 *   acc = (bias[c] << bias_shift) + NN_ROUND(out_shift)
 *       + sum over in-image taps (ky, kx) of in[iy][ix][c] * wt[(ky * dim_kernel_x + kx) * ch][c]
 *   out[oy][ox][c] = SSAT8(acc >> out_shift)
 * Weights are [ky][kx][ch] (one HWC "pixel" of all channels per tap). The DSP build
 * forms exactly these sums (four channels at a time, two taps per SMLAD, then one
 * channel at a time for ch % 4), in a modular 32-bit accumulator; taps in the padding
 * are zero-filled columns there and skipped here. Returns ARM_MATH_SIZE_MISMATCH and
 * writes nothing when ch_im_in != ch_im_out. bufferA (upstream: ch_im_in * kx * ky q7
 * im2col bytes) and bufferB are not touched here.
 */
#include "arm_nn_portable_internal.h"

static void pnn_depthwise_hwc_q7(const q7_t *Im_in,
                                 uint16_t dim_im_in_x,
                                 uint16_t dim_im_in_y,
                                 uint16_t ch,
                                 const q7_t *wt,
                                 uint16_t dim_kernel_x,
                                 uint16_t dim_kernel_y,
                                 uint16_t padding_x,
                                 uint16_t padding_y,
                                 uint16_t stride_x,
                                 uint16_t stride_y,
                                 const q7_t *bias,
                                 uint16_t bias_shift,
                                 uint16_t out_shift,
                                 q7_t *Im_out,
                                 uint16_t dim_im_out_x,
                                 uint16_t dim_im_out_y)
{
    int32_t oy, ox, ky, kx;
    uint32_t c;
    q7_t *out = Im_out;

    for (oy = 0; oy < (int32_t)dim_im_out_y; oy++)
    {
        const int32_t y0 = oy * (int32_t)stride_y - (int32_t)padding_y;
        for (ox = 0; ox < (int32_t)dim_im_out_x; ox++)
        {
            const int32_t x0 = ox * (int32_t)stride_x - (int32_t)padding_x;
            for (c = 0; c < ch; c++)
            {
                uint32_t acc = pnn_acc_init(bias[c], bias_shift, out_shift);
                for (ky = 0; ky < (int32_t)dim_kernel_y; ky++)
                {
                    const int32_t iy = y0 + ky;
                    if (iy < 0 || iy >= (int32_t)dim_im_in_y)
                    {
                        continue;
                    }
                    for (kx = 0; kx < (int32_t)dim_kernel_x; kx++)
                    {
                        const int32_t ix = x0 + kx;
                        const size_t tap = (size_t)ky * dim_kernel_x + (size_t)kx;
                        if (ix < 0 || ix >= (int32_t)dim_im_in_x)
                        {
                            continue;
                        }
                        acc += (uint32_t)((int32_t)Im_in[((size_t)iy * dim_im_in_x + (size_t)ix) * ch + c] *
                                          (int32_t)wt[tap * ch + c]);
                    }
                }
                *out++ = pnn_requant(acc, out_shift);
            }
        }
    }
}

arm_status arm_depthwise_separable_conv_HWC_q7(const q7_t *Im_in,
                                               const uint16_t dim_im_in,
                                               const uint16_t ch_im_in,
                                               const q7_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel,
                                               const uint16_t padding,
                                               const uint16_t stride,
                                               const q7_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q7_t *Im_out,
                                               const uint16_t dim_im_out,
                                               q15_t *bufferA,
                                               q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in != ch_im_out)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_depthwise_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, dim_kernel, dim_kernel, padding, padding, stride,
                         stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_depthwise_separable_conv_HWC_q7_nonsquare(const q7_t *Im_in,
                                                         const uint16_t dim_im_in_x,
                                                         const uint16_t dim_im_in_y,
                                                         const uint16_t ch_im_in,
                                                         const q7_t *wt,
                                                         const uint16_t ch_im_out,
                                                         const uint16_t dim_kernel_x,
                                                         const uint16_t dim_kernel_y,
                                                         const uint16_t padding_x,
                                                         const uint16_t padding_y,
                                                         const uint16_t stride_x,
                                                         const uint16_t stride_y,
                                                         const q7_t *bias,
                                                         const uint16_t bias_shift,
                                                         const uint16_t out_shift,
                                                         q7_t *Im_out,
                                                         const uint16_t dim_im_out_x,
                                                         const uint16_t dim_im_out_y,
                                                         q15_t *bufferA,
                                                         q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in != ch_im_out)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_depthwise_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, dim_kernel_x, dim_kernel_y, padding_x,
                         padding_y, stride_x, stride_y, bias, bias_shift, out_shift, Im_out, dim_im_out_x,
                         dim_im_out_y);
    return ARM_MATH_SUCCESS;
}
