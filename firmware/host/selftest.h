/*
 * Known-answer self test shared by the three firmware targets (host, qemu_m7, stm32f7).
 *
 * The target supplies the platform hooks below and calls nn_selftest() from main().
 * Output goes through printf; a header, one line per test vector and a summary line:
 *
 *   cmsisgen selftest: 4 vectors, input 32x32x3, output 10, steps checked 9, counter instructions
 *   vector 0: class 3 expected 3 label 3 PASS instructions 1234567
 *   vector 1: class 3 expected 3 label 5 FAIL instructions 1234560 step 4 "pool1" checksum 0x1a2b3c4d want 0x1a2b3c4e
 *   vector 2: class 5 expected 3 label -1 FAIL instructions 1234560 step 7 "ip1" checksum 0x00c0ffee want 0x0badf00d mismatch 2 got 17 want 18
 *   summary: 2/4 PASS, instructions per inference 1234563
 *
 * A vector PASSes when run_nn() returns success (0: ARM_MATH_SUCCESS on the q7 backend,
 * ARM_CMSIS_NN_SUCCESS on s8), its scores equal nn_test_expected
 * and, when test_vectors.h defines NN_TEST_STEP_COUNT, run_nn() traced exactly that many
 * steps, in order (the N-th NN_TRACE call is step N), and every step's checksum equals
 * nn_test_step_checksums. A FAIL line carries, in this order and only when they apply:
 * " status S" (run_nn() did not return SUCCESS), " step I \"NAME\" checksum 0xGOT want
 * 0xWANT" (the first step, in execution order, whose output differs; " step I out of range"
 * when I >= NN_TEST_STEP_COUNT, " step I out of order" when the N-th call traced step I != N),
 * " traced N of K steps" (NN_TRACE called N times, not K), " mismatch I got G want W" (first
 * differing score).
 * "steps checked 0" in the header: test_vectors.h has no step checksums (scores only).
 * A network with several outputs: "output N" in the header is the bytes of all of them, followed
 * by ", outputs K"; "class" is the argmax of the first output; the scores compared are every
 * output's, and a mismatch names its output: " mismatch I got G want W in output \"NAME\" element J"
 * (I indexes the outputs side by side, J the element of that output).
 *
 * Each vector runs twice when steps are checked: timed with the trace hook off, then untimed
 * with every step checksummed (the count is that of the timed run). With step checksums,
 * vector 0 then runs once more to profile the steps, one line each before the summary:
 *
 *   profile step 3 "conv2" instructions 456789
 *
 * (the counter at the end of the step minus at the end of the previous step).
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

/* NN_TRACE hook: nn.c is compiled with -DNN_TRACE=nn_selftest_trace, so run_nn() calls this
   after every step with the step's output (int8_t: q7_t on the q7 backend). */
void nn_selftest_trace(uint32_t step, const int8_t *data, uint32_t size);

/* Checksum of a step's output: h = sum(byte[i] * m[i]) mod 2^32, m[0] = 1,
   m[i+1] = m[i] + 2654435761 (as cmsisgen computes nn_test_step_checksums). */
uint32_t nn_selftest_checksum(const int8_t *data, uint32_t size);

/* Run run_nn() on every vector of test_vectors.h; returns the number of failing vectors. */
int nn_selftest(void);

#endif
