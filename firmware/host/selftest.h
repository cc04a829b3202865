/*
 * Known-answer self test shared by the three firmware targets (host, qemu_m7, stm32f7).
 *
 * The target supplies the platform hooks below and calls nn_selftest() from main().
 * Output goes through printf; one line per test vector and a summary line:
 *
 *   cmsisgen selftest: 4 vectors, input 32x32x3, output 10, counter instructions
 *   vector 0: class 3 expected 3 label 3 PASS instructions 1234567
 *   vector 1: class 5 expected 3 label -1 FAIL instructions 1234560 mismatch 2 got 17 want 18
 *   summary: 3/4 PASS, instructions per inference 1234563
 *
 * cmsisgen/verify.py parses exactly these lines: keep them in sync.
 */
#ifndef CMSISGEN_SELFTEST_H
#define CMSISGEN_SELFTEST_H

#include <stdint.h>

/* Name of the unit platform_counter_elapsed() counts in ("instructions", "cycles", "ns"). */
extern const char *const platform_counter_unit;

/* Start a measurement (called right before run_nn()). */
void platform_counter_start(void);

/* Units elapsed since the last platform_counter_start() (called right after run_nn()). */
uint32_t platform_counter_elapsed(void);

/* Run run_nn() on every vector of test_vectors.h; returns the number of failing vectors. */
int nn_selftest(void);

#endif
