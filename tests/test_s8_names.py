"""The s8 backend's generated files speak int8, not q7: nn.h defines none of CMSIS-DSP's legacy
names (q7_t, arm_status, ARM_MATH_SUCCESS), so an application may include arm_math_types.h
before or after it; the input step, its buffer and the comments are named for int8 with a
scale and zero point (the project's own byte-moving kernels keep their q7 names: they are the
q7 backend's C, shared)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from caffe_models import layer as L
from caffe_models import write_model
from cmsisgen.cli import main
from random_nets import write_random_net

ROOT = Path(__file__).resolve().parents[1]
NET = [L("conv1", "Convolution", num_output=4, kernel_size=3, pad=1), L("relu1", "ReLU", inplace=True),
       L("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2), L("ip1", "InnerProduct", num_output=5),
       L("prob", "Softmax")]
#: CMSIS-DSP's arm_math_types.h as far as the legacy names go (guard, types and status enum).
ARM_MATH_TYPES = """\
#ifndef _ARM_MATH_TYPES_H_
#define _ARM_MATH_TYPES_H_
#include <stdint.h>
typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;
typedef enum { ARM_MATH_SUCCESS = 0, ARM_MATH_ARGUMENT_ERROR = -1 } arm_status;
#endif
"""
GENERATED = ("nn.c", "nn.h", "parameters.h", "weights.c", "weights.h", "test_vectors.h")


def _compile(tmp_path: Path, *args) -> Path:
    out = tmp_path / "s8"
    result = CliRunner().invoke(main, ["-q", "compile", *map(str, args), "-o", str(out), "--backend", "s8",
                                       "--test-vectors", "2"])
    assert result.exit_code == 0, result.output
    return out


def _code(text: str) -> str:
    """C text without its comments."""
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def test_nn_h_defines_no_legacy_names(tmp_path):
    proto, weights = write_model(tmp_path, NET)
    nn_h = (_compile(tmp_path, proto, weights) / "nn.h").read_text()
    assert "typedef" not in nn_h and "ARM_MATH_SUCCESS" not in nn_h and "arm_status" not in _code(nn_h)
    assert "arm_cmsis_nn_status run_nn(uint8_t *image, int8_t *scores);" in nn_h
    assert "void NN_TRACE(uint32_t step, const int8_t *data, uint32_t size);" in nn_h


@pytest.mark.parametrize("order", ("dsp_first", "dsp_after"))
def test_arm_math_types_h_before_or_after_nn_h_builds(tmp_path, order):
    """An application including CMSIS-DSP's types next to nn.h (C99, pedantic, -Werror)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    proto, weights = write_model(tmp_path, NET)
    out = _compile(tmp_path, proto, weights)
    (tmp_path / "arm_math_types.h").write_text(ARM_MATH_TYPES)
    includes = ['#include "arm_math_types.h"', '#include "nn.h"']
    (tmp_path / "app.c").write_text("\n".join(includes if order == "dsp_first" else includes[::-1]) + """
int app(uint8_t *image, q7_t *scores);
int app(uint8_t *image, q7_t *scores)
{
    arm_status dsp = ARM_MATH_SUCCESS;
    return (int)run_nn(image, scores) + (int)dsp;
}
""")
    include = ROOT / "firmware" / "cmsis_nn_s8_portable" / "Include"
    subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", f"-I{out}",
                    f"-I{include}", "-c", str(tmp_path / "app.c"), "-o", str(tmp_path / "app.o")], check=True)


@pytest.mark.parametrize("name", ("example", "pointwise_lookup", "face_onet_3heads", "shufflenet_unit"))
def test_generated_files_name_int8_not_q7(tmp_path, name):
    """No q7 type, Q format, q7 input step or NN_INPUT_Q7 buffer in any generated file (the
    own kernels' calls keep their names: nn_copy_strided_q7 and the like)."""
    if name == "example":
        example = ROOT / "examples" / "cifar10"
        args = [example / "cifar10.prototxt", example / "cifar10.caffemodel", "--mean", example / "mean.binaryproto",
                "--scale", "0.015625", "--calib", example / "images" / "train-2000.zip", "--calib-limit", "20"]
    else:
        files = write_random_net(tmp_path / "net", name)
        args = [files.prototxt, files.weights, "--calib", files.calib]
    out = _compile(tmp_path, *args)
    for file in GENERATED:
        text = (out / file).read_text()
        assert not re.findall(r".*(?:q7_t|Q7|Q-?\d+\.\d|FRAC_BITS|ARM_MATH(?!_MVEI)|arm_status).*", _code(text)), file
        assert not re.findall(r".*(?:\bq7\b|Q-?\d+\.\d|Qm\.n|FRAC_BITS|NN_INPUT_Q7|nn_input_q7).*", text), file
        assert not re.findall(r"\bnn_\w+_q7\b", _code(text).replace("nn_copy_strided_q7", "")
                              .replace("nn_upsample_nearest_q7", "").replace("nn_lrn_across_q7", "")), file
    nn_c = (out / "nn.c").read_text()
    assert "static void nn_input_s8(uint8_t *image)\n" in nn_c and "    nn_input_s8(image);\n" in nn_c
    assert "NN_TRACE(0u, NN_INPUT_S8, " in nn_c
    parameters = (out / "parameters.h").read_text()
    assert re.search(r"\n#define NN_INPUT_SCALE [0-9.e+-]+\n#define NN_INPUT_ZERO_POINT -?\d+\n", parameters)
    assert " * Layer dimensions and quantization. Every activation is int8 with a scale and a zero\n" in parameters
    assert "static const int8_t nn_test_expected[NN_TEST_VECTOR_COUNT][NN_TEST_OUTPUT_SIZE]" in \
        (out / "test_vectors.h").read_text()
