/*
 * Fully connected: arm_fully_connected_s8, its buffer size and arm_vector_sum_s8.
 *
 * Row r of the output is bias[r] + sum((x + input_offset) * (w[r] + filter_offset)) in
 * wrapping 32-bit arithmetic, requantized with the one per-tensor multiplier. The DSP build
 * ignores ctx (v7's precomputed kernel sums are used by the MVE build only), so it needs
 * no scratch and never fails. The MVE build (ARM_MATH_MVEI) starts each row from the kernel
 * sum in ctx->buf (arm_vector_sum_s8's bias[r] + input_offset * (sum(w[r]) + depth *
 * filter_offset); bias_data is not read) and refuses a NULL ctx->buf, as upstream's does.
 */
#include "pnn_s8_internal.h"

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    (void)bias_dims;
#if defined(ARM_MATH_MVEI)
    if (ctx->buf == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t *kernel_sums = (const int32_t *)ctx->buf;
#else
    (void)ctx;
#endif
    const int32_t depth = filter_dims->n;
    const int32_t rows = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + (int64_t)b * depth;
        int8_t *dst = output_data + (int64_t)b * rows;
        for (int32_t r = 0; r < rows; r++)
        {
            const int8_t *w = filter_data + (int64_t)r * depth;
#if defined(ARM_MATH_MVEI)
            /* The sum holds bias and input_offset * (w + filter_offset); the rest is x * (w + filter_offset). */
            uint32_t acc = (uint32_t)kernel_sums[r];
            for (int32_t i = 0; i < depth; i++)
            {
                acc += (uint32_t)(x[i] * (w[i] + fc_params->filter_offset));
            }
            (void)bias_data;
#else
            uint32_t acc = bias_data ? (uint32_t)bias_data[r] : 0u;
            for (int32_t i = 0; i < depth; i++)
            {
                acc += (uint32_t)((x[i] + fc_params->input_offset) * (w[i] + fc_params->filter_offset));
            }
#endif
            dst[r] = pnn_finish(pnn_wrap(acc), quant_params->multiplier, quant_params->shift,
                                fc_params->output_offset, fc_params->activation.min, fc_params->activation.max);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
#if defined(ARM_MATH_MVEI)
    return filter_dims->c * (int32_t)sizeof(int32_t); /* one kernel sum per output row */
#else
    (void)filter_dims;
    return 0;
#endif
}

arm_cmsis_nn_status arm_vector_sum_s8(int32_t *vector_sum_buf,
                                      const int32_t vector_cols,
                                      const int32_t vector_rows,
                                      const int8_t *vector_data,
                                      const int32_t lhs_offset,
                                      const int32_t rhs_offset,
                                      const int32_t *bias_data)
{
    for (int32_t r = 0; r < vector_rows; r++)
    {
        uint32_t sum = 0;
        for (int32_t c = 0; c < vector_cols; c++)
        {
            const int32_t v = vector_data[(int64_t)r * vector_cols + c];
            sum += (uint32_t)v;
        }
        sum += (uint32_t)vector_cols * (uint32_t)rhs_offset;
        const uint32_t start = bias_data ? (uint32_t)bias_data[r] : 0u;
        /* Without an lhs offset the sums are not needed: only the bias is copied. */
        vector_sum_buf[r] = pnn_wrap(start + (lhs_offset ? sum * (uint32_t)lhs_offset : 0u));
    }
    return ARM_CMSIS_NN_SUCCESS;
}
