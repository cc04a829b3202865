#!/usr/bin/env python3
"""Which CMSIS-NN function is fastest where several fit: QEMU instruction counts per variant.

For each case below, a one-layer network (random weights, seeded) is compiled once per
candidate function -- forced for the layer as ``compile --kernel x=FUNCTION`` does -- built for the emulated Cortex-M7 (QEMU mps2-an500, -O2) with
known-answer vectors, checked bit-exact against the simulator, and its run_nn() instructions
per inference printed (QEMU -icount, SysTick x 40 instructions; the image conversion before
the layer is the same for every variant of a case). A layer's own count is the run_nn()
count minus that of the same network without it (a cheap RGB 1x1 convolution that gives
the layer its input channels, and the image conversion).
The order of the layer kind's candidates (``cmsisgen.ops.convolution.DENSE``/``GROUPED``,
``cmsisgen.ops.pooling.MAX``/``AVE``) must put each case's winner first among the functions that fit; the script says so per case and exits 1 when it does not
(except where only one function matches Caffe: a padded average pooling takes nn_pool_q7).

    python benchmarks/kernel_choice.py [--cmsis-nn-path .../CMSIS/NN
        --cmsis-core-path .../CMSIS/Core/Include --cmsis-dsp-include .../CMSIS/DSP/Include]
        [--build-dir DIR] [--markdown]

Without --cmsis-nn-path (or the CMSIS_NN_PATH / CMSIS_CORE_PATH / CMSIS_DSP_INCLUDE
environment variables) the project's portable C kernels are built; those are plain C99, so
their counts do not rank the upstream DSP functions: measure with upstream CMSIS-NN.
Not a test: figures only (a few minutes; two cores).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # caffe_models: prototxt + caffemodel from a layer list

from caffe_models import layer as L  # noqa: E402
from caffe_models import write_model  # noqa: E402

from cmsisgen.codegen import render  # noqa: E402
from cmsisgen.ops.convolution import DENSE, GROUPED, PER_GROUP  # noqa: E402
from cmsisgen.ops.pooling import AVE, MAX  # noqa: E402
from cmsisgen.output import write_output  # noqa: E402
from cmsisgen.pipeline import compile_model  # noqa: E402
from cmsisgen.vectors import make_test_vectors  # noqa: E402
from cmsisgen.verify import build_and_run  # noqa: E402

VECTORS = 2
#: Differences below this fraction are ties (fast vs fast_nonsquare go either way by < 0.1%).
TIE = 0.002
#: The candidate lists the cases' variants come from.
CHOICES = {choice.key: choice for choice in (DENSE, GROUPED, MAX, AVE)}


@dataclass(frozen=True)
class Case:
    name: str
    layers: list
    input_shape: tuple[int, int, int]
    key: str                       # CHOICES key the variants come from
    variants: tuple[str, ...]      # functions (or fc variants "opt"/"plain") to measure
    note: str = ""
    fc: bool = False
    #: the function the rules take because only it matches Caffe, whatever its speed
    caffe_exact: str = ""


def _prep(channels: int) -> list:
    """A cheap RGB 1x1 convolution giving the measured layer ``channels`` input channels
    (run_nn() takes 1- or 3-channel images); measured alone as the baseline."""
    return [L("prep", "Convolution", num_output=channels, kernel_size=1)]


CASES = [
    Case("1x1 conv, 16x16x32 -> 32", _prep(32) + [L("x", "Convolution", num_output=32, kernel_size=1)],
         (3, 16, 16), "Convolution", ("arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_fast",
                                      "arm_convolve_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_basic",
                                      "arm_convolve_HWC_q7_basic_nonsquare")),
    Case("3x3 conv, 16x16x16 -> 16, pad 1", _prep(16) + [L("x", "Convolution", num_output=16, kernel_size=3, pad=1)],
         (3, 16, 16), "Convolution", ("arm_convolve_HWC_q7_fast", "arm_convolve_HWC_q7_fast_nonsquare",
                                      "arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_basic_nonsquare")),
    Case("RGB 5x5 conv, 32x32x3 -> 32, pad 2 (CIFAR-10 conv1)",
         [L("x", "Convolution", num_output=32, kernel_size=5, pad=2)], (3, 32, 32), "Convolution",
         ("arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_basic_nonsquare")),
    Case("3x3 conv, 12x12x6 -> 5, pad 1", _prep(6) + [L("x", "Convolution", num_output=5, kernel_size=3, pad=1)],
         (3, 12, 12), "Convolution", ("arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_basic_nonsquare")),
    Case("5x5 conv, 8x8x32 -> 32, pad 2", _prep(32) + [L("x", "Convolution", num_output=32, kernel_size=5, pad=2)],
         (3, 8, 8), "Convolution", ("arm_convolve_HWC_q7_fast", "arm_convolve_HWC_q7_fast_nonsquare",
                                    "arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_basic_nonsquare")),
    Case("depthwise 5x5 stride 2, 16x16x8, pad 2",
         _prep(8) + [L("x", "Convolution", num_output=8, group=8, kernel_size=5, stride=2, pad=2)], (3, 16, 16),
         "Convolution/group", ("arm_depthwise_separable_conv_HWC_q7", "arm_depthwise_separable_conv_HWC_q7_nonsquare",
                               PER_GROUP)),
    Case("depthwise 3x3, 16x16x32, pad 1",
         _prep(32) + [L("x", "Convolution", num_output=32, group=32, kernel_size=3, pad=1)], (3, 16, 16),
         "Convolution/group", ("arm_depthwise_separable_conv_HWC_q7", "arm_depthwise_separable_conv_HWC_q7_nonsquare",
                               PER_GROUP)),
    Case("inner product 1024 -> 64", [L("x", "InnerProduct", num_output=64)], (1, 32, 32),
         "InnerProduct", ("opt", "plain"), note="--fc opt / --fc plain", fc=True),
    Case("max pool 3x3 stride 2, 16x16x16", _prep(16) + [L("x", "Pooling", pool="MAX", kernel_size=3, stride=2)],
         (3, 16, 16), "Pooling/max", ("arm_maxpool_q7_HWC", "nn_pool_q7")),
    Case("average pool 3x3 stride 2, 16x16x16", _prep(16) + [L("x", "Pooling", pool="AVE", kernel_size=3, stride=2)],
         (3, 16, 16), "Pooling/ave", ("arm_avepool_q7_HWC", "nn_pool_q7")),
    Case("average pool 3x3 stride 2 pad 1, 16x16x16",
         _prep(16) + [L("x", "Pooling", pool="AVE", kernel_size=3, stride=2, pad=1)], (3, 16, 16), "Pooling/ave",
         ("arm_avepool_q7_HWC", "nn_pool_q7"), caffe_exact="nn_pool_q7"),
]


@dataclass
class KernelObjects:
    """Kernel objects of the first build, copied into later ones (make finds them up to date)."""

    first: Path | None = None
    kernels: Path = field(default_factory=Path)

    def subtree(self, build_dir: Path) -> Path:
        return build_dir / "obj" / str(self.kernels.resolve()).lstrip("/")

    def seed(self, build_dir: Path) -> None:
        if self.first is not None and self.subtree(self.first).is_dir():
            shutil.copytree(self.subtree(self.first), self.subtree(build_dir), copy_function=shutil.copy2,
                            ignore=shutil.ignore_patterns("*.d"), dirs_exist_ok=True)


def measure(case: Case, variant: str, work: Path, args, objects: KernelObjects,
            layers: list | None = None) -> tuple[str, float]:
    """(function emitted for layer "x", run_nn() instructions per inference) of one variant;
    ``layers`` replaces the case's layers (the baseline run)."""
    model = work / "model"
    work.mkdir(parents=True, exist_ok=True)
    proto, weights = write_model(work, layers or case.layers, input_shape=case.input_shape, seed=7, stem="net")
    calib = np.random.default_rng(8).integers(0, 256, size=(8, case.input_shape[1], case.input_shape[2], 3),
                                               dtype=np.uint8)
    if case.fc:
        compiled = compile_model(proto, weights, calib_images=calib, fc_variant=variant)
    else:
        compiled = compile_model(proto, weights, calib_images=calib, kernels={"x": variant} if layers is None else {})
    functions = [op.function for op in compiled.program.ops if op.layer == "x"]
    write_output(render(compiled.program, compiled.plan, "net.prototxt", make_test_vectors(compiled, None, VECTORS)),
                 model)
    build_dir = work / "qemu"
    objects.seed(build_dir)
    result = build_and_run(model, "qemu", build_dir, cmsis_nn_path=args.cmsis_nn_path,
                           cmsis_core_path=args.cmsis_core_path, cmsis_dsp_include=args.cmsis_dsp_include)
    if objects.first is None:
        objects.first = build_dir
    if result.passed != result.total or result.instructions_per_inference is None:
        raise SystemExit(f"{case.name} / {variant}: not bit-exact on QEMU ({result.passed}/{result.total})")
    return (functions[0] if functions else ""), float(result.instructions_per_inference)


