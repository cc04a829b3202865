"""Union-find over tensor names, shared by the q7 and s8 quantizers.

A layer that cannot rescale (pooling, concatenation, an alias, a fused ReLU) needs its inputs
and output at one quantization; both quantizers tie such tensors into groups and give each
group one format (q7) or one scale and zero point (s8), from the union of its members' ranges.
"""
from __future__ import annotations


class TensorGroups:
    """Union-find over tensor names: members must share one quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        """The group's representative (path halving keeps chains short on deep nets)."""
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)
