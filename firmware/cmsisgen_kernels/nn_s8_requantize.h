/*
 * cmsisgen kernels, s8 backend: the fixed-point rescale the project's own s8 kernels share
 * (nn_deconv_s8.c, nn_eltwise_add_s8.c). Model: cmsisgen/s8/arith.py (requantize).
 *
 * CMSIS-NN v7.0.0's default arm_nn_requantize (double rounding; never the single-rounding
 * build), written from its documented arithmetic in plain C99 free of undefined behaviour:
 * every wrap goes through uint32_t and back through nn_s8_bits. stdint only.
 */
#ifndef NN_S8_REQUANTIZE_H
#define NN_S8_REQUANTIZE_H

#include <stdint.h>

/* The int32 whose two's complement bits are v (no implementation-defined conversion). */
static inline int32_t nn_s8_bits(uint32_t v)
{
    return v > 0x7FFFFFFFu ? -(int32_t)(~v) - 1 : (int32_t)v;
}

/* floor(v / 2^s) for 0 <= s <= 62, whatever the sign of v. */
static inline int64_t nn_s8_floor_shift(int64_t v, int s)
{
    return v < 0 ? -((-(v + 1)) >> s) - 1 : v >> s;
}

/* arm_nn_requantize's default double rounding: val << left in 32 bits, (val * mult + 2^30)
 * >> 31 (ties up), then a right shift rounding ties away from zero. */
static inline int32_t nn_s8_requantize(int32_t val, int32_t mult, int32_t shift)
{
    const int right = shift > 0 ? 0 : -shift;
    const int32_t scaled = nn_s8_bits((uint32_t)val << (shift > 0 ? shift : 0));
    const int32_t high = nn_s8_bits((uint32_t)(uint64_t)nn_s8_floor_shift((int64_t)scaled * mult + (1LL << 30), 31));
    const uint32_t mask = (uint32_t)(((uint64_t)1 << right) - 1u);
    const int32_t result = (int32_t)nn_s8_floor_shift(high, right);
    const int32_t threshold = (int32_t)(mask >> 1) + (result < 0 ? 1 : 0);

    return (int32_t)((uint32_t)high & mask) > threshold ? result + 1 : result;
}

#endif /* NN_S8_REQUANTIZE_H */
