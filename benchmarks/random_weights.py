#!/usr/bin/env python3
"""Seeded random weights for a deploy prototxt, written as a binary .caffemodel.

    python3 benchmarks/random_weights.py MODEL.prototxt OUT.caffemodel [--seed 0]

The benchmark nets (benchmarks/models/) carry no trained weights: big binaries stay out
of the repository, and what is measured (compile time and memory) depends on the sizes,
not the values. The values are still chosen so that activations keep a sane range through
any depth (He-normal filters, BatchNorm statistics near 0/1, Scale near 1/0), as trained
nets do, so calibration and quantization see realistic work.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cmsisgen.loader import load_net  # noqa: E402
from cmsisgen.proto import schema  # noqa: E402
from cmsisgen.shapes import expected_blob_shapes  # noqa: E402


def _blob(rng: np.random.Generator, layer_type: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """One blob: filters He-normal over their fan-in, biases small, normalisers near identity."""
    if layer_type == "BatchNorm":  # mean, variance, moving-average factor
        return (rng.normal(0.0, 0.1, shape), rng.uniform(0.5, 1.5, shape), np.ones(shape))[index]
    if layer_type == "Scale":  # gamma, beta
        return rng.uniform(0.5, 1.5, shape) if index == 0 else rng.normal(0.0, 0.1, shape)
    if index == 0 and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    return rng.normal(0.0, 0.05, shape)


def write_random_weights(prototxt: Path, out: Path, seed: int = 0) -> int:
    """Write ``out``; returns the number of weights."""
    net = load_net(prototxt)
    rng = np.random.default_rng(seed)
    message = schema.NetParameter(name=net.name if hasattr(net, "name") else "")
    count = 0
    for layer in net.layers:
        shapes = expected_blob_shapes(net, layer)
        if not shapes:
            continue
        entry = message.layer.add(name=layer.name, type=layer.type)
        for index, shape in enumerate(shapes):
            data = _blob(rng, layer.type, index, tuple(shape)).astype(np.float32)
            blob = entry.blobs.add()
            blob.shape.dim.extend(int(d) for d in shape)
            blob.data.extend(data.ravel())
            count += data.size
    out.write_bytes(message.SerializeToString())
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prototxt", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    count = write_random_weights(args.prototxt, args.out, args.seed)
    print(f"{args.out}: {count:,} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
