/*
 * STM32F746G-DISCO: runs the known-answer self test once at boot and prints, on the
 * ST-LINK virtual COM port (115200 8N1), one line per vector with the class, PASS/FAIL and
 * the core cycles of run_nn() (DWT CYCCNT, 216 MHz, caches on), then the summary.
 */
#include <stdio.h>

#include "board.h"
#include "selftest.h"
#include "stm32f7_regs.h"

const char *const platform_counter_unit = "cycles";

static uint32_t start_cycles;

void platform_counter_start(void)
{
    start_cycles = DWT_CYCCNT;
}

uint32_t platform_counter_elapsed(void)
{
    return DWT_CYCCNT - start_cycles; /* wraps after 2^32 cycles = 19.9 s */
}

int main(void)
{
    board_init();
    printf("\ncmsisgen on STM32F746G-DISCO, SYSCLK %lu Hz, I/D cache on\n",
           (unsigned long)SYSCLK_HZ);
    int failures = nn_selftest();
    printf("%s\n", failures == 0 ? "ALL PASS" : "SOME FAILED");
    uart_flush();
    for (;;) {
        __asm__ volatile("wfi");
    }
}
