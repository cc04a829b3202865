"""The project's own q7 kernels: C files that `compile` copies into OUT beside nn.c.

CMSIS-NN's q7 API has no function for some layers (LRN, PReLU, per-channel scale, Eltwise,
global pooling, channel slices for Concat and grouped convolution). Their C lives in
firmware/cmsisgen_kernels (installed as ``cmsisgen.firmware``), one file per family, where it
is compiled and unit-tested on its own (tests/test_own_kernels.py); nn.c only calls them.
OUT must build with nothing but a CMSIS-NN, so the files a network calls are copied into
it, verbatim, together with their header.
"""
from __future__ import annotations

from importlib import resources
from typing import Iterable

from .mapper.program import Op

#: Folder of cmsisgen.firmware holding the kernels.
FOLDER = "cmsisgen_kernels"
#: The prototypes of every kernel; nn.c includes it when it calls one.
HEADER = "nn_kernels.h"
#: C file that defines each kernel function nn.c may call.
SOURCE_OF: dict[str, str] = {
    "nn_concat_channels_q7": "nn_concat_q7.c",
    "nn_gather_channels_q7": "nn_concat_q7.c",
    "nn_lrn_across_q7": "nn_lrn_q7.c",
    "nn_lrn_within_q7": "nn_lrn_q7.c",
    "nn_eltwise_sum_q7": "nn_eltwise_q7.c",
    "nn_eltwise_max_q7": "nn_eltwise_q7.c",
    "nn_eltwise_prod_q7": "nn_eltwise_q7.c",
    "nn_global_pool_q7": "nn_global_pool_q7.c",
    "nn_prelu_q7": "nn_prelu_q7.c",
    "nn_scale_q7": "nn_scale_q7.c",
}
#: Every file a compile may copy (so that a later compile can remove the ones it no longer needs).
ALL_FILES: tuple[str, ...] = (HEADER, *sorted(set(SOURCE_OF.values())))
#: Kernels a grouped convolution calls besides its CMSIS-NN convolution (gather, then scatter).
GROUP_CONV_HELPERS = ("nn_gather_channels_q7", "nn_concat_channels_q7")


def functions_called(ops: Iterable[Op]) -> set[str]:
    """The own kernels run_nn() calls for these ops (nn_input_q7 stays in nn.c)."""
    called: set[str] = set()
    for op in ops:
        if op.kind == "group_conv":
            called.update(GROUP_CONV_HELPERS)
        if op.function in SOURCE_OF:
            called.add(op.function)
    return called


def kernel_files(functions: Iterable[str]) -> dict[str, str]:
    """{file name: text} of the header and the C files defining ``functions`` ({} for none),
    read from the installed firmware so that OUT matches the kernels the tests checked."""
    names = sorted({SOURCE_OF[f] for f in functions})
    if not names:
        return {}
    folder = resources.files("cmsisgen.firmware").joinpath(FOLDER)
    return {name: folder.joinpath(name).read_text() for name in (HEADER, *names)}
