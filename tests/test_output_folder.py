"""Files: never clobber, never mix, never strand (issue 11, items 7-12).

Each test runs the real CLI in a temporary working folder (click's CliRunner, or a real
process where a signal or a second process is the point) and spells out the exact error.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from caffe_models import layer, write_mean_binaryproto, write_model
from cmsisgen import output
from cmsisgen.cli import main

LAYERS = [
    layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
    layer("relu1", "ReLU", inplace=True),
    layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
    layer("ip1", "InnerProduct", num_output=10),
]
GENERATED = [".cmsisgen-manifest", "nn.c", "nn.h", "parameters.h", "weights.c", "weights.h"]
#: A process that runs the CLI with a hook on every file move (os.replace): argv[1] is the
#: hook's source (a function ``hook(src, dst)`` called after each move), the rest the CLI's.
HOOKED_CLI = """
import os, sys, time
from pathlib import Path
real_replace = os.replace
namespace = {"os": os, "sys": sys, "time": time, "Path": Path, "signal": __import__("signal")}
exec(sys.argv[1], namespace)
def replace(src, dst):
    real_replace(src, dst)
    namespace["hook"](src, dst)
os.replace = replace
from cmsisgen.cli import main
main(sys.argv[2:])
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def expect_error(args, message: str):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == f"cmsisgen: error: {message}"
    assert "Traceback" not in result.output
    return result


@pytest.fixture()
def model():
    return write_model(Path("."), LAYERS, input_shape=(3, 8, 8))


@pytest.fixture()
def other_weights():
    Path("other").mkdir()
    return write_model(Path("other"), LAYERS, input_shape=(3, 8, 8), seed=5)[1]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stray() -> list[str]:
    """Staging files or folders left anywhere under the working folder."""
    return [str(p) for p in Path(".").rglob(".cmsisgen-*") if p.name != ".cmsisgen-manifest"]


