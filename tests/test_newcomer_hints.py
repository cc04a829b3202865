"""Mistakes a newcomer makes get a hint (issue 11, item 15): MODEL and WEIGHTS swapped, and
``make flash`` without a programmer installed. (Greyscale images for a colour network and
--bgr on a 1-channel network: tests/test_image_input.py.)"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from caffe_models import layer, write_model
from cli_run import run

REPO = Path(__file__).resolve().parent.parent
LAYERS = [layer("conv1", "Convolution", num_output=4, kernel_size=3), layer("ip1", "InnerProduct", num_output=3)]
SWAPPED_MODEL = "is this the weights file? give the prototxt first, then the weights"
SWAPPED_WEIGHTS = "is this the prototxt? give the prototxt first, then the weights"


pytestmark = pytest.mark.usefixtures("cli_tmp")


def error_line(*args) -> str:
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("fmt", ["binary", "h5"])
def test_weights_given_as_the_model(fmt):
    proto, weights = write_model(Path("."), LAYERS, weights_format=fmt)
    assert error_line("compile", weights, proto, "-o", "out").endswith(f"; {SWAPPED_MODEL}")


def test_prototxt_given_as_the_weights():
    proto, _ = write_model(Path("."), LAYERS)
    assert error_line("compile", proto, proto, "-o", "out") == (
        "cmsisgen: error: model.prototxt: not a readable .caffemodel (Error parsing message with type "
        f"'cmsisgen.caffe.NetParameter': Wire format was corrupt); {SWAPPED_WEIGHTS}")


def test_other_binary_files_get_no_hint():
    proto, _ = write_model(Path("."), LAYERS)
    Path("noise.bin").write_bytes(bytes(range(256)))
    assert "?" not in error_line("compile", "noise.bin", "noise.bin", "-o", "out")
    Path("text.caffemodel").write_text("hello\n")
    assert "?" not in error_line("compile", proto, "text.caffemodel", "-o", "out")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("tool", ["", "FLASH_TOOL=st-flash"])
def test_make_flash_without_a_programmer_says_what_to_install(tool):
    proto, weights = write_model(Path("."), LAYERS)
    result = run("compile", proto, weights, "-o", "out", "--test-vectors", "1")
    assert result.exit_code == 0, result.output
    args = ["make", "-s", "-C", str(REPO / "firmware" / "stm32f7"), "flash", f"MODEL_DIR={Path('out').resolve()}",
            "ST_FLASH=no-st-flash-here", "OPENOCD=no-openocd-here", *([tool] if tool else [])]
    proc = subprocess.run(args, capture_output=True, text=True)
    missing = "no-st-flash-here" if tool else "no-openocd-here"
    assert proc.returncode != 0
    assert proc.stderr.splitlines()[0] == (
        f"make flash: '{missing}' not found: install st-flash (stlink-tools; apt-get install stlink-tools) or "
        "OpenOCD (apt-get install openocd), or set ST_FLASH=/path/to/st-flash or OPENOCD=/path/to/openocd")
    assert not Path("out/build").exists()  # checked before anything is built
