/*
 * cmsisgen portable CMSIS-NN subset: q7 HWC max and average pooling.
 *
 * Reproduces the upstream ARM_MATH_DSP (Cortex-M4/M7) algorithm, which is separable:
 *
 * 1. x pass, IN PLACE in Im_in: for every input row y and output column i, the window
 *    of that row is pooled and the result is stored in column i of the same row. With
 *    t = i*stride - padding the window runs from column t (or from column i itself when
 *    t < 0) up to min(t + dim_kernel, dim_im_in), and always includes its first column.
 *    Columns are processed in increasing i, so a window reaching left of i sees values
 *    already pooled (only possible when padding >= stride).
 * 2. y pass, into Im_out: for output row j the rows from max(t, 0) to
 *    min(t + dim_kernel, dim_im_in) of the first dim_im_out columns are pooled.
 *
 * Average pooling divides each pass by its own element count with C division
 * (truncation towards zero), so the result is a truncated average of truncated row
 * averages -- not the single division of the plain-C reference path. Max pooling copies
 * the first window column over the target column before comparing, as upstream does.
 *
 * Im_in is destroyed; Im_out must not overlap Im_in. bufferA is not used here (upstream's
 * average pooling uses it as dim_im_out*ch_im_in q15 accumulators; see README.md).
 * Sums of at most 256 q7 values fit q15, so dim_kernel <= 256 keeps the upstream
 * saturating q15 adds exact.
 */
#include <string.h>

#include "arm_nn_portable_internal.h"

/* Window [*start, *stop) for output index i, as the upstream DSP pass computes it. */
static void pnn_pool_window(int32_t i, uint16_t dim_im_in, uint16_t dim_kernel, uint16_t padding,
                            uint16_t stride, int first_pass, int32_t *start, int32_t *stop)
{
    const int32_t t = i * (int32_t)stride - (int32_t)padding;
    if (t < 0)
    {
        *start = first_pass ? i : 0;
    }
    else
    {
        *start = t;
    }
    if (t + (int32_t)dim_kernel >= (int32_t)dim_im_in)
    {
        *stop = dim_im_in;
    }
    else
    {
        *stop = t + (int32_t)dim_kernel;
    }
    if (*stop < *start + 1)
    {
        *stop = *start + 1; /* the first element is always taken */
    }
}

/* C division of a non-zero count, truncating towards zero. */
static q7_t pnn_avg(int32_t sum, int32_t count)
{
    return (q7_t)(sum / count);
}

void arm_maxpool_q7_HWC(q7_t *Im_in,
                        const uint16_t dim_im_in,
                        const uint16_t ch_im_in,
                        const uint16_t dim_kernel,
                        const uint16_t padding,
                        const uint16_t stride,
                        const uint16_t dim_im_out,
                        q7_t *bufferA,
                        q7_t *Im_out)
{
    const size_t row_len = (size_t)dim_im_in * ch_im_in;
    const size_t out_row_len = (size_t)dim_im_out * ch_im_in;
    int32_t y, i, j, start, stop;
    size_t c;

    (void)bufferA;

    /* x pass, in place */
    for (y = 0; y < (int32_t)dim_im_in; y++)
    {
        q7_t *row = Im_in + (size_t)y * row_len;
        for (i = 0; i < (int32_t)dim_im_out; i++)
        {
            q7_t *target = row + (size_t)i * ch_im_in;
            pnn_pool_window(i, dim_im_in, dim_kernel, padding, stride, 1, &start, &stop);
            memmove(target, row + (size_t)start * ch_im_in, ch_im_in);
            for (j = start + 1; j < stop; j++)
            {
                const q7_t *col = row + (size_t)j * ch_im_in;
                for (c = 0; c < ch_im_in; c++)
                {
                    if (col[c] > target[c])
                    {
                        target[c] = col[c];
                    }
                }
            }
        }
    }

    /* y pass, into Im_out */
    for (i = 0; i < (int32_t)dim_im_out; i++)
    {
        q7_t *target = Im_out + (size_t)i * out_row_len;
        pnn_pool_window(i, dim_im_in, dim_kernel, padding, stride, 0, &start, &stop);
        memmove(target, Im_in + (size_t)start * row_len, out_row_len);
        for (j = start + 1; j < stop; j++)
        {
            const q7_t *src = Im_in + (size_t)j * row_len;
            for (c = 0; c < out_row_len; c++)
            {
                if (src[c] > target[c])
                {
                    target[c] = src[c];
                }
            }
        }
    }
}

void arm_avepool_q7_HWC(q7_t *Im_in,
                        const uint16_t dim_im_in,
                        const uint16_t ch_im_in,
                        const uint16_t dim_kernel,
                        const uint16_t padding,
                        const uint16_t stride,
                        const uint16_t dim_im_out,
                        q7_t *bufferA,
                        q7_t *Im_out)
{
    const size_t row_len = (size_t)dim_im_in * ch_im_in;
    const size_t out_row_len = (size_t)dim_im_out * ch_im_in;
    int32_t y, i, j, start, stop;
    size_t c;

    (void)bufferA;

    /* x pass, in place: every channel's window is summed before its target is written */
    for (y = 0; y < (int32_t)dim_im_in; y++)
    {
        q7_t *row = Im_in + (size_t)y * row_len;
        for (i = 0; i < (int32_t)dim_im_out; i++)
        {
            q7_t *target = row + (size_t)i * ch_im_in;
            pnn_pool_window(i, dim_im_in, dim_kernel, padding, stride, 1, &start, &stop);
            for (c = 0; c < ch_im_in; c++)
            {
                int32_t sum = 0;
                for (j = start; j < stop; j++)
                {
                    sum += row[(size_t)j * ch_im_in + c];
                }
                target[c] = pnn_avg(sum, stop - start);
            }
        }
    }

    /* y pass over the first dim_im_out columns of each row, into Im_out */
    for (i = 0; i < (int32_t)dim_im_out; i++)
    {
        q7_t *target = Im_out + (size_t)i * out_row_len;
        pnn_pool_window(i, dim_im_in, dim_kernel, padding, stride, 0, &start, &stop);
        for (c = 0; c < out_row_len; c++)
        {
            int32_t sum = 0;
            for (j = start; j < stop; j++)
            {
                sum += Im_in[(size_t)j * row_len + c];
            }
            target[c] = pnn_avg(sum, stop - start);
        }
    }
}
