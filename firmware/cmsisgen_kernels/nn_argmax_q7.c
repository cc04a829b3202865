/*
 * cmsisgen kernels: ArgMax as the network output (cmsisgen/ops/argmax.py). See nn_kernels.h.
 */
#include "nn_kernels.h"

static q7_t nn_argmax_pixel(const q7_t *in, uint32_t channels)
{
    q7_t best = in[0];
    uint32_t index = 0;
    uint32_t ch;

    for (ch = 1; ch < channels; ch++) {
        if (in[ch] >= best) { /* ties: the highest index, as Caffe */
            best = in[ch];
            index = ch;
        }
    }
    return (q7_t)index;
}

void nn_argmax_q7(const q7_t *in, uint32_t channels, uint32_t pixels, uint32_t whole, q7_t *out)
{
    uint32_t pixel;
    uint32_t ch;

    if (!whole) {
        for (pixel = 0; pixel < pixels; pixel++) {
            out[pixel] = nn_argmax_pixel(in + pixel * channels, channels);
        }
        return;
    }
    {
        /* Caffe's index of value (pixel, ch) in C, H, W order is ch * pixels + pixel */
        q7_t best = in[0];
        uint32_t index = 0;

        for (pixel = 0; pixel < pixels; pixel++) {
            for (ch = 0; ch < channels; ch++) {
                const q7_t value = in[pixel * channels + ch];
                const uint32_t at = ch * pixels + pixel;

                if (value > best || (value == best && at > index)) {
                    best = value;
                    index = at;
                }
            }
        }
        out[0] = (q7_t)index;
    }
}
