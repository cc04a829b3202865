/*
 * cmsisgen kernels, s8 backend: any function of one int8 input by a table made at compile time
 * (leaky ReLU, PReLU, Sigmoid, TanH, ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold;
 * cmsisgen/s8/lower_own.py computes each table from the layer's float forward at the input's
 * and output's scale and zero point). CMSIS-NN's s8 API has no function for these.
 *
 * Tables are ordered by input value: table[x + 128] for x in -128..127; the per-channel form
 * holds one such table per channel, channel-major. in may be out (each byte is read before it
 * is written). Self-contained (stdint only): the s8 API has no q7_t.
 */
#include <stdint.h>

void nn_lookup_s8(const int8_t *in, const int8_t *table, uint32_t size, int8_t *out);
void nn_lookup_channels_s8(const int8_t *in, const int8_t *table, uint32_t channels, uint32_t pixels, int8_t *out);

void nn_lookup_s8(const int8_t *in, const int8_t *table, uint32_t size, int8_t *out)
{
    uint32_t i;

    for (i = 0; i < size; i++) {
        out[i] = table[(int32_t)in[i] + 128];
    }
}

void nn_lookup_channels_s8(const int8_t *in, const int8_t *table, uint32_t channels, uint32_t pixels, int8_t *out)
{
    uint32_t pixel;
    uint32_t ch;

    for (pixel = 0; pixel < pixels; pixel++) {
        for (ch = 0; ch < channels; ch++) {
            const uint32_t i = pixel * channels + ch;
            out[i] = table[ch * 256u + (uint32_t)((int32_t)in[i] + 128)];
        }
    }
}
