"""Firmware targets: host and QEMU self tests, SysTick calibration, STM32F7 build, size report.

Uses the hand-written stand-in model in tests/fixtures/standin_model (regenerate with
tests/fixtures/make_standin.py) and the project's portable kernels, firmware/cmsis_nn_portable
(the Makefiles' default). Everything is built under tmp_path; nothing is written into the
source tree.

Opt-in, like the other tests: set CMSIS_NN_PATH to an upstream CMSIS/NN folder (CMSIS_5
5.9.0: also CMSIS_CORE_PATH=.../CMSIS/Core/Include and CMSIS_DSP_INCLUDE=.../CMSIS/DSP/Include,
each defaulting to the sibling folder of CMSIS_NN_PATH) to also cross-check against upstream
kernels. Every other test here builds the portable kernels whatever the environment says.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cmsisgen.errors import CmsisgenError
from cmsisgen.sizereport import format_table, parse_map, size_report
from cmsisgen.verify import build_and_run, firmware_dir, parse_output, run

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
STANDIN = FIXTURES / "standin_model"
PORTABLE = REPO / "firmware" / "cmsis_nn_portable"
FW = REPO / "firmware"

# SysTick estimate vs exact count of run_nn(): one tick (40 instructions) of quantisation
# plus the fixed measurement overhead (the two systick_ticks() calls, ~10-25 instructions).
RUN_NN_TOLERANCE = 64

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = HAVE_ARM and shutil.which("qemu-system-arm") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed "
                               "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
needs_qemu = [pytest.mark.qemu, pytest.mark.skipif(
    not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed "
    "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")]
needs_make = pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None,
                                reason="make and gcc needed")
UPSTREAM_NN = os.environ.get("CMSIS_NN_PATH")
UPSTREAM_CORE = os.environ.get("CMSIS_CORE_PATH")
UPSTREAM_DSP = os.environ.get("CMSIS_DSP_INCLUDE")
KERNEL_ENV = ("CMSIS_NN_PATH", "CMSIS_CORE_PATH", "CMSIS_DSP_INCLUDE", "CMSIS_NN_PORTABLE")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A private copy of the stand-in model (tests may edit it)."""
    dst = tmp_path / "model"
    shutil.copytree(STANDIN, dst)
    return dst


def corrupt_expected(model_dir: Path, vector: int) -> None:
    """Change the first expected score of `vector` in test_vectors.h."""
    path = model_dir / "test_vectors.h"
    text = path.read_text()
    block_start = text.index("nn_test_expected")
    rows = list(re.finditer(r"\{(-?\d+)", text[block_start:]))
    row = rows[vector]
    value = int(row[1])
    new = value - 1 if value > -128 else value + 1
    pos = block_start + row.start(1)
    path.write_text(text[:pos] + str(new) + text[pos + len(row[1]):])


def corrupt_step_checksum(model_dir: Path, vector: int, step: int) -> None:
    """Flip the low bit of nn_test_step_checksums[vector][step] in test_vectors.h."""
    path = model_dir / "test_vectors.h"
    text = path.read_text()
    block_start = text.index("nn_test_step_checksums[")
    rows = list(re.finditer(r"\{([^{}]*)\}", text[block_start:]))
    row = rows[vector]
    values = [v.strip() for v in row[1].split(",")]
    values[step] = f"0x{int(values[step].rstrip('u'), 16) ^ 1:08x}u"
    start, end = block_start + row.start(1), block_start + row.end(1)
    path.write_text(text[:start] + ", ".join(values) + text[end:])


def drop_step_checksums(model_dir: Path) -> None:
    """test_vectors.h as generated before per-step checksums (no NN_TEST_STEP_COUNT)."""
    path = model_dir / "test_vectors.h"
    text = path.read_text()
    start = text.index("/*\n * Every step's output")
    end = text.index("#endif", start)
    path.write_text(text[:start] + text[end:])


