/*
 * Startup for the QEMU targets, mps2-an500 (Cortex-M7) and mps3-an547 (Cortex-M55, which
 * runs it in Secure state): vector table, fault handlers that report over semihosting and
 * exit with status 3, and startup_main(), which exits QEMU with main()'s
 * return value. The reset handler (FPU on, .data copied, .bss zeroed) is common/cm7_startup.c.
 */
#include <stdint.h>

#include "cm7_startup.h"
#include "semihosting.h"

extern uint32_t __stack_end__[];

int main(void);
void SysTick_Handler(void);

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
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
static void SecureFault_Handler(void) { fault("SecureFault"); }
#define SECURE_FAULT SecureFault_Handler
#else
#define SECURE_FAULT 0 /* reserved before ARMv8-M */
#endif
static void Default_Handler(void) { fault("unexpected interrupt"); }

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
    SECURE_FAULT,
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    D32, /* external interrupts 0..31: none enabled */
};

_Static_assert(sizeof(vector_table) / sizeof(vector_table[0]) == 16 + 32,
               "16 core vectors + 32 interrupts");

void startup_main(void)
{
    sh_exit(main());
}
