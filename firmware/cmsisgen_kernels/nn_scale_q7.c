/*
 * cmsisgen kernels: per-channel affine map (a BatchNorm/Scale that could not be folded into
 * a convolution), computed as a 1x1 depthwise convolution would. See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_scale_q7(const q7_t *in, const q7_t *mult, const q7_t *bias, uint32_t channels, uint32_t pixels,
                 uint32_t bias_lshift, uint32_t out_rshift, q7_t *out)
{
    const int32_t half = (int32_t)((1u << out_rshift) >> 1);
    uint32_t pixel;
    uint32_t ch;

    for (pixel = 0; pixel < pixels; pixel++) {
        for (ch = 0; ch < channels; ch++) {
            const uint32_t i = pixel * channels + ch;
            int32_t acc = (int32_t)bias[ch] * ((int32_t)1 << bias_lshift) + half + (int32_t)in[i] * mult[ch];
            acc >>= out_rshift;
            out[i] = (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
        }
    }
}
