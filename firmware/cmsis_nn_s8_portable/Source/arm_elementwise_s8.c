/*
 * Elementwise: arm_elementwise_add_s8, arm_elementwise_mul_s8, arm_maximum_s8.
 *
 * Add (TFLite's int8 ADD): each input is offset, shifted left by left_shift (20 from
 * TFLite), requantized with its own multiplier, the two summed and requantized to the
 * output. The DSP build offsets four elements at a time in 16-bit lanes and takes each
 * lane zero-extended, ((x + offset) & 0xFFFF) << left_shift, where the plain-C build (and
 * the DSP build's last block_size % 4 elements) sign-extends. With left_shift >= 16 the two
 * agree (the lost bits are above bit 31); below 16 a negative x + offset differs, and
 * these kernels do as the DSP build. The MVE build (ARM_MATH_MVEI) sign-extends every
 * element, as plain C does, and so do these kernels when built for it.
 * Mul: (x1 + off1) * (x2 + off2), requantized.
 * Maximum: no requantization (inputs and output share one quantization).
 */
#include "pnn_s8_internal.h"

static int32_t add_operand(int8_t x, int32_t offset, int32_t left_shift, int zero_extend)
{
    const int32_t v = x + offset;
    const uint32_t lane = zero_extend ? ((uint32_t)v & 0xFFFFu) : (uint32_t)v;
    return pnn_wrap(lane << left_shift);
}

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
#if defined(ARM_MATH_MVEI)
    const int32_t in_lanes = 0;
#else
    const int32_t in_lanes = block_size / 4 * 4;
#endif
    for (int32_t i = 0; i < block_size; i++)
    {
        const int zero_extend = i < in_lanes;
        const int32_t a = add_operand(input_1_vect[i], input_1_offset, left_shift, zero_extend);
        const int32_t b = add_operand(input_2_vect[i], input_2_offset, left_shift, zero_extend);
        const int32_t sum = pnn_add(pnn_requantize(a, input_1_mult, input_1_shift),
                                    pnn_requantize(b, input_2_mult, input_2_shift));
        output[i] = pnn_finish(sum, out_mult, out_shift, out_offset, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++)
    {
        const int32_t product = (input_1_vect[i] + input_1_offset) * (input_2_vect[i] + input_2_offset);
        output[i] = pnn_finish(product, out_mult, out_shift, out_offset, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* Index of output element (n, h, w, c) in an input broadcast along its size-1 axes. */
static int64_t broadcast_index(const cmsis_nn_dims *d, int32_t n, int32_t h, int32_t w, int32_t c)
{
    n = d->n == 1 ? 0 : n;
    h = d->h == 1 ? 0 : h;
    w = d->w == 1 ? 0 : w;
    c = d->c == 1 ? 0 : c;
    return (((int64_t)n * d->h + h) * d->w + w) * d->c + c;
}

arm_cmsis_nn_status arm_maximum_s8(const cmsis_nn_context *ctx,
                                   const int8_t *input_1_data,
                                   const cmsis_nn_dims *input_1_dims,
                                   const int8_t *input_2_data,
                                   const cmsis_nn_dims *input_2_dims,
                                   int8_t *output_data,
                                   const cmsis_nn_dims *output_dims)
{
    (void)ctx;
    const cmsis_nn_dims *o = output_dims;
    for (int32_t n = 0; n < o->n; n++)
    {
        for (int32_t h = 0; h < o->h; h++)
        {
            for (int32_t w = 0; w < o->w; w++)
            {
                for (int32_t c = 0; c < o->c; c++)
                {
                    const int8_t a = input_1_data[broadcast_index(input_1_dims, n, h, w, c)];
                    const int8_t b = input_2_data[broadcast_index(input_2_dims, n, h, w, c)];
                    *output_data++ = a >= b ? a : b;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
