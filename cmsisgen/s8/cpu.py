"""The core the s8 code is compiled for (``--cpu``): what differs between CMSIS-NN v7.0.0's
DSP build (Cortex-M4/M7/M33) and its Helium build (Cortex-M55/M85, ARM_MATH_MVEI).

The two builds compute the same integers with every kernel cmsisgen calls, as it calls
them (tests/test_s8_kernels.py runs each on QEMU's Cortex-M7 and Cortex-M55 against the
numpy models). What a generated program must get right per core is the contract around
the arithmetic:

* scratch sizes: each ``*_get_buffer_size`` answers per build (:mod:`.scratch`);
* ``arm_fully_connected_s8`` on MVE starts each row from a kernel sum it reads from
  ``ctx->buf`` (and refuses NULL): cmsisgen computes them at compile time
  (:mod:`.kernel_sums`), into flash;
* ``arm_convolve_wrapper_s8`` routes a one-row convolution to ``arm_convolve_1_x_n_s8``,
  whose MVE version fails (``ARM_CMSIS_NN_FAILURE``) unless the padding is TFLite's SAME
  split (:func:`mve_1xn_fails`): cmsisgen calls ``arm_convolve_s8`` for those;
* ``arm_elementwise_add_s8`` sign-extends the offset inputs on MVE where the DSP build
  zero-extends 16-bit lanes: equal for the left shift of 20 cmsisgen emits (TFLite's),
  different below 16 (the simulator's add takes the build, :func:`dsp_lanes`).
"""
from __future__ import annotations

from ..errors import CmsisgenError
from .scratch import c_mod

#: --cpu values: the core, and the build of CMSIS-NN it runs (a :data:`.scratch.CORES` entry).
CPUS = {"cortex-m7": "dsp", "cortex-m55": "mve"}
DEFAULT_CPU = "cortex-m7"


def scratch_core(cpu: str) -> str:
    """The build whose ``*_get_buffer_size`` answers the plan uses for ``cpu``."""
    try:
        return CPUS[cpu]
    except KeyError:
        raise CmsisgenError(f"--cpu {cpu}: not one of {', '.join(CPUS)}") from None


def has_mve(cpu: str) -> bool:
    """Helium (MVE): kernel sums in flash, MVE scratch sizes, no 1xN path for Caffe's padding."""
    return scratch_core(cpu) == "mve"


def dsp_lanes(cpu: str) -> bool:
    """arm_elementwise_add_s8 offsets its inputs in zero-extended 16-bit lanes (DSP build)."""
    return not has_mve(cpu)


def mve_1xn_fails(in_w: int, kernel_w: int, stride_w: int, pad_w: int, out_w: int) -> bool:
    """The MVE arm_convolve_1_x_n_s8 returns ARM_CMSIS_NN_FAILURE: its padding must be
    pad_w on the left and pad_w + (total % 2) on the right, TFLite's SAME split, where
    Caffe's output size often leaves another total (e.g. stride 2, pad 1)."""
    total = (out_w - 1) * stride_w + kernel_w - in_w
    return pad_w * 2 + c_mod(total, 2) != total


def takes_1xn_path(in_shape: tuple[int, int, int], kernel_hw: tuple[int, int], stride: tuple[int, int],
                   pad: tuple[int, int], dilation: tuple[int, int], grouped: bool) -> bool:
    """arm_convolve_wrapper_s8 picks arm_convolve_1_x_n_s8 (``in_shape`` is (h, w, c), pairs
    are (h, w)): not its pointwise case (1x1 filter, no padding or dilation), one input row,
    a 1xN filter, no dilation along w, stride_w * c a multiple of 4, and filter c equal to
    input c (a grouped layer's is not)."""
    h, _, c = in_shape
    pointwise = kernel_hw == (1, 1) and pad == (0, 0) and dilation == (1, 1)
    return (not pointwise and not grouped and h == 1 and kernel_hw[0] == 1 and dilation[1] == 1
            and (stride[1] * c) % 4 == 0)
