/*
 * Shared Cortex-M7 reset path (common/cm7_startup.c): Reset_Handler turns the FPU on
 * (CPACR CP10/CP11) before any C runs, copies .data from its load image, zeroes .bss and
 * calls startup_main(), which each target defines (run main(), then report/exit or park).
 * The vector table stays in each target's startup.c.
 * Linker symbols used: __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__.
 */
#ifndef FIRMWARE_CM7_STARTUP_H
#define FIRMWARE_CM7_STARTUP_H

__attribute__((naked, noreturn)) void Reset_Handler(void);
/* Per target: called once memory is initialised; must not return. */
__attribute__((noreturn)) void startup_main(void);

#endif
