/*
 * cmsisgen's own q7 kernels: the layers CMSIS-NN's q7 API has no function for.
 *
 * `cmsisgen compile` copies this header and the .c files a network calls into OUT next
 * to nn.c (build every .c in OUT). Activations are q7 HWC, as for CMSIS-NN. Shared
 * arithmetic: an int32 (LRN: int64) accumulator, NN_ROUND(s) = (1 << s) >> 1 added before
 * an arithmetic right shift by s (round half up), then saturation to [-128, 127].
 * Each function's bit-exact numpy model is in its op module (cmsisgen/ops/concat.py,
 * eltwise.py, lrn.py, pooling_nn.py, prelu.py, scale.py, own_conv.py).
 * Plain C99, no intrinsics; the right shift of a negative int is arithmetic on every
 * compiler this code targets, as CMSIS-NN itself assumes.
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <stdint.h>
/* q7_t: cmsisgen's portable kernels, CMSIS_5 5.9.0 and CMSIS-NN 3.x all name this header. */
#include "arm_nn_math_types.h"
/* CMSIS-NN v4 and later (the s8 API, include guard ARM_NN_MATH_TYPES_H) have no q7_t; the
 * s8 backend calls some q7 kernels here (nn_lrn_q7.c) on int8_t data. */
#if defined(ARM_NN_MATH_TYPES_H) && !defined(_ARM_MATH_TYPES_H_) && !defined(NN_Q7_T_DEFINED)
#define NN_Q7_T_DEFINED
typedef int8_t q7_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* nn_concat_q7.c */

/* Copies an HWC input of in_ch channels into channels [ch_offset, ch_offset + in_ch) of an
 * HWC output of out_ch channels (Concat, and the scatter after each group of a grouped
 * convolution). Exact byte copies. */
void nn_concat_channels_q7(const q7_t *in, uint32_t in_ch, q7_t *out, uint32_t out_ch, uint32_t ch_offset,
                           uint32_t pixels);

/* Copies channels [ch_offset, ch_offset + out_ch) of an HWC input of in_ch channels into a
 * dense HWC output (the gather before each group of a grouped convolution). Exact byte copies. */
void nn_gather_channels_q7(const q7_t *in, uint32_t in_ch, uint32_t ch_offset, q7_t *out, uint32_t out_ch,
                           uint32_t pixels);

/* nn_lrn_q7.c: Caffe LRN with a multiplier table made at compile time (cmsisgen/ops/lrn.py). */

/* One LRN output: x * table[index] in 64 bits, rounded half up by out_shift (<= 62) and
 * saturated, where index is the sum of squares `sum` written as a float with
 * mantissa_bits of mantissa (exact below 2^mantissa_bits), capped at table_size - 1. */
q7_t nn_lrn_scale_q7(q7_t x, uint32_t sum, const int32_t *table, uint32_t table_size, uint32_t mantissa_bits,
                     uint32_t out_shift);

/* ACROSS_CHANNELS: the sum of squares over local_size (odd) channels centred on each
 * channel (clipped at the ends), then nn_lrn_scale_q7. */
void nn_lrn_across_q7(const q7_t *in, q7_t *out, uint32_t pixels, uint32_t channels, uint32_t local_size,
                      const int32_t *table, uint32_t table_size, uint32_t mantissa_bits, uint32_t out_shift);

/* WITHIN_CHANNEL: the sum of squares over a local_size (odd) square centred on each pixel
 * in its channel (clipped at the borders), then nn_lrn_scale_q7. in and out must not overlap. */
void nn_lrn_within_q7(const q7_t *in, q7_t *out, uint32_t height, uint32_t width, uint32_t channels,
                      uint32_t local_size, const int32_t *table, uint32_t table_size, uint32_t mantissa_bits,
                      uint32_t out_shift);

/* nn_eltwise_q7.c: Eltwise of equally shaped tensors; out may be one of the inputs. */

/* SUM: out = sat8((sum_k coeff[k] * (in[k] << lshift[k]) + NN_ROUND(out_rshift)) >> out_rshift).
 * The caller keeps the int32 sum and the shifts (< 31) in range (the quantizer does). */
void nn_eltwise_sum_q7(const q7_t *const *in, const int32_t *coeff, const uint8_t *lshift, uint32_t inputs,
                       uint32_t out_rshift, q7_t *out, uint32_t size);

