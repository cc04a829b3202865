/*
 * cmsisgen kernels: global max or average pooling over an HWC image of any height and
 * width (CMSIS-NN's q7 pooling takes square images and windows). See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_global_pool_q7(const q7_t *in, uint32_t channels, uint32_t pixels, uint32_t average, q7_t *out)
{
    uint32_t ch;
    uint32_t pixel;

    for (ch = 0; ch < channels; ch++) {
        int32_t acc = average ? 0 : in[ch];

        for (pixel = 0; pixel < pixels; pixel++) {
            const int32_t x = in[pixel * channels + ch];
            if (average) {
                acc += x;
            } else if (x > acc) {
                acc = x;
            }
        }
        if (average) {
            const int32_t half = (int32_t)(pixels / 2u);
            acc = (acc >= 0 ? acc + half : acc - half) / (int32_t)pixels;
            acc = acc < -128 ? -128 : (acc > 127 ? 127 : acc);
        }
        out[ch] = (q7_t)acc;
    }
}
