"""`cmsisgen compile --check`: the CI guard that committed generated code matches the model."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model
from cmsisgen.cli import main

LAYERS = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
    layer("ip1", "InnerProduct", num_output=3),
]


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def compiled(tmp_path: Path):
    prototxt, weights = write_model(tmp_path, LAYERS, input_shape=(3, 8, 8))
    out = tmp_path / "out"
    result = run("compile", prototxt, weights, "-o", out)
    assert result.exit_code == 0, result.output
    return prototxt, weights, out


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_check_passes_on_fresh_output_and_writes_nothing(compiled):
    prototxt, weights, out = compiled
    before = tree(out)
    result = run("compile", prototxt, weights, "-o", out, "--check")
    assert result.exit_code == 0, result.output
    assert f"{out}: up to date" in result.output
    assert tree(out) == before


def test_check_names_changed_missing_and_leftover_files(compiled):
    prototxt, weights, out = compiled
    assert run("compile", prototxt, weights, "-o", out, "--test-vectors", "1").exit_code == 0
    (out / "weights.h").write_text("// edited by hand\n")
    (out / "nn.h").unlink()
    before = tree(out)
    result = run("compile", prototxt, weights, "-o", out, "--check")
    assert result.exit_code != 0
    assert (f"{out}: generated files are stale: nn.h, test_vectors.h, weights.h "
            "(re-run without --check to regenerate)") in result.output
    assert tree(out) == before


def test_check_detects_a_changed_model(compiled, tmp_path):
    prototxt, _, out = compiled
    (tmp_path / "other").mkdir()
    _, other_weights = write_model(tmp_path / "other", LAYERS, input_shape=(3, 8, 8), seed=7)
    result = run("compile", prototxt, other_weights, "-o", out, "--check")
    assert result.exit_code != 0
    assert "weights.c" in result.output and "generated files are stale" in result.output


def test_check_of_a_missing_folder_names_every_file(compiled, tmp_path):
    prototxt, weights, _ = compiled
    result = run("compile", prototxt, weights, "-o", tmp_path / "nowhere", "--check")
    assert result.exit_code != 0
    assert "generated files are stale: nn.c, nn.h, parameters.h, weights.c, weights.h" in result.output
    assert not (tmp_path / "nowhere").exists()
