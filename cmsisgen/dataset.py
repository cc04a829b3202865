"""Labelled image data sets for calibration and evaluation.

``load_dataset(path)`` reads one of

* an **image-folder tree** ``<root>/.../<class>/<image>``;
* a **zip** of such a tree (e.g. CIFAR-10's ``test.zip`` with entries
  ``test/<class>/NNNN.jpg``), read in one pass without unpacking;
* an **.npz** with ``x`` uint8 images (N, H, W, C) with C 1 or 3, or (N, H, W) gray, and ``y``
  (N,) integer labels in 0..32767 (test vectors store them as int16), and optionally
  ``classes`` (an array of class-name strings, index = label).

For trees and zips the *class level* is the parent folder of the images: every image file's
class is the name of the folder that directly holds it, so a tree may have any number of
folders above the class folders. Classes sorted alphabetically give the label index (the
usual Caffe/ImageFolder convention; for CIFAR-10: airplane=0 ... truck=9). Files that are not
images (by extension), hidden files and ``__MACOSX`` entries are skipped. Images are decoded
with Pillow and converted to RGB; all of them must have the same size. 16-bit greyscale
images are read as round(v / 257); images Pillow would cut to 8 bits silently (48-bit RGB)
or that have no 0..255 meaning (float) are refused by name.

**Bounds.** Only regular files are read (a FIFO would block forever); an image file or zip
member larger than ``MAX_FILE_BYTES`` and an image whose header gives more than
``MAX_IMAGE_PIXELS`` are refused before they are read or decoded.

**Order.** Samples come round-robin over the classes: the first sample of every class (in
label order), then the second of every class, and so on; within a class, tree and zip samples
are in file-path order and npz samples in their stored order. ``limit=N`` keeps the first N
samples of that order, so any prefix covers the classes as evenly as possible and is the same
on every machine. The order does not depend on ``limit``: ``load_dataset(p, limit=n)`` is
exactly the first n samples of ``load_dataset(p)``. ``zip_members(p, limit=n)`` names those
samples of a zip without decoding them.
"""
from __future__ import annotations

import io
import os
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, Union

import numpy as np

from cmsisgen.errors import CmsisgenError

MAX_LABEL = 32767  # labels are stored as int16 in generated test vectors
#: Largest image decoded, in pixels (from the header, before decoding): far above any
#: network input on a Cortex-M, small enough that a hostile file cannot exhaust memory.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Largest image file read, in bytes (a zip member's uncompressed size from the zip's
#: directory, a file's from the file system; both before reading).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Pillow modes of one-channel images; "I;16*" hold 16 bits, read as round(v / 257).
GREY_MODES = frozenset({"1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N"})
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tif", ".tiff", ".webp"}
)


@dataclass(frozen=True)
class Dataset:
    """Images and labels.

    ``x``: (N, H, W, 3) uint8 RGB; ``y``: (N,) int64 label indices into ``classes``;
    ``grey``: the images were all greyscale, so a colour network must not take them.
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    grey: bool = False  # every image had one channel (copied into x's three)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, 3)."""
        return tuple(int(d) for d in self.x.shape[1:])  # type: ignore[return-value]


def load_dataset(
    path: Union[str, os.PathLike], limit: Optional[int] = None, progress: bool = False
) -> Dataset:
    """Load an image-folder tree, a zip of one, or an .npz (see the module docstring).

    ``limit`` keeps the first ``limit`` samples in the module's round-robin class order;
    ``progress`` prints a decoding counter on stderr when it is a terminal. Raises :class:`CmsisgenError` naming the
    path (or the image inside it) for a missing, empty or unreadable data set.
    """
    p = Path(path)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0):
        raise CmsisgenError(f"{p}: dataset limit must be a positive integer, got {limit!r}")
    if not p.exists():
        raise CmsisgenError(f"{p}: dataset not found")
    if p.is_dir():
        return _load_tree(p, limit, progress)
    _regular(p)
    if p.suffix.lower() == ".npz":
        return _load_npz(p, limit)
    if zipfile.is_zipfile(p):
        return _load_zip(p, limit, progress)
    raise CmsisgenError(f"{p}: not a dataset (expected an image folder, a .zip of one, or an .npz)")


# ----------------------------------------------------------------------------------------
# ordering


