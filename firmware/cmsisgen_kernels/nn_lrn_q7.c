/*
 * cmsisgen kernels: Caffe LRN in q7. S is the exact sum of squares of the q7 window; the
 * multiplier (k + a * S)^-beta comes from a table made at compile time (weights.h, see
 * cmsisgen/ops/lrn.py). See nn_kernels.h.
 */
#include "nn_kernels.h"

q7_t nn_lrn_scale_q7(q7_t x, uint32_t sum, const int32_t *table, uint32_t table_size, uint32_t mantissa_bits,
                     uint32_t out_shift)
{
    const uint32_t top = 1u << mantissa_bits;
    uint32_t exponent = 0;
    uint32_t index;
    int64_t acc;

    while ((sum >> exponent) >= top) {
        exponent++;
    }
    index = exponent == 0u ? sum : top + (exponent - 1u) * (top >> 1) + (sum >> exponent) - (top >> 1);
    if (index >= table_size) {
        index = table_size - 1u;
    }
    acc = ((int64_t)x * table[index] + (int64_t)((UINT64_C(1) << out_shift) >> 1)) >> out_shift;
    return (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
}

void nn_lrn_across_q7(const q7_t *in, q7_t *out, uint32_t pixels, uint32_t channels, uint32_t local_size,
                      const int32_t *table, uint32_t table_size, uint32_t mantissa_bits, uint32_t out_shift)
{
    const uint32_t half = (local_size - 1u) / 2u;
    uint32_t pixel;
    uint32_t ch;
    uint32_t j;

    for (pixel = 0; pixel < pixels; pixel++) {
        const q7_t *px = in + pixel * channels;
        for (ch = 0; ch < channels; ch++) {
            const uint32_t first = ch >= half ? ch - half : 0u;
            const uint32_t last = ch + half < channels ? ch + half : channels - 1u;
            uint32_t sum = 0;
            for (j = first; j <= last; j++) {
                sum += (uint32_t)((int32_t)px[j] * (int32_t)px[j]);
            }
            out[pixel * channels + ch] = nn_lrn_scale_q7(px[ch], sum, table, table_size, mantissa_bits, out_shift);
        }
    }
}

void nn_lrn_within_q7(const q7_t *in, q7_t *out, uint32_t height, uint32_t width, uint32_t channels,
                      uint32_t local_size, const int32_t *table, uint32_t table_size, uint32_t mantissa_bits,
                      uint32_t out_shift)
{
    const uint32_t half = (local_size - 1u) / 2u;
    uint32_t y, x, ch, wy, wx;

    for (y = 0; y < height; y++) {
        const uint32_t y0 = y >= half ? y - half : 0u;
        const uint32_t y1 = y + half < height ? y + half : height - 1u;
        for (x = 0; x < width; x++) {
            const uint32_t x0 = x >= half ? x - half : 0u;
            const uint32_t x1 = x + half < width ? x + half : width - 1u;
            for (ch = 0; ch < channels; ch++) {
                uint32_t sum = 0;
                for (wy = y0; wy <= y1; wy++) {
                    for (wx = x0; wx <= x1; wx++) {
                        const int32_t v = in[(wy * width + wx) * channels + ch];
                        sum += (uint32_t)(v * v);
                    }
                }
                out[(y * width + x) * channels + ch] =
                    nn_lrn_scale_q7(in[(y * width + x) * channels + ch], sum, table, table_size, mantissa_bits, out_shift);
            }
        }
    }
}
