/*
 * Softmax: arm_softmax_s8, with the fixed-point exp and reciprocal CMSIS-NN v7.0.0 uses
 * (gemmlowp's: exp on [-1/4, 0) by a Taylor polynomial, times exp(-2^k) for each set bit of
 * the rest; 1/(1+x) by three Newton-Raphson steps). Inputs are scaled differences to the
 * row maximum with 5 integer bits; sums carry 12 integer bits. Output scale 1/256, zero
 * point -128. Same arithmetic in the DSP and plain-C builds.
 */
#include "pnn_s8_internal.h"

#define ACCUM_BITS 12

/* Saturating multiply by 2^exp, exp in 1..30. */
static int32_t mul_pow2(int32_t val, int32_t exp)
{
    const int32_t thresh = (int32_t)((1u << (31 - exp)) - 1u);
    if (val > thresh)
    {
        return INT32_MAX;
    }
    if (val < -thresh)
    {
        return INT32_MIN;
    }
    return pnn_shl(val, exp);
}

/* exp(val / 2^26) in Q0.31 for val <= 0. */
static int32_t exp_on_negative(int32_t val)
{
    static const int32_t factors[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t val_mod_minus_quarter = (val & ((1 << 24) - 1)) - (1 << 24);
    const int32_t remainder = pnn_sub(val_mod_minus_quarter, val);
    const int32_t x = pnn_add(pnn_shl(val_mod_minus_quarter, 5), 1 << 28);
    const int32_t x2 = pnn_dhm_sat(x, x);
    const int32_t x3 = pnn_dhm_sat(x2, x);
    const int32_t x4_over_4 = pnn_div_pow2(pnn_dhm_sat(x2, x2), 2);
    const int32_t poly = pnn_add(pnn_dhm_sat(pnn_add(x4_over_4, x3), 715827883), x2);
    int32_t result = pnn_add(1895147668, pnn_dhm_sat(1895147668, pnn_add(x, pnn_div_pow2(poly, 1))));
    for (int k = 0; k < 7; k++)
    {
        if (remainder & (1 << (24 + k)))
        {
            result = pnn_dhm_sat(result, factors[k]);
        }
    }
    return val == 0 ? INT32_MAX : result;
}

/* 1 / (1 + val / 2^31) in Q1.30 (as Q0.31 doubled), val in [0, 2^31). */
static int32_t one_over_one_plus_x(int32_t val)
{
    const int64_t sum = (int64_t)val + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = pnn_add(1515870810, pnn_dhm_sat(half_denominator, -1010580540));
    const int32_t one = 1 << 29;
    for (int i = 0; i < 3; i++)
    {
        const int32_t err = pnn_sub(one, pnn_dhm_sat(half_denominator, x));
        x = pnn_add(x, mul_pow2(pnn_dhm_sat(x, err), 2));
    }
    return mul_pow2(x, 1);
}

static int32_t count_leading_zeros(uint32_t v)
{
    int32_t n = 0;
    if (v == 0u)
    {
        return 32;
    }
    while ((v & 0x80000000u) == 0u)
    {
        v <<= 1;
        n++;
    }
    return n;
}

/* exp of one scaled difference (mult/shift turn input steps into the Q5.26 exponent). */
static int32_t scaled_exp(int32_t diff, int32_t mult, int32_t shift)
{
    const int32_t scaled = pnn_wrap((uint32_t)diff * ((uint32_t)1 << shift));
    return exp_on_negative(pnn_dhm_sat(scaled, mult));
}

static void softmax_row(const int8_t *in, int32_t n, int32_t mult, int32_t shift, int32_t diff_min, int8_t *out)
{
    int32_t max = in[0];
    for (int32_t i = 1; i < n; i++)
    {
        max = PNN_MAX(max, in[i]);
    }
    int32_t sum = 0;
    for (int32_t i = 0; i < n; i++)
    {
        if (in[i] - max >= diff_min)
        {
            sum = pnn_add(sum, pnn_div_pow2(scaled_exp(in[i] - max, mult, shift), ACCUM_BITS));
        }
    }
    const int32_t headroom = count_leading_zeros((uint32_t)sum);
    const uint32_t normalised = sum > 0 ? (uint32_t)sum << headroom : 0u;
    const int32_t scale = one_over_one_plus_x(pnn_wrap(normalised - 0x80000000u));
    const int32_t bits_over_unit = ACCUM_BITS - headroom + 23;
    for (int32_t i = 0; i < n; i++)
    {
        int32_t v = INT8_MIN;
        if (in[i] - max >= diff_min)
        {
            v = pnn_div_pow2(pnn_dhm_sat(scale, scaled_exp(in[i] - max, mult, shift)), bits_over_unit) + INT8_MIN;
            v = PNN_MAX(PNN_MIN(v, INT8_MAX), INT8_MIN);
        }
        out[i] = (int8_t)v;
    }
}

void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    for (int32_t r = 0; r < num_rows; r++)
    {
        softmax_row(input + (int64_t)r * row_size, row_size, mult, shift, diff_min, output + (int64_t)r * row_size);
    }
}