def _round_robin(labels: list[int] | np.ndarray, n_classes: int) -> np.ndarray:
    """Indices ordered by (rank within class, class), ranks following the input order."""
    labels = np.asarray(labels, dtype=np.int64)
    rank = np.zeros(len(labels), dtype=np.int64)
    counts = np.zeros(max(n_classes, 1), dtype=np.int64)
    for i, c in enumerate(labels.tolist()):
        rank[i] = counts[c]
        counts[c] += 1
    # lexsort: last key is primary
    return np.lexsort((labels, rank))


# ----------------------------------------------------------------------------------------
# trees and zips


def _is_image_name(parts: tuple[str, ...]) -> bool:
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return False
    return PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def _index(
    entries: list[tuple[tuple[str, ...], object]], source: Path
) -> tuple[list[object], list[int], tuple[str, ...]]:
    """entries: (relative path parts, handle). Returns handles and labels in dataset order."""
    images = [(parts, h) for parts, h in entries if _is_image_name(parts)]
    if not images:
        raise CmsisgenError(f"{source}: no images found (expected <class>/<image> files)")
    loose = [parts for parts, _ in images if len(parts) < 2]
    if loose:
        raise CmsisgenError(
            f"{source}: image {'/'.join(loose[0])} is not inside a class folder (expected <class>/<image>)"
        )
    images.sort(key=lambda item: item[0])
    classes = tuple(sorted({parts[-2] for parts, _ in images}))
    label_of = {name: i for i, name in enumerate(classes)}
    labels = [label_of[parts[-2]] for parts, _ in images]
    order = _round_robin(labels, len(classes))
    return [images[i][1] for i in order], [labels[i] for i in order], classes


def _regular(path: Path) -> int:
    """The size of ``path``; a FIFO, socket or device is refused before it is opened
    (reading a FIFO named 1.png waits for a writer forever)."""
    try:
        info = os.stat(path)
    except OSError as e:
        raise CmsisgenError(f"{path}: cannot read ({e.strerror or e})") from None
    mode = info.st_mode
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise CmsisgenError(f"{path}: {kind}, not a regular file")
    return info.st_size


