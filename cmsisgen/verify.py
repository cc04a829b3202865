"""Build the generated C with the known-answer self test and run it.

Targets (sources in the top-level firmware/ folder, installed as cmsisgen.firmware):

- ``host``: gcc on the build machine (firmware/host), stdout and exit status.
- ``qemu``: arm-none-eabi-gcc for Cortex-M7 (-mfloat-abi=hard -mfpu=fpv5-d16 -O2, so
  upstream CMSIS-NN's DSP/SIMD paths are compiled in), run on QEMU ``mps2-an500`` with
  semihosting and ``-icount shift=0`` (the command line is firmware/qemu_m7/qemu.mk's,
  shared with its Makefile); instructions per inference come from SysTick (1 tick = 40
  instructions, validated in firmware/README.md).
- ``qemu-m55``: the same for Cortex-M55 (-mcpu=cortex-m55 -mfloat-abi=hard: upstream's
  Helium/MVE paths), run on QEMU ``mps3-an547`` (firmware/qemu_m55/qemu.mk; 1 SysTick tick =
  31.25 instructions).

Kernels: the project's portable CMSIS-NN kernels (firmware/cmsis_nn_portable) unless
``cmsis_nn_path`` points at upstream's ``CMSIS/NN`` folder.

The program prints a header, one line per vector and a summary (see
firmware/host/selftest.h)::

    cmsisgen selftest: 4 vectors, input 32x32x3, output 10, steps checked 9, counter instructions
    vector 0: class 3 expected 3 label 3 PASS instructions 1234560
    vector 1: class 3 expected 3 label 5 FAIL instructions 1234600 step 4 "pool1" checksum 0x1a2b3c4d want 0x1a2b3c4e
    summary: 3/4 PASS, instructions per inference 1234580

A vector passes when its scores are bit-exact and, for models whose test_vectors.h has
per-step checksums (NN_TEST_STEP_COUNT), every step's output checksum matches too.
"""
from __future__ import annotations

import importlib.resources
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cmsisgen.errors import SETTING, CmsisgenError, SettingError

#: The QEMU targets: their firmware folder (Makefile, and qemu.mk: the flags `make run` uses
#: too) and the core they emulate.
QEMU_TARGETS = {"qemu": ("qemu_m7", "Cortex-M7"), "qemu-m55": ("qemu_m55", "Cortex-M55")}
TARGETS = ("host", *QEMU_TARGETS)

_VECTOR_RE = re.compile(
    r"^vector (\d+): class (-?\d+) expected (-?\d+) label (-?\d+) (PASS|FAIL) (\w+) (\d+)(.*)$"
)
_SUMMARY_RE = re.compile(r"^summary: (\d+)/(\d+) PASS, (\w+) per inference (\d+)\s*$")
_HEADER_RE = re.compile(r"^cmsisgen selftest: (\d+) vectors,.*?(?:, steps checked (\d+))?, counter (\w+)\s*$")
_STEP_RE = re.compile(r'\bstep (\d+) (?:"([^"]*)" checksum 0x([0-9a-fA-F]+) want 0x([0-9a-fA-F]+)'
                      r'|out of range|out of order)')
_TRACED_RE = re.compile(r"\btraced (\d+) of (\d+) steps\b")
_OUTPUTS_RE = re.compile(r", outputs (\d+),")
_PROFILE_RE = re.compile(r'^profile step (\d+) "([^"]*)" (\w+) (\d+)\s*$')


@dataclass
class VectorResult:
    index: int
    predicted: int          # argmax of the scores run_nn() produced
    expected: int           # argmax of nn_test_expected
    label: int              # nn_test_labels (-1 when unknown)
    passed: bool            # bit-exact and run_nn() returned success (0)
    count: int              # in VerifyResult.counter_unit
    detail: str = ""        # e.g. 'step 4 "pool1" checksum 0x1a2b3c4d want 0x1a2b3c4e mismatch 2 got 17 want 18'
    step: int | None = None         # first step whose output checksum differs
    step_name: str | None = None    # its name (nn_test_step_names), None when out of range/order
    steps_traced: int | None = None  # NN_TRACE calls, only when not the expected count


@dataclass
class VerifyResult:
    passed: int
    total: int
    instructions_per_inference: float | None   # QEMU only
    output: str
    target: str = "host"
    counter_unit: str | None = None             # "instructions" (qemu), "ns" (host)
    exit_code: int | None = None
    vectors: list[VectorResult] = field(default_factory=list)
    build_dir: Path | None = None
    steps_checked: int | None = None            # per-step checksums per vector (0: scores only)
    header_vectors: int | None = None           # vector count announced by the header line
    #: (step name, count) per step of one inference of vector 0, when steps are checked
    profile: list[tuple[str, int]] = field(default_factory=list)
    outputs: int = 1                            # network outputs compared (header ", outputs K")

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total and self.exit_code in (0, None)


