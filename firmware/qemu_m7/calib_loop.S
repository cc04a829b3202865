/*
 * uint32_t calib_measure(uint32_t n, uint32_t *cvr_after)
 *
 * Reads SYST_CVR, runs `subs; bne` n times (n >= 1), reads SYST_CVR again. Returns the first
 * reading and stores the second in *cvr_after. From the first read (exclusive) to the
 * second read (inclusive) exactly 2*n + 1 instructions execute: the calibration's ground
 * truth. The global labels mark that region for count_trace.py: [calib_region_start,
 * calib_region_end) holds the loop and the second read.
 */
    .syntax unified
    .thumb
    .text
    .global calib_measure
    .global calib_region_start
    .global calib_region_end
    .type calib_measure, %function
    .thumb_func
calib_measure:
    movw    r2, #0xE018          /* r2 = &SYST_CVR (0xE000E018) */
    movt    r2, #0xE000
    ldr     r3, [r2]             /* first read */
calib_region_start:
    subs    r0, r0, #1
    bne     calib_region_start
    ldr     r12, [r2]            /* second read */
calib_region_end:
    str     r12, [r1]
    mov     r0, r3
    bx      lr
    .size calib_measure, . - calib_measure

    .section .note.GNU-stack,"",%progbits