def _rawmode(im) -> str:
    """How the file stores its pixels (Pillow's raw mode, e.g. "RGB;16B"), or ""."""
    tile = getattr(im, "tile", None) or []
    args = getattr(tile[0], "args", None) if tile else None
    if args is None and tile:
        args = tile[0][3]
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def _pixels(im, name: str) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint8 RGB of an opened image and whether it is greyscale.

    8-bit images are read as Pillow converts them; 16-bit greyscale as round(v / 257), so
    a 16-bit file made from 8-bit values by x257 gives back exactly those values. Formats
    Pillow would silently cut to 8 bits (48-bit RGB, 16-bit grey with alpha) or that have
    no 0..255 meaning (float, 32-bit integer) are refused by name.
    """
    width, height = im.size
    if width * height > MAX_IMAGE_PIXELS:
        raise CmsisgenError(f"{name}: image is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                            "cmsisgen decodes")
    raw = _rawmode(im)
    if im.mode.startswith("I;16"):
        wide = np.asarray(im, dtype=np.uint32)
        grey = ((2 * wide + 257) // 514).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), True
    if im.mode in ("I", "F") or ";16" in raw or ";32" in raw:
        raise CmsisgenError(f"{name}: a {_mode_name(im.mode, raw)} image (Pillow mode {im.mode}"
                            f"{', stored as ' + raw if raw and raw != im.mode else ''}) cannot be read "
                            "faithfully as 8-bit pixels; save it with 8 bits per channel (or 16-bit greyscale)")
    return np.asarray(im.convert("RGB"), dtype=np.uint8), im.mode in GREY_MODES


def _mode_name(mode: str, raw: str) -> str:
    if mode == "F" or raw.startswith("F"):
        return "floating-point"
    if mode == "I" and ";16" not in raw:
        return "32-bit integer"
    return "16-bit-per-channel"


def _decode_all(
    handles: list[object],
    read: Callable[[object], bytes],
    name: Callable[[object], str],
    progress: bool,
) -> tuple[np.ndarray, bool]:
    """The images in order, and whether every one of them was greyscale."""
    from PIL import Image, UnidentifiedImageError

    n = len(handles)
    x: Optional[np.ndarray] = None
    first_name = ""
    all_grey = True
    # A counter that redraws in place, on a terminal only (as the other progress bars: a log
    # gets no progress lines).
    tty = progress and sys.stderr.isatty()
    step = max(1, n // 100)
    for i, h in enumerate(handles):
        try:
            with Image.open(io.BytesIO(read(h))) as im:  # reads the header only
                arr, grey = _pixels(im, name(h))
        except UnidentifiedImageError:  # Pillow's message names an in-memory object: useless
            raise CmsisgenError(f"{name(h)}: not an image Pillow can decode") from None
        except (OSError, ValueError, zipfile.BadZipFile, Image.DecompressionBombError) as e:
            raise CmsisgenError(f"{name(h)}: cannot read image ({_one_line(e)})") from None
        all_grey = all_grey and grey
        if x is None:
            x = np.empty((n,) + arr.shape, dtype=np.uint8)
            first_name = name(h)
        elif arr.shape != x.shape[1:]:
            raise CmsisgenError(
                f"{name(h)}: image size {arr.shape[1]}x{arr.shape[0]} differs from "
                f"{x.shape[2]}x{x.shape[1]} of {first_name}; all images must have one size"
            )
        x[i] = arr
        if tty and ((i + 1) % step == 0 or i == n - 1):
            print(f"\rloading images: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr, flush=True)
    assert x is not None
    return x, all_grey


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _load_tree(root: Path, limit: Optional[int], progress: bool) -> Dataset:
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root).parts
        for f in filenames:
            entries.append((rel + (f,), Path(dirpath) / f))
    handles, labels, classes = _index(entries, root)
    if limit is not None:
        handles, labels = handles[:limit], labels[:limit]

    def read(h: object) -> bytes:
        size = _regular(Path(h))  # type: ignore[arg-type]
        if size > MAX_FILE_BYTES:
            raise CmsisgenError(f"{h}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} cmsisgen reads "
                                "from one image file")
        return Path(h).read_bytes()  # type: ignore[arg-type]

    x, grey = _decode_all(handles, read, str, progress)
    return Dataset(x=x, y=np.asarray(labels, dtype=np.int64), classes=classes, grey=grey)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CmsisgenError(f"{path}: cannot read zip ({_one_line(e)})") from None


def _zip_index(zf: zipfile.ZipFile, path: Path) -> tuple[list[object], list[int], tuple[str, ...]]:
    """The zip's image members, labels and classes in dataset order (see :func:`_index`)."""
    entries = [
        (tuple(p for p in info.filename.split("/") if p), info)
        for info in zf.infolist()
        if not info.is_dir()
    ]
    return _index([(parts, info) for parts, info in entries if parts], path)


def zip_members(path: Union[str, os.PathLike], limit: Optional[int] = None) -> list[str]:
    """Names of the image members of the zip data set at ``path``, in the order
    :func:`load_dataset` reads them, only the first ``limit``: the images a
    ``--calib ZIP --calib-limit N`` run uses, without decoding them (so that a subset of a
    large zip can be copied out, e.g. examples/cifar10/make_images.py)."""
    p = Path(path)
    with _open_zip(p) as zf:
        handles, _, _ = _zip_index(zf, p)
    return [h.filename for h in handles[:limit]]  # type: ignore[attr-defined]


def _load_zip(path: Path, limit: Optional[int], progress: bool) -> Dataset:
    zf = _open_zip(path)
    with zf:
        handles, labels, classes = _zip_index(zf, path)
        if limit is not None:
            handles, labels = handles[:limit], labels[:limit]
        # Members are read in archive order (one sequential pass over the file) and then
        # decoded in dataset order.
        by_offset = sorted(range(len(handles)), key=lambda i: handles[i].header_offset)  # type: ignore[attr-defined]
        blobs: list[bytes] = [b""] * len(handles)
        for i in by_offset:
            info = handles[i]
            if info.file_size > MAX_FILE_BYTES:  # type: ignore[attr-defined]
                raise CmsisgenError(f"{path}:{info.filename}: {info.file_size:,} bytes uncompressed, more than "  # type: ignore[attr-defined]
                                    f"the {MAX_FILE_BYTES:,} cmsisgen reads from one zip member")
            try:
                blobs[i] = zf.read(info)  # type: ignore[arg-type]
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as e:
                raise CmsisgenError(f"{path}:{info.filename}: cannot read ({_one_line(e)})") from None  # type: ignore[attr-defined]
    idx = list(range(len(handles)))
    x, grey = _decode_all(
        idx,
        lambda i: blobs[i],  # type: ignore[index]
        lambda i: f"{path}:{handles[i].filename}",  # type: ignore[index]
        progress,
    )
    return Dataset(x=x, y=np.asarray(labels, dtype=np.int64), classes=classes, grey=grey)