def first_in_rules(case: Case, fitting: list[str]) -> str:
    """The function the unforced mapper picks among ``fitting`` (rules order)."""
    if case.fc:
        return "opt"  # the CLI's default --fc
    return next(function for function in CHOICES[case.key].functions() if function in fitting)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    ap.add_argument("--cmsis-nn-path", type=Path, default=env("CMSIS_NN_PATH"))
    ap.add_argument("--cmsis-core-path", type=Path, default=env("CMSIS_CORE_PATH"))
    ap.add_argument("--cmsis-dsp-include", type=Path, default=env("CMSIS_DSP_INCLUDE"))
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--only", default="", help="measure only the cases whose name contains this")
    args = ap.parse_args()
    root = args.build_dir or Path(tempfile.mkdtemp(prefix="cmsisgen-kernel-choice-"))
    kernels = args.cmsis_nn_path or REPO / "firmware" / "cmsis_nn_portable"
    objects = KernelObjects(kernels=Path(kernels))
    label = f"upstream CMSIS-NN ({args.cmsis_nn_path})" if args.cmsis_nn_path else "portable C kernels (not DSP!)"
    print(f"kernels: {label}\nbuild: {root}\n")
    rows: list[tuple[str, str, float, str]] = []
    ok = True
    print(f"  {'layer':52s} {'function':55s} {'run_nn()':>10s} {'layer':>10s}")
    for index, case in enumerate(CASES):
        if args.only not in case.name:
            continue
        prep = [d for d in case.layers if d["name"] != "x"]
        baseline = measure(case, case.variants[0], root / f"case{index}_base", args, objects, prep)[1] if prep else 0.0
        counts: dict[str, float] = {}
        for number, variant in enumerate(case.variants):
            function, count = measure(case, variant, root / f"case{index}_{number}", args, objects)
            if not case.fc and function != variant and not (variant == PER_GROUP and function):
                raise SystemExit(f"{case.name}: asked for {variant}, the mapper emitted {function}")
            counts[variant] = count - baseline
            shown = variant if not case.fc else f"--fc {variant} ({function})"
            if variant == PER_GROUP:
                shown = f"{variant} ({function})"
            print(f"  {case.name:52s} {shown:55s} {count:>10,.0f} {count - baseline:>10,.0f}", flush=True)
            rows.append((case.name, shown, count - baseline, ""))
        best = min(counts, key=counts.__getitem__)
        picked = case.caffe_exact or first_in_rules(case, list(counts))
        tie = counts[picked] <= counts[best] * (1 + TIE) or bool(case.caffe_exact)
        verdict = (f"rules pick {picked}, the one that matches Caffe, whatever its speed" if case.caffe_exact else
                   "rules pick the fastest" if picked == best else
                   f"rules pick {picked}, within {TIE:.1%} of {best} (a tie)" if tie else
                   f"RULES PICK {picked}, FASTEST IS {best}")
        ok &= tie
        print(f"  -> {verdict}" + (f" (baseline without the layer: {baseline:,.0f})" if prep else
                                  " (the image conversion is included)") + "\n")
        rows[-len(case.variants):] = [(n, v, c, "fastest" if c == counts[best] else f"+{c / counts[best] - 1:.1%}")
                                      for n, v, c, _ in rows[-len(case.variants):]]
    if args.markdown:
        print("| layer | function | instructions | vs fastest |\n|---|---|---:|---|")
        for name, variant, count, rel in rows:
            print(f"| {name} | `{variant}` | {count:,.0f} | {rel} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
