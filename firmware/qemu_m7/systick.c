#include "systick.h"

static volatile uint32_t systick_wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    systick_wraps++;
}

void systick_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0; /* any write clears the counter; it reloads on the next clock */
    SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* CLKSOURCE = CPU clock, TICKINT, ENABLE */
}

uint64_t systick_ticks(void)
{
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps << 24) + (0x00FFFFFFu - value);
}
