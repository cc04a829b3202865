/*
 * cmsisgen kernels, s8 backend: Caffe's average pooling where arm_avgpool_s8 cannot run it.
 * Either a window reaches into the padding (Caffe divides by the window clipped to the padded
 * image, the library by the pixels inside the image), or the output has its own, finer scale:
 * the library's pooling keeps its input's scale and zero point, so the average of a wide
 * tensor (a global pool of large activations) would keep the input's coarse step.
 * Model: cmsisgen/s8/own_kernels.py. Per window: the sum of (pixel + input_offset) over the
 * pixels inside the image, times 2^shift (the output scale is the input's / 2^shift), divided
 * by Caffe's count rounding half away from zero (+-count/2, then C's truncating division),
 * plus output_offset, clamped to the activation range. With offsets and shift 0 this is
 * arm_avgpool_s8's arithmetic. The caller keeps 255 * kernel_h * kernel_w * 2^shift below 2^31.
 */
#include <stdint.h>

void nn_avgpool_caffe_s8(const int8_t *in, const uint16_t *dims, const int32_t *quant, int8_t *out);

static int32_t nn_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static int32_t nn_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

/* dims: in_h, in_w, channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
 * quant: input_offset, output_offset, shift, act_min, act_max */
void nn_avgpool_caffe_s8(const int8_t *in, const uint16_t *dims, const int32_t *quant, int8_t *out)
{
    const int32_t h = dims[0], w = dims[1], c = dims[2], kh = dims[3], kw = dims[4];
    const int32_t sh = dims[5], sw = dims[6], ph = dims[7], pw = dims[8], oh = dims[9], ow = dims[10];
    const int32_t in_offset = quant[0], out_offset = quant[1], scale = (int32_t)1 << quant[2];
    int32_t oy, ox, ch, y, x;

    for (oy = 0; oy < oh; oy++) {
        const int32_t y0 = oy * sh - ph, y1 = nn_min_i32(y0 + kh, h + ph);
        for (ox = 0; ox < ow; ox++) {
            const int32_t x0 = ox * sw - pw, x1 = nn_min_i32(x0 + kw, w + pw);
            const int32_t count = (y1 - y0) * (x1 - x0);
            for (ch = 0; ch < c; ch++) {
                int32_t sum = 0;
                for (y = nn_max_i32(y0, 0); y < nn_min_i32(y1, h); y++) {
                    for (x = nn_max_i32(x0, 0); x < nn_min_i32(x1, w); x++) {
                        sum += in[(y * w + x) * c + ch] + in_offset;
                    }
                }
                sum *= scale;
                sum = (sum > 0 ? sum + count / 2 : sum - count / 2) / count + out_offset;
                out[(oy * ow + ox) * c + ch] = (int8_t)nn_min_i32(nn_max_i32(sum, quant[3]), quant[4]);
            }
        }
    }
}
