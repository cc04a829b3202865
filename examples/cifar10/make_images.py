#!/usr/bin/env python3
"""Make the example's own CIFAR-10 images (examples/cifar10/images/) from the full data set.

    python3 examples/cifar10/make_images.py [--cifar ../shared/data/cifar10] [--out examples/cifar10/images]

The example's commands must work from a plain clone, without the full CIFAR-10 zips
(62 MB, kept beside the repository in ../shared/data/cifar10). So the example carries the
images its figures need, chosen by cmsisgen's own data-set order (round-robin over the
classes, file-path order within a class; cmsisgen/dataset.py):

- ``train-2000.zip``: the first 2,000 images of ``train.zip`` in that order, i.e.
  ``train/<class>/0000.jpg`` ... ``0199.jpg`` of every class. Exactly the images
  ``cmsisgen compile --calib ../shared/data/cifar10/train.zip`` calibrates on with the default
  ``--calib-limit 2000``, in the same order, so calibrating on this zip gives the same
  program, byte for byte (and any ``--calib-limit N`` up to 2,000 the same as on train.zip).
- ``test-1000.zip``: the first 1,000 images of ``test.zip`` in that order (``test/<class>/
  0000.jpg`` ... ``0099.jpg``): the README's 1,000-image accuracy subset, and the first
  images, hence the same known-answer vectors, for ``--test-vectors`` / ``verify``.

The members keep their names and their JPEG bytes unchanged (no re-encoding: the decoded
pixels are the full set's). The zips are reproducible byte for byte: members in name order,
stored uncompressed (deflate output may differ between zlib builds, and JPEG hardly
compresses), with one fixed timestamp and fixed attributes. Re-running this script over the
same ../shared data rewrites the committed files unchanged (tests/test_example.py checks it).
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from cmsisgen.dataset import zip_members  # noqa: E402

#: (file written, zip of the full data set it is taken from, first N images).
SUBSETS = (("train-2000.zip", "train.zip", 2000), ("test-1000.zip", "test.zip", 1000))
#: Every member's timestamp (the earliest a zip can hold) and Unix mode (rw-r--r--).
TIMESTAMP = (1980, 1, 1, 0, 0, 0)
MODE = 0o100644


def write_subset(source: Path, count: int, out: Path) -> list[str]:
    """Copy the first ``count`` images of ``source`` (cmsisgen's order) into ``out``; returns
    their names."""
    names = zip_members(source, limit=count)
    if len(names) < count:
        raise SystemExit(f"make_images: {source} holds only {len(names)} images, {count} needed")
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
        for name in sorted(names):
            info = zipfile.ZipInfo(name, date_time=TIMESTAMP)
            info.create_system = 3  # Unix, on every host, so that the attributes below hold
            info.external_attr = MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            dst.writestr(info, src.read(name))
    tmp.replace(out)
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cifar", type=Path, default=REPO.parent / "shared" / "data" / "cifar10",
                    help="folder holding CIFAR-10's train.zip and test.zip")
    ap.add_argument("--out", type=Path, default=HERE / "images")
    args = ap.parse_args()
    for _, source, _ in SUBSETS:
        if not (args.cifar / source).is_file():
            raise SystemExit(f"make_images: {args.cifar / source} not found (the full CIFAR-10 zips are needed)")
    args.out.mkdir(parents=True, exist_ok=True)
    for target, source, count in SUBSETS:
        names = write_subset(args.cifar / source, count, args.out / target)
        print(f"{args.out / target}: {len(names)} images from {args.cifar / source}, "
              f"{(args.out / target).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