def firmware_dir() -> Path:
    """The firmware/ sources: the installed cmsisgen.firmware package, else the checkout's."""
    try:
        res = importlib.resources.files("cmsisgen.firmware")
        path = Path(str(res))
        if (path / "host" / "Makefile").is_file():
            return path
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    path = Path(__file__).resolve().parent.parent / "firmware"
    if (path / "host" / "Makefile").is_file():
        return path
    raise CmsisgenError("firmware sources not found: neither the cmsisgen.firmware package "
                        f"nor {path} has host/Makefile")


def parse_output(text: str) -> VerifyResult:
    """Parse the self test's output; raises CmsisgenError when there is no summary line."""
    vectors: list[VectorResult] = []
    summary = None
    steps_checked = None
    header_vectors = None
    outputs = 1
    profile: list[tuple[str, int]] = []
    for line in text.splitlines():
        line = line.strip()
        m = _VECTOR_RE.match(line)
        if m:
            detail = m[8].strip()
            result = VectorResult(
                index=int(m[1]), predicted=int(m[2]), expected=int(m[3]), label=int(m[4]),
                passed=m[5] == "PASS", count=int(m[7]), detail=detail)
            step = _STEP_RE.search(detail)
            if step:
                result.step, result.step_name = int(step[1]), step[2]
            traced = _TRACED_RE.search(detail)
            if traced:
                result.steps_traced = int(traced[1])
            vectors.append(result)
            continue
        m = _PROFILE_RE.match(line)
        if m:
            profile.append((m[2], int(m[4])))
            continue
        m = _HEADER_RE.match(line)
        if m:
            header_vectors = int(m[1])
            steps_checked = int(m[2]) if m[2] is not None else None
            several = _OUTPUTS_RE.search(line)
            outputs = int(several[1]) if several else 1
            continue
        m = _SUMMARY_RE.match(line)
        if m:
            summary = m
    if summary is None:
        raise CmsisgenError("self test printed no summary line (crashed or timed out?)")
    unit = summary[3]
    per_inference = float(summary[4])
    if vectors:
        per_inference = sum(v.count for v in vectors) / len(vectors)
    return VerifyResult(
        passed=int(summary[1]), total=int(summary[2]),
        instructions_per_inference=per_inference if unit == "instructions" else None,
        output=text, counter_unit=unit, vectors=vectors, steps_checked=steps_checked,
        header_vectors=header_vectors, profile=profile, outputs=outputs)


def check_consistency(result: VerifyResult) -> str | None:
    """Why the output cannot be trusted as a complete run (None when it can).

    The summary alone must never make a run look good: every vector the header announced
    needs its own line, in order, the PASS lines must add up to the summary, and the exit
    status must agree (0 exactly when every vector passed)."""
    if result.header_vectors is None:
        return "no header line"
    if result.total != result.header_vectors:
        return f"summary counts {result.total} vectors, the header {result.header_vectors}"
    if [v.index for v in result.vectors] != list(range(result.total)):
        return f"{len(result.vectors)} vector lines for {result.total} vectors"
    passes = sum(v.passed for v in result.vectors)
    if passes != result.passed:
        return f"{passes} PASS lines, summary says {result.passed}"
    if result.exit_code is not None and (result.exit_code == 0) != (result.passed == result.total):
        return f"exit status {result.exit_code} with {result.passed}/{result.total} PASS"
    return None


def qemu_args(fw: Path | None = None, target: str = "qemu") -> list[str]:
    """QEMU arguments of the counted self-test run (before -kernel), from the target's qemu.mk."""
    path = (fw or firmware_dir()) / QEMU_TARGETS[target][0] / "qemu.mk"
    try:
        text = path.read_text()
    except OSError as exc:
        raise CmsisgenError(f"{path}: cannot read the QEMU command line ({exc.strerror})") from None
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_]+)\s*:=\s*(.*?)\s*$", line)
        if m:
            values[m[1]] = m[2].split()
    try:
        return values["QEMU_MACHINE_FLAGS"] + values["QEMU_COUNT_FLAGS"]
    except KeyError as exc:
        raise CmsisgenError(f"{path}: {exc.args[0]} not set") from None


