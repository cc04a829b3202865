/* ReLU6 in place on raw int8 values (no zero point): clamp to [0, 6]. */
#include "pnn_s8_internal.h"

void arm_relu6_s8(int8_t *data, uint16_t size)
{
    for (uint32_t i = 0; i < size; i++)
    {
        data[i] = (int8_t)PNN_MIN(PNN_MAX(data[i], 0), 6);
    }
}
