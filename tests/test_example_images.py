"""The example's own images (examples/cifar10/images/): the README's first command runs on a
plain clone with nothing beside it, the images are the full CIFAR-10 set's (what
make_images.py writes), and calibrating on them gives the program the full train.zip gives."""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cmsisgen.cli import main as cli_main
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
IMAGES = EXAMPLE / "images"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GENERATED = ("nn.c", "nn.h", "parameters.h", "weights.h", "weights.c")

needs_full_set = pytest.mark.skipif(
    not ((CIFAR / "train.zip").exists() and (CIFAR / "test.zip").exists()),
    reason="the full CIFAR-10 zips are not at ../shared/data/cifar10 (the bundled images are checked without them)")


def _commands(readme: Path) -> list[str]:
    """The lines of the README's indented code blocks, a backslash-continued command as one line."""
    code = "\n".join(line[4:] for line in readme.read_text().splitlines() if line.startswith("    "))
    return [" ".join(line.split()) for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def _first_command() -> str:
    """The README's first command: the first code block of 'Set up on a fresh machine'."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Set up on a fresh machine"):]
    match = re.search(r"\n\n    (\S[^\n]*)\n", section)
    assert match, "README: no command under 'Set up on a fresh machine'"
    return match.group(1)


def _clone(dest: Path) -> Path:
    """A copy of the files a `git clone` would hold (tracked, plus new files not ignored)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell which files a clone holds")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _cmsisgen() -> list[str]:
    """The installed `cmsisgen` of this environment (what the README's pip step makes)."""
    script = Path(sys.executable).with_name("cmsisgen")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cmsisgen.cli import main; main()"]


def test_readme_first_command_runs_on_a_plain_clone(tmp_path):
    """The README's first command (install, then compile the example), in a copy of the
    repository with no ../shared beside it. The install step is the test environment's own
    (the suite runs against an installed cmsisgen), so only the compile is run; it must
    succeed, write the five files, and give the committed generated/ sources."""
    install, *commands = _first_command().split(" && ")
    assert shlex.split(install)[1:] == ["-m", "pip", "install", "."], install
    assert commands and all(shlex.split(c)[0] == "cmsisgen" for c in commands), commands
    clone = _clone(tmp_path / "clone")
    assert not (clone.parent / "shared").exists()
    env = dict(os.environ, PYTHONSAFEPATH="1")  # the fallback must not import the clone's folder
    for command in commands:
        proc = subprocess.run(_cmsisgen() + shlex.split(command)[1:], cwd=clone, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
        assert "warning" not in proc.stderr, proc.stderr
    out = clone / "out" / "cifar10"
    assert sorted(p.name for p in out.iterdir()) == sorted(GENERATED + ("test_vectors.h", ".cmsisgen-manifest"))
    for name in GENERATED:
        assert (out / name).read_bytes() == (EXAMPLE / "generated" / name).read_bytes(), name


def test_no_readme_command_needs_the_full_data_set():
    """Every command in both READMEs runs from the clone (the full set is named in prose only)."""
    commands = [line for readme in (ROOT / "README.md", EXAMPLE / "README.md") for line in _commands(readme)]
    assert sum("--calib examples/cifar10/images/train-2000.zip" in line for line in commands) == 8
    assert not [line for line in commands if "../shared" in line]


def test_generated_is_up_to_date_with_the_bundled_calibration():
    """The example README's --check command (what .ci/run runs), with the bundled images only."""
    args = shlex.split(next(line for line in _commands(EXAMPLE / "README.md") if "--check" in line))
    assert args[:2] == ["cmsisgen", "compile"] and "examples/cifar10/images/train-2000.zip" in args
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        result = CliRunner().invoke(cli_main, ["-q", *args[1:]])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name,split,per_class", [("train-2000.zip", "train", 200), ("test-1000.zip", "test", 100)])
def test_bundled_images_are_the_first_of_every_class(name, split, per_class):
    """The first images in cmsisgen's round-robin order: the first per_class files of every class,
    stored uncompressed with one fixed timestamp (make_images.py's reproducible zips)."""
    with zipfile.ZipFile(IMAGES / name) as zf:
        infos = zf.infolist()
    expected = sorted(f"{split}/{c}/{i:04d}.jpg" for c in CLASSES for i in range(per_class))
    assert [i.filename for i in infos] == expected
    assert {(i.compress_type, i.date_time, i.external_attr >> 16) for i in infos} == {
        (zipfile.ZIP_STORED, (1980, 1, 1, 0, 0, 0), 0o100644)}


def _make_images():
    spec = importlib.util.spec_from_file_location("make_images", EXAMPLE / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_full_set
@pytest.mark.data
def test_bundled_images_are_what_make_images_writes(tmp_path):
    """Re-making the zips from the full set reproduces the committed files byte for byte, and
    every member is the full zip's member with the same name and bytes."""
    make_images = _make_images()
    for target, source, count in make_images.SUBSETS:
        make_images.write_subset(CIFAR / source, count, tmp_path / target)
        assert (tmp_path / target).read_bytes() == (IMAGES / target).read_bytes(), target
        with zipfile.ZipFile(IMAGES / target) as ours, zipfile.ZipFile(CIFAR / source) as full:
            for name in ours.namelist():
                assert ours.read(name) == full.read(name), name


@needs_full_set
@pytest.mark.data
def test_bundled_calibration_gives_the_program_of_the_full_train_zip(tmp_path):
    """`--calib images/train-2000.zip` and `--calib ../shared/data/cifar10/train.zip` (default
    --calib-limit 2000) write the same files, byte for byte."""
    outputs = []
    for calib in (IMAGES / "train-2000.zip", CIFAR / "train.zip"):
        out = tmp_path / calib.parent.name
        result = CliRunner().invoke(cli_main, [
            "-q", "compile", str(EXAMPLE / "cifar10.prototxt"), str(EXAMPLE / "cifar10.caffemodel"), "-o", str(out),
            "--mean", str(EXAMPLE / "mean.binaryproto"), "--scale", "0.015625", "--calib", str(calib),
            "--test-vectors", "4", "--data", str(calib.with_name("test-1000.zip" if calib.parent == IMAGES
                                                                  else "test.zip"))])
        assert result.exit_code == 0, result.output
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert sorted(outputs[0]) == sorted(GENERATED + ("test_vectors.h", ".cmsisgen-manifest"))
    assert outputs[0] == outputs[1]
