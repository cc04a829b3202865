"""Generated code is byte-identical across processes, whatever the hash seed.

test_cli's determinism test compiles twice in one process, which cannot see anything that
depends on str hashing (set or dict-of-set iteration order, ``hash()`` of names); here two
separate interpreters with different PYTHONHASHSEED values compile the same model.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from caffe_models import layer, write_model

ROOT = Path(__file__).resolve().parent.parent
#: The net's Concat also copies the project's kernels it calls (nn_kernels.h, nn_concat_q7.c).
FILES = ("nn.c", "nn.h", "parameters.h", "weights.h", "weights.c", "test_vectors.h", "nn_kernels.h", "nn_concat_q7.c",
         ".cmsisgen-manifest")

# A branching net (Split, in-place ReLU read later, Concat, both pooling kinds) so buffer
# planning, copies and naming all have a chance to depend on set/dict order.
LAYERS = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("split", "Split", "conv1", ["s1", "s2"]),
    layer("conv_a", "Convolution", "s1", "conv_a", num_output=6, kernel_size=3, pad=1),
    layer("relu_a", "ReLU", "conv_a", "conv_a"),
    layer("relu_s2", "ReLU", "s2", "s2"),
    layer("conv_b", "Convolution", "s2", "conv_b", num_output=2, kernel_size=1),
    layer("cat", "Concat", ["conv_a", "conv_b", "s1"], "cat"),
    layer("pool", "Pooling", pool="MAX", kernel_size=3, stride=2),
    layer("pool2", "Pooling", pool="AVE", kernel_size=2, stride=2),
    layer("ip", "InnerProduct", num_output=5),
    layer("prob", "Softmax"),
]


def compile_in_subprocess(proto: Path, weights: Path, calib: Path, out: Path, seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "cmsisgen.cli", "compile", str(proto), str(weights), "-o", str(out),
         "--calib", str(calib), "--test-vectors", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"PYTHONHASHSEED={seed}:\n{result.stdout}\n{result.stderr}"


def test_compile_is_byte_identical_across_hash_seeds(tmp_path):
    proto, weights = write_model(tmp_path, LAYERS, input_shape=(3, 12, 12))
    rng = np.random.default_rng(11)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=rng.integers(0, 256, size=(16, 12, 12, 3), dtype=np.uint8),
             y=rng.integers(0, 5, size=16))
    outputs = []
    for seed in ("1", "2", "12345"):
        out = tmp_path / f"out_{seed}"
        compile_in_subprocess(proto, weights, calib, out, seed)
        outputs.append(out)
    first = outputs[0]
    for name in FILES:
        assert (first / name).stat().st_size > 0, name
    assert "TEST_VECTORS" in (first / "test_vectors.h").read_text().upper()
    for other in outputs[1:]:
        assert sorted(p.name for p in other.iterdir()) == sorted(FILES)
        for name in FILES:
            assert (first / name).read_bytes() == (other / name).read_bytes(), \
                f"{name} differs between PYTHONHASHSEED runs ({first.name} vs {other.name})"
