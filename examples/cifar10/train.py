#!/usr/bin/env python3
"""Train the CMSIS-NN CIFAR-10 example network with real Caffe (pycaffe, CPU, SGD).

    python3 examples/cifar10/train.py [--train ../shared/data/cifar10/train.zip]
                                      [--test ../shared/data/cifar10/test.zip]
                                      [--iters 12000] [--out examples/cifar10/cifar10.caffemodel]
    python3 examples/cifar10/train.py --evaluate examples/cifar10/cifar10.caffemodel

pycaffe is found on PYTHONPATH, else under $CMSISGEN_PYCAFFE/python, else under
~/.cache/pycaffe/python (the script then re-executes itself with PYTHONPATH set). It lowers its
own priority (nice 10) and pins BLAS to one thread, so it can run beside other work.

The Caffe build used here has no Data/LMDB layer, so the solver trains
``cifar10_solver_net.prototxt`` (the same layers behind an Input layer) and this script fills
``data``/``label`` before every iteration with the preprocessing of the TEST-phase
``transform_param`` in ``cifar10_train_test.prototxt``:

    x = (pixel_RGB - (125.3, 123.0, 113.9)) * (1/64)

plus training augmentation: random horizontal flip and a random shift of up to 2 pixels (the
image is padded with the mean, i.e. 0 after preprocessing, and a 32x32 window is cropped).
The learned weights are copied into the deploy net ``cifar10.prototxt`` and saved from there,
so the .caffemodel holds exactly the deploy layers.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10"

MEAN_RGB = (125.3, 123.0, 113.9)
SCALE = 1.0 / 64.0
BATCH = 100


def _ensure_pycaffe() -> None:
    """Import caffe, or re-exec with PYTHONPATH pointing at a local pycaffe build."""
    if os.environ.get("_CIFAR10_TRAIN_REEXEC") != "1":
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            import caffe  # noqa: F401
            return
        except ImportError:
            pass
        prefix = Path(os.environ.get("CMSISGEN_PYCAFFE", Path.home() / ".cache" / "pycaffe"))
        if not (prefix / "python" / "caffe" / "_caffe.so").exists():
            sys.exit(f"train.py: pycaffe not found (PYTHONPATH, $CMSISGEN_PYCAFFE or {prefix})")
        env = dict(os.environ, _CIFAR10_TRAIN_REEXEC="1")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(prefix / "python"), env.get("PYTHONPATH", "")) if p)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def preprocess(x_nhwc_uint8):
    import numpy as np

    x = x_nhwc_uint8.astype(np.float32).transpose(0, 3, 1, 2)
    x -= np.asarray(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    x *= np.float32(SCALE)
    return x


def augment(x_nchw, rng, shift=2):
    """Random horizontal flip and random translation by up to ``shift`` pixels."""
    import numpy as np

    n, c, h, w = x_nchw.shape
    flip = rng.random(n) < 0.5
    x = x_nchw.copy()
    x[flip] = x[flip, :, :, ::-1]
    if shift:
        padded = np.zeros((n, c, h + 2 * shift, w + 2 * shift), dtype=x.dtype)
        padded[:, :, shift:shift + h, shift:shift + w] = x
        dy = rng.integers(0, 2 * shift + 1, n)
        dx = rng.integers(0, 2 * shift + 1, n)
        for i in range(n):
            x[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return x


def copy_params(src, dst) -> None:
    for name, blobs in dst.params.items():
        for i, b in enumerate(blobs):
            b.data[...] = src.params[name][i].data


def evaluate(net, x, y) -> float:
    import numpy as np

    correct = 0
    for i in range(0, len(y), BATCH):
        xb = x[i:i + BATCH]
        net.blobs["data"].reshape(*xb.shape)
        net.blobs["data"].data[...] = xb
        out = net.forward()["prob"]
        correct += int((out.argmax(axis=1) == y[i:i + BATCH]).sum())
    return correct / len(y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(DATA / "train.zip"))
    ap.add_argument("--test", default=str(DATA / "test.zip"))
    ap.add_argument("--iters", type=int, default=12000, help="SGD iterations of batch 100")
    ap.add_argument("--base-lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=0.004)
    ap.add_argument("--eval-every", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "cifar10.caffemodel"))
    ap.add_argument("--h5", action="store_true", help="also save <out>.h5 (HDF5 weights)")
    ap.add_argument("--evaluate", metavar="WEIGHTS",
                    help="do not train: print the float top-1 of WEIGHTS (deploy net) on --test")
    args = ap.parse_args()

    try:
        os.nice(10)
    except OSError:
        pass
    _ensure_pycaffe()
    import numpy as np
    import caffe

    sys.path.insert(0, str(REPO))
    from cmsisgen.dataset import load_dataset

    caffe.set_mode_cpu()
    if args.evaluate:
        test = load_dataset(args.test)
        deploy = caffe.Net(str(HERE / "cifar10.prototxt"), caffe.TEST, weights=args.evaluate)
        acc = evaluate(deploy, preprocess(test.x), test.y)
        print(f"float top-1 of {args.evaluate} on {args.test} ({len(test.y)} images): "
              f"{acc * 100:.2f}%")
        return

    t0 = time.time()
    train = load_dataset(args.train)
    test = load_dataset(args.test)
    print(f"loaded {len(train.y)} train / {len(test.y)} test images in {time.time() - t0:.1f}s",
          flush=True)
    x_train, y_train = preprocess(train.x), train.y.astype(np.float32)
    x_test, y_test = preprocess(test.x), test.y

    caffe.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    # Learning rate steps at 60% and 85% of the run (x0.1 each).
    steps = (int(args.iters * 0.6), int(args.iters * 0.85))
    with tempfile.TemporaryDirectory() as tmp:
        solver_path = Path(tmp) / "solver.prototxt"
        solver_path.write_text(
            f'net: "{HERE / "cifar10_solver_net.prototxt"}"\n'
            f"base_lr: {args.base_lr}\nmomentum: 0.9\nweight_decay: {args.weight_decay}\n"
            'lr_policy: "multistep"\ngamma: 0.1\n'
            f"stepvalue: {steps[0]}\nstepvalue: {steps[1]}\n"
            f"max_iter: {args.iters}\ndisplay: 0\nsnapshot: 0\n"
            f"random_seed: {args.seed}\nsolver_mode: CPU\ntype: \"SGD\"\n")
        solver = caffe.SGDSolver(str(solver_path))
    deploy = caffe.Net(str(HERE / "cifar10.prototxt"), caffe.TEST)
    net = solver.net
    per_epoch = len(y_train) // BATCH
    perm = rng.permutation(len(y_train))
    loss_avg, t_start = None, time.time()
    for it in range(args.iters):
        k = it % per_epoch
        if k == 0 and it:
            perm = rng.permutation(len(y_train))
        idx = perm[k * BATCH:(k + 1) * BATCH]
        net.blobs["data"].data[...] = augment(x_train[idx], rng)
        net.blobs["label"].data[...] = y_train[idx]
        solver.step(1)
        loss = float(net.blobs["loss"].data)
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        if not np.isfinite(loss):
            sys.exit(f"train.py: loss diverged at iteration {it + 1}")
        if (it + 1) % 100 == 0:
            print(f"iter {it + 1:6d}  loss {loss_avg:.4f}  "
                  f"{(time.time() - t_start) / 60:.1f} min", flush=True)
        if (it + 1) % args.eval_every == 0 or it + 1 == args.iters:
            copy_params(net, deploy)
            acc = evaluate(deploy, x_test, y_test)
            print(f"iter {it + 1:6d}  test top-1 {acc * 100:.2f}%", flush=True)
            deploy.save(str(Path(tempfile.gettempdir()) / "cifar10_train_snapshot.caffemodel"))

    copy_params(net, deploy)
    deploy.blobs["data"].reshape(1, 3, 32, 32)
    deploy.reshape()
    deploy.save(args.out)
    if args.h5:
        deploy.save_hdf5(args.out + ".h5")
    print(f"saved {args.out}; training took {(time.time() - t_start) / 60:.1f} min", flush=True)
    print(f"final float top-1 on {args.test}: {evaluate(deploy, x_test, y_test) * 100:.2f}%",
          flush=True)


if __name__ == "__main__":
    main()
