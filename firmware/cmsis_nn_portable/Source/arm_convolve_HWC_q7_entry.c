/*
 * cmsisgen portable CMSIS-NN subset: the five HWC q7 convolution entry points.
 *
 * Return codes as upstream: _RGB returns ARM_MATH_SIZE_MISMATCH when ch_im_in != 3,
 * _fast and _fast_nonsquare when ch_im_in % 4 != 0 or ch_im_out % 2 != 0; in those cases
 * nothing is written. _basic and _basic_nonsquare always return ARM_MATH_SUCCESS.
 * bufferA / bufferB are accepted for signature compatibility and not touched here (the
 * upstream im2col needs bufferA; see README.md for the size to allocate).
 */
#include "arm_nn_portable_internal.h"

arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in,
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
    if (ch_im_in != 3)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_conv_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, dim_kernel, padding,
                    padding, stride, stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in,
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
    pnn_conv_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, dim_kernel, padding,
                    padding, stride, stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in,
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
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_conv_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, dim_kernel, padding,
                    padding, stride, stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_basic_nonsquare(const q7_t *Im_in,
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
    pnn_conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, dim_kernel_x, dim_kernel_y,
                    padding_x, padding_y, stride_x, stride_y, bias, bias_shift, out_shift, Im_out, dim_im_out_x,
                    dim_im_out_y);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_fast_nonsquare(const q7_t *Im_in,
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
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    pnn_conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, dim_kernel_x, dim_kernel_y,
                    padding_x, padding_y, stride_x, stride_y, bias, bias_shift, out_shift, Im_out, dim_im_out_x,
                    dim_im_out_y);
    return ARM_MATH_SUCCESS;
}
