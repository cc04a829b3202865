/*
 * cmsisgen kernels: any function of one q7 input by a 256-entry table made at compile time
 * (ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold; cmsisgen/ops/lookup_activation.py). See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_lookup_q7(const q7_t *in, const q7_t *table, uint32_t size, q7_t *out)
{
    uint32_t i = 0;

    /* four values per iteration: each is read before its own byte is written, so in may be out */
    for (; i + 4u <= size; i += 4u) {
        const uint8_t a = (uint8_t)in[i];
        const uint8_t b = (uint8_t)in[i + 1u];
        const uint8_t c = (uint8_t)in[i + 2u];
        const uint8_t d = (uint8_t)in[i + 3u];

        out[i] = table[a];
        out[i + 1u] = table[b];
        out[i + 2u] = table[c];
        out[i + 3u] = table[d];
    }
    for (; i < size; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}
