/*
 * cmsisgen portable CMSIS-NN subset: basic types.
 *
 * Provides q7_t, q15_t, q31_t, q63_t and arm_status with the same definitions and
 * values as CMSIS-DSP's arm_math_types.h. If that header was already included (its
 * include guard _ARM_MATH_TYPES_H_ is defined) nothing is redefined; otherwise this
 * header claims the guard so a later include of the real one is a no-op.
 */
#ifndef CMSISGEN_ARM_NN_MATH_TYPES_H
#define CMSISGEN_ARM_NN_MATH_TYPES_H

#include <stdint.h>

#ifndef _ARM_MATH_TYPES_H_
#define _ARM_MATH_TYPES_H_

typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;
typedef int64_t q63_t;
typedef float float32_t;
typedef double float64_t;

typedef enum
{
    ARM_MATH_SUCCESS = 0,
    ARM_MATH_ARGUMENT_ERROR = -1,
    ARM_MATH_LENGTH_ERROR = -2,
    ARM_MATH_SIZE_MISMATCH = -3,
    ARM_MATH_NANINF = -4,
    ARM_MATH_SINGULAR = -5,
    ARM_MATH_TEST_FAILURE = -6,
    ARM_MATH_DECOMPOSITION_FAILURE = -7
} arm_status;

#endif /* _ARM_MATH_TYPES_H_ */

#endif /* CMSISGEN_ARM_NN_MATH_TYPES_H */
