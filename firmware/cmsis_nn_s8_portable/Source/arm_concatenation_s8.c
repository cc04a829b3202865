/*
 * Concatenation along x, y, z or w of a [w][z][y][x] tensor (x fastest): copies one input
 * into the output at an element offset along the axis. Inputs and output share one
 * quantization, so this is a strided memcpy. As upstream, the y variant advances the
 * output by input_x per y step (output_x must equal input_x) and the others likewise
 * assume the output matches the input on every other axis.
 */
#include "pnn_s8_internal.h"

/* count blocks of `block` bytes, the output advancing by `stride` per block. */
static void copy_blocks(const int8_t *input, int8_t *output, uint32_t count, uint32_t block, uint32_t stride)
{
    for (uint32_t i = 0; i < count; i++)
    {
        memcpy(output + (size_t)i * stride, input + (size_t)i * block, block);
    }
}

void arm_concatenation_s8_x(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_x,
                            const uint32_t offset_x)
{
    copy_blocks(input, output + offset_x, (uint32_t)input_y * input_z * input_w, input_x, output_x);
}

void arm_concatenation_s8_y(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_y,
                            const uint32_t offset_y)
{
    copy_blocks(input, output + (size_t)offset_y * input_x, (uint32_t)input_z * input_w, (uint32_t)input_x * input_y,
                (uint32_t)input_x * output_y);
}

void arm_concatenation_s8_z(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_z,
                            const uint32_t offset_z)
{
    const uint32_t plane = (uint32_t)input_x * input_y;
    copy_blocks(input, output + (size_t)offset_z * plane, input_w, plane * input_z, plane * output_z);
}

void arm_concatenation_s8_w(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint32_t offset_w)
{
    const uint32_t volume = (uint32_t)input_x * input_y * input_z;
    memcpy(output + (size_t)offset_w * volume, input, (size_t)volume * input_w);
}
