/*
 * Convolution: arm_convolve_wrapper_s8, arm_convolve_s8 and their buffer sizes.
 *
 * Every upstream specialisation the wrapper picks (1x1 fast, 1x1 strided, 1xN, im2col)
 * computes the same integers: bias + sum((x + input_offset) * w) in wrapping 32-bit
 * arithmetic (padding contributes nothing), requantized per output channel. So one direct
 * loop serves them all; the dispatch is kept only for what differs between them: which
 * argument checks run and how much scratch memory is asked for.
 *
 * Built for a core with Helium (ARM_MATH_MVEI, e.g. -mcpu=cortex-m55) the checks and sizes
 * are those of upstream's MVE build: int8 im2col buffers (4 columns, 16-byte lanes), and a
 * 1xN convolution that fails (ARM_CMSIS_NN_FAILURE) unless its padding is TFLite's SAME
 * split (pad_w on the left, pad_w + total % 2 on the right).
 */
#include "pnn_s8_internal.h"

static int32_t conv_acc(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const int8_t *image,
                        const cmsis_nn_dims *f, const int8_t *filter, int32_t oy, int32_t ox, int32_t first_ch)
{
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
            const int8_t *x = image + ((int64_t)iy * in->w + ix) * in->c + first_ch;
            const int8_t *w = filter + ((int64_t)ky * f->w + kx) * f->c;
            for (int32_t c = 0; c < f->c; c++)
            {
                acc += (uint32_t)((x[c] + p->input_offset) * w[c]);
            }
        }
    }
    return pnn_wrap(acc);
}

static void conv_direct(const cmsis_nn_conv_params *p, const cmsis_nn_per_channel_quant_params *q,
                        const cmsis_nn_dims *in, const int8_t *input, const cmsis_nn_dims *f, const int8_t *filter,
                        const int32_t *bias, const cmsis_nn_dims *out, int8_t *output)
{
    const int32_t groups = in->c / f->c;
    const int32_t per_group = out->c / groups;
    const int64_t filter_size = (int64_t)f->h * f->w * f->c;
    for (int32_t b = 0; b < in->n; b++)
    {
        const int8_t *image = input + (int64_t)b * in->h * in->w * in->c;
        int8_t *dst = output + (int64_t)b * out->h * out->w * out->c;
        for (int32_t oy = 0; oy < out->h; oy++)
        {
            for (int32_t ox = 0; ox < out->w; ox++)
            {
                for (int32_t o = 0; o < out->c; o++)
                {
                    const int32_t acc = conv_acc(p, in, image, f, filter + o * filter_size, oy, ox,
                                                 (o / per_group) * f->c);
                    *dst++ = pnn_finish(pnn_add(acc, bias ? bias[o] : 0), q->multiplier[o], q->shift[o],
                                        p->output_offset, p->activation.min, p->activation.max);
                }
            }
        }
    }
}

/* The wrapper's first choice: a pointwise convolution (arm_convolve_1x1_s8[_fast]). */
static int is_1x1(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const cmsis_nn_dims *f)
{
    return p->padding.w == 0 && p->padding.h == 0 && f->w == 1 && f->h == 1 && p->dilation.w == 1 &&
           p->dilation.h == 1 && in->c == f->c;
}

/* The second: one row (arm_convolve_1_x_n_s8). */
static int is_1xn(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const cmsis_nn_dims *f)
{
    return in->h == 1 && p->dilation.w == 1 && f->h == 1 && (p->stride.w * in->c) % 4 == 0 && in->c == f->c;
}

#if defined(ARM_MATH_MVEI)
/* The MVE arm_convolve_1_x_n_s8's padding: total_pad (C's % and /, as upstream computes it). */
static int32_t total_pad_1xn(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const cmsis_nn_dims *f,
                             const cmsis_nn_dims *out)
{
    return (out->w - 1) * p->stride.w + f->w - in->w;
}

