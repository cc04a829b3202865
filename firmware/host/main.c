/* Host target: the known-answer self test on Linux/macOS, gcc or clang. */
#include <stdio.h>
#include <time.h>

#include "selftest.h"

const char *const platform_counter_unit = "ns";

static struct timespec start_time;

void platform_counter_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &start_time);
}

uint32_t platform_counter_elapsed(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - start_time.tv_sec) * 1000000000LL +
                 (int64_t)(now.tv_nsec - start_time.tv_nsec);
    return ns > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

int main(void)
{
    int failures = nn_selftest();
    fflush(stdout);
    return failures == 0 ? 0 : 1;
}
