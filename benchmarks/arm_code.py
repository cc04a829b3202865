"""Arm's own generated CIFAR-10 code against cmsisgen's, on the same QEMU Cortex-M7 and CMSIS-NN.

Arm's CMSIS-NN CIFAR-10 example (cmsisnn-cifar10 in the history of ARM-software/ML-examples:
code/m7, code/m4 with nn.cpp, nn.h, parameter.h, weights.h, and models/ with the Caffe
prototxts and .caffemodel.h5 weights) is not part of this project: the user gives its
folders. For each variant this module builds Arm's nn.cpp (arm-none-eabi-g++ -O2
-mcpu=cortex-m7, against the upstream CMSIS-NN given by --cmsis-nn-path) into the QEMU
mps2-an500 harness in benchmarks/arm_harness/ (firmware/qemu_m7's startup, linker script,
semihosting and SysTick counter), and compiles the same Caffe model with cmsisgen and runs
its self test with the same kernels (`build_and_run`): instructions per inference, counted
the same way, of run_nn() on the first test images.

What each side's run_nn() includes (both timed from the call to its return, the image copied
into the input buffer before the counter starts): Arm's subtracts its mean image in place from
the bytes read as q7 (so pixels >= 128 wrap) with one SSAT each, then makes its ten CMSIS-NN
calls, the last writing the caller's scores. cmsisgen's converts the uint8 image to q7 in place
(mean, scale, saturation; never wrapped), makes the same ten CMSIS-NN calls with its own
shifts, checks their status, and copies the 10 scores out; the self test's build also calls
its step-trace hook (switched off, returning at once) after each step. The harness also times
Arm's mean_subtract() alone, the counterpart of cmsisgen's input step (profile step 0).
cmsisgen uses the Caffe CIFAR-10 mean.binaryproto the prototxts name (examples/cifar10; Arm's
baked mean differs by at most 1 per byte) and no scale, as Arm's DATA_RSHIFT 0.

    python3 benchmarks/arm_code.py CODE_DIR [--models DIR] (or bench.py --arm-code CODE_DIR)
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cmsisgen.dataset import load_dataset  # noqa: E402
from cmsisgen.errors import CmsisgenError  # noqa: E402
from cmsisgen.verify import build_and_run, firmware_dir  # noqa: E402

HARNESS = Path(__file__).resolve().parent / "arm_harness"
ARM_FILES = ("nn.cpp", "nn.h", "parameter.h", "weights.h")
ARCH = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
CROSS = "arm-none-eabi-"
IMAGES = 4  # the self test's vectors: the first test images
MEAN = REPO / "examples" / "cifar10" / "mean.binaryproto"  # Caffe's CIFAR-10 mean, as Arm's prototxts name


def variants(code_dir: Path) -> list[tuple[str, Path]]:
    """(name, folder) of each Arm code folder: CODE_DIR itself or its subfolders (m7, m4)."""
    folders = [code_dir] if (code_dir / "nn.cpp").is_file() else sorted(
        p for p in code_dir.iterdir() if (p / "nn.cpp").is_file())
    if not folders:
        raise SystemExit(f"bench: error: --arm-code {code_dir}: no nn.cpp in it or its subfolders")
    for folder in folders:
        missing = [f for f in ARM_FILES if not (folder / f).is_file()]
        if missing:
            raise SystemExit(f"bench: error: --arm-code {folder}: missing {', '.join(missing)}")
    return [(folder.name, folder) for folder in folders]


def model_files(models_dir: Path, name: str) -> tuple[Path, Path]:
    """The prototxt and weights of variant NAME: the files of MODELS_DIR whose name holds _NAME_."""
    def one(pattern: str) -> Path:
        found = sorted(p for p in models_dir.glob(pattern) if not p.name.startswith("quantized"))
        if len(found) != 1:
            raise SystemExit(f"bench: error: --arm-models {models_dir}: expected one {pattern}, found {len(found)}")
        return found[0]
    return one(f"*_{name}_*.prototxt"), one(f"*_{name}_*.caffemodel*")


def write_images(images_zip: Path, path: Path) -> None:
    """The first IMAGES test images as a C header, HWC RGB bytes (what Arm's run_nn reads)."""
    x = load_dataset(images_zip, limit=IMAGES).x
    rows = ",\n".join("{" + ",".join(str(int(v)) for v in image.ravel()) + "}" for image in x)
    path.write_text(f"#define ARM_IMAGES {len(x)}\n#define ARM_IMAGE_BYTES {x[0].size}\n"
                    f"static const unsigned char arm_images[ARM_IMAGES][ARM_IMAGE_BYTES] = {{\n{rows}\n}};\n")


def _compile(source: Path, out: Path, flags: list[str]) -> Path:
    obj = out / (re.sub(r"[^A-Za-z0-9]", "_", str(source)) + ".o")
    tool = CROSS + ("g++" if source.suffix == ".cpp" else "gcc")
    extra = ["-fno-exceptions", "-fno-rtti"] if source.suffix == ".cpp" else ["-std=gnu11"]
    proc = subprocess.run([tool, *ARCH, "-O2", "-ffunction-sections", "-fdata-sections", *extra, *flags,
                           "-c", str(source), "-o", str(obj)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: error: compiling {source} failed:\n{proc.stderr}")
    return obj


def build_arm(code: Path, build: Path, images_zip: Path, cmsis: dict[str, Path]) -> Path:
    """Arm's nn.cpp + the harness + upstream CMSIS-NN + qemu_m7's platform, linked into an ELF."""
    build.mkdir(parents=True, exist_ok=True)
    write_images(images_zip, build / "arm_images.h")
    fw = firmware_dir()
    incs = [f"-I{HARNESS}", f"-I{code}", f"-I{build}", f"-I{fw / 'qemu_m7'}", f"-I{fw / 'common'}",
            "-isystem", str(cmsis["nn"] / "Include"), "-isystem", str(cmsis["dsp"]),
            "-isystem", str(cmsis["core"])]
    platform = [fw / "qemu_m7" / f for f in ("startup.c", "semihosting.c", "systick.c")]
    platform += [fw / "common" / f for f in ("cm7_startup.c", "newlib_stubs.c")]
    kernels = sorted((cmsis["nn"] / "Source").rglob("*.c"))
    objs = [_compile(s, build, incs) for s in [code / "nn.cpp", HARNESS / "main.cpp", *platform, *kernels]]
    elf = build / "arm_nn.elf"
    proc = subprocess.run([CROSS + "gcc", *ARCH, "--specs=nano.specs", "-nostartfiles", "-L", str(fw / "common"),
                           "-T", str(fw / "qemu_m7" / "linker.ld"), "-Wl,--gc-sections",
                           "-Wl,--no-warn-rwx-segments", "-o", str(elf), *map(str, objs), "-lm"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: error: linking Arm's code failed:\n{proc.stderr}")
    return elf


def run_arm(elf: Path) -> tuple[int, int | None]:
    """(instructions per inference of Arm's run_nn(), of its mean_subtract() alone) under QEMU,
    with the self test's machine and counting flags."""
    flags = dict(re.findall(r"^(\w+) := (.*)$", (firmware_dir() / "qemu_m7" / "qemu.mk").read_text(), re.M))
    cmd = ["qemu-system-arm", *flags["QEMU_MACHINE_FLAGS"].split(), *flags["QEMU_COUNT_FLAGS"].split(),
           "-kernel", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    m = re.search(r"instructions per inference: (\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"bench: error: QEMU run of Arm's code failed:\n{proc.stdout}{proc.stderr}")
    mean = re.search(r"mean_subtract: (\d+)", proc.stdout)
    return int(m.group(1)), int(mean.group(1)) if mean else None


def cmsisgen_run(prototxt: Path, weights: Path, out: Path, images: tuple[Path, Path], cmsis: dict[str, Path]):
    """cmsisgen's code for the same model (the example's CIFAR-10 mean file, scale 1 as Arm's),
    calibrated on 1,000 images of IMAGES[0], self test on the first test images with the same kernels."""
    calib, test = images
    proc = subprocess.run([sys.executable, "-c", "from cmsisgen.cli import main; main()", "-q", "compile",
                           str(prototxt), str(weights), "-o", str(out), "--mean", str(MEAN), "--calib", str(calib),
                           "--calib-limit", "1000", "--test-vectors", str(IMAGES), "--data", str(test)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: error: cmsisgen compile {prototxt} failed:\n{proc.stderr}")
    try:
        return build_and_run(out, "qemu", out / "qemu", cmsis_nn_path=cmsis["nn"], cmsis_core_path=cmsis["core"],
                             cmsis_dsp_include=cmsis["dsp"])
    except CmsisgenError as exc:
        raise SystemExit(f"bench: error: QEMU run failed: {exc}")


def arm_code_rows(code_dir: Path, models_dir: Path | None, root: Path, images: tuple[Path, Path],
                  cmsis: dict[str, Path]) -> list[tuple[str, str]]:
    """One pair of rows per variant: Arm's instructions per inference, then cmsisgen's and the difference."""
    if models_dir is None:  # Arm's layout: code/m7/nn.cpp beside models/
        models_dir = (code_dir.parent if (code_dir / "nn.cpp").is_file() else code_dir).parent / "models"
    rows = []
    for name, folder in variants(code_dir):
        prototxt, weights = model_files(models_dir, name)
        arm, mean = run_arm(build_arm(folder, root / f"arm_{name}", images[1], cmsis))
        ours = cmsisgen_run(prototxt, weights, root / f"cmsisgen_{name}", images, cmsis)
        n, step0 = ours.instructions_per_inference, ours.profile[0][1]
        size = 3 * 32 * 32
        mean_text = f" (its mean subtraction {mean:,} = {mean / size:.2f}/byte)" if mean is not None else ""
        rows.append((f"Arm's generated code, {name}: QEMU Cortex-M7 instructions per inference, upstream CMSIS-NN",
                     f"{arm:,}{mean_text}"))
        rows.append((f"cmsisgen, same model ({prototxt.name}), same kernels",
                     f"{n:,.0f} ({(n - arm) / arm:+.2%}; its input step {step0:,} = {step0 / size:.2f}/byte; "
                     f"{ours.passed}/{ours.total} vectors bit-exact)"))
    return rows


def cmsis_paths(nn: Path | None, core: Path | None, dsp: Path | None) -> dict[str, Path]:
    """The upstream CMSIS_5 folders (Arm's code needs CMSIS-NN and arm_math.h)."""
    if not nn:
        raise SystemExit("bench: error: Arm's code needs upstream CMSIS-NN: set --cmsis-nn-path or CMSIS_NN_PATH")
    return {"nn": nn, "core": core or nn.parent / "Core" / "Include", "dsp": dsp or nn.parent / "DSP" / "Include"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("code_dir", type=Path, help="Arm's code folder (nn.cpp ...) or one holding m7/, m4/")
    ap.add_argument("--models", type=Path, default=None,
                    help="folder with *_NAME_*.prototxt and *_NAME_*.caffemodel[.h5] (default: Arm's ../models)")
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--cmsis-nn-path", type=Path, default=os.environ.get("CMSIS_NN_PATH"))
    ap.add_argument("--cmsis-core-path", type=Path, default=os.environ.get("CMSIS_CORE_PATH"))
    ap.add_argument("--cmsis-dsp-include", type=Path, default=os.environ.get("CMSIS_DSP_INCLUDE"))
    args = ap.parse_args()
    import tempfile

    from bench import image_sets

    root = args.build_dir or Path(tempfile.mkdtemp(prefix="cmsisgen-arm-"))
    cmsis = cmsis_paths(args.cmsis_nn_path, args.cmsis_core_path, args.cmsis_dsp_include)
    print("| figure | value |\n|---|---|")
    for name, value in arm_code_rows(args.code_dir, args.models, root, image_sets(1000), cmsis):
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
