/*
 * cmsisgen kernels: max or average pooling of an HWC image with Caffe's geometry (any height
 * and width; kernel, stride and padding per axis; ceil-mode sizes with the clipped last
 * window), for what CMSIS-NN's q7 pooling cannot run or runs differently. See nn_kernels.h.
 * The average rounds half away from zero rather than NN_ROUND's half up, so that averaging a
 * negated input gives the negated average: signed activations get no upward bias at ties.
 * The average may write a finer Q format than its input (shift more fractional bits: the sum
 * times 2^shift is divided), since the average of a window is usually much smaller than its
 * input's largest values.
 * Bit-exact model: pool_q7 in cmsisgen/ops/pooling_nn.py.
 */
#include "nn_kernels.h"

/* Channels the average sums at a time, in int32 accumulators on the stack (no scratch):
 * the inner loops then read each window pixel's channels in order. */
#define NN_POOL_BLOCK 16u

/* One axis of Caffe's window for output index i: [*first, *last) clipped to the image and
 * the size clipped to the padded image only (the average's divisor). */
static void nn_pool_window(uint32_t i, uint32_t in_size, uint32_t kernel, uint32_t stride, uint32_t pad,
                           uint32_t *first, uint32_t *last, int32_t *size)
{
    const int32_t start = (int32_t)(i * stride) - (int32_t)pad;
    const int32_t padded_end = (int32_t)(in_size + pad);
    const int32_t end = start + (int32_t)kernel < padded_end ? start + (int32_t)kernel : padded_end;

    *size = end - start;
    *first = start < 0 ? 0u : (uint32_t)start;
    *last = end > (int32_t)in_size ? in_size : (uint32_t)end;
}

/* The maximum of each channel over the window rows [top, bottom) and columns [left, right). */
static void nn_pool_max(const q7_t *in, uint32_t in_w, uint32_t channels, uint32_t top, uint32_t bottom,
                        uint32_t left, uint32_t right, q7_t *out)
{
    const q7_t *first = in + (top * in_w + left) * channels;
    uint32_t y;
    uint32_t x;
    uint32_t ch;

    for (ch = 0; ch < channels; ch++) {
        out[ch] = first[ch];
    }
    for (y = top; y < bottom; y++) {
        for (x = left; x < right; x++) {
            const q7_t *pixel = in + (y * in_w + x) * channels;
            for (ch = 0; ch < channels; ch++) {
                if (pixel[ch] > out[ch]) {
                    out[ch] = pixel[ch];
                }
            }
        }
    }
}

/* The sum of each channel over the window times 2^shift, divided by count rounded half away
 * from zero, saturated to q7. |sum| <= 128 * count (every cell in the image is within the
 * padded window), so the caller keeps 128 * count * 2^shift within int32; with shift 0 the
 * quotient is within [-128, 127]. The scaling multiplies: a left shift of a negative sum
 * would be undefined in C. */
static void nn_pool_average(const q7_t *in, uint32_t in_w, uint32_t channels, uint32_t top, uint32_t bottom,
                            uint32_t left, uint32_t right, int32_t count, uint32_t shift, q7_t *out)
{
    const int32_t half = count / 2;
    const int32_t scale = (int32_t)1 << shift;
    int32_t acc[NN_POOL_BLOCK];
    uint32_t base;
    uint32_t y;
    uint32_t x;
    uint32_t i;

    for (base = 0; base < channels; base += NN_POOL_BLOCK) {
        const uint32_t block = channels - base < NN_POOL_BLOCK ? channels - base : NN_POOL_BLOCK;
        for (i = 0; i < block; i++) {
            acc[i] = 0;
        }
        for (y = top; y < bottom; y++) {
            for (x = left; x < right; x++) {
                const q7_t *pixel = in + (y * in_w + x) * channels + base;
                for (i = 0; i < block; i++) {
                    acc[i] += pixel[i];
                }
            }
        }
        for (i = 0; i < block; i++) {
            const int32_t total = acc[i] * scale;
            const int32_t quotient = (total >= 0 ? total + half : total - half) / count;
            out[base + i] = (q7_t)(quotient > 127 ? 127 : (quotient < -128 ? -128 : quotient));
        }
    }
}

void nn_pool_q7(const q7_t *in, uint32_t in_h, uint32_t in_w, uint32_t channels, uint32_t kernel_h,
                uint32_t kernel_w, uint32_t stride_h, uint32_t stride_w, uint32_t pad_h, uint32_t pad_w,
                uint32_t out_h, uint32_t out_w, uint32_t average, uint32_t shift, q7_t *out)
{
    uint32_t oy;
    uint32_t ox;

    for (oy = 0; oy < out_h; oy++) {
        uint32_t top;
        uint32_t bottom;
        int32_t rows;
        nn_pool_window(oy, in_h, kernel_h, stride_h, pad_h, &top, &bottom, &rows);
        for (ox = 0; ox < out_w; ox++) {
            q7_t *target = out + (oy * out_w + ox) * channels;
            uint32_t left;
            uint32_t right;
            int32_t columns;
            nn_pool_window(ox, in_w, kernel_w, stride_w, pad_w, &left, &right, &columns);
            if (average) {
                nn_pool_average(in, in_w, channels, top, bottom, left, right, rows * columns, shift, target);
            } else {
                nn_pool_max(in, in_w, channels, top, bottom, left, right, target);
            }
        }
    }
}
