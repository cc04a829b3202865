#!/usr/bin/env python3
"""q7 accuracy per ``--calib-method``: the figures behind the README's table (issue 13).

    python3 benchmarks/calib_methods.py [--data ../shared/data/cifar10/test.zip] [--limit 1000]
        [--methods max,percentile,percentile=99.9,mse,kl] [--nets cifar10_full_style,inception,...]
        [--no-example] [--trained ~/.cache/cmsisgen/trained [--trained-calib 500]]

The bundled example (examples/cifar10), calibrated on examples/cifar10/images/train-2000.zip
as its README says: float and q7 top-1 on the first ``--limit`` images of ``--data`` (default:
the example's own test-1000.zip). Catalogue nets (tests/random_nets.py) have random weights,
so top-1 means nothing there: each is calibrated on 64 random images and measured on 64
others, by the SQNR (dB) of its outputs (a final Softmax's input) against the float forward and by how often the q7
argmax agrees with the float one. With ``--trained DIR``, the catalogue nets trained on CIFAR-10
by ``benchmarks/train_catalogue.py``: float and q7 top-1 per method on all of ``--test`` (default
the 10,000 images of ../shared/data/cifar10/test.zip), calibrated on the first
``--trained-calib`` images of ``--train``, and the s8 backend's top-1 (its own calibration).
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cmsisgen.dataset import Dataset, load_dataset  # noqa: E402
from cmsisgen.evaluate import evaluate  # noqa: E402
from cmsisgen.pipeline import compile_model  # noqa: E402

EXAMPLE = ROOT / "examples" / "cifar10"
NETS = "cifar10_full_style,inception,residual_sum,mobilenet_block,lenet_gray,sigmoid_tanh"
DATA = ROOT.parent / "shared" / "data" / "cifar10"
TRAINED = Path.home() / ".cache" / "cmsisgen" / "trained"


def example_rows(methods: list[str], data: Path, limit: int) -> list[str]:
    calib = load_dataset(EXAMPLE / "images" / "train-2000.zip").x
    test = load_dataset(data, limit=limit)
    rows = []
    for method in methods:
        start = time.perf_counter()
        compiled = compile_model(EXAMPLE / "cifar10.prototxt", EXAMPLE / "cifar10.caffemodel", calib_images=calib,
                                 mean=str(EXAMPLE / "mean.binaryproto"), scale=0.015625, calib_method=method)
        result = evaluate(compiled, test)
        rows.append(f"| {method} | {100 * result['float_top1']:.2f} % | {100 * result['q7_top1']:.2f} % | "
                    f"{100 * (result['q7_top1'] - result['float_top1']):+.2f} pt | {100 * result['agreement']:.2f} % | "
                    f"{time.perf_counter() - start:.0f} s |")
        print(rows[-1], file=sys.stderr, flush=True)
    return [f"Example, first {len(test)} images of {data.name}:", "",
            "| method | float top-1 | q7 top-1 | q7 - float | agreement | compile + evaluate |",
            "|---|---|---|---|---|---|", *rows]


def catalogue_rows(methods: list[str], names: list[str], tmp: Path) -> list[str]:
    from random_nets import write_random_net

    rows = []
    for name in names:
        files = write_random_net(tmp / name, name, calib_images=128)
        images = np.load(files.calib)["x"]
        calib, held_out = images[:64], images[64:]
        cells = []
        for method in methods:
            compiled = compile_model(files.prototxt, files.weights, calib_images=calib, calib_method=method,
                                     **files.compile_kwargs())
            c = compiled.program.input_shape[0]
            x = held_out[..., :1] if c == 1 else held_out
            result = evaluate(compiled, Dataset(x=held_out, y=np.zeros(len(x), np.int64), classes=("0",)),
                              output=compiled.net.outputs[0], per_layer=True)
            outputs = {_scores(compiled.net, o).split("@")[0] for o in compiled.net.outputs}
            sqnr = [row["sqnr_db"] for row in result["layers"] if row["tensor"] in outputs]
            shown = "exact" if any(s is None for s in sqnr) else f"{min(sqnr):.1f} dB"
            cells.append(f"{shown}, {100 * result['agreement']:.0f} %")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    return ["Catalogue nets (random weights), output SQNR against float and argmax agreement, 64 held-out "
            "random images:", "", "| net | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods), *rows]


def trained_rows(methods: list[str], directory: Path, calib: np.ndarray, test: Dataset) -> list[str]:
    """Per trained net (``NAME.json`` in ``directory``): float top-1, q7 top-1 and its loss per
    method, s8 top-1."""
    rows = []
    for record in sorted(directory.glob("*.json")):
        meta = json.loads(record.read_text())
        name = meta["net"]
        files = dict(prototxt=directory / f"{name}.prototxt", weights=directory / f"{name}.caffemodel")
        options = dict(calib_images=calib, mean=meta["mean"], scale=meta["scale"])
        cells, float_top1 = [], None
        for method in methods:
            result = evaluate(compile_model(**files, **options, calib_method=method), test)
            float_top1 = result["float_top1"]
            cells.append(f"{100 * result['q7_top1']:.2f} % ({100 * (result['q7_top1'] - float_top1):+.2f})")
        s8 = evaluate(compile_model(**files, **options, backend="s8"), test)
        rows.append(f"| {name} | {100 * float_top1:.2f} % | " + " | ".join(cells) + f" | {100 * s8['q7_top1']:.2f} % |")
        print(rows[-1], file=sys.stderr, flush=True)
    return [f"Catalogue nets trained on CIFAR-10 (benchmarks/train_catalogue.py), calibrated on the first "
            f"{len(calib)} training images, top-1 on {len(test)} test images (q7 - float in pt):", "",
            "| net | float | " + " | ".join(methods) + " | s8 |", "|---|---|" + "---|" * (len(methods) + 1), *rows]


def _scores(net, output: str) -> str:
    """The tensor an output's error is measured on: a Softmax's input (its Q0.7 output hides
    the scores' error), else the output itself."""
    producer = net.producer(output)
    return producer.bottoms[0] if producer is not None and producer.type == "Softmax" else output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=EXAMPLE / "images" / "test-1000.zip")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--methods", default="max,percentile,percentile=99.9,mse,kl")
    parser.add_argument("--nets", default=NETS)
    parser.add_argument("--no-example", action="store_true")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()) / "cmsisgen-calib-methods")
    parser.add_argument("--trained", type=Path, nargs="?", const=TRAINED, default=None,
                        help=f"measure the nets benchmarks/train_catalogue.py wrote there (default {TRAINED})")
    parser.add_argument("--trained-calib", type=int, default=500)
    parser.add_argument("--train", type=Path, default=DATA / "train.zip")
    parser.add_argument("--test", type=Path, default=DATA / "test.zip")
    args = parser.parse_args()
    methods = args.methods.split(",")
    lines = []
    if not args.no_example:
        lines += example_rows(methods, args.data, args.limit) + [""]
    if args.nets:
        lines += catalogue_rows(methods, args.nets.split(","), args.tmp) + [""]
    if args.trained:
        calib = load_dataset(args.train, limit=args.trained_calib).x
        lines += trained_rows(methods, args.trained, calib, load_dataset(args.test))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
