/*
 * cmsisgen kernels: PReLU and leaky ReLU with one int8 slope per channel. See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_prelu_q7(const q7_t *in, const q7_t *slope, uint32_t channels, uint32_t pixels, uint32_t slope_shift,
                 q7_t *out)
{
    const int32_t half = (int32_t)((1u << slope_shift) >> 1);
    uint32_t pixel;
    uint32_t ch;

    for (pixel = 0; pixel < pixels; pixel++) {
        for (ch = 0; ch < channels; ch++) {
            const uint32_t i = pixel * channels + ch;
            const int32_t x = in[i];
            int32_t acc = x;

            if (x < 0) {
                acc = (x * slope[ch] + half) >> slope_shift;
                acc = acc < -128 ? -128 : (acc > 127 ? 127 : acc);
            }
            out[i] = (q7_t)acc;
        }
    }
}
