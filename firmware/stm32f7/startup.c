/*
 * STM32F746NG startup: vector table (16 core + 98 peripheral vectors), fault handlers that
 * report on USART1 and park (board_fault), and startup_main(), which runs main() and then
 * parks the core. The reset handler (FPU on before any C runs, .data copied from flash,
 * .bss zeroed) is common/cm7_startup.c.
 */
#include <stdint.h>

#include "board.h"
#include "cm7_startup.h"

extern uint32_t __stack_end__[];

int main(void);

static void NMI_Handler(void) { board_fault("NMI"); }
static void HardFault_Handler(void) { board_fault("HardFault"); }
static void MemManage_Handler(void) { board_fault("MemManage"); }
static void BusFault_Handler(void) { board_fault("BusFault"); }
static void UsageFault_Handler(void) { board_fault("UsageFault"); }
/* No interrupt is enabled: any other exception is unexpected. */
static void Default_Handler(void) { board_fault("unexpected interrupt"); }

typedef void (*vector_t)(void);

#define D2 Default_Handler, Default_Handler
#define D8 D2, D2, D2, D2
#define D32 D8, D8, D8, D8

__attribute__((section(".isr_vector"), used)) static const vector_t vector_table[] = {
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
    Default_Handler, /* SysTick */
    D32, D32, D32, D2, /* IRQ0..IRQ97 */
};

_Static_assert(sizeof(vector_table) / sizeof(vector_table[0]) == 16 + 98,
               "16 core vectors + 98 STM32F746 interrupts");

void startup_main(void)
{
    (void)main();
    for (;;) {
    }
}