static int32_t size_1xn_mve(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const cmsis_nn_dims *f,
                            const cmsis_nn_dims *out)
{
    const int32_t asym = total_pad_1xn(p, in, f, out) % 2;
    const int32_t stride = p->stride.w;
    const int32_t right = p->padding.w + asym != 0 ? PNN_MAX(1, (p->padding.w + asym + stride - 1) / stride) : 0;
    const int32_t left = p->padding.w != 0 ? PNN_MAX(1, (p->padding.w + stride - 1) / stride) : 0;
    if (right + PNN_MAX(out->w - (right + left), 0) + left != out->w)
    {
        return arm_convolve_s8_get_buffer_size(in, f);
    }
    const int32_t pad_left = p->padding.w * in->c;
    const int32_t pad_right = asym ? right * in->c : pad_left;
    const int32_t elems = f->w * in->c;
    return PNN_MAX(elems + pad_left, elems - in->c + pad_right);
}
#endif

arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_conv_params *conv_params,
                                    const cmsis_nn_per_channel_quant_params *quant_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const int8_t *filter_data,
                                    const cmsis_nn_dims *bias_dims,
                                    const int32_t *bias_data,
                                    const cmsis_nn_dims *upscale_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)bias_dims;
    if (ctx->buf == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t groups = input_dims->c / filter_dims->c;
    if (input_dims->c % groups != 0 || output_dims->c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    if (upscale_dims != NULL && (upscale_dims->h == 2 || upscale_dims->w == 2))
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR; /* transposed-convolution helper: not provided here */
    }
    conv_direct(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status pnn_conv_wrapper_status(const cmsis_nn_context *ctx, const cmsis_nn_conv_params *p,
                                            const cmsis_nn_dims *in, const cmsis_nn_dims *f, const cmsis_nn_dims *out)
{
    if (is_1x1(p, in, f))
    {
        return ARM_CMSIS_NN_SUCCESS; /* neither pointwise kernel needs scratch (with GCC) nor checks more */
    }
    if (is_1xn(p, in, f) && (ctx->buf == NULL || p->stride.w == 0))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if defined(ARM_MATH_MVEI)
    if (is_1xn(p, in, f))
    {
        const int32_t total = total_pad_1xn(p, in, f, out);
        if (p->padding.w * 2 + total % 2 != total)
        {
            return ARM_CMSIS_NN_FAILURE;
        }
    }
#else
    (void)out;
#endif
    const int32_t groups = in->c / f->c;
    if (ctx->buf == NULL || in->c % groups != 0 || out->c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR; /* arm_convolve_s8's checks */
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
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
    const arm_cmsis_nn_status status = pnn_conv_wrapper_status(ctx, conv_params, input_dims, filter_dims, output_dims);
    if (status == ARM_CMSIS_NN_SUCCESS)
    {
        conv_direct(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                    output_dims, output_data);
    }
    return status;
}

int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    const int32_t cols = filter_dims->w * filter_dims->h * input_dims->c;
#if defined(ARM_MATH_MVEI)
    /* Four im2col columns of int8, each rounded up to whole 16-byte vectors. */
    return 4 * ((cols + 15) / 16) * 16;
#else
    /* Two im2col columns of int16, each rounded up to a multiple of four entries. */
    const int32_t aligned = (cols + 3) / 4 * 4;
    return 2 * aligned * (int32_t)sizeof(int16_t);
#endif
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    /* The size functions test the shapes without the input c == filter c term. */
    const int pointwise = conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 &&
                          filter_dims->h == 1 && conv_params->dilation.w == 1 && conv_params->dilation.h == 1;
    if (pointwise)
    {
        return 0;
    }
#if defined(ARM_MATH_MVEI)
    if (input_dims->h == 1 && conv_params->dilation.w == 1 && filter_dims->h == 1 &&
        conv_params->stride.w * input_dims->c % 4 == 0)
    {
        return size_1xn_mve(conv_params, input_dims, filter_dims, output_dims);
    }
#else
    (void)output_dims;
#endif
    return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
}
