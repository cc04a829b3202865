"""Generated code for every network of tests/random_nets.py, built and run bit-exact.

For each catalogue net: ``cmsisgen compile --calib <npz> --test-vectors 4`` (in process,
through the click CLI), then

* the known-answer self test (scores and every step's output checksum) on an emulated
  Cortex-M7 (``verify.build_and_run(target="qemu")``,
  portable kernels, arm-none-eabi-gcc + qemu-system-arm mps2-an500) and on the host (gcc),
  every vector bit-exact and the make log free of warnings;
* nn.c alone compiled with ``-Wall -Wextra -Werror`` by gcc and by arm-none-eabi-gcc;
* opt-in: the same catalogue against upstream CMSIS-NN on QEMU, when ``CMSIS_NN_PATH``
  (and ``CMSIS_CORE_PATH``, ``CMSIS_DSP_INCLUDE`` for CMSIS_5 5.9.0) are set. Upstream's DSP
  build is what the simulator models, so every net must be bit-exact, average pooling
  included.

Sharing: each net is compiled once per session. The firmware Makefiles put objects under
``$(BUILD_DIR)/obj/<absolute source path>``, so after the first build of a (target, kernels)
pair its kernel objects are copied (timestamps kept) into the next build folder and make
finds them up to date; only the model, self test and platform files are rebuilt. Only kernel
objects are shared: the self test's objects include the model's headers and are always
rebuilt. If the Makefile's layout ever changes the copy is simply not used (slower, not wrong).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from random_nets import ALL_FUNCTIONS, CATALOGUE, write_random_net

from cmsisgen.verify import build_and_run, firmware_dir, format_result

VECTORS = 4
NETS = sorted(CATALOGUE)
PORTABLE = firmware_dir() / "cmsis_nn_portable"
ARM_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
WERROR = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]

HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = HAVE_ARM and shutil.which("qemu-system-arm") is not None and shutil.which("make") is not None

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="host gcc and make needed to build the self test")
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed "
                               "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
QEMU_MISSING = ("arm-none-eabi-gcc or qemu-system-arm not installed "
                "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")

UPSTREAM_NN = os.environ.get("CMSIS_NN_PATH")
UPSTREAM_CORE = os.environ.get("CMSIS_CORE_PATH")
UPSTREAM_DSP = os.environ.get("CMSIS_DSP_INCLUDE")
needs_upstream = pytest.mark.skipif(
    not UPSTREAM_NN, reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS/NN (CMSIS_5 5.9.0: also "
    "CMSIS_CORE_PATH=.../CMSIS/Core/Include and CMSIS_DSP_INCLUDE=.../CMSIS/DSP/Include)")


# ----------------------------------------------------------------------- shared fixtures

class CompiledNets:
    """Each catalogue net compiled once per session: {name: model folder}."""

    def __init__(self, root: Path):
        self.root = root
        self.dirs: dict[str, Path] = {}
        self.reports: dict[str, dict] = {}

    def get(self, name: str) -> Path:
        if name not in self.dirs:
            from click.testing import CliRunner

            from cmsisgen.cli import main

            work = self.root / name
            files = write_random_net(work, name, seed=sum(map(ord, name)) % 97)
            out = work / "model"
            report = work / "report.json"
            result = CliRunner().invoke(main, [
                "compile", str(files.prototxt), str(files.weights), "-o", str(out), "--report", str(report),
                "--test-vectors", str(VECTORS), *files.options()])
            assert result.exit_code == 0, f"{name}: cmsisgen compile failed:\n{result.output}"
            self.dirs[name] = out
            self.reports[name] = json.loads(report.read_text())
        return self.dirs[name]

    def functions(self, name: str) -> set[str]:
        self.get(name)
        return {row["function"] for row in self.reports[name]["layers"]}


@pytest.fixture(scope="session")
def nets(tmp_path_factory) -> CompiledNets:
    return CompiledNets(tmp_path_factory.mktemp("catalogue"))


class KernelObjectCache:
    """Kernel objects of the first build per (target, kernel folder), copied into later builds."""

    def __init__(self):
        self.first: dict[tuple[str, str], Path] = {}

    @staticmethod
    def _subtree(build_dir: Path, kernels: Path) -> Path:
        return build_dir / "obj" / str(kernels.resolve()).lstrip("/")

    def build_and_run(self, model_dir: Path, target: str, build_dir: Path, kernels: Path, **kwargs):
        key = (target, str(kernels.resolve()))
        seed = self.first.get(key)
        if seed is not None and self._subtree(seed, kernels).is_dir():
            shutil.copytree(self._subtree(seed, kernels), self._subtree(build_dir, kernels),
                            copy_function=shutil.copy2, ignore=shutil.ignore_patterns("*.d"),
                            dirs_exist_ok=True)
        result = build_and_run(model_dir, target=target, build_dir=build_dir, **kwargs)
        # the link line names every object: the intended kernels were linked
        subtree = str(self._subtree(build_dir, kernels))
        assert subtree in (build_dir / "build.log").read_text(), f"{kernels} not linked"
        self.first.setdefault(key, build_dir)
        return result


@pytest.fixture(scope="session")
def kernel_cache() -> KernelObjectCache:
    return KernelObjectCache()


KERNEL_ENV = ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE", "CMSIS_NN_PORTABLE")


@pytest.fixture
def portable_env(monkeypatch):
    """make reads CMSIS_NN_PATH & co. from the environment, and build_and_run(cmsis_nn_path=None)
    does not clear them: without this a portable run would silently link upstream kernels."""
    for name in KERNEL_ENV:
        monkeypatch.delenv(name, raising=False)


def assert_bit_exact(result, name: str, build_dir: Path, nets: "CompiledNets") -> None:
    summary = format_result(result)
    # the scores of every output were compared (the header's ", outputs K" with several)
    assert result.outputs == len(nets.reports[name]["outputs"]), f"{name}: outputs compared\n{result.output}"
    assert result.passed == result.total == VECTORS, f"{name} on {result.target}:\n{summary}\n{result.output}"
    assert result.exit_code == 0, f"{name}: exit status {result.exit_code}\n{result.output}"
    assert [v.index for v in result.vectors] == list(range(VECTORS))
    # every step of run_nn() was checksummed (NN_TRACE + nn_test_step_checksums), not just the scores
    assert result.steps_checked and result.steps_checked >= 2, f"{name}: no per-step checks\n{result.output}"
    log = (build_dir / "build.log").read_text()
    warnings = [line for line in log.splitlines() if "warning:" in line.lower()]
    assert not warnings, f"{name}: build warnings:\n" + "\n".join(warnings)


# ----------------------------------------------------------------------- the catalogue itself

def test_catalogue_covers_every_kernel(nets):
    """Every net emits the functions it was designed for, and together they emit them all."""
    seen: set[str] = set()
    for name in NETS:
        used = nets.functions(name)
        missing = CATALOGUE[name].functions - used
        assert not missing, f"{name}: expected {sorted(missing)}, program uses {sorted(used)}"
        seen |= used
    assert ALL_FUNCTIONS <= seen, f"no catalogue net emits {sorted(ALL_FUNCTIONS - seen)}"
    # both kinds of planner copies: before an in-place ReLU and before a pooling layer (branches_concat's
    # relu1 runs after pool_a since max pooling and ReLU commute: the copy comes before pool_a)
    copies = {name: {row["name"] for row in nets.reports[name]["layers"] if row["function"] == "memcpy"}
              for name in ("branches_concat", "split_inplace_relu")}
    assert copies == {"branches_concat": {"pool_a", "pool_b"}, "split_inplace_relu": {"relu_s2"}}


# ----------------------------------------------------------------------- QEMU / host runs

@pytest.mark.parametrize("name", NETS)
@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason=QEMU_MISSING)
def test_qemu_portable_bit_exact(nets, kernel_cache, portable_env, tmp_path, name):
    build_dir = tmp_path / "qemu"
    result = kernel_cache.build_and_run(nets.get(name), "qemu", build_dir, PORTABLE)
    assert_bit_exact(result, name, build_dir, nets)
    assert result.counter_unit == "instructions" and result.instructions_per_inference > 0


@pytest.mark.parametrize("name", NETS)
@needs_gcc
def test_host_portable_bit_exact(nets, kernel_cache, portable_env, tmp_path, name):
    build_dir = tmp_path / "host"
    result = kernel_cache.build_and_run(nets.get(name), "host", build_dir, PORTABLE)
    assert_bit_exact(result, name, build_dir, nets)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason=QEMU_MISSING)
@needs_upstream
def test_qemu_upstream_bit_exact(nets, kernel_cache, tmp_path, name):
    """Upstream CMSIS-NN's DSP build (Cortex-M7) must match the simulator on every net."""
    upstream = Path(UPSTREAM_NN)
    build_dir = tmp_path / "qemu_upstream"
    result = kernel_cache.build_and_run(
        nets.get(name), "qemu", build_dir, upstream, cmsis_nn_path=upstream,
        cmsis_core_path=Path(UPSTREAM_CORE) if UPSTREAM_CORE else None,
        cmsis_dsp_include=Path(UPSTREAM_DSP) if UPSTREAM_DSP else None)
    assert_bit_exact(result, name, build_dir, nets)


# ----------------------------------------------------------------------- -Werror compile only

def _compile_only(compiler: list[str], model_dir: Path, obj: Path) -> None:
    cmd = [*compiler, *WERROR, "-I", str(model_dir), "-I", str(PORTABLE / "Include"),
           "-c", str(model_dir / "nn.c"), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), " ".join(cmd) + "\n" + proc.stderr


@pytest.mark.parametrize("name", NETS)
@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_nn_c_werror_gcc(nets, tmp_path, name):
    _compile_only(["gcc"], nets.get(name), tmp_path / "nn.o")


@pytest.mark.parametrize("name", NETS)
@needs_arm
def test_nn_c_werror_arm(nets, tmp_path, name):
    _compile_only(["arm-none-eabi-gcc", *ARM_FLAGS], nets.get(name), tmp_path / "nn.o")
