#!/usr/bin/env python3
"""s8 against q7 top-1 on two samples: the table behind the README's "s8 against q7 top-1".

    python3 benchmarks/s8_vs_q7.py [--trained ~/.cache/cmsisgen/trained] [--held-out 20000:30000]

For the example (calibrated on its train-2000.zip) and each catalogue net trained by
benchmarks/train_catalogue.py (calibrated on the first 500 training images): float, q7 and s8
top-1 on the 10,000 test images and on training images the calibration never saw (the slice
``--held-out`` of train.zip in cmsisgen's order), s8 - q7 with the exact two-sided McNemar p
over the images only one of the two gets right, and each backend's argmax agreement with float.
One sample of 10,000 images moves top-1 by a few tenths of a point either way; a second sample
says whether a gap between the backends is theirs or the images'. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
from math import comb
from pathlib import Path

import numpy as np

from cmsisgen.dataset import Dataset, load_dataset
from cmsisgen.evaluate import scored_output, top1
from cmsisgen.float_forward import forward
from cmsisgen.pipeline import Compiled, compile_model
from cmsisgen.simulator.execute import run_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cifar10"
DATA = ROOT.parent / "shared" / "data" / "cifar10"
TRAINED = Path.home() / ".cache" / "cmsisgen" / "trained"


def predictions(compiled: Compiled, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(quantized, float) argmax per image, ties to the first maximum as evaluate counts them."""
    net, program = compiled.net, compiled.program
    _, h, w = next(iter(net.input_shapes.values()))
    images = compiled.pre.prepare_images(data.x, h, w)
    output = scored_output(net)
    blob = program.outputs[net.outputs.index(output)].blob
    quantized = program.split_outputs(run_program(program, images, batch_size=500))[blob]
    floats = forward(net, compiled.pre.to_float(images), keep=[output])[output]
    return top1(net, output, quantized.reshape(len(images), -1)), top1(net, output, floats.reshape(len(images), -1))


def mcnemar(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p: the discordant images as a fair coin's tosses."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def compare(models: dict[str, Compiled], data: Dataset) -> tuple[str, str, str]:
    """'float / q7 / s8' top-1, 's8 - q7 (p)' and 'q7 / s8' agreement cells for one sample."""
    (q7, floats), (s8, _) = predictions(models["q7"], data), predictions(models["s8"], data)
    right = {name: pred == data.y for name, pred in (("float", floats), ("q7", q7), ("s8", s8))}
    only_s8, only_q7 = int((right["s8"] & ~right["q7"]).sum()), int((right["q7"] & ~right["s8"]).sum())
    top = " / ".join(f"{100 * right[name].mean():.2f}" for name in ("float", "q7", "s8"))
    gap = f"{100 * (right['s8'].mean() - right['q7'].mean()):+.2f} ({mcnemar(only_s8, only_q7):.2g})"
    agreement = f"{100 * (q7 == floats).mean():.2f} / {100 * (s8 == floats).mean():.2f}"
    return top, gap, agreement


def models(directory: Path | None, train: Dataset) -> list[tuple[str, dict]]:
    """(name, compile_model options) for the example and each trained catalogue net found."""
    found = [("the example", dict(prototxt=EXAMPLE / "cifar10.prototxt", weights=EXAMPLE / "cifar10.caffemodel",
                                  calib_images=load_dataset(EXAMPLE / "images" / "train-2000.zip").x,
                                  mean=str(EXAMPLE / "mean.binaryproto"), scale=0.015625))]
    for record in sorted(directory.glob("*.json")) if directory else []:
        meta = json.loads(record.read_text())
        found.append((meta["net"], dict(prototxt=directory / f"{meta['net']}.prototxt",
                                        weights=directory / f"{meta['net']}.caffemodel",
                                        calib_images=train.x[:500], mean=meta["mean"], scale=meta["scale"])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, nargs="?", const=TRAINED, default=TRAINED)
    parser.add_argument("--held-out", default="20000:30000", help="slice of train.zip (cmsisgen's order)")
    parser.add_argument("--train", type=Path, default=DATA / "train.zip")
    parser.add_argument("--test", type=Path, default=DATA / "test.zip")
    args = parser.parse_args()
    start, stop = (int(v) for v in args.held_out.split(":"))
    train = load_dataset(args.train, limit=stop)
    held = Dataset(x=train.x[start:stop], y=train.y[start:stop], classes=train.classes)
    test = load_dataset(args.test)
    print("| model | test: float / q7 / s8 | s8 - q7 (p) | held-out training: float / q7 / s8 | s8 - q7 (p) "
          "| agreement, test: q7 / s8 |")
    print("|---|---|---|---|---|---|")
    trained = args.trained if args.trained and args.trained.is_dir() else None
    for name, options in models(trained, train):
        compiled = {backend: compile_model(**options, backend=backend) for backend in ("q7", "s8")}
        (top, gap, agreement), (held_top, held_gap, _) = compare(compiled, test), compare(compiled, held)
        print(f"| {name} | {top} | {gap} | {held_top} | {held_gap} | {agreement} |", flush=True)


if __name__ == "__main__":
    main()
