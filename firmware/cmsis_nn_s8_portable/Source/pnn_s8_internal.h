/*
 * Private helpers of the portable s8 kernels: CMSIS-NN v7.0.0's integer arithmetic, free of
 * undefined behaviour (wrapping is done in uint32_t, as the Cortex-M instructions wrap).
 *
 * Requantization is the library's default double rounding (CMSIS_NN_USE_SINGLE_ROUNDING is
 * never modelled): a rounding doubling high multiply (ties up), then a rounding right shift
 * (ties away from zero).
 */
#ifndef PNN_S8_INTERNAL_H
#define PNN_S8_INTERNAL_H

#include "arm_nnfunctions.h"

#define PNN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PNN_MIN(a, b) ((a) < (b) ? (a) : (b))

static inline int32_t pnn_wrap(uint32_t v)
{
    /* Two's complement reinterpretation without implementation-defined conversion. */
    return v <= (uint32_t)INT32_MAX ? (int32_t)v : -(int32_t)(~v) - 1;
}

static inline int32_t pnn_add(int32_t a, int32_t b)
{
    return pnn_wrap((uint32_t)a + (uint32_t)b);
}

static inline int32_t pnn_sub(int32_t a, int32_t b)
{
    return pnn_wrap((uint32_t)a - (uint32_t)b);
}

static inline int32_t pnn_mul(int32_t a, int32_t b)
{
    return pnn_wrap((uint32_t)a * (uint32_t)b);
}

static inline int32_t pnn_shl(int32_t a, int32_t s)
{
    return pnn_wrap((uint32_t)a << s);
}

/* Arithmetic shift right of a 64-bit value, floor semantics. */
static inline int64_t pnn_asr64(int64_t v, int s)
{
    return v >= 0 ? v >> s : -((-(v + 1)) >> s) - 1;
}

/* Arithmetic shift right, floor semantics. */
static inline int32_t pnn_asr(int32_t v, int32_t s)
{
    return (int32_t)pnn_asr64(v, s);
}

/* (m1 * m2 + 2^30) >> 31: ties round up; 32-bit result as the SMLAL-based code gives. */
static inline int32_t pnn_dhm_no_sat(int32_t m1, int32_t m2)
{
    const int64_t p = (int64_t)m1 * m2 + ((int64_t)1 << 30);
    return pnn_wrap((uint32_t)(uint64_t)pnn_asr64(p, 31));
}

/* Saturating rounding doubling high multiply (ties away from zero), as VQRDMULH. */
static inline int32_t pnn_dhm_sat(int32_t m1, int32_t m2)
{
    if (m1 == INT32_MIN && m2 == INT32_MIN)
    {
        return INT32_MAX;
    }
    const int64_t nudge = ((m1 < 0) != (m2 < 0)) ? 1 - ((int64_t)1 << 30) : ((int64_t)1 << 30);
    return (int32_t)(((int64_t)m1 * m2 + nudge) / ((int64_t)1 << 31));
}

/* Rounding right shift by 0..31, ties away from zero. */
static inline int32_t pnn_div_pow2(int32_t dividend, int32_t exponent)
{
    const uint32_t mask = (uint32_t)(((uint64_t)1 << exponent) - 1u);
    const int32_t remainder = (int32_t)((uint32_t)dividend & mask);
    int32_t result = pnn_asr(dividend, exponent);
    int32_t threshold = (int32_t)(mask >> 1);
    if (result < 0)
    {
        threshold++;
    }
    return remainder > threshold ? result + 1 : result;
}

static inline int32_t pnn_requantize(int32_t val, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return pnn_div_pow2(pnn_dhm_no_sat(pnn_shl(val, left), multiplier), right);
}

/* The input coordinate tap k of output position o reads along one axis, or -1 in the padding. */
static inline int32_t pnn_tap(int32_t o, int32_t k, const cmsis_nn_tile *stride, const cmsis_nn_tile *pad,
                              const cmsis_nn_tile *dilation, int32_t size, int vertical)
{
    const int32_t i = vertical ? o * stride->h - pad->h + k * dilation->h : o * stride->w - pad->w + k * dilation->w;
    return i >= 0 && i < size ? i : -1;
}

/* Requantized accumulator, plus the output offset, clamped to the activation range. */
static inline int8_t pnn_finish(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                int32_t act_min, int32_t act_max)
{
    int32_t v = pnn_add(pnn_requantize(acc, multiplier, shift), out_offset);
    v = PNN_MAX(v, act_min);
    v = PNN_MIN(v, act_max);
    return (int8_t)v;
}

/* What arm_convolve_wrapper_s8 returns for these arguments, without computing (SUCCESS: it
   runs). The MVE depthwise wrapper runs a one-input-channel layer as this convolution. */
arm_cmsis_nn_status pnn_conv_wrapper_status(const cmsis_nn_context *ctx, const cmsis_nn_conv_params *p,
                                            const cmsis_nn_dims *in, const cmsis_nn_dims *f, const cmsis_nn_dims *out);

#endif /* PNN_S8_INTERNAL_H */
