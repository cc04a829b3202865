/*
 * Known-answer self test: runs run_nn() on every vector of the model's test_vectors.h and
 * compares the q7 scores with nn_test_expected bit for bit. See selftest.h for the output.
 */
#include <stdio.h>

#include "nn.h"
#include "selftest.h"
#include "test_vectors.h"

static q7_t scores[NN_OUTPUT_SIZE];

static int argmax_q7(const q7_t *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

int nn_selftest(void)
{
    int passed = 0;
    uint64_t total_count = 0;

    printf("cmsisgen selftest: %d vectors, input %dx%dx%d, output %d, counter %s\n",
           (int)NN_TEST_VECTOR_COUNT, (int)NN_INPUT_HEIGHT, (int)NN_INPUT_WIDTH,
           (int)NN_INPUT_CHANNELS, (int)NN_OUTPUT_SIZE, platform_counter_unit);

    for (int v = 0; v < (int)NN_TEST_VECTOR_COUNT; v++) {
        for (int i = 0; i < NN_OUTPUT_SIZE; i++) {
            scores[i] = 0;
        }

        platform_counter_start();
        arm_status status = run_nn(nn_test_inputs[v], scores);
        uint32_t count = platform_counter_elapsed();
        total_count += count;

        int mismatch = -1;
        for (int i = 0; i < NN_OUTPUT_SIZE; i++) {
            if (scores[i] != nn_test_expected[v][i]) {
                mismatch = i;
                break;
            }
        }
        int ok = (status == ARM_MATH_SUCCESS) && (mismatch < 0);
        passed += ok;

        printf("vector %d: class %d expected %d label %d %s %s %lu", v,
               argmax_q7(scores, NN_OUTPUT_SIZE), argmax_q7(nn_test_expected[v], NN_OUTPUT_SIZE),
               (int)nn_test_labels[v], ok ? "PASS" : "FAIL", platform_counter_unit,
               (unsigned long)count);
        if (status != ARM_MATH_SUCCESS) {
            printf(" status %d", (int)status);
        }
        if (mismatch >= 0) {
            printf(" mismatch %d got %d want %d", mismatch, (int)scores[mismatch],
                   (int)nn_test_expected[v][mismatch]);
        }
        printf("\n");
    }

    unsigned long mean = 0;
    if (NN_TEST_VECTOR_COUNT > 0) {
        mean = (unsigned long)((total_count + NN_TEST_VECTOR_COUNT / 2) / NN_TEST_VECTOR_COUNT);
    }
    printf("summary: %d/%d PASS, %s per inference %lu\n", passed, (int)NN_TEST_VECTOR_COUNT,
           platform_counter_unit, mean);
    return (int)NN_TEST_VECTOR_COUNT - passed;
}
