"""The Cortex-M55 (Helium/MVE) target: firmware/qemu_m55 on QEMU's mps3-an547, reached through
``cmsisgen verify --target qemu-m55``.

The normal suite runs the example and a few catalogue nets with the portable kernels (a few
QEMU runs: CI time stays modest); every s8 catalogue net against upstream CMSIS-NN v7.0.0
built for Cortex-M55 (its MVE paths) is opt-in, with ``CMSIS_NN_PATH`` set.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cmsisgen.cli import main
from s8_harness import qemu_available, upstream_path
from caffe_models import write_model
from test_s8_cpu import ROW_NET
from test_s8_pipeline import EXAMPLE_ARGS, S8_CATALOGUE, _catalogue_args

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")
needs_upstream = pytest.mark.skipif(upstream_path() is None or not qemu_available(),
                                    reason="CMSIS_NN_PATH does not point at CMSIS-NN v4.1+ (or no QEMU)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def verify_m55(args, *options, vectors: int = 2) -> str:
    result = run("verify", *args, "--vectors", vectors, "--target", "qemu-m55", *options)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{vectors}/{vectors} vectors bit-exact"
    assert "and the output checksum of each of" in result.stdout
    assert any(line.startswith("instructions per inference: ") for line in lines)
    return result.stdout


@needs_qemu
def test_example_s8_portable_bit_exact(monkeypatch):
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    verify_m55(EXAMPLE_ARGS, "--backend", "s8")


@needs_qemu
def test_example_q7_portable_bit_exact(monkeypatch):
    """The q7 API's portable kernels are plain C: they run on the Cortex-M55 as on the M7."""
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    verify_m55(EXAMPLE_ARGS)


def test_q7_upstream_refused_on_m55(tmp_path):
    result = run("verify", *EXAMPLE_ARGS, "--target", "qemu-m55", "--cmsis-nn-path", tmp_path)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "cmsisgen: error: --target qemu-m55: the q7 backend runs there with the portable kernels only "
        "(CMSIS_5 5.9.0 built for Cortex-M55 is not verified); unset --cmsis-nn-path/CMSIS_NN_PATH or use "
        "--backend s8"]


@needs_qemu
@pytest.mark.parametrize("name", S8_CATALOGUE)
def test_catalogue_s8_portable_bit_exact(tmp_path, monkeypatch, name):
    """Every catalogue net with the portable kernels built for Helium: the MVE contract
    (scratch sizes, kernel sums, the 1xN padding rule) in CI, as issue 16 asks."""
    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    verify_m55(_catalogue_args(tmp_path, name), "--backend", "s8")


@needs_upstream
def test_example_s8_upstream_bit_exact():
    verify_m55(EXAMPLE_ARGS, "--backend", "s8")


@needs_upstream
@pytest.mark.parametrize("name", S8_CATALOGUE)
def test_catalogue_s8_upstream_bit_exact(tmp_path, name):
    """Opt-in (CMSIS_NN_PATH at v7.0.0): every s8 catalogue net against upstream's MVE paths."""
    verify_m55(_catalogue_args(tmp_path, name), "--backend", "s8")


@needs_qemu
@pytest.mark.parametrize("library", ["portable", pytest.param("upstream", marks=needs_upstream)])
def test_one_row_convolution_with_caffe_padding(tmp_path, monkeypatch, library):
    """The MVE arm_convolve_1_x_n_s8 fails for this padding: the code calls arm_convolve_s8."""
    if library == "portable":
        monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    proto, weights = write_model(tmp_path, ROW_NET, input_shape=(1, 1, 16))
    verify_m55([proto, weights], "--backend", "s8", vectors=3)
