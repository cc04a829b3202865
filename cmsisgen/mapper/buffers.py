"""Buffer plan: where every activation lives in one static arena.

Rules the plan enforces, because the kernels rely on them:
- a call's output never overlaps its inputs (the convolutions and fully connected
  functions read inputs while writing outputs);
- ``arm_relu_q7`` works in place, so a ReLU shares its input's buffer when nothing reads
  the input afterwards, and works on a copy otherwise;
- the DSP pooling kernels overwrite their input (they pool rows in place first), so a
  pooling layer whose input is still needed afterwards pools a copy;
- ``arm_convolve_HWC_q7_RGB`` reads one byte past the end of its input, so that byte is
  part of the input's allocation;
- scratch (im2col, FC vector, pooling row buffer) is one q15-aligned buffer sized to
  the largest single need, since calls run one at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import last_reads
from .program import Op, Program, TensorInfo

ALIGN = 4


@dataclass
class BufferPlan:
    arena_bytes: int
    scratch_bytes: int
    offsets: dict[str, int]  # storage tensor -> byte offset in the arena
    sizes: dict[str, int]  # storage tensor -> allocated bytes
    storage: dict[str, str] = field(default_factory=dict)  # any tensor -> its storage tensor

    def offset(self, tensor: str) -> int:
        return self.offsets[self.storage.get(tensor, tensor)]


def plan_buffers(program: Program) -> BufferPlan:
    """Insert the copies the in-place kernels need (mutating ``program.ops``) and place buffers."""
    _insert_copies(program)
    storage: dict[str, str] = {}
    for op in program.ops:
        if op.in_place:
            storage[op.output] = storage.get(op.inputs[0], op.inputs[0])

    def root(name: str) -> str:
        return storage.get(name, name)

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    extra: dict[str, int] = {}
    for index, op in enumerate(program.ops):
        for name in op.inputs:
            last[root(name)] = index
        out = root(op.output)
        first.setdefault(out, index)
        last[out] = max(last.get(out, index), index)
        if op.function == "arm_convolve_HWC_q7_RGB":
            extra[root(op.inputs[0])] = 1
    last[root(program.output)] = len(program.ops)

    sizes = {name: _aligned(program.tensors[name].size + extra.get(name, 0)) for name in first}
    offsets: dict[str, int] = {}
    for name in sorted(first, key=lambda n: (-sizes[n], first[n])):
        offsets[name] = _first_fit(name, sizes, offsets, first, last)
    arena = max((offsets[n] + sizes[n] for n in offsets), default=0)
    scratch = _aligned(max((op.scratch_bytes for op in program.ops), default=0))
    return BufferPlan(arena_bytes=arena, scratch_bytes=scratch, offsets=offsets, sizes=sizes,
                      storage={name: root(name) for name in program.tensors})


def _first_fit(name: str, sizes: dict[str, int], offsets: dict[str, int], first: dict[str, int],
               last: dict[str, int]) -> int:
    busy = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets
                  if first[o] <= last[name] and first[name] <= last[o])
    candidate = 0
    for start, end in busy:
        if candidate + sizes[name] <= start:
            break
        candidate = max(candidate, end)
    return candidate


def _aligned(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


def _insert_copies(program: Program) -> None:
    # Checking names is enough: a ReLU only shares its input's buffer when nothing reads
    # that input later, which this same check decides.
    last_read = last_reads(op.inputs for op in program.ops)
    ops: list[Op] = []
    for index, op in enumerate(program.ops):
        # An in-place op already working on its own output (a copy inserted by an earlier
        # plan) has nothing left to preserve.
        source = op.inputs[0] if op.inputs else op.output
        needs_copy = ((op.in_place or op.clobbers_input) and source != op.output
                      and (source == program.output or last_read.get(source, -1) > index))
        if needs_copy:
            copy_name = op.output if op.in_place else f"{op.layer}/input"
            info = program.tensors[source]
            if not op.in_place:
                program.tensors[copy_name] = TensorInfo(copy_name, info.shape, info.frac)
            ops.append(Op(layer=op.layer, layer_type="Copy", kind="copy", function="memcpy", inputs=[source],
                          output=copy_name, args={"size": info.size}, formats={"out_frac": info.frac}))
            op.inputs = [copy_name]
        ops.append(op)
    program.ops[:] = ops
