/*
 * SysTick instruction-count calibration for QEMU -icount shift=0 (make calib).
 *
 * For each n, calib_measure() runs a loop of exactly 2n + 1 instructions between two SysTick
 * reads. Prints one line per n:
 *   calib n 1000 exact 2001 ticks 50 estimate 2000 error -1
 * estimate = SYSTICK_INSTRUCTIONS(ticks), error = estimate - exact.
 * Exits 0 when every |error| is within one tick of quantisation.
 */
#include <stdio.h>
#include <stdlib.h>

#include "systick.h"

uint32_t calib_measure(uint32_t n, uint32_t *cvr_after);

#ifndef CALIB_MAX_N
#define CALIB_MAX_N 10000000u
#endif

int main(void)
{
    static const uint32_t ns[] = {1u,      7u,       10u,      20u,       39u,        100u,
                                  1000u,   1234u,    10000u,   33333u,    100000u,    1000000u,
                                  4000000u, 10000000u};
    int bad = 0;
    systick_init();
    for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        uint32_t n = ns[i];
        if (n > CALIB_MAX_N) {
            break;
        }
        uint32_t after = 0;
        uint32_t before = calib_measure(n, &after);
        uint32_t ticks = (before - after) & 0x00FFFFFFu; /* down-counter, < 2^24 ticks */
        long long exact = 2LL * n + 1;
        long long estimate = (long long)SYSTICK_INSTRUCTIONS(ticks);
        long long error = estimate - exact;
        if (llabs(error) * SYSTICK_DIVISOR > INSTRUCTIONS_PER_SYSTICK) { /* |error| > one tick */
            bad++;
        }
        printf("calib n %lu exact %lu ticks %lu estimate %lu error %ld\n", (unsigned long)n,
               (unsigned long)exact, (unsigned long)ticks, (unsigned long)estimate, (long)error);
    }
    if (SYSTICK_DIVISOR == 1u) {
        printf("calib summary: %s, instructions per tick %u\n", bad ? "FAIL" : "PASS",
               (unsigned)INSTRUCTIONS_PER_SYSTICK);
    } else {
        printf("calib summary: %s, instructions per tick %u/%u\n", bad ? "FAIL" : "PASS",
               (unsigned)INSTRUCTIONS_PER_SYSTICK, (unsigned)SYSTICK_DIVISOR);
    }
    return bad ? 1 : 0;
}
