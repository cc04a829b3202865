/*
 * cmsisgen portable CMSIS-NN subset: in-place q7 ReLU (negative values become 0).
 */
#include "arm_nn_portable_internal.h"

void arm_relu_q7(q7_t *data, uint16_t size)
{
    uint16_t i;
    for (i = 0; i < size; i++)
    {
        if (data[i] < 0)
        {
            data[i] = 0;
        }
    }
}
