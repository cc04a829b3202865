"""The project's own q7 kernels: C files that `compile` copies into OUT beside nn.c.

CMSIS-NN's q7 API has no function for some layers (LRN, PReLU, per-channel scale, Eltwise,
pooling of any geometry, channel slices for Concat and grouped convolution, dilated convolution
and Deconvolution). Their C lives in
firmware/cmsisgen_kernels (installed as ``cmsisgen.firmware``), one file per family, where it
is compiled and unit-tested on its own (tests/test_own_kernels.py); nn.c only calls them.
OUT must build with nothing but a CMSIS-NN, so the files a network calls are copied into
it, verbatim, together with their header and the helper headers they include (``#include
"nn_s8_requantize.h"``, shared by the s8 files that rescale).
"""
from __future__ import annotations

import re
from importlib import resources
from typing import Iterable

from .mapper.calls import Op

#: Folder of cmsisgen.firmware holding the kernels.
FOLDER = "cmsisgen_kernels"
#: The prototypes of every kernel; nn.c includes it when it calls one.
HEADER = "nn_kernels.h"


def _folder():
    return resources.files("cmsisgen.firmware").joinpath(FOLDER)


#: Every file a compile may copy (so that a later compile can remove the ones it no longer needs).
ALL_FILES: tuple[str, ...] = (HEADER, *sorted(p.name for p in _folder().iterdir()
                                               if p.name.endswith((".c", ".h")) and p.name != HEADER))
#: A header a kernel file includes (``#include "..."``): copied when it is one of ALL_FILES
#: (the others, arm_nn_math_types.h, come with the CMSIS-NN the output is built against).
_INCLUDE = re.compile(r'(?m)^#include "([\w.]+)"')


def files_used(ops: Iterable[Op]) -> set[str]:
    """The C files of the own kernels these ops call (each kernel names its file: ``Kernel.source``)."""
    return {op.kernel.source for op in ops if op.kernel.source}


def kernel_files(sources: Iterable[str]) -> dict[str, str]:
    """{file name: text} of the header and the C files ``sources`` ({} for none), read from
    the installed firmware so that OUT matches the kernels the tests checked."""
    names = sorted(set(sources))
    if not names:
        return {}
    files = {name: _folder().joinpath(name).read_text() for name in (HEADER, *names)}
    included = {h for text in files.values() for h in _INCLUDE.findall(text)}
    for name in sorted(included.intersection(ALL_FILES) - set(files)):
        files[name] = _folder().joinpath(name).read_text()
    return files
