/*
 * STM32F746NG startup: vector table (16 core + 98 peripheral vectors), reset handler that
 * enables the FPU before any C runs, copies .data from flash, zeroes .bss and calls main().
 */
#include <stdint.h>

extern uint32_t __stack_end__[];
extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
static void reset_c(void);

/* Any unexpected interrupt or fault parks the core here (inspect with a debugger). */
void Default_Handler(void)
{
    for (;;) {
    }
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) static const vector_t vector_table[16 + 98] = {
    (vector_t)(uintptr_t)__stack_end__, /* initial MSP */
    Reset_Handler,
    [2 ... 6] = Default_Handler, /* NMI, HardFault, MemManage, BusFault, UsageFault */
    [11 ... 12] = Default_Handler, /* SVCall, DebugMonitor */
    [14 ... 16 + 97] = Default_Handler, /* PendSV, SysTick, IRQ0..97 */
};

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
    (void)main();
    for (;;) {
    }
}
