"""A CIFAR-10-sized model builds for the STM32F746G-DISCO warning-free and fits the part.

The model is examples/cifar10 when its trained cifar10.caffemodel is present, else the same
topology with random weights (tests/random_nets.py: CIFAR10). It is compiled with
``cmsisgen compile --test-vectors 4`` and built with ``make -C firmware/stm32f7`` (portable
kernels; upstream too when CMSIS_NN_PATH is set), under tmp_path only. The link must be
warning-free and ``make size`` must report flash and RAM totals within the STM32F746's
1 MB flash and 320 KB RAM. Nothing is run: there is no board here.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from random_nets import CIFAR10, write_random_net

from cmsisgen.verify import firmware_dir

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "cifar10"
FLASH_BYTES = 1024 * 1024
RAM_BYTES = 320 * 1024
VECTORS = 4

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
    reason="arm-none-eabi-gcc (and make) not installed: apt-get install gcc-arm-none-eabi "
           "libnewlib-arm-none-eabi")

KERNEL_ENV = ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE", "CMSIS_NN_PORTABLE")

# CIFAR-10 topology weight bytes: conv1 3*25*32+32, conv2 32*25*16+16, conv3 16*25*32+32,
# ip1 (4*4*32)*10+10
CIFAR_WEIGHT_BYTES = 2432 + 12816 + 12832 + 5130


@pytest.fixture(scope="module")
def cifar_model(tmp_path_factory) -> tuple[Path, str]:
    """(model folder written by cmsisgen compile, description)."""
    from click.testing import CliRunner

    from cmsisgen.cli import main

    work = tmp_path_factory.mktemp("cifar")
    trained = EXAMPLE / "cifar10.caffemodel"
    if trained.is_file():
        files = write_random_net(work, CIFAR10)  # only for its calibration .npz
        args = [str(EXAMPLE / "cifar10.prototxt"), str(trained), "--calib", str(files.calib),
                "--mean", "125.3,123.0,113.9", "--scale", "0.015625"]
        what = "examples/cifar10 (trained)"
    else:
        files = write_random_net(work, CIFAR10, seed=3)
        args = [str(files.prototxt), str(files.weights), *files.options()]
        what = "CIFAR-10 topology, random weights"
    out = work / "model"
    result = CliRunner().invoke(main, ["compile", *args, "-o", str(out), "--test-vectors", str(VECTORS)])
    assert result.exit_code == 0, result.output
    assert (out / "test_vectors.h").is_file()
    return out, what


def _make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(firmware_dir() / "stm32f7"), *args], capture_output=True,
                          text=True, timeout=900, env=env)


def _totals(size_output: str) -> dict[str, tuple[int, int]]:
    """{'Flash': (bytes, device KB), 'RAM': (...)} from the size report's total lines."""
    found: dict[str, tuple[int, int]] = {}
    section = None
    for line in size_output.splitlines():
        if line.strip() in ("Flash", "RAM"):
            section = line.strip()
        m = re.match(r"^\s+total\s+(\d+)\s+100\.0\s+\(\d+(?:\.\d+)?% of (\d+) KB\)\s*$", line)
        if m and section:
            found[section] = (int(m[1]), int(m[2]))
    return found


KERNELS = [
    pytest.param("portable", id="portable"),
    pytest.param("upstream", id="upstream", marks=pytest.mark.skipif(
        not os.environ.get("CMSIS_NN_PATH"),
        reason="opt-in: set CMSIS_NN_PATH (and CMSIS_CORE_PATH, CMSIS_DSP_INCLUDE) to upstream CMSIS-NN")),
]


