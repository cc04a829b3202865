"""Known-answer vectors are computed in batches: memory grows with the vectors, not with
the network's intermediate tensors times their number (issue 11, item 14)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from caffe_models import layer, write_model
from cmsisgen import vectors
from cmsisgen.cli import main
from cmsisgen.pipeline import compile_model
from cmsisgen.simulator import execute as simulator

LAYERS = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
]


def test_vectors_are_simulated_in_batches_and_match_one_pass(tmp_path, monkeypatch):
    compiled = compile_model(*write_model(tmp_path, LAYERS, input_shape=(3, 8, 8)))
    sizes = []
    real_run, real_sums = simulator.run_program, simulator.step_checksums

    def run_program(program, images, *args, **kwargs):
        sizes.append(len(images))
        return real_run(program, images, *args, **kwargs)

    def step_checksums(program, images):
        sizes.append(len(images))
        return real_sums(program, images)

    monkeypatch.setattr(vectors, "BATCH", 4)
    monkeypatch.setattr(simulator, "run_program", run_program)
    monkeypatch.setattr(simulator, "step_checksums", step_checksums)
    made = vectors.make_test_vectors(compiled, None, 11)
    assert sizes == [4, 4, 4, 4, 3, 3]
    images = compiled.pre.prepare_images(made.inputs, 8, 8)
    np.testing.assert_array_equal(made.expected, real_run(compiled.program, images))
    np.testing.assert_array_equal(made.step_checksums, real_sums(compiled.program, images))
    assert made.inputs.shape == (11, 8, 8, 3) and made.labels.tolist() == [-1] * 11


def test_a_vector_count_too_large_is_a_user_error(tmp_path):
    proto, weights = write_model(tmp_path, LAYERS, input_shape=(3, 8, 8))
    for option in ("--test-vectors", "--vectors"):
        command = "compile" if option == "--test-vectors" else "verify"
        args = [command, str(proto), str(weights), *(["-o", str(tmp_path / "o")] if command == "compile" else []),
                option, "99999999999999999999"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"cmsisgen: error: {command}: Invalid value for '{option}': 99999999999999999999 is not in the range "
            f"{'0' if command == 'compile' else '1'}<=x<=2147483647 (see 'main {command} --help')"]
    assert not Path(tmp_path / "o").exists()
