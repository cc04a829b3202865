/*
 * cmsisgen kernels: layers that only move bytes (Slice, Crop, ShuffleChannel, Permute,
 * nearest-neighbour Upsample). See nn_kernels.h.
 */
#include <string.h>

#include "nn_kernels.h"

void nn_copy_strided_q7(const q7_t *in, uint32_t n0, uint32_t s0, uint32_t n1, uint32_t s1, uint32_t n2,
                        uint32_t s2, q7_t *out)
{
    uint32_t i0, i1, i2;

    for (i0 = 0; i0 < n0; i0++) {
        for (i1 = 0; i1 < n1; i1++) {
            const q7_t *src = in + i0 * s0 + i1 * s1;

            if (s2 == 1u) { /* a run of contiguous bytes: one memcpy */
                memcpy(out, src, n2);
                out += n2;
            } else {
                for (i2 = 0; i2 < n2; i2++) {
                    *out++ = src[i2 * s2];
                }
            }
        }
    }
}

void nn_upsample_nearest_q7(const q7_t *in, uint32_t in_h, uint32_t in_w, uint32_t channels, uint32_t scale_h,
                            uint32_t scale_w, q7_t *out)
{
    const uint32_t row = in_w * scale_w * channels;
    uint32_t y, x, s;

    for (y = 0; y < in_h; y++) {
        q7_t *first = out;

        for (x = 0; x < in_w; x++) {
            for (s = 0; s < scale_w; s++) {
                memcpy(out, in + (y * in_w + x) * channels, channels);
                out += channels;
            }
        }
        for (s = 1; s < scale_h; s++) {
            memcpy(out, first, row);
            out += row;
        }
    }
}
