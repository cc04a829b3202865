"""Buffer plan: where every tensor and every call's scratch lives while run_nn() runs.

Two regions:

- the caller's image buffer (``run_nn()``'s ``image`` argument): run_nn() converts the
  image to q7 in place, so the network input, and whatever is computed in place from it,
  lives there. The buffer must hold ``input_buffer_bytes`` (``NN_INPUT_BUFFER_SIZE``): the
  image plus any bytes a kernel reads past it;
- one static arena for everything else, each call's scratch included: a scratch buffer is
  a tensor that lives during its call only.

The plan follows what each :class:`~cmsisgen.mapper.calls.Op` declares, never its
function name, so a new kind of op only has to set those properties:

- a tensor's bytes are free for reuse once its last reader has run (first fit by live
  range, largest buffers first); every network output lives to the end, where run_nn()
  copies it to its caller's pointer (so an output that later layers also read stays intact);
- a call's output and scratch never overlap its inputs, except an ``in_place`` op's output,
  which starts at input 0's first byte (both get one offset);
- an op that is ``in_place`` or ``clobbers_input`` on a tensor that is read later works on
  a copy (``<layer>/input``), inserted into the program here;
- ``reads_past_end`` bytes after an input are reserved with that tensor.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..ir import last_reads
from ..ops.buffer_copy import copy_op
from .calls import Op, Program

ALIGN = 4
ARENA = "arena"
IMAGE = "image"


@dataclass(frozen=True)
class Placement:
    """One tensor's (or one call's scratch) bytes and live range."""

    name: str  # tensor name, or "<layer>/scratch"
    region: str  # ARENA or IMAGE
    offset: int
    bytes: int  # reserved: the tensor plus bytes read past its end (a multiple of ALIGN in the arena)
    first: int  # step (op index, as NN_TRACE numbers them) that writes it
    last: int  # last step that reads it (a network output: the last step)
    root: str  # first tensor of its in-place chain (itself when not written in place)
    scratch_of: Optional[int] = None  # the step whose scratch this is

    @property
    def end(self) -> int:
        return self.offset + self.bytes


@dataclass
class BufferPlan:
    arena_bytes: int  # the static arena: activations and scratch
    scratch_bytes: int  # largest scratch of one call (inside the arena)
    input_buffer_bytes: int  # NN_INPUT_BUFFER_SIZE: bytes of the caller's image buffer run_nn() uses
    tensors: dict[str, Placement]
    scratch: dict[int, Placement]  # step -> its scratch

    def offset(self, tensor: str) -> int:
        return self.tensors[tensor].offset

    @property
    def storage(self) -> dict[str, str]:
        """Tensor -> first tensor of its in-place chain (the tensor whose bytes it reuses)."""
        return {name: p.root for name, p in self.tensors.items()}

    def placements(self) -> list[Placement]:
        """Every placement, image buffer first, then by offset and step."""
        every = list(self.tensors.values()) + list(self.scratch.values())
        return sorted(every, key=lambda p: (p.region != IMAGE, p.offset, p.first, p.name))


def plan_buffers(program: Program) -> BufferPlan:
    """Insert the copies in-place and clobbering ops need (mutating ``program.ops``), then
    place every tensor and scratch buffer."""
    _insert_copies(program)
    ops = program.ops
    root = _chains(ops)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    extra: dict[str, int] = {}
    for index, op in enumerate(ops):
        for name in op.inputs:
            last[name] = max(last.get(name, index), index)
        first[op.output] = min(first.get(op.output, index), index)
        last[op.output] = max(last.get(op.output, index), index)
        if op.reads_past_end and op.inputs:
            extra[op.inputs[0]] = max(extra.get(op.inputs[0], 0), op.reads_past_end)
    for out in program.outputs:  # run_nn() copies every output to its caller's pointer at the end
        last[out.tensor] = len(ops) - 1

    in_image = {name for name in first if root[name] == root[program.input]}
    image_bytes = max(program.tensors[n].size + extra.get(n, 0) for n in in_image)
    tensors = {name: Placement(name, IMAGE, 0, program.tensors[name].size + extra.get(name, 0), first[name],
                               last[name], root[name]) for name in in_image}

    # Arena items: in-place chains (members share one offset) and scratch buffers.
    groups: dict[str, list[tuple[str, int, int, int]]] = {}
    for name in first:
        if name not in in_image:
            size = _aligned(program.tensors[name].size + extra.get(name, 0))
            groups.setdefault(root[name], []).append((name, size, first[name], last[name]))
    scratch_names: dict[int, str] = {}
    for index, op in enumerate(ops):
        if op.scratch_bytes > 0:
            name = f"{op.layer}/scratch"
            name = name if name not in groups else f"{name}{index}"
            scratch_names[index] = name
            groups[name] = [(name, _aligned(op.scratch_bytes), index, index)]

    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets: dict[str, int] = {}
    order = sorted(groups, key=lambda g: (-max(m[1] for m in groups[g]), min(m[2] for m in groups[g]), g))
    for group in order:
        offset = _first_fit(groups[group], placed)
        offsets[group] = offset
        placed.extend((offset, offset + size, lo, hi) for _, size, lo, hi in groups[group])

    scratch: dict[int, Placement] = {}
    for group, members in groups.items():
        for name, size, lo, hi in members:
            if name in program.tensors:
                tensors[name] = Placement(name, ARENA, offsets[group], size, lo, hi, group)
    for index, name in scratch_names.items():
        (_, size, _, _), = groups[name]
        scratch[index] = Placement(name, ARENA, offsets[name], size, index, index, name, scratch_of=index)
    arena = max((end for _, end, _, _ in placed), default=0)
    return BufferPlan(arena_bytes=arena,
                      scratch_bytes=max((p.bytes for p in scratch.values()), default=0),
                      input_buffer_bytes=image_bytes, tensors=tensors, scratch=scratch)


def _chains(ops: list[Op]) -> dict[str, str]:
    """Tensor -> first tensor of its chain of in-place ops (itself when none)."""
    root: dict[str, str] = {}
    for op in ops:
        if op.in_place and op.inputs:
            root[op.output] = root.get(op.inputs[0], op.inputs[0])
        root.setdefault(op.output, op.output)
        for name in op.inputs:
            root.setdefault(name, name)
    return root


def _first_fit(members: list[tuple[str, int, int, int]], placed: list[tuple[int, int, int, int]]) -> int:
    """Lowest offset at which every member (all at that offset) avoids every placed buffer
    whose live range meets its own. Candidates: 0 and the end of each placed buffer."""
    conflicts = [(start, end, size) for _, size, lo, hi in members
                 for start, end, p_lo, p_hi in placed if p_lo <= hi and lo <= p_hi]
    for candidate in sorted({0, *(end for _, end, _ in conflicts)}):
        if all(candidate + size <= start or candidate >= end for start, end, size in conflicts):
            return candidate
    raise AssertionError("unreachable: the end of the highest buffer is always free")


def _aligned(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


def _insert_copies(program: Program) -> None:
    """A call that writes over input 0 (``in_place``, ``clobbers_input``) while that tensor
    is still read later (or is the network output) gets a copy of it to work on."""
    last_read = last_reads(op.inputs for op in program.ops)
    outputs = {out.tensor for out in program.outputs}
    ops: list[Op] = []
    for index, op in enumerate(program.ops):
        source = op.inputs[0] if op.inputs else op.output
        needs_copy = ((op.in_place or op.clobbers_input) and source != op.output
                      and (source in outputs or last_read.get(source, -1) > index))
        if needs_copy:
            copy_name = f"{op.layer}/input"
            info = program.tensors[source]
            program.tensors[copy_name] = dataclasses.replace(info, name=copy_name)
            ops.append(copy_op(op.layer, info, program.tensors[copy_name]))
            op.inputs = [copy_name] + op.inputs[1:]
        ops.append(op)
    program.ops[:] = ops
