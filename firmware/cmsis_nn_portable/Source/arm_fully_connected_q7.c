/*
 * cmsisgen portable CMSIS-NN subset: q7 fully connected layers.
 *
 * out[r] = SSAT8(((bias[r] << bias_shift) + NN_ROUND(out_shift) + sum_c W[r][c]*v[c])
 *                >> out_shift)
 * arm_fully_connected_q7 reads W row major. arm_fully_connected_q7_opt reads W in the
 * upstream interleaved order (the same bytes in the DSP and plain-C upstream paths):
 *   for each group of 4 rows r0..r3:
 *     for each block of 4 columns c..c+3, 16 bytes:
 *       W[r0][c]   W[r1][c]   W[r0][c+2] W[r1][c+2]  W[r2][c]   W[r3][c]   W[r2][c+2] W[r3][c+2]
 *       W[r0][c+1] W[r1][c+1] W[r0][c+3] W[r1][c+3]  W[r2][c+1] W[r3][c+1] W[r2][c+3] W[r3][c+3]
 *     then for each of the dim_vec % 4 tail columns c: W[r0][c] W[r1][c] W[r2][c] W[r3][c]
 *   then the num_of_rows % 4 leftover rows, row major.
 * Both always return ARM_MATH_SUCCESS; vec_buffer is not used here (upstream needs
 * dim_vec q15 in it).
 */
#include "arm_nn_portable_internal.h"

q7_t pnn_fc_row(const q7_t *pV, const q7_t *row, uint16_t dim_vec, q7_t bias, uint16_t bias_shift,
                uint16_t out_shift)
{
    uint32_t acc = pnn_acc_init(bias, bias_shift, out_shift);
    uint16_t c;
    for (c = 0; c < dim_vec; c++)
    {
        acc += (uint32_t)((int32_t)pV[c] * (int32_t)row[c]);
    }
    return pnn_requant(acc, out_shift);
}

arm_status arm_fully_connected_q7(const q7_t *pV,
                                  const q7_t *pM,
                                  const uint16_t dim_vec,
                                  const uint16_t num_of_rows,
                                  const uint16_t bias_shift,
                                  const uint16_t out_shift,
                                  const q7_t *bias,
                                  q7_t *pOut,
                                  q15_t *vec_buffer)
{
    uint16_t r;
    (void)vec_buffer;
    for (r = 0; r < num_of_rows; r++)
    {
        pOut[r] = pnn_fc_row(pV, pM + (size_t)r * dim_vec, dim_vec, bias[r], bias_shift, out_shift);
    }
    return ARM_MATH_SUCCESS;
}

arm_status arm_fully_connected_q7_opt(const q7_t *pV,
                                      const q7_t *pM,
                                      const uint16_t dim_vec,
                                      const uint16_t num_of_rows,
                                      const uint16_t bias_shift,
                                      const uint16_t out_shift,
                                      const q7_t *bias,
                                      q7_t *pOut,
                                      q15_t *vec_buffer)
{
    const q7_t *pw = pM;
    const uint16_t full_rows = (uint16_t)(num_of_rows & ~3u);
    const uint16_t full_cols = (uint16_t)(dim_vec & ~3u);
    uint16_t r, c, k;

    (void)vec_buffer;

    for (r = 0; r < full_rows; r += 4)
    {
        uint32_t acc[4];
        for (k = 0; k < 4; k++)
        {
            acc[k] = pnn_acc_init(bias[r + k], bias_shift, out_shift);
        }
        for (c = 0; c < full_cols; c += 4)
        {
            /* two 8-byte halves: columns (c, c+2) then (c+1, c+3) */
            uint16_t half;
            for (half = 0; half < 2; half++)
            {
                const int32_t va = pV[c + half];
                const int32_t vb = pV[c + half + 2];
                /* rows (r0, r1) then (r2, r3): W[ra][ca] W[rb][ca] W[ra][cb] W[rb][cb] */
                for (k = 0; k < 4; k += 2)
                {
                    acc[k] += (uint32_t)(va * (int32_t)pw[0]);
                    acc[k + 1] += (uint32_t)(va * (int32_t)pw[1]);
                    acc[k] += (uint32_t)(vb * (int32_t)pw[2]);
                    acc[k + 1] += (uint32_t)(vb * (int32_t)pw[3]);
                    pw += 4;
                }
            }
        }
        for (c = full_cols; c < dim_vec; c++)
        {
            for (k = 0; k < 4; k++)
            {
                acc[k] += (uint32_t)((int32_t)pV[c] * (int32_t)pw[k]);
            }
            pw += 4;
        }
        for (k = 0; k < 4; k++)
        {
            pOut[r + k] = pnn_requant(acc[k], out_shift);
        }
    }
    for (r = full_rows; r < num_of_rows; r++)
    {
        pOut[r] = pnn_fc_row(pV, pw, dim_vec, bias[r], bias_shift, out_shift);
        pw += dim_vec;
    }
    return ARM_MATH_SUCCESS;
}
