#!/usr/bin/env python3
"""Float top-1 of the example under real Caffe (pycaffe), the third figure of the README.

    python3 examples/cifar10/caffe_top1.py [--test ../shared/data/cifar10/test.zip] [--limit N]

(the default --test is the full test set; --test examples/cifar10/images/test-1000.zip runs on the
example's own 1,000 test images.)

pycaffe is optional for cmsisgen and used here only as an independent check: it is taken from
PYTHONPATH, else from $CMSISGEN_PYCAFFE/python, else ~/.cache/pycaffe/python (build it with
../shared/pycaffe/build.sh). Preprocessing is the TEST-phase transform_param of
cifar10_train_test.prototxt: (pixel_RGB - mean.binaryproto) * 0.015625, done here in float32
exactly as Caffe's DataTransformer does it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10"
SCALE = 0.015625
BATCH = 500


def _import_caffe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
        return caffe
    except ImportError:
        prefix = Path(os.environ.get("CMSISGEN_PYCAFFE") or Path.home() / ".cache" / "pycaffe")
        sys.path.insert(0, str(prefix / "python"))
        try:
            import caffe
        except ImportError:
            sys.exit(f"caffe_top1.py: pycaffe not found (PYTHONPATH, or {prefix}/python)")
        return caffe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", default=str(DATA / "test.zip"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--weights", default=str(HERE / "cifar10.caffemodel"))
    args = ap.parse_args()

    import numpy as np

    sys.path.insert(0, str(REPO))
    from cmsisgen.dataset import load_dataset
    from cmsisgen.loader.mean import read_mean_binaryproto

    caffe = _import_caffe()  # after cmsisgen's schema: see ../shared/pycaffe/README.md
    caffe.set_mode_cpu()
    test = load_dataset(args.test, limit=args.limit)
    mean = read_mean_binaryproto(HERE / "mean.binaryproto")[None]
    net = caffe.Net(str(HERE / "cifar10.prototxt"), caffe.TEST, weights=args.weights)
    correct = 0
    for start in range(0, len(test.y), BATCH):
        x = (test.x[start:start + BATCH].astype(np.float32).transpose(0, 3, 1, 2) - mean) * np.float32(SCALE)
        net.blobs["data"].reshape(*x.shape)
        net.blobs["data"].data[...] = x
        prob = net.forward()["prob"].copy()
        correct += int((prob.reshape(len(x), -1).argmax(1) == test.y[start:start + BATCH]).sum())
    print(f"Caffe float top-1 of {Path(args.weights).name} on {args.test} ({len(test.y)} images): "
          f"{100 * correct / len(test.y):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
