"""run_nn() returns the first failing CMSIS-NN status and leaves the scores alone.

The mapper never emits a _fast call whose preconditions fail, so the failure is provoked
by editing the generated parameters.h the way a careless hand edit would: the _fast
kernel then returns ARM_MATH_SIZE_MISMATCH without writing, and run_nn() must pass that
status up instead of carrying on with stale buffers.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from caffe_models import layer, write_model
from cmsisgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware" / "cmsis_nn_portable"

MAIN_C = r"""
#include <stdio.h>
#include <string.h>
#include "nn.h"
int main(void)
{
    static uint8_t image[NN_INPUT_BUFFER_SIZE];
    q7_t scores[NN_OUTPUT_SIZE];
    int i, untouched = 1;
    memset(image, 200, sizeof(image));
    memset(scores, 0x55, sizeof(scores));
    arm_status status = run_nn(image, scores);
    for (i = 0; i < NN_OUTPUT_SIZE; i++) untouched &= scores[i] == 0x55;
    printf("status %d untouched %d\n", (int)status, untouched);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")
@pytest.mark.parametrize("broken, expected", [(None, "status 0 untouched 0"),
                                              ("CONV2_OUT_CH 4", "status -3 untouched 1")])
def test_run_nn_returns_first_failing_status(tmp_path: Path, broken, expected):
    proto, weights = write_model(tmp_path, [
        layer("conv1", "Convolution", num_output=8, kernel_size=3, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("conv2", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("ip1", "InnerProduct", num_output=5),
    ], input_shape=(3, 6, 6))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compile", str(proto), str(weights), "-o", str(out)])
    assert result.exit_code == 0, result.output
    nn_c = (out / "nn.c").read_text()
    assert "arm_convolve_HWC_q7_fast(" in nn_c
    if broken:
        params = out / "parameters.h"
        text = params.read_text()
        assert f"#define {broken}\n" in text
        params.write_text(text.replace(f"#define {broken}\n", "#define CONV2_OUT_CH 3\n"))
    (tmp_path / "main.c").write_text(MAIN_C)
    exe = tmp_path / "status"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", f"-I{KERNELS / 'Include'}", f"-I{out}",
                    str(tmp_path / "main.c"), str(out / "nn.c"), str(out / "weights.c"), *map(str, sorted((KERNELS / "Source").glob("*.c"))),
                    "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == expected
