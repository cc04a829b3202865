"""The CPU training loop shared by ``train.py`` (the example) and
``benchmarks/train_catalogue.py`` (catalogue nets trained on CIFAR-10).

Both need the same things done the same way so that what they export scores in cmsisgen
as it did in torch: Caffe's preprocessing, a seeded augmentation whose random draws come
from one numpy generator in a fixed order (so a run repeats exactly on one machine and
torch build), and a loop that stops on a diverged loss. torch is imported inside the
functions: the module loads without it.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only: torch is imported where it runs, in the training venv
    import torch

SCALE = 1.0 / 64.0
BATCH = 128


class Diverged(SystemExit):
    """The loss became NaN or infinite: uncaught, the script exits with this message."""


def compute_mean(x_nhwc_uint8: np.ndarray) -> np.ndarray:
    """Per-pixel mean image, (3, 32, 32) float32, as Caffe's compute_image_mean computes it."""
    return x_nhwc_uint8.astype(np.float64).mean(axis=0).transpose(2, 0, 1).astype(np.float32)


def preprocess(x_nhwc_uint8: np.ndarray, mean_chw: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW ``(pixel - mean) * SCALE``, in Caffe's float32 arithmetic."""
    x = x_nhwc_uint8.astype(np.float32).transpose(0, 3, 1, 2)
    x = x - mean_chw[None]
    return (x * np.float32(SCALE)).astype(np.float32)


def augment(x_nchw: np.ndarray, rng: np.random.Generator, shift: int = 4) -> np.ndarray:
    """Random horizontal flip and a random shift of up to ``shift`` pixels, padding with 0
    (the mean, after preprocessing)."""
    n, c, h, w = x_nchw.shape
    flip = rng.random(n) < 0.5
    x = x_nchw.copy()
    x[flip] = x[flip, :, :, ::-1]
    padded = np.zeros((n, c, h + 2 * shift, w + 2 * shift), dtype=x.dtype)
    padded[:, :, shift:shift + h, shift:shift + w] = x
    dy = rng.integers(0, 2 * shift + 1, n)
    dx = rng.integers(0, 2 * shift + 1, n)
    for i in range(n):
        x[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return x


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of ``model`` (its scores: the logits) on preprocessed NCHW ``x``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 500):
            out = model(torch.from_numpy(x[i:i + 500]))
            correct += int((out.argmax(1).numpy() == y[i:i + 500]).sum())
    model.train()
    return correct / len(y)


def fit(model: torch.nn.Module, x_train: np.ndarray, y_train: np.ndarray, *, epochs: int, lr: float, weight_decay: float,
        rng: np.random.Generator, log: Callable[[str], None], epoch_note: Callable[[], str]) -> None:
    """SGD with Nesterov momentum and a one-cycle (cosine) learning rate, cross-entropy on
    augmented batches of ``BATCH``; logs one line per epoch (loss, ``epoch_note()``, minutes).
    Raises :class:`Diverged` when the loss does."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps_per_epoch = len(y_train) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss()
    t_start = time.time()
    for epoch in range(epochs):
        perm = rng.permutation(len(y_train))
        total = 0.0
        for k in range(steps_per_epoch):
            idx = perm[k * BATCH:(k + 1) * BATCH]
            xb = torch.from_numpy(augment(x_train[idx], rng))
            loss = loss_fn(model(xb), torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        if not np.isfinite(total):
            raise Diverged(f"training: loss diverged in epoch {epoch + 1}")
        log(f"epoch {epoch + 1:3d}  loss {total / steps_per_epoch:.4f}  {epoch_note()}  "
            f"{(time.time() - t_start) / 60:.1f} min")
