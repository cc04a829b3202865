/*
 * cmsisgen kernels, s8 backend: ArgMax as the network output (cmsisgen/s8/lower_own.py; its
 * model is cmsisgen/ops/argmax.py's, since quantization keeps the order of values). int8_t
 * only: the s8 API has no q7_t.
 */
#include <stdint.h>

void nn_argmax_s8(const int8_t *in, uint32_t channels, uint32_t pixels, uint32_t whole, int8_t *out);

/* The C, H, W index of the largest value of an HWC tensor; ties go to the highest index, as
 * in Caffe (the scan runs in index order and takes a value equal to the best so far). */
static uint32_t nn_argmax_chw_s8(const int8_t *in, uint32_t channels, uint32_t pixels)
{
    uint32_t best = 0;
    uint32_t at;

    for (at = 1; at < channels * pixels; at++) {
        if (in[(at % pixels) * channels + at / pixels] >= in[(best % pixels) * channels + best / pixels]) {
            best = at;
        }
    }
    return best;
}

void nn_argmax_s8(const int8_t *in, uint32_t channels, uint32_t pixels, uint32_t whole, int8_t *out)
{
    uint32_t pixel;

    if (whole) {
        out[0] = (int8_t)nn_argmax_chw_s8(in, channels, pixels);
        return;
    }
    for (pixel = 0; pixel < pixels; pixel++) {
        out[pixel] = (int8_t)nn_argmax_chw_s8(in + pixel * channels, channels, 1u);
    }
}
