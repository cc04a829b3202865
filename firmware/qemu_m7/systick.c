#include "systick.h"

#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define PERIOD (1u << SYSTICK_BITS)

static volatile uint32_t systick_wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    systick_wraps++;
}

void systick_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = PERIOD - 1u;
    SYST_CVR = 0; /* any write clears the counter; it reloads on the next clock */
    SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* CLKSOURCE = CPU clock, TICKINT, ENABLE */
}

/*
 * The counter runs PERIOD - 1, ..., 1, 0, then reloads (PERIOD = 2^SYSTICK_BITS, 2^24 by
 * default). Reaching 0 ends a period and pends the SysTick interrupt, which counts it in
 * systick_wraps; so the ticks since init are wraps * PERIOD + (value == 0 ? 0 : PERIOD - value).
 *
 * The wrap count and VAL cannot be read at once. If the handler runs between the reads,
 * systick_wraps changes and the loop reads again. If the counter reached 0 but the handler
 * has not run yet (interrupt still pending), VAL has started the next period while
 * systick_wraps still counts the old one, which would be off by PERIOD ticks. So: VAL (v1),
 * then the pending bit, then VAL again (v2). Not pending: no uncounted wrap before v1, use
 * (wraps, v1). Pending: the wrap happened before v2 was read, use (wraps + 1, v2).
 */
uint64_t systick_ticks(void)
{
    uint32_t wraps, v1, v2, pending;
    do {
        wraps = systick_wraps;
        v1 = SYST_CVR;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
        v2 = SYST_CVR;
    } while (wraps != systick_wraps);
    uint32_t value = v1;
    if (pending != 0u) {
        wraps++;
        value = v2;
    }
    return ((uint64_t)wraps << SYSTICK_BITS) + (value == 0u ? 0u : PERIOD - value);
}
