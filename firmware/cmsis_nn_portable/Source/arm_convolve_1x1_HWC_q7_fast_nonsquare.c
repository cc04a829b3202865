/*
 * cmsisgen portable CMSIS-NN subset: the 1x1 HWC q7 convolution.
 *
 * Returns ARM_MATH_SIZE_MISMATCH and writes nothing unless ch_im_in % 4 == 0,
 * ch_im_out % 2 == 0, the kernel is 1x1, the stride 1 and the padding 0 (the upstream
 * checks). Otherwise every output pixel is the dense convolution of the input pixel at the
 * same position: the DSP build addresses the input as (y * dim_im_in_x + x) * ch_im_in, so
 * the output must have the input's size, which a 1x1 stride-1 unpadded convolution has.
 * Same accumulator and rounding as the other convolutions (pnn_conv_hwc_q7). bufferA
 * (upstream: 2 * ch_im_in q15 for two pixels) and bufferB are not touched here.
 */
#include "arm_nn_portable_internal.h"

arm_status arm_convolve_1x1_HWC_q7_fast_nonsquare(const q7_t *Im_in,
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
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0 || dim_kernel_x != 1 || dim_kernel_y != 1 || padding_x != 0 ||
        padding_y != 0 || stride_x != 1 || stride_y != 1)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, 1, 1, 0, 0, 1, 1, bias, bias_shift,
                    out_shift, Im_out, dim_im_out_x, dim_im_out_y);
    return ARM_MATH_SUCCESS;
}
