/*
 * Depthwise convolution: arm_depthwise_conv_wrapper_s8 and its buffer size.
 *
 * Output channel o = i * ch_mult + m is input channel i convolved with filter column o. The
 * upstream DSP specialisations (3x3, the im2col "opt" kernel, the generic loop) all compute
 * bias + sum((x + input_offset) * w) in wrapping 32-bit arithmetic over the taps inside the
 * image, so one loop serves them; the dispatch decides only the checks and the scratch size.
 * The 3x3 kernel always reads the middle column of each window: callers must keep
 * (out_w - 1) * stride_w - pad_w + 1 < in_w (true whenever the output size follows from the
 * padding), as upstream needs.
 *
 * The MVE build (ARM_MATH_MVEI) has no 3x3 kernel: its im2col kernel takes every
 * ch_mult == 1, batch 1, undilated layer and always needs the buffer (four windows of
 * 124-channel int8 blocks); and a layer with one input channel and more than one output
 * channel runs as a regular convolution (the filter transposed into the buffer, after that
 * convolution's own scratch), with that convolution's checks.
 */
#include "pnn_s8_internal.h"

static int32_t dw_acc(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *in, const int8_t *image,
                      const cmsis_nn_dims *f, const int8_t *filter, int32_t oy, int32_t ox, int32_t o)
{
    const int32_t ch = o / p->ch_mult;
    uint32_t acc = 0;
    for (int32_t ky = 0; ky < f->h; ky++)
    {
        const int32_t iy = pnn_tap(oy, ky, &p->stride, &p->padding, &p->dilation, in->h, 1);
        for (int32_t kx = 0; kx < f->w && iy >= 0; kx++)
        {
            const int32_t ix = pnn_tap(ox, kx, &p->stride, &p->padding, &p->dilation, in->w, 0);
            if (ix < 0)
            {
                continue;
            }
            const int32_t x = image[((int64_t)iy * in->w + ix) * in->c + ch];
            const int32_t w = filter[((int64_t)ky * f->w + kx) * f->c + o];
            acc += (uint32_t)((x + p->input_offset) * w);
        }
    }
    return pnn_wrap(acc);
}

static void dw_direct(const cmsis_nn_dw_conv_params *p, const cmsis_nn_per_channel_quant_params *q,
                      const cmsis_nn_dims *in, const int8_t *input, const cmsis_nn_dims *f, const int8_t *filter,
                      const int32_t *bias, const cmsis_nn_dims *out, int8_t *output)
{
    for (int32_t b = 0; b < in->n; b++)
    {
        const int8_t *image = input + (int64_t)b * in->h * in->w * in->c;
        for (int32_t oy = 0; oy < out->h; oy++)
        {
            for (int32_t ox = 0; ox < out->w; ox++)
            {
                for (int32_t o = 0; o < out->c; o++)
                {
                    const int32_t acc = pnn_add(dw_acc(p, in, image, f, filter, oy, ox, o), bias ? bias[o] : 0);
                    *output++ = pnn_finish(acc, q->multiplier[o], q->shift[o], p->output_offset, p->activation.min,
                                           p->activation.max);
                }
            }
        }
    }
}

/* Upstream's 3x3 kernel (DSP/plain-C builds only) handles padding of at most one. */
static int is_3x3(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *f)
{
#if defined(ARM_MATH_MVEI)
    (void)p;
    (void)f;
    return 0; /* the MVE build has none */
#else
    return f->w == 3 && f->h == 3 && p->padding.h <= 1 && p->padding.w <= 1;
#endif
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
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
    const cmsis_nn_dw_conv_params *p = dw_conv_params;
#if defined(ARM_MATH_MVEI)
    if (input_dims->c == 1 && output_dims->c > 1)
    {
        const cmsis_nn_conv_params conv = {p->input_offset, p->output_offset, p->stride, p->padding, p->dilation,
                                           p->activation};
        const cmsis_nn_dims conv_filter = {filter_dims->c, filter_dims->h, filter_dims->w, filter_dims->n};
        const arm_cmsis_nn_status status = pnn_conv_wrapper_status(ctx, &conv, input_dims, &conv_filter, output_dims);
        if (status != ARM_CMSIS_NN_SUCCESS)
        {
            return status;
        }
    }
    else
#endif
    if (p->ch_mult == 1 && input_dims->n == 1 && p->dilation.w == 1 && p->dilation.h == 1)
    {
        /* The 3x3 and the im2col kernels need equal channel counts; only the latter scratch. */
        if (input_dims->c != output_dims->c)
        {
            return ARM_CMSIS_NN_ARG_ERROR;
        }
        if (!is_3x3(p, filter_dims) && ctx->buf == NULL && input_dims->c * filter_dims->w * filter_dims->h > 0)
        {
            return ARM_CMSIS_NN_ARG_ERROR;
        }
    }
    dw_direct(p, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
              output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
    /* Upstream tests channel equality here (not ch_mult == 1, as the kernel dispatch does). */
    const int opt = input_dims->c == output_dims->c && input_dims->n == 1 && dw_conv_params->dilation.w == 1 &&
                    dw_conv_params->dilation.h == 1;
#if defined(ARM_MATH_MVEI)
    if (input_dims->c == 1 && output_dims->c > 1)
    {
        const cmsis_nn_conv_params conv = {dw_conv_params->input_offset, dw_conv_params->output_offset,
                                           dw_conv_params->stride, dw_conv_params->padding, dw_conv_params->dilation,
                                           dw_conv_params->activation};
        const cmsis_nn_dims conv_filter = {filter_dims->c, filter_dims->h, filter_dims->w, filter_dims->n};
        return arm_convolve_wrapper_s8_get_buffer_size(&conv, input_dims, &conv_filter, output_dims) +
               filter_dims->n * filter_dims->h * filter_dims->w * filter_dims->c;
    }
    /* Four im2col windows of 124-channel int8 blocks. */
    return opt ? 4 * 124 * filter_dims->w * filter_dims->h : 0;
#else
    if (!opt || is_3x3(dw_conv_params, filter_dims))
    {
        return 0;
    }
    /* One im2col window of int16 for all channels. */
    return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
#endif
}
