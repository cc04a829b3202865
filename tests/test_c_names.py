"""Generated C names are unique by construction, and model text is safe in comments and strings.

The failure these guard against was silent: a Convolution `x` and a PReLU `x_out` both gave
`X_OUT_CH` (4 and 8); gcc only warned "redefined" and the program computed the wrong thing.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model
from cmsisgen.c_names import c_comment, c_string, check_unique, unique_prefixes
from cmsisgen.cli import main
from cmsisgen.verify import build_and_run

HAVE_GCC = shutil.which("gcc") is not None

#: Layer names whose C prefixes extend each other or enter other namespaces.
CLASHING = [
    layer("x", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("x_out", "PReLU", "x", "x_out"),
    layer("x_out_ch", "Convolution", "x_out", "x_out_ch", num_output=8, kernel_size=1),
    layer("int8", "LRN", "x_out_ch", "int8", local_size=3, alpha=1.0, beta=0.75),  # INT8_WIDTH is C23's
    layer("arm", "Sigmoid", "int8", "arm"),
    layer('we"ird??/', "Convolution", "arm", "weird", num_output=4, kernel_size=1),
    layer("nn", "InnerProduct", "weird", "nn", num_output=3),
]


def test_prefixes_never_extend_each_other():
    assert unique_prefixes(["X", "X_OUT", "X_OUT_CH", "XOUT", "INT8", "NN", "NN_INPUT", "ARM_MATH"],
                           owned={"NN_INPUT"}) == \
        ["X", "XOUT", "XOUTCH", "XOUT2", "L_INT8", "L_NN", "NN_INPUT", "L_ARM_MATH"]


def test_a_renamed_prefix_stays_out_of_foreign_namespaces():
    """I_NT8 beside I would become INT8 (and an LRN's INT8_WIDTH is C23's): it gets L_ too."""
    assert unique_prefixes(["NN_INPUT", "I", "I_NT8", "U", "U_INT16", "S", "S_IZE"], owned={"NN_INPUT"}) == \
        ["NN_INPUT", "I", "L_INT8", "U", "L_UINT16", "S", "L_SIZE"]


def test_text_is_safe_in_comments_and_strings():
    assert c_comment("a*/b/*c??/") == "a* /b/ *c? ?/"
    assert c_string('we"ird??/\\\n') == 'we\\"ird\\?\\?/\\\\\\012'


def test_duplicate_definitions_are_a_bug():
    with pytest.raises(AssertionError, match="X_OUT_CH"):
        check_unique({"parameters.h": "#define X_OUT_CH 4\n#define X_OUT_CH 8\n"})


@pytest.fixture
def clashing_model(tmp_path):
    proto, weights = write_model(tmp_path, CLASHING, input_shape=(3, 6, 6))
    x = np.random.default_rng(2).integers(0, 256, size=(8, 6, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "calib.npz", x=x, y=np.zeros(8, dtype=int))
    return proto, weights, tmp_path / "calib.npz"


def test_clashing_layer_names_compile_to_unique_names(clashing_model, tmp_path):
    proto, weights, calib = clashing_model
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["-q", "compile", str(proto), str(weights), "-o", str(out), "--calib",
                                       str(calib), "--test-vectors", "4"])
    assert result.exit_code == 0, result.output
    params = (out / "parameters.h").read_text()
    for macro in ("#define X_OUT_CH 4", "#define XOUT_CH 4", "#define XOUTCH_OUT_CH 8", "#define L_INT8_WIDTH 6",
                  "#define L_ARM_SIZE", "#define L_NN_NUM_ROWS 3"):
        assert macro in params
    assert '"we_ird\\?\\?/"' in (out / "test_vectors.h").read_text()  # the prototxt writer replaces the quote


@pytest.mark.skipif(not HAVE_GCC, reason="gcc not found")
def test_clashing_layer_names_run_bit_exact(clashing_model, tmp_path):
    """Built with -std=c99 (trigraphs on) -Wall -Wextra -Werror on the host: every vector and step exact."""
    proto, weights, calib = clashing_model
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["-q", "compile", str(proto), str(weights), "-o", str(out), "--calib",
                                     str(calib), "--test-vectors", "4"]).exit_code == 0
    result = build_and_run(out, "host", tmp_path / "build")
    assert (result.passed, result.total) == (4, 4)
    trigraphs = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                                "-I", str(out), "-x", "c", "-"], input='#include "test_vectors.h"\n',
                               capture_output=True, text=True)
    assert "trigraph" not in trigraphs.stderr