/* MAX: out = sat8((max_k (in[k] << lshift[k]) + NN_ROUND(out_rshift)) >> out_rshift); inputs >= 1. */
void nn_eltwise_max_q7(const q7_t *const *in, const uint8_t *lshift, uint32_t inputs, uint32_t out_rshift,
                       q7_t *out, uint32_t size);

/* PROD of two inputs: out = sat8((a * b + NN_ROUND(out_rshift)) >> out_rshift), out_rshift < 31. */
void nn_eltwise_prod_q7(const q7_t *a, const q7_t *b, uint32_t out_rshift, q7_t *out, uint32_t size);

/* nn_prelu_q7.c */

/* PReLU / leaky ReLU: x >= 0 unchanged, else sat8((x * slope[ch] + NN_ROUND(slope_shift)) >> slope_shift)
 * (slope in Q(7-slope_shift).slope_shift, slope_shift < 31). Works in place. */
void nn_prelu_q7(const q7_t *in, const q7_t *slope, uint32_t channels, uint32_t pixels, uint32_t slope_shift,
                 q7_t *out);

/* nn_scale_q7.c */

/* Per-channel affine map (a Scale/BatchNorm not folded into a convolution), the arithmetic of a
 * 1x1 depthwise convolution: out = sat8(((bias[ch] << bias_lshift) + NN_ROUND(out_rshift)
 * + x * mult[ch]) >> out_rshift), shifts < 31 and the sum inside int32. Works in place. */
void nn_scale_q7(const q7_t *in, const q7_t *mult, const q7_t *bias, uint32_t channels, uint32_t pixels,
                 uint32_t bias_lshift, uint32_t out_rshift, q7_t *out);

/* nn_lookup_q7.c */

/* Any function of one q7 input: out[i] = table[(uint8_t)in[i]], the 256 entries made at compile time
 * (cmsisgen/ops/lookup_activation.py). Works in place. */
void nn_lookup_q7(const q7_t *in, const q7_t *table, uint32_t size, q7_t *out);

/* nn_argmax_q7.c */

/* ArgMax of an HWC input as the network output, the index (< 128) as a q7 value; ties go to the
 * highest index, as in Caffe. whole == 0: per pixel over the channels, out[pixel]; else one index
 * over the whole blob in Caffe's C, H, W order (channel * pixels + pixel), out[0]. */
void nn_argmax_q7(const q7_t *in, uint32_t channels, uint32_t pixels, uint32_t whole, q7_t *out);

/* nn_conv_q7.c: convolutions no CMSIS-NN q7 function runs, and Caffe's Deconvolution. */

/* The geometry of one call: HWC input and output, kernel, stride, padding and dilation per
 * axis, groups (dividing in_ch and out_ch), and the two shifts (< 31, as for CMSIS-NN). */
typedef struct {
    uint32_t in_h, in_w, in_ch;
    uint32_t out_h, out_w, out_ch;
    uint32_t kernel_h, kernel_w;
    uint32_t stride_h, stride_w;
    uint32_t pad_h, pad_w;
    uint32_t dilation_h, dilation_w;
    uint32_t groups;
    uint32_t bias_lshift, out_rshift;
} nn_conv_shape_q7;

/* Convolution with CMSIS-NN's q7 arithmetic: output (oy, ox, o) =
 * sat8(((bias[o] << bias_lshift) + NN_ROUND(out_rshift) + sum x * w) >> out_rshift), summed over
 * the taps inside the image at row oy * stride_h - pad_h + ky * dilation_h (columns alike) and the
 * input channels of o's group; the sum wraps modulo 2^32 as CMSIS-NN's does. wt is
 * [out_ch][kernel_h][kernel_w][in_ch / groups]. in and out must not overlap. */
void nn_conv_q7(const q7_t *in, const nn_conv_shape_q7 *shape, const q7_t *wt, const q7_t *bias, q7_t *out);

/* Transposed convolution (Caffe Deconvolution), same arithmetic and weight layout: input pixel
 * (iy, ix) contributes to output row iy * stride_h - pad_h + ky * dilation_h (columns alike). */
void nn_deconv_q7(const q7_t *in, const nn_conv_shape_q7 *shape, const q7_t *wt, const q7_t *bias, q7_t *out);
/* nn_copy_q7.c */

