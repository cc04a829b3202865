"""run_nn()'s outputs as the generated C names them: one pointer argument per output.

A single-output network keeps the historical ``run_nn(uint8_t *image, q7_t *scores)`` and
``NN_OUTPUT_SIZE``. With several outputs, run_nn() takes one pointer per output, in the
order of the layers that compute them in the prototxt, each argument named after its Caffe
blob in lower case (``conv6-2`` -> ``conv6_2``) and described by ``NN_OUTPUT_<BLOB>_SIZE``,
``_FRAC_BITS`` and ``_NAME`` in nn.h. An argument name that C or nn.c already uses (a
keyword, ``image``, a function nn.c calls, a ``_t`` type name) gets ``_out`` appended.
"""
from __future__ import annotations

from .c_names import c_identifier, unique_prefixes
from .mapper.calls import Program

#: C keywords, C++ keywords (nn.h is included from C++ too) and the names run_nn()'s body uses
#: (its locals, the arena, the C library).
TAKEN = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while bool true false class new delete this template typename namespace operator private protected
public virtual friend try catch throw using explicit export mutable and or not xor and_eq or_eq not_eq xor_eq
bitand bitor compl asm alignas alignof constexpr decltype noexcept nullptr static_assert thread_local
image status nn_scratch nn_arena memcpy memset scores""".split())


def _argument(macro: str, functions: set[str]) -> str:
    name = macro.lower()
    if name in TAKEN or name in functions or name.endswith("_t") or name.startswith(("nn_", "arm_", "__")):
        return name + "_out"
    return name


def describe_outputs(program: Program) -> list[dict]:
    """Per output, in run_nn()'s argument order: blob, tensor, size, frac, hwc, its macro
    infix (``NN_OUTPUT_<macro>_SIZE``), its argument name and its offset in the self test's
    buffer (the outputs side by side)."""
    macros = unique_prefixes([c_identifier(out.blob) for out in program.outputs])
    functions = {op.function for op in program.ops}
    described, offset = [], 0
    for out, macro in zip(program.outputs, macros):
        argument = "scores" if len(program.outputs) == 1 else _argument(macro, functions)
        described.append(dict(blob=out.blob, tensor=out.tensor, size=out.size, frac=out.frac, hwc=out.hwc,
                              macro=macro, argument=argument, offset=offset))
        offset += out.size
    return described

