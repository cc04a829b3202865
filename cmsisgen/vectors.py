"""Known-answer test vectors: images, the simulator's scores and every step's checksum.

Computed in batches of :data:`BATCH` images: the simulator holds every intermediate tensor
of a batch (and a convolution's im2col matrix), hundreds of KB per image for a small net,
so the memory a run needs grows with the vectors themselves (bytes of image, scores and
checksums), not with the network's intermediate tensors times N.
"""
from __future__ import annotations

import re
import numpy as np

from .codegen import TestVectors
from .errors import CmsisgenError
from .ops.buffer_copy import COPY
from .pipeline import Compiled

#: Images simulated at once.
BATCH = 256
#: The most vectors a test_vectors.h may hold: the self tests count them in a C int.
MAX_VECTORS = 2**31 - 1
#: Seed of the random images used when no images are given.
RANDOM_IMAGE_SEED = 1234


def make_test_vectors(compiled: "Compiled", dataset, count: int) -> "TestVectors":
    """``count`` vectors from ``dataset`` (its first images) or, when it is None or empty,
    from seeded random images (labels -1)."""
    c, h, w = compiled.program.input_shape
    if count > MAX_VECTORS:
        raise CmsisgenError(f"{count} test vectors: at most {MAX_VECTORS}")
    if dataset is not None and len(dataset.x):
        if len(dataset.x) < count:
            raise CmsisgenError(f"{count} test vectors: the images given hold only {len(dataset.x)}")
        raw = compiled.pre.raw_images(dataset.x[:count], h, w)
        labels = dataset.y[:count].astype(np.int64)
    else:
        rng = np.random.default_rng(RANDOM_IMAGE_SEED)
        raw = rng.integers(0, 256, size=(count, h, w, c), dtype=np.uint8)
        labels = np.full(count, -1, dtype=np.int64)
    from .codegen import TestVectors

    expected, checksums = _simulate(compiled, raw)
    return TestVectors(inputs=raw, expected=expected, labels=labels, step_names=step_names(compiled),
                       step_checksums=checksums)


def step_names(compiled: "Compiled") -> tuple[str, ...]:
    """One printable name per step, as NN_TRACE numbers them (safe in a C string literal)."""
    return tuple(re.sub(r'[^ -~]|["\\]', "_", op.layer + (" (copy)" if op.kernel is COPY else ""))
                 for op in compiled.program.ops)


def _simulate(compiled: "Compiled", raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .simulator.execute import run_program, step_checksums

    program = compiled.program
    _, h, w = program.input_shape
    expected: list[np.ndarray] = []
    checksums: list[np.ndarray] = []
    for start in range(0, len(raw), BATCH):
        images = compiled.pre.prepare_images(raw[start:start + BATCH], h, w)
        expected.append(run_program(program, images))
        checksums.append(step_checksums(program, images))
    if not expected:
        return (np.zeros((0, program.output_size), dtype=np.int8),
                np.zeros((0, len(program.ops)), dtype=np.uint32))
    return np.concatenate(expected), np.concatenate(checksums)
