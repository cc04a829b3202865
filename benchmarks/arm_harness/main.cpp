/*
 * QEMU mps2-an500 harness for Arm's own generated CIFAR-10 code (a user-given folder with
 * nn.cpp, nn.h, parameter.h, weights.h; benchmarks/arm_code.py builds it): counts the
 * instructions of each run_nn() call exactly as cmsisgen's self test does (SysTick under
 * -icount, firmware/qemu_m7/systick.h). The image is copied into the input buffer before
 * the counter starts, as the self test does; run_nn() itself does Arm's mean subtraction.
 */
#include <stdio.h>
#include <string.h>

#include "nn.h"
#include "arm_images.h" /* ARM_IMAGES, ARM_IMAGE_BYTES, arm_images[][]: written by arm_code.py */

extern "C" {
#include "systick.h"
}

/* Arm's nn.cpp defines this (run_nn() calls it first); weak, so other Arm code still links. */
void mean_subtract(q7_t *image_data) __attribute__((weak));

static q7_t image[ARM_IMAGE_BYTES];
static q7_t scores[16]; /* Arm's nets have 10 outputs */

int main(void)
{
    systick_init();
    unsigned long long total = 0;
    for (int i = 0; i < ARM_IMAGES; i++) {
        memcpy(image, arm_images[i], sizeof image);
        uint64_t start = systick_ticks();
        run_nn(image, scores);
        uint64_t insns = (systick_ticks() - start) * INSTRUCTIONS_PER_SYSTICK;
        total += insns;
        printf("image %d: %lu instructions\n", i, (unsigned long)insns); /* newlib-nano: no %llu */
    }
    if (mean_subtract) { /* the input step alone, for the per-byte figure */
        memcpy(image, arm_images[0], sizeof image);
        uint64_t start = systick_ticks();
        mean_subtract(image);
        printf("mean_subtract: %lu instructions\n",
               (unsigned long)((systick_ticks() - start) * INSTRUCTIONS_PER_SYSTICK));
    }
    printf("instructions per inference: %lu\n", (unsigned long)(total / ARM_IMAGES));
    return 0;
}
