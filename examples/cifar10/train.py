#!/usr/bin/env python3
"""Train the CMSIS-NN CIFAR-10 example network on the CPU with PyTorch, save it as Caffe.

    pip install torch==2.13.0
    python3 examples/cifar10/train.py            # about 1-2 min per epoch on 2 cores

Writes, next to this script: ``mean.binaryproto`` (the per-pixel mean of the training images,
1x3x32x32, RGB), ``cifar10.caffemodel`` and ``cifar10.caffemodel.h5`` (the deploy layers of
``cifar10.prototxt`` with the trained blobs, written through cmsisgen's own Caffe schema), and
``train.log``. The run is seeded (``--seed``); on the same machine and torch build it repeats
exactly.

The training graph computes what Caffe computes for ``cifar10.prototxt``, so the exported model
scores the same in Caffe and in ``cmsisgen evaluate``:

* input ``x = (pixel_RGB - mean_image) * SCALE`` (the TEST ``transform_param`` of
  ``cifar10_train_test.prototxt``);
* pooling in Caffe's ceil mode (``ceil_mode=True``); with no padding, PyTorch's average-pool
  divisor for a window clipped at the border is Caffe's (the clipped window's size);
* blobs in NCHW, so the flatten before ``ip1`` is Caffe's C, H, W order, and PyTorch's
  ``(out, in, kh, kw)`` convolution weights are Caffe's layout as they are.

Augmentation: random horizontal flip and a random shift of up to 4 pixels (padding with the
mean, i.e. 0 after preprocessing). SGD with momentum, cosine learning rate. The preprocessing,
augmentation and loop are ``training.py``'s, shared with ``benchmarks/train_catalogue.py``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from training import BATCH, SCALE, accuracy, compute_mean, fit, preprocess  # noqa: F401 (SCALE: the docstring's)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10"

#: Deploy layer name -> the module attribute holding its parameters.
PARAM_LAYERS = ("conv1", "conv2", "conv3", "ip1")


def build_model():
    """The deploy network of cifar10.prototxt as a torch module (Caffe semantics)."""
    import torch
    from torch import nn

    class Cifar10(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
            self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
            self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
            self.ip1 = nn.Linear(64 * 4 * 4, 10)

        def forward(self, x):
            f = nn.functional
            x = f.relu(f.max_pool2d(self.conv1(x), 3, 2, ceil_mode=True))    # conv1, pool1, relu1
            x = f.avg_pool2d(f.relu(self.conv2(x)), 3, 2, ceil_mode=True)    # conv2, relu2, pool2
            x = f.avg_pool2d(f.relu(self.conv3(x)), 3, 2, ceil_mode=True)    # conv3, relu3, pool3
            return self.ip1(torch.flatten(x, 1))                               # ip1 (CHW flatten)

    return Cifar10()


def export(model, mean_chw: np.ndarray, out: Path) -> None:
    """Write the caffemodel (+ .h5) of the deploy net and mean.binaryproto."""
    import h5py
    from google.protobuf import text_format

    sys.path.insert(0, str(REPO))
    from cmsisgen.proto import schema

    net = schema.NetParameter()
    text_format.Parse((HERE / "cifar10.prototxt").read_text(), net)
    params = {name: [p.detach().numpy().astype(np.float32) for p in getattr(model, name).parameters()]
              for name in PARAM_LAYERS}
    for layer in net.layer:
        for array in params.get(layer.name, []):
            blob = layer.blobs.add()
            blob.shape.dim.extend(array.shape)
            blob.data.extend(array.reshape(-1).tolist())
    out.write_bytes(net.SerializeToString())
    with h5py.File(str(out) + ".h5", "w") as f:
        for name, arrays in params.items():
            for i, array in enumerate(arrays):
                f.create_dataset(f"data/{name}/{i}", data=array)
    mean = schema.BlobProto()
    mean.num, mean.channels, mean.height, mean.width = 1, *mean_chw.shape
    mean.data.extend(mean_chw.reshape(-1).tolist())
    (out.parent / "mean.binaryproto").write_bytes(mean.SerializeToString())


def _shown(path: Path) -> str:
    """A path as the log shows it: relative to the repository (no machine paths in the log)."""
    import os

    return os.path.relpath(path.resolve(), REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(DATA / "train.zip"))
    ap.add_argument("--test", default=str(DATA / "test.zip"))
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "cifar10.caffemodel"))
    args = ap.parse_args()

    import torch

    sys.path.insert(0, str(REPO))
    from cmsisgen.dataset import load_dataset

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    log_path = HERE / "train.log"
    log_file = log_path.open("w")

    def log(text: str) -> None:
        print(text, flush=True)
        log_file.write(text + "\n")
        log_file.flush()

    t0 = time.time()
    train, test = load_dataset(args.train), load_dataset(args.test)
    mean = compute_mean(train.x)
    x_train, y_train = preprocess(train.x, mean), train.y.astype(np.int64)
    x_test, y_test = preprocess(test.x, mean), test.y
    log(f"loaded {len(y_train)} train / {len(y_test)} test images in {time.time() - t0:.0f} s; "
        f"seed {args.seed}, {args.epochs} epochs, batch {BATCH}, lr {args.lr}, torch {torch.__version__}")

    model = build_model()
    fit(model, x_train, y_train, epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, rng=rng,
        log=log, epoch_note=lambda: f"test top-1 {accuracy(model, x_test, y_test) * 100:.2f}%")

    export(model, mean, Path(args.out))
    log(f"saved {_shown(Path(args.out))} (+ .h5) and {_shown(Path(args.out).parent / 'mean.binaryproto')}")
    log(f"final float top-1 on {_shown(Path(args.test))} ({len(y_test)} images): "
        f"{accuracy(model, x_test, y_test) * 100:.2f}%")


if __name__ == "__main__":
    main()
