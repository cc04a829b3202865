/*
 * cmsisgen kernels: channel slices of HWC tensors (Concat, grouped convolution).
 * See nn_kernels.h.
 */
#include <string.h>

#include "nn_kernels.h"

void nn_concat_channels_q7(const q7_t *in, uint32_t in_ch, q7_t *out, uint32_t out_ch, uint32_t ch_offset,
                           uint32_t pixels)
{
    uint32_t pixel;

    for (pixel = 0; pixel < pixels; pixel++) {
        memcpy(out + pixel * out_ch + ch_offset, in + pixel * in_ch, in_ch);
    }
}

void nn_gather_channels_q7(const q7_t *in, uint32_t in_ch, uint32_t ch_offset, q7_t *out, uint32_t out_ch,
                           uint32_t pixels)
{
    uint32_t pixel;

    for (pixel = 0; pixel < pixels; pixel++) {
        memcpy(out + pixel * out_ch, in + pixel * in_ch + ch_offset, out_ch);
    }
}
