/*
 * cmsisgen portable CMSIS-NN subset: the convolution every HWC q7 conv entry point uses.
 *
 * Output pixel (oy, ox), channel o:
 *   acc = (bias[o] << bias_shift) + NN_ROUND(out_shift)
 *       + sum over in-image taps (ky, kx, c) of in[iy][ix][c] * wt[o][ky][kx][c]
 *   with iy = oy*stride_y - padding_y + ky, ix = ox*stride_x - padding_x + kx;
 *   out[oy][ox][o] = SSAT8(acc >> out_shift).
 * Taps outside the image add nothing, which equals the zero-filled im2col columns of the
 * upstream DSP kernels.
 */
#include "arm_nn_portable_internal.h"

void pnn_conv_hwc_q7(const q7_t *Im_in,
                     uint16_t dim_im_in_x,
                     uint16_t dim_im_in_y,
                     uint16_t ch_im_in,
                     const q7_t *wt,
                     uint16_t ch_im_out,
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
    const size_t filter_len = (size_t)dim_kernel_x * dim_kernel_y * ch_im_in;
    int32_t oy, ox, ky, kx;
    uint32_t o, c;
    q7_t *out = Im_out;

    for (oy = 0; oy < (int32_t)dim_im_out_y; oy++)
    {
        const int32_t y0 = oy * (int32_t)stride_y - (int32_t)padding_y;
        for (ox = 0; ox < (int32_t)dim_im_out_x; ox++)
        {
            const int32_t x0 = ox * (int32_t)stride_x - (int32_t)padding_x;
            for (o = 0; o < ch_im_out; o++)
            {
                const q7_t *filter = wt + (size_t)o * filter_len;
                uint32_t acc = pnn_acc_init(bias[o], bias_shift, out_shift);
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
                        const q7_t *px;
                        const q7_t *pw;
                        if (ix < 0 || ix >= (int32_t)dim_im_in_x)
                        {
                            continue;
                        }
                        px = Im_in + ((size_t)iy * dim_im_in_x + (size_t)ix) * ch_im_in;
                        pw = filter + ((size_t)ky * dim_kernel_x + (size_t)kx) * ch_im_in;
                        for (c = 0; c < ch_im_in; c++)
                        {
                            acc += (uint32_t)((int32_t)px[c] * (int32_t)pw[c]);
                        }
                    }
                }
                *out++ = pnn_requant(acc, out_shift);
            }
        }
    }
}