def make(*args: str, cwd_target: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """make in firmware/<cwd_target>, without the kernel variables of the environment (make
    would otherwise build upstream CMSIS_NN_PATH instead of the portable kernels)."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_ENV}
    return subprocess.run(["make", "-C", str(FW / cwd_target), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def assert_no_warnings(build_dir: Path) -> None:
    log = (build_dir / "build.log").read_text()
    assert "warning:" not in log.lower(), log


# ---------------------------------------------------------------- output parsing / errors

def test_parse_output():
    text = ("cmsisgen selftest: 3 vectors, input 8x8x3, output 10, steps checked 3, counter instructions\n"
            "vector 0: class 1 expected 1 label 1 PASS instructions 12120\n"
            "vector 1: class 2 expected 1 label -1 FAIL instructions 12160 mismatch 0 got 5 want 4\n"
            'vector 2: class 1 expected 1 label 1 FAIL instructions 12140 step 1 "relu1 (copy)" '
            "checksum 0x0000002a want 0x0000002b traced 2 of 3 steps\n"
            "summary: 1/3 PASS, instructions per inference 12140\n")
    r = parse_output(text)
    assert (r.passed, r.total, r.steps_checked) == (1, 3, 3)
    assert r.instructions_per_inference == 12140.0
    assert r.vectors[1].detail == "mismatch 0 got 5 want 4" and not r.vectors[1].passed
    assert r.vectors[1].step is None and r.vectors[0].step is None
    v = r.vectors[2]
    assert (v.passed, v.step, v.step_name, v.steps_traced) == (False, 1, "relu1 (copy)", 2)
    # output of a self test built before per-step checksums
    old = parse_output("cmsisgen selftest: 1 vectors, input 8x8x3, output 10, counter ns\n"
                       "vector 0: class 1 expected 1 label 1 PASS ns 900\n"
                       "summary: 1/1 PASS, ns per inference 900\n")
    assert (old.passed, old.steps_checked) == (1, None)
    with pytest.raises(CmsisgenError):
        parse_output("HardFault: fault, stopping\n")
    v = parse_output("cmsisgen selftest: 1 vectors, input 8x8x3, output 10, steps checked 3, counter ns\n"
                     "vector 0: class 1 expected 1 label 1 FAIL ns 900 step 0 out of order\n"
                     "summary: 0/1 PASS, ns per inference 900\n").vectors[0]
    assert (v.passed, v.step, v.step_name) == (False, 0, None)


HEADER = "cmsisgen selftest: 2 vectors, input 8x8x3, output 10, steps checked 3, counter ns\n"
GOOD = "vector 0: class 1 expected 1 label 1 PASS ns 900\nvector 1: class 1 expected 1 label 1 PASS ns 900\n"


@pytest.mark.parametrize("output,status,problem", [
    (HEADER + GOOD + "summary: 2/2 PASS, ns per inference 900\n", 3, "exit status 3 with 2/2 PASS"),
    (HEADER + GOOD.splitlines(True)[0] + "summary: 2/2 PASS, ns per inference 900\n", 0, "1 vector lines for 2"),
    (HEADER + GOOD + GOOD + "summary: 2/2 PASS, ns per inference 900\n", 0, "4 vector lines for 2"),
    (HEADER + GOOD.replace("PASS", "FAIL", 1) + "summary: 2/2 PASS, ns per inference 900\n", 0,
     "1 PASS lines, summary says 2"),
    (GOOD + "summary: 2/2 PASS, ns per inference 900\n", 0, "no header line"),
    (HEADER + GOOD + "summary: 3/3 PASS, ns per inference 900\n", 0, "summary counts 3 vectors, the header 2"),
    (HEADER + GOOD.replace("PASS", "FAIL", 1) + "summary: 1/2 PASS, ns per inference 900\n", 0,
     "exit status 0 with 1/2 PASS"),
])
def test_inconsistent_output_is_an_error(tmp_path: Path, output: str, status: int, problem: str):
    """A summary never vouches for vectors whose lines are missing, nor for a crashed run."""
    program = tmp_path / "fake_selftest"
    (tmp_path / "out.txt").write_text(output)
    program.write_text(f"#!/bin/sh\ncat '{tmp_path / 'out.txt'}'\nexit {status}\n")
    program.chmod(0o755)
    with pytest.raises(CmsisgenError) as info:
        run(program, "host")
    message = str(info.value)
    assert problem in message and str(tmp_path / "run.log") in message and "\n" not in message


def test_consistent_output_is_accepted(tmp_path: Path):
    program = tmp_path / "fake_selftest"
    (tmp_path / "out.txt").write_text(HEADER + GOOD.replace("PASS", "FAIL", 1) +
                                      "summary: 1/2 PASS, ns per inference 900\n")
    program.write_text(f"#!/bin/sh\ncat '{tmp_path / 'out.txt'}'\nexit 1\n")
    program.chmod(0o755)
    r = run(program, "host")
    assert (r.passed, r.total, r.exit_code, r.all_passed) == (1, 2, 1, False)


def test_self_test_timeout_is_one_line_with_log(tmp_path: Path):
    program = tmp_path / "fake_selftest"
    program.write_text("#!/bin/sh\necho started\nexec sleep 30\n")
    program.chmod(0o755)
    with pytest.raises(CmsisgenError, match=r"timed out after 1 s \(log: .*run\.log\)"):
        run(program, "host", timeout=1)
    assert "started" in (tmp_path / "run.log").read_text()


def test_firmware_dir_is_the_checkout():
    assert (firmware_dir() / "host" / "Makefile").is_file()


def test_missing_test_vectors(model: Path, tmp_path: Path):
    (model / "test_vectors.h").unlink()
    with pytest.raises(CmsisgenError, match="test_vectors.h missing; compile with test_vectors N") as e:
        build_and_run(model, "host", tmp_path / "b")
    assert str(e.value.named(lambda setting: "--test-vectors")).endswith("compile with --test-vectors N")  # as the CLI says it


def test_missing_toolchain(model: Path, tmp_path: Path, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if "arm-none-eabi" in name else real_which(name, *a, **k))
    with pytest.raises(CmsisgenError, match="arm-none-eabi-gcc not found"):
        build_and_run(model, "qemu", tmp_path / "b")


def test_missing_qemu_is_reported_before_building(model: Path, tmp_path: Path, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if name == "qemu-system-arm" else real_which(name, *a, **k))
    with pytest.raises(CmsisgenError, match="qemu-system-arm not found on PATH"):
        build_and_run(model, "qemu", tmp_path / "b")
    assert not (tmp_path / "b").exists()


@needs_make
def test_build_failure_is_one_line_with_log(model: Path, tmp_path: Path):
    (model / "nn.c").write_text((model / "nn.c").read_text() + "\nthis is not C;\n")
    with pytest.raises(CmsisgenError) as info:
        build_and_run(model, "host", tmp_path / "b")
    message = str(info.value)
    assert "\n" not in message
    assert "host build failed" in message and str(tmp_path / "b" / "build.log") in message


# ---------------------------------------------------------------- host

@needs_make
def test_host_all_pass(model: Path, tmp_path: Path):
    r = build_and_run(model, "host", tmp_path / "b")
    assert (r.passed, r.total, r.exit_code) == (4, 4, 0), r.output
    assert r.instructions_per_inference is None and r.counter_unit == "ns"
    assert [v.label for v in r.vectors] == [1, 1, 1, -1]
    assert all(v.predicted == v.expected for v in r.vectors)
    assert_no_warnings(tmp_path / "b")


@needs_make
def test_host_wrong_expected_fails(model: Path, tmp_path: Path):
    corrupt_expected(model, 1)
    r = build_and_run(model, "host", tmp_path / "b")
    assert (r.passed, r.total) == (3, 4)
    assert r.exit_code != 0 and not r.all_passed
    assert [v.passed for v in r.vectors] == [True, False, True, True]
    assert "FAIL" in r.output and "mismatch 0" in r.output


@needs_make
def test_host_wrong_step_checksum_fails_naming_the_step(model: Path, tmp_path: Path):
    """Scores right, one intermediate step's checksum wrong: FAIL naming that step."""
    corrupt_step_checksum(model, vector=2, step=1)
    r = build_and_run(model, "host", tmp_path / "b")
    assert (r.passed, r.total, r.steps_checked) == (3, 4, 3), r.output
    assert [v.passed for v in r.vectors] == [True, True, False, True]
    bad = r.vectors[2]
    assert (bad.step, bad.step_name, bad.predicted) == (1, "relu1", bad.expected)
    assert "mismatch" not in bad.detail  # the scores themselves are right
    assert re.search(r'^vector 2: .* FAIL ns \d+ step 1 "relu1" checksum 0x[0-9a-f]{8} want 0x[0-9a-f]{8}$',
                     r.output, re.MULTILINE), r.output
    assert all(v.step is None for i, v in enumerate(r.vectors) if i != 2)


@needs_make
def test_host_first_wrong_step_is_reported(model: Path, tmp_path: Path):
    corrupt_step_checksum(model, vector=0, step=2)
    corrupt_step_checksum(model, vector=0, step=0)
    r = build_and_run(model, "host", tmp_path / "b")
    assert (r.vectors[0].step, r.vectors[0].step_name) == (0, "input"), r.output
    assert r.passed == 3


@needs_make
def test_host_missing_trace_call_fails(model: Path, tmp_path: Path):
    """run_nn() that skips an NN_TRACE call (steps unchecked) does not pass."""
    nn_c = model / "nn.c"
    nn_c.write_text(nn_c.read_text().replace("NN_TRACE(1u, buffer0, NN_INPUT_SIZE);", ""))
    r = build_and_run(model, "host", tmp_path / "b")
    assert r.passed == 0, r.output
    assert all(v.steps_traced == 2 and "traced 2 of 3 steps" in v.detail for v in r.vectors)


@needs_make
def test_host_repeated_trace_step_fails(model: Path, tmp_path: Path):
    """Three NN_TRACE calls but step 0 twice and step 1 never: not a pass."""
    nn_c = model / "nn.c"
    nn_c.write_text(nn_c.read_text().replace("NN_TRACE(1u, buffer0, NN_INPUT_SIZE);",
                                             "NN_TRACE(0u, buffer0, NN_INPUT_SIZE);"))
    r = build_and_run(model, "host", tmp_path / "b")
    assert r.passed == 0, r.output
    assert all(v.step == 0 and v.detail == "step 0 out of order" for v in r.vectors), r.output


@needs_make
def test_host_without_step_checksums(model: Path, tmp_path: Path):
    """test_vectors.h without NN_TEST_STEP_COUNT (older cmsisgen): scores only, still PASS."""
    drop_step_checksums(model)
    assert "NN_TEST_STEP_COUNT" not in (model / "test_vectors.h").read_text()
    r = build_and_run(model, "host", tmp_path / "b")
    assert (r.passed, r.total, r.exit_code, r.steps_checked) == (4, 4, 0, 0), r.output
    assert_no_warnings(tmp_path / "b")
    corrupt_expected(model, 0)
    r = build_and_run(model, "host", tmp_path / "b")
    assert [v.passed for v in r.vectors] == [False, True, True, True]


@needs_make
def test_changed_variables_rebuild_in_the_same_build_dir(model: Path, tmp_path: Path):
    """Objects of another configuration (kernel folder, EXTRA_CFLAGS) are never reused."""
    build = tmp_path / "b"
    common = (f"MODEL_DIR={model}", f"BUILD_DIR={build}")
    compiled = lambda proc: re.findall(r"-c (\S+\.c) -o", proc.stdout)
    first = make("-j2", "all", *common, cwd_target="host")
    assert first.returncode == 0, first.stdout + first.stderr
    assert compiled(make("all", *common, cwd_target="host")) == []
    again = make("all", *common, "EXTRA_CFLAGS=-DCMSISGEN_TEST_FLAG=1", cwd_target="host")
    assert sorted(compiled(again)) == sorted(compiled(first)) and compiled(first), again.stdout
    copy = tmp_path / "kernels"
    shutil.copytree(PORTABLE, copy)
    other = make("all", *common, f"CMSIS_NN_PORTABLE={copy}", cwd_target="host")
    assert other.returncode == 0, other.stdout + other.stderr
    assert str(model / "nn.c") in compiled(other)  # the model too, not only the new kernels
    assert all(str(PORTABLE) not in line for line in other.stdout.splitlines() if " -o " in line)
    assert compiled(make("all", *common, f"CMSIS_NN_PORTABLE={copy}", cwd_target="host")) == []


def test_standin_checksums_match_the_simulator_formula():
    """make_standin.checksum is the contract's formula (cross-checked on a known vector)."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("make_standin", FIXTURES / "make_standin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = np.array([1, -1, 127, -128, 0, 5], dtype=np.int8)
    h, m = 0, 1
    for b in data.view(np.uint8):
        h, m = (h + int(b) * m) % 2**32, (m + 2654435761) % 2**32
    assert mod.checksum(data) == h
    assert mod.checksum(np.zeros(0, dtype=np.int8)) == 0
    assert mod.checksum(np.array([-1], dtype=np.int8)) == 255


@needs_make
def test_host_portable_kernels_elsewhere(model: Path, tmp_path: Path):
    """CMSIS_NN_PORTABLE (portable_path) points the build at another copy of the kernels."""
    copy = tmp_path / "kernels"
    shutil.copytree(PORTABLE, copy)
    r = build_and_run(model, "host", tmp_path / "b", portable_path=copy)
    assert (r.passed, r.total) == (4, 4), r.output
    log = (tmp_path / "b" / "build.log").read_text()
    assert str(copy.resolve() / "Source") in log and str(PORTABLE / "Source") not in log
    assert_no_warnings(tmp_path / "b")


# ---------------------------------------------------------------- QEMU

@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_qemu_all_pass_and_trace_matches_systick(model: Path, tmp_path: Path):
    build_dir = tmp_path / "b"
    r = build_and_run(model, "qemu", build_dir)
    assert (r.passed, r.total, r.exit_code) == (4, 4, 0), r.output
    assert r.counter_unit == "instructions"
    assert_no_warnings(build_dir)

    # Exact instruction counts of every run_nn() call from a one-instruction-per-TB trace.
    proc = make("trace-count", f"MODEL_DIR={model}", f"BUILD_DIR={build_dir}",
                "TRACE_MAX=", cwd_target="qemu_m7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = [int(m) for m in re.findall(r"^count (\d+)$", proc.stdout, re.MULTILINE)]
    # With step checksums every vector calls run_nn() twice: timed (trace hook off), then
    # checked (every step checksummed, untimed and slower); then vector 0 once more, profiled.
    assert r.steps_checked == 3 and len(calls) == 2 * len(r.vectors) + 1, proc.stdout
    exact, checked = calls[0:-1:2], calls[1:-1:2]
    for v, e, c in zip(r.vectors, exact, checked):
        assert abs(v.count - e) <= RUN_NN_TOLERANCE, (v.count, e)
        assert c > e + 3 * 192, (e, c)  # the checksum loops ran in the checked run only
    assert abs(r.instructions_per_inference - sum(exact) / len(exact)) <= RUN_NN_TOLERANCE


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_qemu_systick_wraps_are_counted(model: Path, tmp_path: Path):
    """A 64-tick SysTick period (-DSYSTICK_BITS=6: ~5 wraps per run_nn()) gives the same
    counts as the full 24-bit period (no wrap) up to the wrap handler's few instructions:
    a wrap lost or counted twice would be off by 64 ticks = 2560 instructions. (Compared
    under -icount, which is deterministic; the trace run has no -icount, so its SysTick
    follows the host clock and a short period would interrupt it at random.)"""
    counts = {}
    for bits in (24, 6):
        proc = make("run", f"MODEL_DIR={model}", f"BUILD_DIR={tmp_path / str(bits)}",
                    f"EXTRA_CFLAGS=-DSYSTICK_BITS={bits}", cwd_target="qemu_m7")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        r = parse_output(proc.stdout)
        assert (r.passed, r.total) == (4, 4), proc.stdout
        counts[bits] = [v.count for v in r.vectors]
    period = 64 * 40
    assert all(c > 3 * period for c in counts[24])  # several wraps per run with 6 bits
    for full, short in zip(counts[24], counts[6]):
        assert abs(short - full) < period // 4, counts


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_qemu_wrong_expected_fails(model: Path, tmp_path: Path):
    corrupt_expected(model, 2)
    r = build_and_run(model, "qemu", tmp_path / "b")
    assert (r.passed, r.total) == (3, 4)
    assert r.exit_code == 1  # QEMU's exit status is the firmware's (SYS_EXIT_EXTENDED)
    assert [v.passed for v in r.vectors] == [True, True, False, True]


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_qemu_wrong_step_checksum_fails(model: Path, tmp_path: Path):
    corrupt_step_checksum(model, vector=1, step=2)
    r = build_and_run(model, "qemu", tmp_path / "b")
    assert (r.passed, r.total, r.exit_code) == (3, 4, 1), r.output
    assert (r.vectors[1].step, r.vectors[1].step_name) == (2, "fc1")
    assert 'step 2 "fc1" checksum' in r.output


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
@pytest.mark.skipif(not UPSTREAM_NN, reason="opt-in: set CMSIS_NN_PATH to upstream CMSIS/NN (CMSIS_5 "
                    "5.9.0: also CMSIS_CORE_PATH and CMSIS_DSP_INCLUDE)")
@pytest.mark.parametrize("target", ["host", "qemu"])
def test_upstream_kernels(model: Path, tmp_path: Path, target: str):
    r = build_and_run(model, target, tmp_path / "b", cmsis_nn_path=Path(UPSTREAM_NN),
                      cmsis_core_path=Path(UPSTREAM_CORE) if UPSTREAM_CORE else None,
                      cmsis_dsp_include=Path(UPSTREAM_DSP) if UPSTREAM_DSP else None)
    assert (r.passed, r.total) == (4, 4), r.output


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
@pytest.mark.parametrize("target, per_tick, divisor, printed", [("qemu_m7", 40, 1, "40"),
                                                                 ("qemu_m55", 125, 4, "125/4")])
def test_systick_calibration(tmp_path: Path, target: str, per_tick: int, divisor: int, printed: str):
    """Known loop of exactly 2n+1 instructions: SysTick estimate within one tick (40 on the
    mps2-an500's 25 MHz SysTick, 31.25 on the mps3-an547's 32 MHz)."""
    proc = make("calib", f"BUILD_DIR={tmp_path / 'calib'}", cwd_target=target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(r"^calib n (\d+) exact (\d+) ticks (\d+) estimate (\d+) error (-?\d+)$",
                      proc.stdout, re.MULTILINE)
    assert len(rows) >= 10
    for n, exact, ticks, estimate, error in rows:
        assert int(exact) == 2 * int(n) + 1
        assert int(estimate) == per_tick * int(ticks) // divisor
        assert abs(int(error)) * divisor <= per_tick
    big = [r for r in rows if int(r[0]) >= 1_000_000]
    assert big and all(abs(int(r[4])) / int(r[1]) < 1e-5 for r in big)
    assert f"calib summary: PASS, instructions per tick {printed}" in proc.stdout

    # The trace counter agrees with the analytic count of the same loop.
    proc = make("calib-trace", f"BUILD_DIR={tmp_path / 'calib'}", cwd_target=target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = [int(c) for c in re.findall(r"^count (\d+)$", proc.stdout, re.MULTILINE)]
    ns = [int(r[0]) for r in rows][:len(counts)]
    assert counts == [2 * n + 1 for n in ns]


# ---------------------------------------------------------------- STM32F7 and size report

@needs_arm
def test_stm32f7_builds_warning_free(model: Path, tmp_path: Path):
    build_dir = tmp_path / "stm32"
    proc = make(f"MODEL_DIR={model}", f"BUILD_DIR={build_dir}", cwd_target="stm32f7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning:" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    # the STM32F746's FPU is single precision
    assert "-mfpu=fpv5-sp-d16" in proc.stdout and "-mfpu=fpv5-d16" not in proc.stdout
    assert "-DNN_TRACE=nn_selftest_trace" in proc.stdout
    elf = build_dir / "nn_selftest.elf"
    assert elf.is_file() and (build_dir / "nn_selftest.bin").is_file()
    # Vector table at the start of flash: initial SP in RAM, reset vector in flash (Thumb).
    data = (build_dir / "nn_selftest.bin").read_bytes()
    sp, reset = int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")
    assert 0x20000000 <= sp <= 0x20050000
    assert 0x08000000 <= reset < 0x08100000 and reset & 1

    report = size_report(elf, build_dir / "nn_selftest.map", model, flash_size=1 << 20,
                         ram_size=320 * 1024)
    assert report["flash"]["weights"] == 1920 + 10  # fc1_wt + fc1_bias
    assert report["symbols"]["weights"] == {"fc1_wt": 1920, "fc1_bias": 10}
    # inputs, expected scores, labels, step checksums (4 x 3), step name pointers (3)
    assert report["flash"]["test_vectors"] == 4 * 192 + 4 * 10 + 4 * 2 + 4 * 3 * 4 + 3 * 4
    assert report["ram"]["activations"] == 192 and report["ram"]["scratch"] == 2 * 192
    assert report["ram"]["stack"] == 16 * 1024
    assert report["flash"]["total"] == sum(v for k, v in report["flash"].items() if k != "total")
    table = format_table(report)
    assert "weights (model .rodata)" in table and "% of 1024 KB" in table

    proc = make("size", f"MODEL_DIR={model}", f"BUILD_DIR={build_dir}", cwd_target="stm32f7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "activation buffers" in proc.stdout


@needs_arm
def test_qemu_size_target(model: Path, tmp_path: Path):
    proc = make("size", f"MODEL_DIR={model}", f"BUILD_DIR={tmp_path / 'q'}", cwd_target="qemu_m7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"weights \(model \.rodata\)\s+1930", proc.stdout)


@needs_arm
def test_size_report_classifies_by_folder(model: Path, tmp_path: Path):
    """Kernels = objects built from the kernel folder (whatever their file names); weights =
    the arrays of weights.h, not nn.c's other constants."""
    kernels = tmp_path / "kernels"
    shutil.copytree(PORTABLE, kernels)
    (kernels / "Source" / "arm_fully_connected_q7.c").rename(kernels / "Source" / "fc_impl.c")
    nn_c = model / "nn.c"
    text = nn_c.read_text()
    text = text.replace("static q7_t buffer0", "static const uint8_t channel_shift[3] = {1, 2, 3};\n"
                        "static q7_t buffer0")
    text = text.replace("(image[i] >> 1)", "(image[i] >> channel_shift[i % 3])")
    nn_c.write_text(text)
    build_dir = tmp_path / "q"
    proc = make("size", f"MODEL_DIR={model}", f"BUILD_DIR={build_dir}",
                f"CMSIS_NN_PORTABLE={kernels}", cwd_target="qemu_m7")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    elf, map_file = build_dir / "nn_selftest.elf", build_dir / "nn_selftest.map"
    report = size_report(elf, map_file, model, kernel_dirs=[kernels])
    inputs, _ = parse_map(map_file.read_text())
    text_of = lambda pred: sum(sec.size for sec in inputs if sec.name.startswith(".text") and pred(sec.obj))
    fc_text = text_of(lambda obj: obj.endswith("/fc_impl.o"))
    assert fc_text > 0
    assert report["flash"]["code_kernels"] == text_of(lambda obj: str(kernels.resolve()) + "/" in obj)
    assert report["symbols"]["weights"] == {"fc1_wt": 1920, "fc1_bias": 10}
    assert report["flash"]["weights"] == 1930
    # `make size` passes the same kernel folder
    row = re.search(r"code: CMSIS-NN kernels\s+(\d+)", proc.stdout)
    assert row and int(row[1]) == report["flash"]["code_kernels"], proc.stdout
    # without the folder, the renamed kernel is not recognised (it would count as runtime)
    guessed = size_report(elf, map_file, model)
    assert guessed["flash"]["code_kernels"] == report["flash"]["code_kernels"] - fc_text


@needs_arm
def test_size_report_through_symlinks_and_kernel_constants(model: Path, tmp_path: Path):
    """Folders reached through a symlink (make keeps the link in object paths) still
    classify; a kernel's constant table counts as kernel, not as 'other'."""
    kernels = tmp_path / "kernels"
    shutil.copytree(PORTABLE, kernels)
    relu = kernels / "Source" / "arm_relu_q7.c"
    relu.write_text(relu.read_text().replace(
        "void arm_relu_q7(q7_t *data, uint16_t size)\n{",
        "static const q7_t pnn_relu_floor[64] = {0};\n\n"
        "void arm_relu_q7(q7_t *data, uint16_t size)\n{\n    volatile q7_t f = pnn_relu_floor[size & 63];\n    (void)f;"))
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "m").symlink_to(model)
    (tmp_path / "links" / "k").symlink_to(kernels)
    model_link, kernel_link = tmp_path / "links" / "m", tmp_path / "links" / "k"
    build_dir = tmp_path / "q"
    proc = make("all", f"MODEL_DIR={model_link}", f"BUILD_DIR={build_dir}",
                f"CMSIS_NN_PORTABLE={kernel_link}", cwd_target="qemu_m7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    elf, map_file = build_dir / "nn_selftest.elf", build_dir / "nn_selftest.map"
    assert str(model_link) in map_file.read_text()  # the link, not the resolved folder
    report = size_report(elf, map_file, model_link, kernel_dirs=[kernel_link])
    assert report["flash"]["weights"] == 1930 and report["flash"]["code_model"] > 0
    assert report["ram"]["activations"] == 192
    inputs, _ = parse_map(map_file.read_text())
    table = [sec for sec in inputs if sec.name == ".rodata.pnn_relu_floor"]
    assert len(table) == 1
    code = sum(sec.size for sec in inputs if sec.name.startswith(".text") and "/k/Source/" in sec.obj)
    assert report["flash"]["code_kernels"] == code + table[0].size
    # `make size` passes the folders as make spelled them
    proc = make("size", f"MODEL_DIR={model_link}", f"BUILD_DIR={build_dir}",
                f"CMSIS_NN_PORTABLE={kernel_link}", cwd_target="qemu_m7")
    assert re.search(r"weights \(model \.rodata\)\s+1930", proc.stdout), proc.stdout


def test_builds_do_not_touch_the_source_tree():
    """The tests above build under tmp_path only (run last in this module)."""
    for folder in (FW, FIXTURES):
        stray = [p for p in folder.rglob("*") if p.suffix in (".o", ".d", ".elf", ".map")
                 or p.name == "build"]
        assert not stray, stray


# ---------------------------------------------------------------- per-step profile

def test_parse_profile_lines():
    text = ("cmsisgen selftest: 1 vectors, input 8x8x3, output 3, steps checked 2, counter instructions\n"
            "vector 0: class 1 expected 1 label -1 PASS instructions 1040\n"
            'profile step 0 "data" instructions 240\n'
            'profile step 1 "conv 1" instructions 800\n'
            "summary: 1/1 PASS, instructions per inference 1040\n")
    assert parse_output(text).profile == [("data", 240), ("conv 1", 800)]


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_qemu_profile_has_every_step_and_adds_up_to_an_inference(model: Path, tmp_path: Path):
    r = build_and_run(model, "qemu", tmp_path / "b")
    assert r.all_passed, r.output
    names = re.findall(r'"([^"]*)"', (model / "test_vectors.h").read_text().split("nn_test_step_names")[1])
    assert [name for name, _ in r.profile] == names
    assert all(count > 0 for _, count in r.profile)
    total = sum(count for _, count in r.profile)
    # The hook's counter reads add a few dozen instructions per step; SysTick counts in 40s.
    assert abs(total - r.vectors[0].count) <= 100 * len(names) + 80, (total, r.vectors[0].count)
