/* QEMU targets (mps2-an500, mps3-an547): the known-answer self test; instructions counted
   with SysTick. */
#include "selftest.h"
#include "systick.h"

const char *const platform_counter_unit = "instructions";

static uint64_t start_ticks;

void platform_counter_start(void)
{
    start_ticks = systick_ticks();
}

uint32_t platform_counter_elapsed(void)
{
    uint64_t insns = SYSTICK_INSTRUCTIONS(systick_ticks() - start_ticks);
    return insns > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)insns;
}

int main(void)
{
    systick_init();
    return nn_selftest() == 0 ? 0 : 1;
}
