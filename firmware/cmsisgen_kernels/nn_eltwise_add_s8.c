/*
 * cmsisgen kernels, s8 backend: Eltwise SUM of any number of int8 inputs. Model:
 * cmsisgen/s8/own_kernels.py (eltwise_add_s8).
 *
 * CMSIS-NN v7.0.0's arm_elementwise_add_s8 adds two inputs; this kernel is its arithmetic
 * for N (for two inputs the same result as its plain-C build). Per element:
 *   sum = sum over i of requantize((x_i + offset_i) << 20, mult_i, shift_i)   (int32)
 *   out = clamp(requantize(sum, out_mult, out_shift) + out_offset, act_min, act_max)
 * with the default double-rounding requantization (nn_s8_requantize.h). The left shift of 20
 * is TFLite's for int8 ADD; cmsisgen.s8.quantization.sum_params chooses the multipliers so
 * that the sum cannot leave int32 (it wraps, in uint32_t, if given others). Reads every input
 * of an element before writing it, so out may be any one of the inputs.
 * Self-contained (stdint and nn_s8_requantize.h only): the s8 API has no q7_t.
 */
#include <stdint.h>

#include "nn_s8_requantize.h"

/* TFLite's left shift of each int8 ADD input before its rescale. */
#define NN_ELTWISE_ADD_S8_LEFT_SHIFT 20

/* inputs: count pointers to size int8 values each
 * in_params: offset (the negated zero point), multiplier, shift per input (3 * count)
 * out_params: output offset (zero point), multiplier, shift, act_min, act_max */
void nn_eltwise_add_s8(const int8_t *const *inputs, uint32_t count, const int32_t *in_params,
                       const int32_t *out_params, uint32_t size, int8_t *out);

void nn_eltwise_add_s8(const int8_t *const *inputs, uint32_t count, const int32_t *in_params,
                       const int32_t *out_params, uint32_t size, int8_t *out)
{
    uint32_t e, i;

    for (e = 0; e < size; e++) {
        uint32_t sum = 0;
        int64_t v;

        for (i = 0; i < count; i++) {
            const int32_t *p = in_params + 3 * i;
            const uint32_t shifted = ((uint32_t)(int32_t)inputs[i][e] + (uint32_t)p[0]) << NN_ELTWISE_ADD_S8_LEFT_SHIFT;

            sum += (uint32_t)nn_s8_requantize(nn_s8_bits(shifted), p[1], p[2]);
        }
        v = (int64_t)nn_s8_requantize(nn_s8_bits(sum), out_params[1], out_params[2]) + out_params[0];
        v = v < out_params[3] ? out_params[3] : (v > out_params[4] ? out_params[4] : v);
        out[e] = (int8_t)v;
    }
}
