/*
 * Pooling: arm_max_pool_s8, arm_avgpool_s8 and the average pool's buffer size.
 *
 * Windows are clipped to the image (padding is never counted). Average: the window sum
 * divided by the number of pixels inside the image, rounding half away from zero
 * ((sum +/- count/2) / count in C's truncating division), then clamped; a window wholly
 * outside the image returns ARM_CMSIS_NN_ARG_ERROR with the earlier pixels written. Max: a
 * window wholly outside the image leaves that output as it was (then clamped), as upstream does. The DSP
 * build sums in a caller-provided int32 buffer of one pixel's channels, so it refuses a NULL
 * ctx->buf; these kernels make the same check and need no buffer themselves.
 */
#include "pnn_s8_internal.h"

/* One window's [start, end) along an axis, clipped to the image. */
static void window(int32_t i, int32_t stride, int32_t pad, int32_t kernel, int32_t size, int32_t *start,
                   int32_t *end)
{
    const int32_t base = i * stride - pad;
    *start = PNN_MAX(0, base);
    *end = PNN_MIN(base + kernel, size);
}

static int32_t clamp(int32_t v, const cmsis_nn_activation *act)
{
    return PNN_MIN(PNN_MAX(v, act->min), act->max);
}

static int pool_pixel(int is_max, const cmsis_nn_pool_params *p, const cmsis_nn_dims *in, const int8_t *image,
                      const cmsis_nn_dims *f, int32_t oy, int32_t ox, int8_t *dst)
{
    int32_t y0, y1, x0, x1;
    window(oy, p->stride.h, p->padding.h, f->h, in->h, &y0, &y1);
    window(ox, p->stride.w, p->padding.w, f->w, in->w, &x0, &x1);
    const int32_t count = PNN_MAX(0, y1 - y0) * PNN_MAX(0, x1 - x0);
    if (count == 0)
    {
        if (!is_max)
        {
            return -1;
        }
        for (int32_t c = 0; c < in->c; c++)
        {
            dst[c] = (int8_t)clamp(dst[c], &p->activation); /* untouched, but clamped with the rest */
        }
        return 0;
    }
    for (int32_t c = 0; c < in->c; c++)
    {
        int32_t acc = is_max ? INT8_MIN : 0;
        for (int32_t y = y0; y < y1; y++)
        {
            for (int32_t x = x0; x < x1; x++)
            {
                const int32_t v = image[((int64_t)y * in->w + x) * in->c + c];
                acc = is_max ? PNN_MAX(acc, v) : acc + v;
            }
        }
        if (!is_max)
        {
            acc = (acc > 0 ? acc + count / 2 : acc - count / 2) / count;
        }
        dst[c] = (int8_t)clamp(acc, &p->activation);
    }
    return 0;
}

static arm_cmsis_nn_status pool(int is_max, const cmsis_nn_pool_params *p, const cmsis_nn_dims *in,
                                const int8_t *input, const cmsis_nn_dims *f, const cmsis_nn_dims *out,
                                int8_t *output)
{
    for (int32_t b = 0; b < in->n; b++)
    {
        const int8_t *image = input + (int64_t)b * in->h * in->w * in->c;
        int8_t *dst = output + (int64_t)b * out->h * out->w * in->c;
        for (int32_t oy = 0; oy < out->h; oy++)
        {
            for (int32_t ox = 0; ox < out->w; ox++)
            {
                int8_t *pixel = dst + ((int64_t)oy * out->w + ox) * in->c;
                if (pool_pixel(is_max, p, in, image, f, oy, ox, pixel) != 0)
                {
                    return ARM_CMSIS_NN_ARG_ERROR;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)ctx;
    if (input_dims->n < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return pool(1, pool_params, input_dims, input_data, filter_dims, output_dims, output_data);
}

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
{
    if (input_dims->n < 1 ||
        (ctx->buf == NULL && arm_avgpool_s8_get_buffer_size(output_dims->w, input_dims->c) != 0))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return pool(0, pool_params, input_dims, input_data, filter_dims, output_dims, output_data);
}

int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
#if defined(ARM_MATH_MVEI)
    (void)ch_src;
    return 0; /* the MVE build sums in vector registers */
#else
    return ch_src * (int32_t)sizeof(int32_t);
#endif
}
