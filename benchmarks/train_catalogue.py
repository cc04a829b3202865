#!/usr/bin/env python3
"""Train catalogue nets (tests/random_nets.py) on CIFAR-10, so quantization is measured on
real weights and not only random ones (issues 13 and 15).

    pip install torch==2.13.0
    python3 benchmarks/train_catalogue.py [--out ~/.cache/cmsisgen/trained] [--epochs 3]
        [--nets cifar10_full_style,inception,...] [--train ../shared/data/cifar10/train.zip]

Each net keeps its catalogue topology with two changes: the input is 32x32 (gray nets read
the luminance cmsisgen computes from the RGB images) and the last inner product has 10
outputs. Input preprocessing ``(pixel - 120) / 64``. Training is ``examples/cifar10/training.py``'s
loop (seeded, one thread, augmentation, one-cycle SGD) on a torch twin of the loaded net with
Caffe's semantics (``benchmarks/caffe_torch.py``). Writes, per net, into ``--out`` (outside
the repository; never commit it): ``NAME.prototxt``, ``NAME.caffemodel`` and ``NAME.json``
(preprocessing, top-1 in torch and in cmsisgen's float forward on the 10,000 test images,
and how many of their top-1 predictions differ). ``benchmarks/calib_methods.py --trained DIR``
measures them.

Left out: nets whose layers have no Caffe-exact torch twin here or no 10-class classifier
(Permute/Flatten heads, Deconvolution, Upsample, ArgMax outputs, lookup tables, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "cifar10"))

from cmsisgen.dataset import Dataset, load_dataset  # noqa: E402
from cmsisgen.float_forward import forward  # noqa: E402
from cmsisgen.loader import load_net  # noqa: E402
from cmsisgen.pipeline import load_model  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cifar10"
CACHE = Path.home() / ".cache" / "cmsisgen" / "trained"
NETS = "cifar10_full_style,inception,residual_sum,mobilenet_block,lenet_gray,sigmoid_tanh"
MEAN, SCALE = "120", 0.015625
SIZE = 32


def cifar_layers(name: str) -> tuple[list[dict], tuple[int, int, int]]:
    """The catalogue net's layers with a 10-output last inner product, and its 32x32 input shape."""
    from random_nets import CATALOGUE

    spec = CATALOGUE[name]
    layers = [dict(d, params=dict(d["params"])) for d in spec.layers]
    last_ip = max(i for i, d in enumerate(layers) if d["type"] == "InnerProduct")
    layers[last_ip]["params"]["num_output"] = 10
    return layers, (spec.input_shape[0], SIZE, SIZE)


def write_net(out: Path, name: str, blobs: dict | None = None) -> tuple[Path, Path]:
    """NAME.prototxt + NAME.caffemodel with ``blobs`` (random N(0, 0.1) where not given)."""
    from caffe_models import write_model

    layers, shape = cifar_layers(name)
    if blobs:
        layers = [dict(d, weights=blobs.get(d["name"], d["weights"])) for d in layers]
    return write_model(out, layers, input_shape=shape, stem=name)


def floats(prototxt: Path, weights: Path, images: np.ndarray) -> np.ndarray:
    """cmsisgen's preprocessing of uint8 RGB ``images`` for the net: float32 NCHW."""
    model = load_model(prototxt, weights, mean=MEAN, scale=SCALE)
    return model.pre.to_float(model.pre.prepare_images(images, SIZE, SIZE))


def cmsisgen_logits(prototxt: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    """The logits tensor of cmsisgen's float forward (BatchNorm folded, as it compiles)."""
    from caffe_torch import logits_tensor

    net = load_model(prototxt, weights, mean=MEAN, scale=SCALE).net
    name = logits_tensor(net)
    return np.concatenate([forward(net, x[i:i + 500], keep=[name])[name].reshape(len(x[i:i + 500]), -1)
                           for i in range(0, len(x), 500)])


def train_one(name: str, train: Dataset, test: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    """Train catalogue net ``name`` and write it with its record (returned): the weights are only
    worth measuring quantization on if cmsisgen's float forward scores them as torch does."""
    import torch
    from caffe_torch import CaffeTorch
    from training import Diverged, accuracy, fit

    out: Path = args.out
    start = time.time()
    prototxt, weights = write_net(out, name)
    x_train, x_test = floats(prototxt, weights, train.x), floats(prototxt, weights, test.x)
    y_train = train.y.astype(np.int64)
    lr = args.lr
    while True:  # a net without normalisation may diverge at the example's rate: halve it, start again
        torch.manual_seed(args.seed)
        model = CaffeTorch(load_net(prototxt, weights))
        try:
            fit(model, x_train, y_train, epochs=args.epochs, lr=lr, weight_decay=5e-4,
                rng=np.random.default_rng(args.seed), log=lambda line: print(f"{name}: {line}", flush=True),
                epoch_note=lambda: "")
            break
        except Diverged as exc:
            print(f"{name}: {exc} at lr {lr}; again at lr {lr / 2}", flush=True)
            lr /= 2
    prototxt, weights = write_net(out, name, model.trained_blobs())
    model.eval()
    with torch.no_grad():
        theirs = np.concatenate([model(torch.from_numpy(x_test[i:i + 500])).numpy() for i in range(0, len(x_test), 500)])
    ours = cmsisgen_logits(prototxt, weights, x_test)
    record = {"net": name, "mean": MEAN, "scale": SCALE, "epochs": args.epochs, "lr": lr, "seed": args.seed,
              "torch_top1": accuracy(model, x_test, test.y), "cmsisgen_float_top1": float(np.mean(ours.argmax(1) == test.y)),
              "top1_differs": int(np.sum(ours.argmax(1) != theirs.argmax(1))),
              "max_abs_logit_diff": float(np.abs(ours - theirs).max()), "minutes": round((time.time() - start) / 60, 1)}
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=CACHE)
    ap.add_argument("--nets", default=NETS)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", type=Path, default=DATA / "train.zip")
    ap.add_argument("--test", type=Path, default=DATA / "test.zip")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    train, test = load_dataset(args.train, limit=args.limit), load_dataset(args.test)
    for name in args.nets.split(","):
        train_one(name, train, test, args)


if __name__ == "__main__":
    main()