def _qemu_why(target: str) -> str:
    return f"to run the {QEMU_TARGETS[target][1]} self test (install qemu-system-arm)"


def _require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CmsisgenError(f"{name} not found on PATH: needed {why}")
    return path


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise CmsisgenError(f"{model_dir}: not a folder (expected an output folder of cmsisgen compile)")
    for name in ("nn.c", "nn.h", "weights.h", "parameters.h"):
        if not (model_dir / name).is_file():
            raise CmsisgenError(f"{model_dir}: {name} missing (expected an output folder of cmsisgen compile)")
    if not (model_dir / "test_vectors.h").is_file():
        raise SettingError("test_vectors", f"{model_dir}: test_vectors.h missing; compile with {SETTING} N")


def _partial_output(exc: subprocess.TimeoutExpired) -> str:
    """What a timed-out process printed (bytes even with text=True on some Pythons)."""
    out = exc.stdout
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if re.search(r"\berror\b|\*\*\*|undefined reference", line, re.IGNORECASE):
            return line.strip()[:200]
    return "make failed"


def make_variables(model_dir: Path, build_dir: Path, cmsis_nn_path: Path | None = None,
                   cmsis_core_path: Path | None = None, cmsis_dsp_include: Path | None = None,
                   portable_path: Path | None = None) -> dict[str, str]:
    """The firmware Makefiles' variables for one build (absolute paths).

    Every kernel variable is set, empty when not chosen: make would otherwise take
    CMSIS_NN_PATH & co. from the caller's environment and silently build upstream when the
    portable kernels were asked for (or use another CMSIS version's Core folder). Empty
    CMSIS_CORE_PATH / CMSIS_DSP_INCLUDE get kernels.mk's defaults, the siblings of
    CMSIS_NN_PATH. Without cmsis_nn_path the portable kernels are built: portable_path,
    else the firmware's cmsis_nn_portable."""
    def resolved(path: Path | None) -> str:
        return str(Path(path).resolve()) if path is not None else ""

    variables = {"MODEL_DIR": resolved(model_dir), "BUILD_DIR": resolved(build_dir),
                 "CMSIS_NN_PATH": resolved(cmsis_nn_path), "CMSIS_CORE_PATH": resolved(cmsis_core_path),
                 "CMSIS_DSP_INCLUDE": resolved(cmsis_dsp_include)}
    if cmsis_nn_path is None:
        variables["CMSIS_NN_PORTABLE"] = resolved(portable_path or firmware_dir() / "cmsis_nn_portable")
    return variables


def build(model_dir: Path, target: str, build_dir: Path, *, cmsis_nn_path: Path | None = None,
          cmsis_core_path: Path | None = None, cmsis_dsp_include: Path | None = None,
          portable_path: Path | None = None, jobs: int | None = None,
          extra_make_vars: dict[str, str] | None = None, timeout: float = 1800.0) -> Path:
    """Run make for `target`; returns the built program. Log: build_dir/build.log."""
    if target not in TARGETS:
        raise CmsisgenError(f"unknown verify target {target!r}: expected one of {', '.join(TARGETS)}")
    model_dir = Path(model_dir).resolve()
    build_dir = Path(build_dir).resolve()
    _check_model_dir(model_dir)
    make = _require_tool("make", "to build the self test")
    if target == "host":
        # make takes CC from the environment; it may carry options ("ccache gcc").
        cc = shlex.split(os.environ.get("CC") or "gcc") or ["gcc"]
        _require_tool(cc[0], "to build the host self test")
        sub = "host"
        program = build_dir / "nn_selftest"
    else:
        sub, core = QEMU_TARGETS[target]
        _require_tool("arm-none-eabi-gcc", f"to build the {core} self test (install gcc-arm-none-eabi and "
                      "libnewlib-arm-none-eabi)")
        program = build_dir / "nn_selftest.elf"
    fw = firmware_dir()
    if cmsis_nn_path is None:
        kernels = Path(portable_path) if portable_path else fw / "cmsis_nn_portable"
        if not (kernels / "Include" / "arm_nnfunctions.h").is_file():
            raise CmsisgenError(f"portable CMSIS-NN kernels not found at {kernels}; pass the "
                                "upstream CMSIS/NN folder instead")
    elif not (Path(cmsis_nn_path) / "Include" / "arm_nnfunctions.h").is_file():
        raise CmsisgenError(f"{cmsis_nn_path}: Include/arm_nnfunctions.h not found "
                            "(point it at CMSIS-NN's CMSIS/NN folder)")

    variables = make_variables(model_dir, build_dir, cmsis_nn_path, cmsis_core_path, cmsis_dsp_include,
                               kernels if cmsis_nn_path is None else None)
    variables.update(extra_make_vars or {})

    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / "build.log"
    cmd = [make, "-C", str(fw / sub), f"-j{jobs or os.cpu_count() or 1}", "all"]
    cmd += [f"{k}={v}" for k, v in variables.items()]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(" ".join(cmd) + "\n" + _partial_output(exc))
        raise CmsisgenError(f"{target} build timed out after {timeout:.0f} s (log: {log_path})") from None
    log_path.write_text(" ".join(cmd) + "\n" + proc.stdout)
    if proc.returncode != 0 or not program.is_file():
        raise CmsisgenError(f"{target} build failed: {_first_error(proc.stdout)} (log: {log_path})")
    return program