/* out[(i0 * n1 + i1) * n2 + i2] = in[i0 * s0 + i1 * s1 + i2 * s2] (Slice, Crop, ShuffleChannel,
 * Permute of an HWC tensor); runs with s2 == 1 are copied with memcpy. in and out must not overlap. */
void nn_copy_strided_q7(const q7_t *in, uint32_t n0, uint32_t s0, uint32_t n1, uint32_t s1, uint32_t n2,
                        uint32_t s2, q7_t *out);

/* Nearest-neighbour upsampling of an HWC image by integer factors: every pixel repeated
 * scale_w times along the row and every row scale_h times. in and out must not overlap. */
void nn_upsample_nearest_q7(const q7_t *in, uint32_t in_h, uint32_t in_w, uint32_t channels, uint32_t scale_h,
                            uint32_t scale_w, q7_t *out);

/* nn_pool_q7.c */

/* Caffe Pooling of an in_h x in_w HWC image into out_h x out_w (Caffe's ceil- or floor-mode
 * sizes, computed by the caller): output (oy, ox) pools the window that starts at
 * (oy * stride_h - pad_h, ox * stride_w - pad_w), kernel_h x kernel_w, clipped to the image.
 * average == 0: the maximum of the clipped window, which must hold a pixel (Caffe's
 * windows do unless a kernel smaller than the stride leaves the last one outside an
 * unpadded image). average != 0: the int32 sum of the clipped window divided by the
 * window clipped to the *padded* image, rounded half away from zero, as Caffe divides
 * (the padding counts as zeros); with shift > 0 the sum times 2^shift is divided (an output
 * format with shift more fractional bits than the input's) and the quotient saturated to q7:
 * 128 * kernel_h * kernel_w * 2^shift must fit in int32; shift is 0 for the maximum.
 * Sizes at most 65535, kernel_h * kernel_w at most 2^24. out must not overlap in. */
void nn_pool_q7(const q7_t *in, uint32_t in_h, uint32_t in_w, uint32_t channels, uint32_t kernel_h,
                uint32_t kernel_w, uint32_t stride_h, uint32_t stride_w, uint32_t pad_h, uint32_t pad_w,
                uint32_t out_h, uint32_t out_w, uint32_t average, uint32_t shift, q7_t *out);

/* nn_lookup_s8.c (the s8 backend; int8_t, as its API has no q7_t): out = table[in + 128], or
 * per channel of an HWC input table[ch * 256 + in + 128] (cmsisgen/s8/lowering.py). Works in place. */
void nn_lookup_s8(const int8_t *in, const int8_t *table, uint32_t size, int8_t *out);
void nn_lookup_channels_s8(const int8_t *in, const int8_t *table, uint32_t channels, uint32_t pixels, int8_t *out);
/* nn_argmax_s8.c: nn_argmax_q7 on int8_t (the s8 backend). */
void nn_argmax_s8(const int8_t *in, uint32_t channels, uint32_t pixels, uint32_t whole, int8_t *out);
/* nn_avgpool_caffe_s8.c: average pooling dividing by Caffe's window (clipped to the padded image),
 * into the input's scale or one 2^shift times finer; dims: in_h, in_w, channels, kernel_h, kernel_w,
 * stride_h, stride_w, pad_h, pad_w, out_h, out_w; quant: input_offset, output_offset, shift, act_min, act_max. */
void nn_avgpool_caffe_s8(const int8_t *in, const uint16_t *dims, const int32_t *quant, int8_t *out);
/* nn_deconv_s8.c: Caffe's Deconvolution on int8 with per-channel requantization; dims: in_h, in_w,
 * in_ch, out_h, out_w, out_ch, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
 * dilation_w, groups; quant: input_offset, output_offset, act_min, act_max. */
void nn_deconv_s8(const int8_t *in, const uint32_t *dims, const int32_t *quant, const int8_t *wt,
                  const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);
/* nn_eltwise_add_s8.c: Eltwise SUM of count int8 inputs (arm_elementwise_add_s8's arithmetic for N);
 * in_params: offset, multiplier, shift per input; out_params: offset, multiplier, shift, act_min, act_max. */
void nn_eltwise_add_s8(const int8_t *const *inputs, uint32_t count, const int32_t *in_params,
                       const int32_t *out_params, uint32_t size, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* NN_KERNELS_H */