@pytest.mark.parametrize("kernels", KERNELS)
def test_stm32f746_build_warning_free_and_fits(cifar_model, tmp_path, kernels):
    model_dir, what = cifar_model
    env = dict(os.environ)
    if kernels == "portable":
        for name in KERNEL_ENV:  # make would pick an upstream CMSIS_NN_PATH from the environment
            env.pop(name, None)
    build_dir = tmp_path / "stm32f7"
    variables = [f"MODEL_DIR={model_dir}", f"BUILD_DIR={build_dir}"]

    proc = _make(*variables, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{what}: stm32f7 build failed\n{log}"
    warnings = [line for line in log.splitlines() if "warning:" in line.lower()]
    assert not warnings, f"{what}: build warnings\n" + "\n".join(warnings)
    for suffix in (".elf", ".bin", ".hex", ".map"):
        assert (build_dir / f"nn_selftest{suffix}").is_file()
    # single-precision FPU (FPv5-SP-D16): the build says so and the ELF's attributes agree
    assert "-mfpu=fpv5-sp-d16" in log and "-mfpu=fpv5-d16" not in log
    if shutil.which("arm-none-eabi-readelf"):
        attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(build_dir / "nn_selftest.elf")],
                               capture_output=True, text=True).stdout
        assert re.search(r"Tag_ABI_HardFP_use:\s+SP only", attrs), attrs
    marker = "cmsis_nn_portable" if kernels == "portable" else str(Path(env["CMSIS_NN_PATH"]).resolve())
    assert marker in log, f"{kernels} kernels were not built/linked"
    # vector table: initial SP in RAM, Thumb reset vector in flash
    image = (build_dir / "nn_selftest.bin").read_bytes()
    sp, reset = int.from_bytes(image[0:4], "little"), int.from_bytes(image[4:8], "little")
    assert 0x20000000 < sp <= 0x20000000 + RAM_BYTES
    assert 0x08000000 <= reset < 0x08000000 + FLASH_BYTES and reset & 1

    proc = _make("size", *variables, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "warning:" not in out.lower(), out
    totals = _totals(out)
    assert set(totals) == {"Flash", "RAM"}, f"size report without flash/RAM totals:\n{out}"
    flash, flash_kb = totals["Flash"]
    ram, ram_kb = totals["RAM"]
    assert (flash_kb, ram_kb) == (1024, 320), out
    assert 0 < flash <= FLASH_BYTES, f"{what}: {flash} bytes of flash do not fit 1 MB\n{out}"
    assert 0 < ram <= RAM_BYTES, f"{what}: {ram} bytes of RAM do not fit 320 KB\n{out}"
    weights = int(re.search(r"weights \(model \.rodata\)\s+(\d+)", out)[1])
    activations = int(re.search(r"activation buffers\s+(\d+)", out)[1])
    assert weights >= CIFAR_WEIGHT_BYTES, out
    assert activations >= 32 * 32 * 32, out  # conv1's 32x32x32 output lives in the arena
    # Berkeley text+data / data+bss agree with the table's totals
    berkeley = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\S*nn_selftest\.elf", out, re.M)
    assert berkeley, out
    text, data, bss = (int(v) for v in berkeley.groups())
    assert flash == text + data and ram == data + bss, out


def test_stm32f746_builds_a_net_with_several_outputs(tmp_path):
    """A face-detection-like net with three heads (issue 12, item 2): the self test calls
    run_nn() with one pointer per output (test_vectors.h's NN_TEST_RUN) and links warning-free."""
    from click.testing import CliRunner

    from cmsisgen.cli import main

    files = write_random_net(tmp_path, "face_onet_3heads", seed=4)
    model_dir = tmp_path / "model"
    result = CliRunner().invoke(main, ["compile", str(files.prototxt), str(files.weights), *files.options(),
                                       "-o", str(model_dir), "--test-vectors", str(VECTORS)])
    assert result.exit_code == 0, result.output
    assert "q7_t *prob1, q7_t *conv6_2, q7_t *conv6_3);" in (model_dir / "nn.h").read_text()
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_ENV}
    build_dir = tmp_path / "stm32f7"
    proc = _make(f"MODEL_DIR={model_dir}", f"BUILD_DIR={build_dir}", env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert not [line for line in log.splitlines() if "warning:" in line.lower()], log
    assert (build_dir / "nn_selftest.elf").is_file() and (build_dir / "nn_selftest.bin").is_file()
