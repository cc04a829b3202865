/*
 * Cortex-M7 reset handler shared by qemu_m7 and stm32f7 (see cm7_startup.h).
 */
#include <stdint.h>

#include "cm7_startup.h"

extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];

static void reset_c(void);

/* Naked so that no instruction (FP or otherwise) runs before CP10/CP11 are enabled: the C
   code is built with -mfloat-abi=hard and may use FP registers anywhere. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm__ volatile(
        "movw r0, #0xED88\n" /* r0 = &SCB->CPACR (0xE000ED88) */
        "movt r0, #0xE000\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n" /* CP10, CP11 full access */
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b %c0\n" ::"i"(reset_c));
}

__attribute__((noreturn, used)) static void reset_c(void)
{
    uint32_t *src = __data_load__;
    for (uint32_t *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0;
    }
    startup_main();
}
