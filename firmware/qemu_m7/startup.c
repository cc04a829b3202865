/*
 * Startup for QEMU mps2-an500 (Cortex-M7): vector table, reset handler (FPU on, .data copied,
 * .bss zeroed), fault handlers that report over semihosting and exit with status 3.
 */
#include <stdint.h>

#include "semihosting.h"

extern uint32_t __stack_end__[];
extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];

int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
static void reset_c(void);

static void fault(const char *name)
{
    sh_puts(name);
    sh_puts(": fault, stopping\n");
    sh_exit(3);
}

static void NMI_Handler(void) { fault("NMI"); }
static void HardFault_Handler(void) { fault("HardFault"); }
static void MemManage_Handler(void) { fault("MemManage"); }
static void BusFault_Handler(void) { fault("BusFault"); }
static void UsageFault_Handler(void) { fault("UsageFault"); }
static void Default_Handler(void) { fault("unexpected interrupt"); }

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) static const vector_t vector_table[16 + 32] = {
    (vector_t)(uintptr_t)__stack_end__, /* initial MSP */
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 47] = Default_Handler, /* external interrupts: none enabled */
};

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
    sh_exit(main());
}
