/*
 * cmsisgen kernels: any function of one q7 input by a 256-entry table made at compile time
 * (ReLU6, Clip, Power, AbsVal, ELU, BNLL, Threshold; cmsisgen/ops/lookup_activation.py). See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_lookup_q7(const q7_t *in, const q7_t *table, uint32_t size, q7_t *out)
{
    uint32_t i;

    for (i = 0; i < size; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}
