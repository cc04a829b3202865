/*
 * Known-answer self test: runs run_nn() on every vector of the model's test_vectors.h and
 * compares the int8 scores of every output with nn_test_expected bit for bit and, when test_vectors.h has
 * NN_TEST_STEP_COUNT, the checksum of every step's output with nn_test_step_checksums.
 * See selftest.h for the output.
 *
 * Step checks: nn.c is built with -DNN_TRACE=nn_selftest_trace (the firmware Makefiles do),
 * so run_nn() calls nn_selftest_trace() after every step. Each vector is run twice: a timed
 * run with the trace hook switched off (it returns at once, so the counts stay those of
 * run_nn() itself) and an untimed run that checksums every step.
 *
 * Both backends build it: the q7 backend's nn.h (q7_t is int8_t, run_nn() returns arm_status)
 * and the s8 backend's (int8_t, arm_cmsis_nn_status; no legacy names), so this file names
 * neither backend's types.
 *
 * run_nn() converts the image to int8 in place and overwrites its buffer (nn.h), so each run
 * gets a fresh copy of the const test vector in a RAM buffer of NN_INPUT_BUFFER_SIZE bytes
 * (copied before the counter starts).
 */
#include <stdio.h>
#include <string.h>

#include "nn.h"
#include "selftest.h"
#include "test_vectors.h"

/*
 * Every output of run_nn() side by side in one buffer (test_vectors.h's NN_TEST_RUN passes a
 * pointer into it for each output). A test_vectors.h of an older cmsisgen has one output.
 */
#ifdef NN_TEST_OUTPUT_COUNT
#define SELFTEST_OUTPUT_SIZE ((int)NN_TEST_OUTPUT_SIZE)
#define SELFTEST_RUN(image, outputs) NN_TEST_RUN(image, outputs)
#define SELFTEST_CLASS_SIZE ((int)nn_test_output_sizes[0])
#else
#define SELFTEST_OUTPUT_SIZE ((int)NN_OUTPUT_SIZE)
#define SELFTEST_RUN(image, outputs) run_nn(image, outputs)
#define SELFTEST_CLASS_SIZE ((int)NN_OUTPUT_SIZE)
#endif

/* run_nn()'s success: ARM_MATH_SUCCESS (q7 backend) and ARM_CMSIS_NN_SUCCESS (s8) are both 0. */
#define SELFTEST_SUCCESS 0

static int8_t scores[SELFTEST_OUTPUT_SIZE];
static uint8_t image[NN_INPUT_BUFFER_SIZE] __attribute__((aligned(4)));

#ifdef NN_TEST_STEP_COUNT
#define SELFTEST_STEPS ((int)NN_TEST_STEP_COUNT)
#else
#define SELFTEST_STEPS 0
#endif

uint32_t nn_selftest_checksum(const int8_t *data, uint32_t size)
{
    uint32_t h = 0u;
    uint32_t m = 1u;
    for (uint32_t i = 0; i < size; i++) {
        h += (uint32_t)(uint8_t)data[i] * m;
        m += 2654435761u;
    }
    return h;
}

#ifdef NN_TEST_STEP_COUNT
/* Profile run (vector 0, after the checks): the counter at every step's end. */
static int profiling;
static uint32_t profile_counts[NN_TEST_STEP_COUNT];

/* State of the checking run; trace_vector < 0: hook off (timed run). */
static int trace_vector = -1;
static uint32_t trace_calls;      /* NN_TRACE calls seen in this run */
static int trace_bad_step = -1;   /* first step whose checksum differs (or out of range) */
static uint32_t trace_bad_got;
static int trace_bad_order;       /* trace_bad_step came at the wrong call (not step order) */

void nn_selftest_trace(uint32_t step, const int8_t *data, uint32_t size)
{
    if (profiling) {
        if (step < (uint32_t)NN_TEST_STEP_COUNT) {
            profile_counts[step] = platform_counter_elapsed();
        }
        return;
    }
    if (trace_vector < 0) {
        return;
    }
    const uint32_t call = trace_calls++;
    if (trace_bad_step >= 0) {
        return; /* only the first mismatching step is reported */
    }
    if (step >= (uint32_t)NN_TEST_STEP_COUNT) {
        trace_bad_step = (int)step;
        return;
    }
    if (step != call) {
        /* run_nn() traces steps 0, 1, 2, ... in order: a repeated or skipped step would
           otherwise leave a step unchecked while the call count still matches. */
        trace_bad_step = (int)step;
        trace_bad_order = 1;
        return;
    }
    uint32_t h = nn_selftest_checksum(data, size);
    if (h != nn_test_step_checksums[trace_vector][step]) {
        trace_bad_step = (int)step;
        trace_bad_got = h;
    }
}
#else
/* test_vectors.h without step checksums: the hook has nothing to check. */
void nn_selftest_trace(uint32_t step, const int8_t *data, uint32_t size)
{
    (void)step;
    (void)data;
    (void)size;
}
#endif

