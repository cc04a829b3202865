/*
 * Force-included (-include) only when upstream CMSIS-NN (CMSIS_5 5.9.0) is built for the
 * host with -D__GNUC_PYTHON__: its plain-C path still calls __SSAT, __USAT and __CLZ, which
 * CMSIS-DSP defines for that case in dsp/none.h but CMSIS-NN's headers never include.
 * Same semantics as dsp/none.h.
 */
#ifndef CMSISGEN_UPSTREAM_HOST_INTRINSICS_H
#define CMSISGEN_UPSTREAM_HOST_INTRINSICS_H

#include <stdint.h>

static inline __attribute__((always_inline, unused)) uint8_t __CLZ(uint32_t data)
{
    return data == 0U ? 32U : (uint8_t)__builtin_clz(data);
}

static inline __attribute__((always_inline, unused)) int32_t __SSAT(int32_t val, uint32_t sat)
{
    if (sat >= 1U && sat <= 32U) {
        const int32_t max = (int32_t)((1U << (sat - 1U)) - 1U);
        const int32_t min = -1 - max;
        if (val > max) {
            return max;
        }
        if (val < min) {
            return min;
        }
    }
    return val;
}

static inline __attribute__((always_inline, unused)) uint32_t __USAT(int32_t val, uint32_t sat)
{
    if (sat <= 31U) {
        const uint32_t max = (1U << sat) - 1U;
        if (val > (int32_t)max) {
            return max;
        }
        if (val < 0) {
            return 0U;
        }
    }
    return (uint32_t)val;
}

#endif