def run(program: Path, target: str, *, timeout: float = 600.0) -> VerifyResult:
    """Run a built self test; log: <program dir>/run.log."""
    program = Path(program)
    if target == "host":
        cmd = [str(program)]
    elif target in QEMU_TARGETS:
        qemu = _require_tool("qemu-system-arm", _qemu_why(target))
        cmd = [qemu, *qemu_args(target=target), "-kernel", str(program)]
    else:
        raise CmsisgenError(f"unknown verify target {target!r}: expected one of {', '.join(TARGETS)}")
    log_path = program.parent / "run.log"
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(_partial_output(exc))
        raise CmsisgenError(f"{target} self test timed out after {timeout:.0f} s (log: {log_path})") from None
    log_path.write_text(proc.stdout)
    try:
        result = parse_output(proc.stdout)
    except CmsisgenError:
        raise CmsisgenError(f"{target} self test exited with status {proc.returncode} without a "
                            f"summary (log: {log_path})") from None
    result.target = target
    result.exit_code = proc.returncode
    result.build_dir = program.parent
    problem = check_consistency(result)
    if problem is not None:
        raise CmsisgenError(f"{target} self test output is incomplete or inconsistent: {problem} "
                            f"(exit status {proc.returncode}, log: {log_path})")
    return result


def build_and_run(model_dir: Path, target: str = "host", build_dir: Path | None = None,
                  cmsis_nn_path: Path | None = None, cmsis_core_path: Path | None = None,
                  cmsis_dsp_include: Path | None = None, portable_path: Path | None = None,
                  *, jobs: int | None = None, build_timeout: float = 1800.0,
                  run_timeout: float = 600.0) -> VerifyResult:
    """Build the model in `model_dir` with the self test for `target` and run it.

    build_dir defaults to <model_dir>/build/<target>. Raises CmsisgenError (one line, with
    the log path) when a tool is missing, the build fails or the program prints no summary;
    failing vectors are reported in the result (passed < total, exit_code != 0).
    """
    model_dir = Path(model_dir)
    if target in QEMU_TARGETS:
        _require_tool("qemu-system-arm", _qemu_why(target))  # before a build that could not be run
    if build_dir is None:
        build_dir = model_dir / "build" / target
    program = build(model_dir, target, Path(build_dir), cmsis_nn_path=cmsis_nn_path,
                    cmsis_core_path=cmsis_core_path, cmsis_dsp_include=cmsis_dsp_include,
                    portable_path=portable_path, jobs=jobs, timeout=build_timeout)
    return run(program, target, timeout=run_timeout)


def format_result(result: VerifyResult) -> str:
    """Human-readable summary; the last line is `K/N vectors bit-exact`."""
    lines = []
    for v in result.vectors:
        count = f" {v.count} {result.counter_unit}" if result.counter_unit == "instructions" else ""
        extra = f" ({v.detail})" if v.detail else ""
        lines.append(f"vector {v.index}: class {v.predicted} (expected {v.expected}, label {v.label}) "
                     f"{'PASS' if v.passed else 'FAIL'}{count}{extra}")
    if result.instructions_per_inference is not None:
        lines.append(f"instructions per inference: {result.instructions_per_inference:.0f}")
    scores = "scores" if result.outputs == 1 else f"the scores of all {result.outputs} outputs"
    if result.steps_checked:
        lines.append(f"checked: {scores} and the output checksum of each of {result.steps_checked} steps")
    elif result.steps_checked == 0:
        lines.append(f"checked: {scores} only (test_vectors.h has no per-step checksums)")
    lines.append(f"{result.passed}/{result.total} vectors bit-exact")
    return "\n".join(lines)