def hooked(hook: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOOKED_CLI, hook, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until ``path`` exists (the other process reached its hook); a safety net, not a timing."""
    for _ in range(6000):
        if path.exists() or proc.poll() is not None:
            break
        time.sleep(0.02)
    assert path.exists(), proc.communicate()


# ----------------------------------------------------------------------------- 7: one run's output


def test_a_second_compile_into_the_same_folder_is_refused_while_the_first_writes(model, other_weights):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "expected").exit_code == 0
    hook = """
def hook(src, dst):
    if Path(dst).name == "nn.c" and not Path("ready").exists():
        Path("ready").touch()
        while not Path("go").exists():
            time.sleep(0.01)
"""
    first = hooked(hook, "compile", proto, weights, "-o", "out")
    try:
        wait_for(Path("ready"), first)
        expect_error(["compile", proto, other_weights, "-o", "out"],
                     "out: another cmsisgen run is writing into this folder; run again when it is done")
    finally:
        Path("go").touch()
        stdout, stderr = first.communicate()
    assert first.returncode == 0, stderr
    assert tree(Path("out")) == tree(Path("expected"))  # wholly the first run's output
    assert not stray()


# ----------------------------------------------------------------------------- 8: signals roll back


@pytest.mark.parametrize("signame, status, message, repeat", [
    ("SIGTERM", 143, "cmsisgen: error: interrupted by SIGTERM", False),
    ("SIGHUP", 129, "cmsisgen: error: interrupted by SIGHUP", False),
    ("SIGINT", 130, "cmsisgen: error: interrupted", False),
    ("SIGINT", 130, "cmsisgen: error: interrupted", True),  # again while rolling back: ignored
    ("SIGTERM", 143, "cmsisgen: error: interrupted by SIGTERM", True),
])
def test_a_signal_while_writing_leaves_the_folder_as_it_was(model, other_weights, signame, status, message,
                                                            repeat):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--test-vectors", "2", "--report", "r.json").exit_code == 0
    Path("out/mine.txt").write_text("mine")
    before, report = tree(Path("out")), Path("r.json").read_bytes()
    hook = f"""
def hook(src, dst):
    if Path(dst).name == "parameters.h" and Path(dst).parent.name == "out" and not Path("sent").exists():
        Path("sent").touch() if {not repeat} else None
        os.kill(os.getpid(), signal.{signame})
"""
    proc = hooked(hook, "compile", proto, other_weights, "-o", "out", "--report", "r.json")
    _, stderr = proc.communicate()
    assert (proc.returncode, stderr.splitlines()[-1]) == (status, message), stderr
    assert tree(Path("out")) == before and Path("r.json").read_bytes() == report
    assert not stray()


def test_a_signal_while_writing_a_new_folder_removes_it(model):
    proto, weights = model
    hook = """
def hook(src, dst):
    if Path(dst).name == "nn.c":
        os.kill(os.getpid(), signal.SIGTERM)
"""
    proc = hooked(hook, "compile", proto, weights, "-o", "new/out")
    _, stderr = proc.communicate()
    assert proc.returncode == 143, stderr
    assert not Path("new").exists() and not stray()


# ----------------------------------------------------------------------------- 9: what --report may write


@pytest.mark.parametrize("destination, message", [
    ("model.caffemodel", "model.caffemodel: the report would overwrite the weights (model.caffemodel)"),
    ("sub/../model.prototxt", "sub/../model.prototxt: the report would overwrite the model (model.prototxt)"),
    ("link.json", "link.json: the report would overwrite the weights (model.caffemodel)"),
    ("calib.npz", "calib.npz: the report would overwrite the calibration data (calib.npz)"),
    ("mean.binaryproto", "mean.binaryproto: the report would overwrite the mean file (mean.binaryproto)"),
    ("out/nn.c", "out/nn.c: the report would overwrite the generated nn.c (out/nn.c)"),
    ("out/.cmsisgen-manifest",
     "out/.cmsisgen-manifest: the report would overwrite the generated .cmsisgen-manifest (out/.cmsisgen-manifest)"),
])
def test_the_report_never_overwrites_an_input_or_an_output(model, destination, message):
    proto, weights = model
    Path("sub").mkdir()
    os.symlink("model.caffemodel", "link.json")
    np.savez("calib.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    write_mean_binaryproto(Path("mean.binaryproto"), np.zeros((3, 8, 8)))
    inputs = {name: Path(name).read_bytes() for name in ("model.prototxt", "model.caffemodel", "calib.npz",
                                                          "mean.binaryproto")}
    expect_error(["compile", proto.name, weights.name, "-o", "out", "--calib", "calib.npz", "--mean",
                  "mean.binaryproto", "--report", destination], message)
    assert {name: Path(name).read_bytes() for name in inputs} == inputs
    assert not Path("out").exists()


@pytest.mark.parametrize("options, message", [
    (["-o", "out", "--report", "out"], "out: --report names the output folder (-o out), not a file of its own"),
    (["-o", "out", "--report", "./out/"], "out: --report names the output folder (-o out), not a file of its own"),
    (["-o", "r/out", "--report", "r"],
     "r: --report names a folder that holds the output folder (-o r/out), not a file of its own"),
    (["-o", "out", "--json", "out"], "out: --json names the output folder (-o out), not a file of its own"),
])
def test_a_report_on_the_output_folder_names_its_option(model, options, message):
    """Refused before any work, naming the option that is wrong (it failed after calibrating,
    with an error about the generated files); nothing is written."""
    proto, weights = model
    result = run("compile", proto.name, weights.name, *options)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"cmsisgen: error: {message}"]
    assert not Path("out").exists() and not Path("r").exists() and not stray()


def test_the_summary_never_overwrites_an_input_or_the_report(model):
    proto, weights = model
    expect_error(["compile", proto.name, weights.name, "-o", "out", "--json", "model.prototxt"],
                 "model.prototxt: the summary would overwrite the model (model.prototxt)")
    expect_error(["compile", proto.name, weights.name, "-o", "out", "--report", "r.json", "--json", "r.json"],
                 "r.json: the summary would overwrite the report (r.json)")
    np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    expect_error(["evaluate", proto.name, weights.name, "--data", "data.npz", "--json", "data.npz"],
                 "data.npz: the summary would overwrite the images (data.npz)")


def test_reports_get_the_mode_the_umask_gives(model):
    proto, weights = model
    previous = os.umask(0o027)
    try:
        assert run("compile", proto, weights, "-o", "out", "--report", "r.json", "--json", "s.json").exit_code == 0
        np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
        assert run("evaluate", proto, weights, "--data", "data.npz", "--json", "e.json").exit_code == 0
    finally:
        os.umask(previous)
    modes = {name: Path(name).stat().st_mode & 0o777 for name in ("r.json", "s.json", "e.json", "out/nn.c")}
    assert modes == {"r.json": 0o640, "s.json": 0o640, "e.json": 0o640, "out/nn.c": 0o640}


def test_a_dash_means_stdout(model):
    proto, weights = model
    result = run("compile", proto, weights, "-o", "out", "--report", "-")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)) == ["backend", "cpu", "calib_method", "layers", "buffers", "totals",
                                               "outputs"]  # the report, no table
    np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    for option in (["--json", "-"], ["--json"]):
        result = run("evaluate", proto, weights, "--data", "data.npz", *option)
        assert result.exit_code == 0, result.output
        assert set(json.loads(result.stdout)) == {"n", "float_top1", "q7_top1", "agreement"}
    assert not Path("-").exists()
    expect_error(["compile", proto, weights, "-o", "out", "--report", "-", "--json"],
                 "--report -: stdout already carries the --json summary (give --report a file)")


@pytest.mark.parametrize("args, message", [
    (["-o", ""], "-o '': the output folder's name is empty"),
    (["-o", "out", "--report", ""], "--report '': the file name is empty (give '-' for stdout)"),
    (["-o", "out", "--json", ""], "--json '': the file name is empty (give '-' for stdout)"),
])
def test_empty_names_are_refused(model, args, message):
    proto, weights = model
    expect_error(["compile", proto, weights, *args], message)
    assert sorted(os.listdir(".")) == ["model.caffemodel", "model.prototxt"]


# ----------------------------------------------------------------------------- 10: path faults


def test_path_faults_are_user_errors(model):
    proto, weights = model
    long = "a" * 300
    os.symlink("loop", "loop")
    os.symlink("nowhere/x", "dangling")
    expect_error(["compile", proto, weights, "-o", long], f"{long}: cannot write the output folder (File name too long)")
    expect_error(["compile", proto, weights, "-o", f"new/{long}"],
                 f"new/{long}: cannot write the output folder (File name too long)")
    expect_error(["compile", proto, weights, "-o", "loop"],
                 "loop: cannot write the output folder (Too many levels of symbolic links)")
    expect_error(["compile", proto, weights, "-o", "out", "--report", "loop"],
                 "loop: cannot write the report (Too many levels of symbolic links)")
    expect_error(["compile", proto, weights, "-o", "dangling"],
                 "dangling: cannot write the output folder (a symbolic link to 'nowhere/x', which does not exist)")
    assert sorted(os.listdir(".")) == ["dangling", "loop", "model.caffemodel", "model.prototxt"]


def test_files_are_staged_on_the_output_folders_own_file_system(model, monkeypatch):
    """OUT a mount point: a rename from anywhere but OUT itself would cross file systems."""
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--report", "out/r.json").exit_code == 0
    real_replace = os.replace

    def across_mounts(src, dst):
        inside = Path("out").resolve()
        if inside not in (Path(src).resolve().parents) or inside not in Path(dst).resolve().parents:
            raise OSError(18, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", across_mounts)
    result = run("compile", proto, weights, "-o", "out", "--test-vectors", "1", "--report", "out/r.json")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir("out")) == sorted([*GENERATED, "r.json", "test_vectors.h"])


def test_a_failed_run_removes_the_folders_it_made(model, monkeypatch):
    proto, weights = model

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full)
    expect_error(["-q", "compile", proto, weights, "-o", "a/b/out", "--report", "c/d/r.json"],
                 "a/b/out: cannot write the generated files (No space left on device)")
    assert sorted(os.listdir(".")) == ["model.caffemodel", "model.prototxt"]


# ----------------------------------------------------------------------------- 11: a user's files survive


def test_a_users_files_named_like_outputs_survive(model):
    proto, weights = model
    Path("out").mkdir()
    Path("out/test_vectors.h").write_text("/* my own vectors */\n")
    Path("out/kernel.c").write_text("/* mine */\n")
    result = run("compile", proto, weights, "-o", "out")
    assert result.exit_code == 0, result.output
    assert Path("out/test_vectors.h").read_text() == "/* my own vectors */\n"
    assert Path("out/kernel.c").read_text() == "/* mine */\n"
    assert Path("out/.cmsisgen-manifest").read_text().splitlines()[1:] == GENERATED[1:]


def test_only_files_the_manifest_lists_are_removed(model):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--test-vectors", "1").exit_code == 0
    Path("out/nn_lrn.c").write_text("/* written by an earlier, larger model */\n")
    Path("victim").write_text("keep me")
    with open("out/.cmsisgen-manifest", "a") as manifest:
        manifest.write("nn_lrn.c\n../victim\n/etc/hostname\n")
    result = run("compile", proto, weights, "-o", "out")
    assert result.exit_code == 0, result.output
    assert "out: removed nn_lrn.c, test_vectors.h, written by an earlier compile and not by this one" \
        in result.stderr.splitlines()
    assert sorted(os.listdir("out")) == GENERATED and Path("victim").read_text() == "keep me"


def test_recompiling_without_vectors_says_it_removed_them(model):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--test-vectors", "1").exit_code == 0
    result = run("compile", proto, weights, "-o", "out")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == \
        "out: removed test_vectors.h, written by an earlier compile and not by this one"
    assert run("-q", "compile", proto, weights, "-o", "out").stderr == ""


def test_a_users_folder_named_like_an_output(model):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--test-vectors", "1").exit_code == 0
    Path("out/test_vectors.h").unlink()
    Path("out/test_vectors.h").mkdir()  # listed in the manifest, but now a folder: left alone
    Path("out/test_vectors.h/mine.txt").write_text("mine")
    assert run("compile", proto, weights, "-o", "out").exit_code == 0
    assert Path("out/test_vectors.h/mine.txt").read_text() == "mine"
    before = tree(Path("out"))
    Path("out/nn.c").unlink()
    Path("out/nn.c").mkdir()
    Path("out/nn.c/mine.txt").write_text("mine")
    before = tree(Path("out"))
    expect_error(["compile", proto, weights, "-o", "out"],
                 "out/nn.c: is a folder, not a file cmsisgen wrote; cmsisgen writes its nn.c there "
                 "(move the folder away)")
    assert tree(Path("out")) == before and not stray()


def test_check_compares_with_the_manifest(model):
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out").exit_code == 0
    Path("out/mine.c").write_text("/* mine */\n")
    assert run("compile", proto, weights, "-o", "out", "--check").exit_code == 0
    Path("out/nn_lrn.c").write_text("/* from an earlier model */\n")
    with open("out/.cmsisgen-manifest", "a") as manifest:
        manifest.write("nn_lrn.c\n")
    result = run("compile", proto, weights, "-o", "out", "--check")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("cmsisgen: error: out: generated files are stale: nn_lrn.c "
                                              "(re-run without --check to regenerate)")


def test_an_output_folder_of_an_older_version_without_manifest(model):
    """Before the manifest, a compile removed test_vectors.h by name: it still does when the
    file says it was generated by cmsisgen."""
    proto, weights = model
    assert run("compile", proto, weights, "-o", "out", "--test-vectors", "1").exit_code == 0
    Path("out/.cmsisgen-manifest").unlink()
    Path("out/nn_lrn_q7.c").write_text("/*\n * cmsisgen kernels: Caffe LRN in q7.\n */\n")  # a copied kernel
    Path("out/nn_prelu_q7.c").write_text("/* my own PReLU */\n")
    result = run("compile", proto, weights, "-o", "out", "--check")
    assert result.stderr.splitlines()[-1] == ("cmsisgen: error: out: generated files are stale: nn_lrn_q7.c, "
                                              "test_vectors.h (re-run without --check to regenerate)")
    assert run("compile", proto, weights, "-o", "out").exit_code == 0
    assert sorted(os.listdir("out")) == sorted([*GENERATED, "nn_prelu_q7.c"])


# ----------------------------------------------------------------------------- 12: before the long work


def test_an_unwritable_summary_folder_fails_before_evaluation(model):
    proto, weights = model
    Path("afile").write_text("not a folder")
    np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    result = expect_error(["evaluate", proto, weights, "--data", "data.npz", "--json", "afile/e.json"],
                          f"afile/e.json: cannot write the summary ({Path.cwd() / 'afile'} is not a writable folder)")
    assert "reading evaluation images" not in result.stderr


def test_evaluate_makes_the_summarys_folder(model):
    proto, weights = model
    np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    assert run("evaluate", proto, weights, "--data", "data.npz", "--json", "res/e.json").exit_code == 0
    assert json.loads(Path("res/e.json").read_text())["n"] == 2


def test_an_unwritable_output_folder_fails_before_calibration(model):
    """OUT exists but is read-only (root is run without its power to write anywhere)."""
    import shutil

    proto, weights = model
    np.savez("data.npz", x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.zeros(2))
    Path("out").mkdir()
    Path("out").chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]
    proc = subprocess.run([*prefix, sys.executable, "-c", "from cmsisgen.cli import main; main()", "compile",
                           proto.name, weights.name, "-o", "out", "--calib", "data.npz"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"cmsisgen: error: out: cannot write the output folder ({Path.cwd() / 'out'} is not a writable folder)"]
