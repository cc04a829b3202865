/*
 * STM32F746NG startup: vector table (16 core + 98 peripheral vectors) and startup_main(),
 * which runs main() and then parks the core. The reset handler (FPU on before any C runs,
 * .data copied from flash, .bss zeroed) is common/cm7_startup.c.
 */
#include <stdint.h>

#include "cm7_startup.h"

extern uint32_t __stack_end__[];

int main(void);
void Default_Handler(void);

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

void startup_main(void)
{
    (void)main();
    for (;;) {
    }
}
