/*
 * cmsisgen portable CMSIS-NN subset: q7 base-2 softmax (same arithmetic as upstream):
 *   base  = max(x) - 8
 *   sum   = sum_i 1 << clamp(x_i - base, 0, 7)
 *   ob    = (1 << 20) / sum
 *   out_i = SSAT8(ob >> clamp(13 + base - x_i, 0, 31))
 */
#include "arm_nn_portable_internal.h"

static int32_t pnn_clamp(int32_t v, int32_t hi)
{
    if (v < 0)
    {
        return 0;
    }
    return v > hi ? hi : v;
}

void arm_softmax_q7(const q7_t *vec_in, const uint16_t dim_vec, q7_t *p_out)
{
    int32_t base = -128;
    int32_t sum = 0;
    int32_t output_base;
    uint16_t i;

    for (i = 0; i < dim_vec; i++)
    {
        if (vec_in[i] > base)
        {
            base = vec_in[i];
        }
    }
    base -= 8;
    for (i = 0; i < dim_vec; i++)
    {
        sum += (int32_t)1 << pnn_clamp((int32_t)vec_in[i] - base, 7);
    }
    output_base = ((int32_t)1 << 20) / sum;
    for (i = 0; i < dim_vec; i++)
    {
        p_out[i] = pnn_sat_q7(output_base >> pnn_clamp(13 + base - (int32_t)vec_in[i], 31));
    }
}
