"""Program rewrites that change no bit of any output: a ReLU before a max pool runs after it,
and a ReLU of values that cannot be negative is dropped.

Max pooling and a plain ReLU commute exactly, in q7 as in float: ReLU is non-decreasing, so
the largest of a window's ReLU'd values is the ReLU of its largest value (padding, where a
kernel sees it, is never above zero). After the pool the ReLU reads a window's worth fewer
values (a quarter for 2x2 pools). Done on the lowered program, after quantization, so every
Q format stays as the Caffe order chose it (both steps keep their input's format).

Only when the ReLU's output is read by the max pool alone and is none of the network's outputs
(with several, not only the first: an output must keep its tensor and its step). The
ReLU then writes the pool's tensor (the name downstream steps, the float net and the evaluation
know it by) and the pool a new one, ``<pool output>@before_<relu>``.

A plain ReLU whose input comes from a plain ReLU, or from a pooling step or a planner copy of
such values (the max or the truncated or rounded average of non-negative values is never
negative), is the identity: its readers read its input instead. Not when its output is one of
the network's outputs.
"""
from __future__ import annotations

import dataclasses

from ..ops.relu import RELU
from .calls import Op, Program

#: Pooling kernels (by kind) that take max or average from an ``average`` argument.
_EITHER_POOL = ("global_pool", "pool")
#: Kernels whose output is never negative when their input is not: pooling of any kind, a copy.
_KEEP_SIGN = ("maxpool", "avepool", "copy") + _EITHER_POOL


def _is_max_pool(op: Op) -> bool:
    return op.kind == "maxpool" or (op.kind in _EITHER_POOL and op.args.get("average") == 0)


def _is_output(program: Program, tensor: str) -> bool:
    return any(out.tensor == tensor for out in program.outputs)


def _readers(program: Program, tensor: str) -> list[int]:
    return [i for i, op in enumerate(program.ops) if tensor in op.inputs]


def _swap(program: Program, r: int, p: int) -> None:
    """ops[r] (ReLU a -> b) and ops[p] (max pool b -> c) become pool a -> c@before_<relu>, ReLU
    -> c: every tensor the Caffe net has keeps its name and its values."""
    relu, pool = program.ops[r], program.ops[p]
    pooled = pool.output
    before = f"{pooled}@before_{relu.layer}"
    info = program.tensors[pooled]
    c, h, w = info.shape
    program.ops[r] = dataclasses.replace(pool, inputs=[relu.inputs[0]] + pool.inputs[1:], output=before)
    program.ops[p] = dataclasses.replace(relu, inputs=[before], output=pooled, in_shape=(h, w, c),
                                         args={"size": c * h * w}, macs=c * h * w)
    del program.tensors[relu.output]
    program.tensors[before] = dataclasses.replace(info, name=before)


def relu_after_max_pool(program: Program) -> list[str]:
    """Move every eligible ReLU after the max pool that reads it (see the module docstring),
    in place; returns one note per move."""
    notes = []
    for r, relu in enumerate(program.ops):
        if relu.kernel is not RELU or _is_output(program, relu.output):
            continue
        readers = _readers(program, relu.output)
        if len(readers) != 1 or not _is_max_pool(program.ops[readers[0]]):
            continue
        pool = program.ops[readers[0]]
        if pool.inputs != [relu.output]:
            continue
        _swap(program, r, readers[0])
        reads = f"{program.tensors[pool.output].size} values instead of {relu.args['size']}"
        notes.append(f"{relu.layer} runs after {pool.layer} (max pooling and ReLU commute; the ReLU reads {reads})")
        moved = program.ops[readers[0]]
        moved.comments += (f"{relu.layer} runs after {pool.layer}, before it in the prototxt: max pooling and "
                           f"ReLU commute, and it reads {reads}",)
    return notes


def _non_negative(program: Program, tensor: str) -> bool:
    """Whether every value of ``tensor`` is >= 0 whatever the image: a plain ReLU's output, or a
    pooling step's or copy's output of such values."""
    producer = next((op for op in program.ops if op.output == tensor), None)
    if producer is None:
        return False
    if producer.kernel is RELU:
        return True
    return producer.kind in _KEEP_SIGN and _non_negative(program, producer.inputs[0])


def drop_idle_relus(program: Program) -> list[str]:
    """Remove every plain ReLU whose input cannot be negative (see the module docstring), in
    place; returns one note per ReLU dropped."""
    notes = []
    for relu in list(program.ops):
        if relu.kernel is not RELU or _is_output(program, relu.output) or not _non_negative(program, relu.inputs[0]):
            continue
        source = relu.inputs[0]
        program.ops.remove(relu)
        readers = [op for op in program.ops if relu.output in op.inputs]
        for op in readers:
            op.inputs = [source if name == relu.output else name for name in op.inputs]
        readers[0].comments += (f"{relu.layer} (ReLU) dropped before this step: its input "
                                f"{source.split('@')[0]} is never negative",)
        del program.tensors[relu.output]
        notes.append(f"{relu.layer} dropped (its input {source.split('@')[0]} is never negative)")
    return notes