# ----------------------------------------------------------------------------------------
# npz


def _load_npz(path: Path, limit: Optional[int]) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"x", "y"} <= keys:
                raise CmsisgenError(f"{path}: .npz dataset needs arrays 'x' and 'y', found {sorted(keys)}")
            x = npz["x"]
            y = npz["y"]
            classes_arr = npz["classes"] if "classes" in keys else None
    except CmsisgenError:
        raise
    except Exception as e:  # zip/format/pickle errors from numpy
        raise CmsisgenError(f"{path}: cannot read .npz ({_one_line(e)})") from None

    if x.dtype != np.uint8:
        raise CmsisgenError(f"{path}: 'x' must be uint8 images (N, H, W, C), got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise CmsisgenError(f"{path}: 'x' must have shape (N, H, W, 3), (N, H, W, 1) or (N, H, W), "
                            f"got {x.shape}")
    if x.shape[0] == 0:
        raise CmsisgenError(f"{path}: dataset is empty")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise CmsisgenError(f"{path}: 'x' images are {x.shape[2]}x{x.shape[1]} pixels")
    y = np.asarray(y)
    if y.ndim != 1:
        raise CmsisgenError(f"{path}: 'y' must have shape ({x.shape[0]},), got {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise CmsisgenError(f"{path}: 'x' has {x.shape[0]} images but 'y' has {y.shape[0]} labels")
    if y.dtype.kind not in "iu":
        if not (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise CmsisgenError(f"{path}: 'y' must hold integer labels, got dtype {y.dtype}")
    # Checked before any cast (uint64/float labels would wrap) and before the class list is
    # built from the largest label; test vectors store labels as int16.
    for label in (y.min(), y.max()):
        if not 0 <= label <= MAX_LABEL:
            shown = int(label) if y.dtype.kind in "iu" else f"{float(label):g}"
            raise CmsisgenError(f"{path}: 'y' has label {shown}; labels must be in 0..{MAX_LABEL}")
    y = y.astype(np.int64)
    n_classes = int(y.max()) + 1
    if classes_arr is not None:
        classes = tuple(str(c) for c in np.asarray(classes_arr).reshape(-1).tolist())
        if len(classes) < n_classes:
            raise CmsisgenError(
                f"{path}: 'classes' names {len(classes)} classes but 'y' has label {n_classes - 1}"
            )
    else:
        classes = tuple(str(i) for i in range(n_classes))

    order = _round_robin(y, len(classes))
    if limit is not None:
        order = order[:limit]
    x = x[order]
    grey = x.shape[-1] == 1
    if grey:
        x = np.repeat(x, 3, axis=-1)
    return Dataset(x=np.ascontiguousarray(x), y=y[order], classes=classes, grey=grey)


# ----------------------------------------------------------------------------------------
# resizing (--resize)


def resize_dataset(dataset: Dataset, height: int, width: int) -> Dataset:
    """``dataset`` with every image resized to ``height`` x ``width`` (Pillow bilinear).

    Only on request (the CLI's --resize): by default an image of another size than the
    network input is an error, as in Caffe, because a silent resize changes accuracy.
    """
    from PIL import Image

    if dataset.image_shape[:2] == (height, width):
        return dataset
    x = np.empty((len(dataset), height, width, dataset.x.shape[3]), dtype=np.uint8)
    for i, image in enumerate(dataset.x):
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        resized = np.asarray(pil.resize((width, height), getattr(Image, "Resampling", Image).BILINEAR), dtype=np.uint8)
        x[i] = resized.reshape(height, width, -1)
    return Dataset(x=x, y=dataset.y, classes=dataset.classes, grey=dataset.grey)
