/*
 * Instruction counting on QEMU with -icount shift=0: virtual time advances exactly 1 ns per
 * executed instruction, and the SysTick (CLKSOURCE = processor clock) decrements once per
 * clock period: QEMU's mps2-an500 (qemu_m7) clocks it at 25 MHz, once per 40 instructions;
 * its mps3-an547 (qemu_m55) at 32 MHz, once per 31.25 = 125/4 instructions. The ratio is
 * INSTRUCTIONS_PER_SYSTICK / SYSTICK_DIVISOR (the target's Makefile sets SYSTICK_DEFS).
 * See firmware/README.md for the calibration (make calib / make calib-trace).
 */
#ifndef QEMU_M7_SYSTICK_H
#define QEMU_M7_SYSTICK_H

#include <stdint.h>

#ifndef INSTRUCTIONS_PER_SYSTICK
#define INSTRUCTIONS_PER_SYSTICK 40u /* 1 GHz icount clock / 25 MHz SysTick clock */
#endif
#ifndef SYSTICK_DIVISOR
#define SYSTICK_DIVISOR 1u /* 4 with INSTRUCTIONS_PER_SYSTICK 125: a 32 MHz SysTick clock */
#endif
/* Instructions in `ticks` SysTick ticks (64-bit: no overflow below 2^57 ticks). */
#define SYSTICK_INSTRUCTIONS(ticks) ((uint64_t)(ticks) * INSTRUCTIONS_PER_SYSTICK / SYSTICK_DIVISOR)

/* Counter period 2^SYSTICK_BITS ticks (24: the full 24-bit counter, a wrap every 671 M
   instructions). Smaller values only serve to test the wrap handling (make calib
   EXTRA_CFLAGS=-DSYSTICK_BITS=8). */
#ifndef SYSTICK_BITS
#define SYSTICK_BITS 24
#endif
#if SYSTICK_BITS < 4 || SYSTICK_BITS > 24
#error "SYSTICK_BITS must be 4..24"
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void systick_init(void);
/* Ticks since systick_init(), 64-bit (the 24-bit counter's wraps are counted in the IRQ). */
uint64_t systick_ticks(void);

#endif
