/*
 * cmsisgen portable CMSIS-NN subset: helpers shared by the kernels (not a public API).
 *
 * Accumulators are kept in uint32_t so that wrap-around is defined behaviour and equals
 * the modular 32-bit SMLAD accumulation of the DSP build. The final value is read back as
 * int32_t (two's complement, as on every target CMSIS-NN supports) and shifted with an
 * explicit floor shift, i.e. the arithmetic shift the library relies on.
 */
#ifndef CMSISGEN_ARM_NN_PORTABLE_INTERNAL_H
#define CMSISGEN_ARM_NN_PORTABLE_INTERNAL_H

#include <stddef.h>
#include "arm_nnfunctions.h"

/* (bias << bias_shift) + NN_ROUND(out_shift), NN_ROUND(s) = (1 << s) >> 1. */
static inline uint32_t pnn_acc_init(q7_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    uint32_t b = (uint32_t)(int32_t)bias;
    return (b << bias_shift) + (((uint32_t)1u << out_shift) >> 1);
}

/* Reinterpret the 32-bit accumulator as signed without implementation-defined casts. */
static inline int32_t pnn_to_s32(uint32_t acc)
{
    if (acc <= (uint32_t)INT32_MAX)
    {
        return (int32_t)acc;
    }
    return (int32_t)(acc - (uint32_t)INT32_MAX - 1u) + INT32_MIN;
}

/* floor(v / 2^s): arithmetic right shift written portably. */
static inline int32_t pnn_asr(int32_t v, uint16_t s)
{
    if (v >= 0)
    {
        return v >> s;
    }
    return ~((~v) >> s);
}

/* __SSAT(v, 8). */
static inline q7_t pnn_sat_q7(int32_t v)
{
    if (v > 127)
    {
        return 127;
    }
    if (v < -128)
    {
        return -128;
    }
    return (q7_t)v;
}

/* __SSAT(acc >> out_shift, 8) for a finished accumulator. */
static inline q7_t pnn_requant(uint32_t acc, uint16_t out_shift)
{
    return pnn_sat_q7(pnn_asr(pnn_to_s32(acc), out_shift));
}

/* Reference HWC q7 convolution shared by all conv entry points (zero padding). */
void pnn_conv_hwc_q7(const q7_t *Im_in,
                     uint16_t dim_im_in_x,
                     uint16_t dim_im_in_y,
                     uint16_t ch_im_in,
                     const q7_t *wt,
                     uint16_t ch_im_out,
                     uint16_t dim_kernel_x,
                     uint16_t dim_kernel_y,
                     uint16_t padding_x,
                     uint16_t padding_y,
                     uint16_t stride_x,
                     uint16_t stride_y,
                     const q7_t *bias,
                     uint16_t bias_shift,
                     uint16_t out_shift,
                     q7_t *Im_out,
                     uint16_t dim_im_out_x,
                     uint16_t dim_im_out_y);

/* Row-major dot-product FC shared by the plain and (de-interleaving) _opt entry points. */
q7_t pnn_fc_row(const q7_t *pV, const q7_t *row, uint16_t dim_vec, q7_t bias, uint16_t bias_shift,
                uint16_t out_shift);

#endif /* CMSISGEN_ARM_NN_PORTABLE_INTERNAL_H */
