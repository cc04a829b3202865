"""Generated C hygiene:

* on a few representative nets (RGB/_fast/basic convolutions, both pools, both inner
  products, a gray input, branches and a concat), every generated file -- nn.c with
  parameters.h and weights.h, and test_vectors.h through the self test -- builds with
  ``-Wall -Wextra -Werror`` with gcc (host self test) and with arm-none-eabi-gcc (the
  Cortex-M7 self test, built but not run here: tests/test_generated_qemu.py runs it and
  checks every catalogue net's build log is free of warnings);
* for every net of the tests/random_nets.py catalogue (so every kernel and every helper
  nn.c emits), the host self test built with ``-fsanitize=address,undefined
  -fno-sanitize-recover=all`` (firmware/host/Makefile ``SANITIZE=1``) runs every
  known-answer vector bit-exact with no sanitizer finding;
* the compile-time buffer checks in nn.c hold: an arena shrunk below the plan no longer
  compiles.

(nn.c alone under -Werror for the whole catalogue is in tests/test_generated_qemu.py.)
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from random_nets import CATALOGUE, write_random_net
from cmsisgen.cli import main
from cmsisgen.verify import build, firmware_dir, parse_output

VECTORS = 3
#: Catalogue nets that between them use every kernel family the templates emit code for.
NETS = ["rgb_ceilpool_fcplain", "fast_pools_7x7", "gray_basic_odd", "branches_concat", "nonsquare"]
WERROR = {"EXTRA_CFLAGS": "-Werror"}
PORTABLE_INCLUDE = firmware_dir() / "cmsis_nn_portable" / "Include"

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc and make needed")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
                               reason="arm-none-eabi-gcc not installed "
                                      "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")


class Models(dict):
    """Each net compiled once, on first use, with known-answer vectors: {name: OUT folder}."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> Path:
        files = write_random_net(self.root / name, name, seed=len(name))
        model = self.root / name / "model"
        result = CliRunner().invoke(main, ["compile", str(files.prototxt), str(files.weights), "-o", str(model),
                                           "--test-vectors", str(VECTORS), *files.options()])
        assert result.exit_code == 0, f"{name}: {result.output}"
        self[name] = model
        return model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    return Models(tmp_path_factory.mktemp("hygiene"))


def _no_warnings(build_dir: Path) -> None:
    log = (build_dir / "build.log").read_text()
    assert "warning:" not in log.lower(), log


@needs_gcc
@pytest.mark.parametrize("name", NETS)
def test_host_build_with_werror(models, tmp_path, name):
    build_dir = tmp_path / "host"
    program = build(models[name], "host", build_dir, extra_make_vars=WERROR)
    assert program.is_file()
    log = (build_dir / "build.log").read_text()
    assert "-Werror" in log and "-Wall -Wextra" in log and "selftest.c" in log and "nn.c" in log
    _no_warnings(build_dir)


@needs_arm
@pytest.mark.parametrize("name", NETS)
def test_cortex_m7_build_with_werror(models, tmp_path, name):
    build_dir = tmp_path / "qemu"
    program = build(models[name], "qemu", build_dir, extra_make_vars=WERROR)
    assert program.is_file()
    log = (build_dir / "build.log").read_text()
    assert "-Werror" in log and "-mcpu=cortex-m7" in log
    _no_warnings(build_dir)


@needs_gcc
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_sanitized_host_run_is_clean(models, tmp_path, name):
    build_dir = tmp_path / "asan"
    program = build(models[name], "host", build_dir, extra_make_vars={"SANITIZE": "1", **WERROR})
    assert "-fsanitize=address,undefined" in (build_dir / "build.log").read_text()
    # Leak checking needs ptrace, which containers often refuse; memory errors and UB are what
    # this test is about (the generated code allocates nothing).
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    proc = subprocess.run([str(program)], capture_output=True, text=True, timeout=300, env=env)
    findings = re.findall(r"(?m)^.*(?:runtime error|AddressSanitizer|UndefinedBehaviorSanitizer).*$", proc.stderr)
    assert not findings, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = parse_output(proc.stdout)
    assert result.total == VECTORS and result.passed == VECTORS, proc.stdout


@needs_gcc
def test_arena_smaller_than_the_plan_does_not_compile(models, tmp_path):
    """nn.c asserts at compile time that every buffer fits the arena: compiled with the arena
    size overridden below the plan, it must fail to compile (and compile as generated)."""
    model = models["branches_concat"]
    nn_c = (model / "nn.c").read_text()
    match = re.search(r"(?m)^#define NN_ARENA_BYTES (\d+)", nn_c)
    assert match, "nn.c defines NN_ARENA_BYTES"
    arena = int(match.group(1))
    compile_cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                   "-I", str(model), "-I", str(PORTABLE_INCLUDE)]
    ok = subprocess.run([*compile_cmd, str(model / "nn.c")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    shrunk = tmp_path / "nn.c"
    shrunk.write_text(nn_c.replace(f"#define NN_ARENA_BYTES {arena}", f"#define NN_ARENA_BYTES {arena - 4}", 1))
    bad = subprocess.run([*compile_cmd, str(shrunk)], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "nn_plan_" in bad.stderr and "_fits" in bad.stderr, bad.stderr
