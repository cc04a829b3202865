/*
 * cmsisgen kernels: Eltwise SUM, MAX and PROD where branches meet. Each input k (in its
 * own Q format) is shifted left by lshift[k] into one accumulator format. See nn_kernels.h.
 */
#include "nn_kernels.h"

void nn_eltwise_sum_q7(const q7_t *const *in, const int32_t *coeff, const uint8_t *lshift, uint32_t inputs,
                       uint32_t out_rshift, q7_t *out, uint32_t size)
{
    const int32_t half = (int32_t)((1u << out_rshift) >> 1);
    uint32_t i;
    uint32_t k;

    for (i = 0; i < size; i++) {
        int32_t acc = half;
        for (k = 0; k < inputs; k++) {
            acc += coeff[k] * ((int32_t)in[k][i] * ((int32_t)1 << lshift[k]));
        }
        acc >>= out_rshift;
        out[i] = (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
    }
}

void nn_eltwise_max_q7(const q7_t *const *in, const uint8_t *lshift, uint32_t inputs, uint32_t out_rshift,
                       q7_t *out, uint32_t size)
{
    const int32_t half = (int32_t)((1u << out_rshift) >> 1);
    uint32_t i;
    uint32_t k;

    for (i = 0; i < size; i++) {
        int32_t acc = (int32_t)in[0][i] * ((int32_t)1 << lshift[0]);
        for (k = 1; k < inputs; k++) {
            const int32_t value = (int32_t)in[k][i] * ((int32_t)1 << lshift[k]);
            acc = value > acc ? value : acc;
        }
        acc = (acc + half) >> out_rshift;
        out[i] = (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
    }
}

void nn_eltwise_prod_q7(const q7_t *a, const q7_t *b, uint32_t out_rshift, q7_t *out, uint32_t size)
{
    const int32_t half = (int32_t)((1u << out_rshift) >> 1);
    uint32_t i;

    for (i = 0; i < size; i++) {
        const int32_t acc = ((int32_t)a[i] * b[i] + half) >> out_rshift;
        out[i] = (q7_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));
    }
}