static int argmax_int8(const int8_t *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* Index of the first score differing from vector v's expected scores, or -1. */
static int first_mismatch(int v)
{
    for (int i = 0; i < SELFTEST_OUTPUT_SIZE; i++) {
        if (scores[i] != nn_test_expected[v][i]) {
            return i;
        }
    }
    return -1;
}

static void clear_scores(void)
{
    for (int i = 0; i < SELFTEST_OUTPUT_SIZE; i++) {
        scores[i] = 0;
    }
}

/* With several outputs: which output (and which of its elements) a buffer index is. */
static void print_output_of(int index)
{
#ifdef NN_TEST_OUTPUT_COUNT
    int k = 0;
    while (k + 1 < (int)NN_TEST_OUTPUT_COUNT && (uint32_t)index >= nn_test_output_offsets[k + 1]) {
        k++;
    }
    if (NN_TEST_OUTPUT_COUNT > 1) {
        printf(" in output \"%s\" element %d", nn_test_output_names[k], index - (int)nn_test_output_offsets[k]);
    }
#else
    (void)index;
#endif
}

/* Vector v into the image buffer; the bytes past the image are set too (never used). */
static void load_image(int v)
{
    memset(image, 0, sizeof(image));
    memcpy(image, nn_test_inputs[v], NN_INPUT_SIZE);
}

int nn_selftest(void)
{
    int passed = 0;
    uint64_t total_count = 0;

    printf("cmsisgen selftest: %d vectors, input %dx%dx%d, output %d, ",
           (int)NN_TEST_VECTOR_COUNT, (int)NN_INPUT_HEIGHT, (int)NN_INPUT_WIDTH,
           (int)NN_INPUT_CHANNELS, SELFTEST_OUTPUT_SIZE);
#ifdef NN_TEST_OUTPUT_COUNT
    if (NN_TEST_OUTPUT_COUNT > 1) {
        printf("outputs %d, ", (int)NN_TEST_OUTPUT_COUNT);
    }
#endif
    printf("steps checked %d, counter %s\n", SELFTEST_STEPS, platform_counter_unit);

    for (int v = 0; v < (int)NN_TEST_VECTOR_COUNT; v++) {
        /* Timed run: trace hook off. */
        clear_scores();
        load_image(v);
        platform_counter_start();
        int status = (int)SELFTEST_RUN(image, scores);
        uint32_t count = platform_counter_elapsed();
        total_count += count;
        int predicted = argmax_int8(scores, SELFTEST_CLASS_SIZE);
        int mismatch = first_mismatch(v);
        int8_t mismatch_got = mismatch >= 0 ? scores[mismatch] : 0;

        int steps_ok = 1;
#ifdef NN_TEST_STEP_COUNT
        /* Checking run: checksum every step's output. */
        trace_vector = v;
        trace_calls = 0u;
        trace_bad_step = -1;
        trace_bad_order = 0;
        clear_scores();
        load_image(v);
        int checked_status = (int)SELFTEST_RUN(image, scores);
        trace_vector = -1;
        if (status == SELFTEST_SUCCESS) {
            status = checked_status;
        }
        if (mismatch < 0) {
            mismatch = first_mismatch(v);
            mismatch_got = mismatch >= 0 ? scores[mismatch] : 0;
        }
        steps_ok = trace_bad_step < 0 && trace_calls == (uint32_t)NN_TEST_STEP_COUNT;
#endif
        int ok = (status == SELFTEST_SUCCESS) && (mismatch < 0) && steps_ok;
        passed += ok;

        printf("vector %d: class %d expected %d label %d %s %s %lu", v, predicted,
               argmax_int8(nn_test_expected[v], SELFTEST_CLASS_SIZE), (int)nn_test_labels[v],
               ok ? "PASS" : "FAIL", platform_counter_unit, (unsigned long)count);
        if (status != SELFTEST_SUCCESS) {
            printf(" status %d", status);
        }
#ifdef NN_TEST_STEP_COUNT
        if (trace_bad_step >= (int)NN_TEST_STEP_COUNT) {
            printf(" step %d out of range", trace_bad_step);
        } else if (trace_bad_order) {
            printf(" step %d out of order", trace_bad_step);
        } else if (trace_bad_step >= 0) {
            printf(" step %d \"%s\" checksum 0x%08lx want 0x%08lx", trace_bad_step,
                   nn_test_step_names[trace_bad_step], (unsigned long)trace_bad_got,
                   (unsigned long)nn_test_step_checksums[v][trace_bad_step]);
        }
        if (trace_calls != (uint32_t)NN_TEST_STEP_COUNT) {
            printf(" traced %lu of %d steps", (unsigned long)trace_calls, SELFTEST_STEPS);
        }
#endif
        if (mismatch >= 0) {
            printf(" mismatch %d got %d want %d", mismatch, (int)mismatch_got,
                   (int)nn_test_expected[v][mismatch]);
            print_output_of(mismatch);
        }
        printf("\n");
    }

#ifdef NN_TEST_STEP_COUNT
    /* Profile run: each step's share of one inference (counter at the end of the step
       minus at the end of the previous one; the hook's own reads are included). */
    if (NN_TEST_VECTOR_COUNT > 0) {
        load_image(0);
        profiling = 1;
        platform_counter_start();
        (void)SELFTEST_RUN(image, scores);
        profiling = 0;
        uint32_t previous = 0u;
        for (int step = 0; step < SELFTEST_STEPS; step++) {
            printf("profile step %d \"%s\" %s %lu\n", step, nn_test_step_names[step], platform_counter_unit,
                   (unsigned long)(profile_counts[step] - previous));
            previous = profile_counts[step];
        }
    }
#endif

    unsigned long mean = 0;
    if (NN_TEST_VECTOR_COUNT > 0) {
        mean = (unsigned long)((total_count + NN_TEST_VECTOR_COUNT / 2) / NN_TEST_VECTOR_COUNT);
    }
    printf("summary: %d/%d PASS, %s per inference %lu\n", passed, (int)NN_TEST_VECTOR_COUNT,
           platform_counter_unit, mean);
    return (int)NN_TEST_VECTOR_COUNT - passed;
}
