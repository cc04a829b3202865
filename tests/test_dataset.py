"""cmsisgen.dataset: image-folder trees, zips of them and .npz files."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cmsisgen.dataset import Dataset, load_dataset, zip_members
from cmsisgen.errors import CmsisgenError

CIFAR = Path(__file__).resolve().parents[1].parent / "shared/data/cifar10"

CLASSES = ("cat", "dog", "frog")


def _image(seed: int, size=(6, 5), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    return im if mode == "RGB" else im.convert(mode)


def _tree(root: Path, counts=(3, 2, 4), prefix="split", ext=".png") -> dict[str, np.ndarray]:
    """Write <root>/<prefix>/<class>/<i>.png; returns {relative path: RGB array}."""
    arrays = {}
    for c, (cls, n) in enumerate(zip(CLASSES, counts)):
        d = root / prefix / cls if prefix else root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = _image(100 * c + i)
            path = d / f"{i:03d}{ext}"
            im.save(path)
            arrays[str(path.relative_to(root))] = np.asarray(Image.open(path).convert("RGB"))
    return arrays


def _zip(tree_root: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(tree_root.rglob("*")):
            zf.write(p, p.relative_to(tree_root).as_posix())
    return zip_path


def _expected_order(counts=(3, 2, 4)):
    """(class, index in class) in round-robin order."""
    out = []
    for r in range(max(counts)):
        for c, n in enumerate(counts):
            if r < n:
                out.append((c, r))
    return out


def _check(ds: Dataset, arrays: dict[str, np.ndarray], prefix="split", counts=(3, 2, 4)):
    assert isinstance(ds, Dataset)
    assert ds.classes == CLASSES
    assert ds.x.dtype == np.uint8 and ds.x.shape == (sum(counts), 5, 6, 3)
    assert ds.y.dtype == np.int64 and ds.y.shape == (sum(counts),)
    for k, (c, i) in enumerate(_expected_order(counts)):
        rel = str(Path(prefix, CLASSES[c], f"{i:03d}.png")) if prefix else str(Path(CLASSES[c], f"{i:03d}.png"))
        assert ds.y[k] == c
        np.testing.assert_array_equal(ds.x[k], arrays[rel])


def test_folder_tree(tmp_path):
    arrays = _tree(tmp_path)
    _check(load_dataset(tmp_path), arrays)
    # The class folder level is the images' parent, however deep the root is.
    _check(load_dataset(tmp_path / "split"), arrays)
    _check(load_dataset(str(tmp_path)), arrays)


def test_zip_matches_folder(tmp_path):
    arrays = _tree(tmp_path / "t")
    zp = _zip(tmp_path / "t", tmp_path / "d.zip")
    ds = load_dataset(zp)
    _check(ds, arrays)
    folder = load_dataset(tmp_path / "t")
    np.testing.assert_array_equal(ds.x, folder.x)
    np.testing.assert_array_equal(ds.y, folder.y)


def test_zip_members_are_named_in_dataset_order(tmp_path):
    """zip_members names the images load_dataset reads, in its order, the first `limit` only
    (what examples/cifar10/make_images.py copies out of CIFAR-10's zips)."""
    _tree(tmp_path / "t")
    (tmp_path / "t" / "split" / "notes.txt").write_text("not an image")
    zp = _zip(tmp_path / "t", tmp_path / "d.zip")
    expected = [f"split/{CLASSES[c]}/{i:03d}.png" for c, i in _expected_order()]
    assert zip_members(zp) == expected
    assert zip_members(zp, limit=4) == expected[:4]
    with zipfile.ZipFile(zp) as zf:
        np.testing.assert_array_equal(
            load_dataset(zp, limit=4).x,
            np.stack([np.asarray(Image.open(zf.open(name)).convert("RGB")) for name in expected[:4]]))
    with pytest.raises(CmsisgenError, match="cannot read zip"):
        zip_members(tmp_path / "t" / "split" / "notes.txt")


def test_zip_without_prefix_folder(tmp_path):
    arrays = _tree(tmp_path / "t", prefix="")
    ds = load_dataset(_zip(tmp_path / "t", tmp_path / "d.zip"))
    _check(ds, arrays, prefix="")


def test_frozen_dataclass(tmp_path):
    ds = load_dataset(_zip_tree(tmp_path))
    with pytest.raises(Exception):
        ds.x = None  # type: ignore[misc]
    assert len(ds) == 9 and ds.image_shape == (5, 6, 3)


def _zip_tree(tmp_path):
    _tree(tmp_path / "t")
    return _zip(tmp_path / "t", tmp_path / "d.zip")


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 8, 9, 100])
def test_limit_is_prefix_covering_classes(tmp_path, limit):
    zp = _zip_tree(tmp_path)
    full = load_dataset(zp)
    part = load_dataset(zp, limit=limit)
    n = min(limit, 9)
    assert len(part.y) == n
    np.testing.assert_array_equal(part.x, full.x[:n])
    np.testing.assert_array_equal(part.y, full.y[:n])
    assert part.classes == CLASSES  # classes do not depend on the limit
    if limit >= 3:
        assert set(part.y.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_bad_limit(tmp_path, limit):
    with pytest.raises(CmsisgenError, match="limit"):
        load_dataset(_zip_tree(tmp_path), limit=limit)


def test_grayscale_and_palette_become_rgb(tmp_path):
    for cls, mode in (("a", "L"), ("b", "P"), ("c", "RGBA")):
        (tmp_path / cls).mkdir()
        _image(1, mode=mode).save(tmp_path / cls / "x.png")
    ds = load_dataset(tmp_path)
    assert ds.x.shape == (3, 5, 6, 3) and ds.classes == ("a", "b", "c")
    g = ds.x[0]
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])


def test_jpeg_decoding(tmp_path):
    (tmp_path / "k").mkdir()
    _image(3).save(tmp_path / "k" / "0.jpg", quality=90)
    ds = load_dataset(tmp_path)
    np.testing.assert_array_equal(ds.x[0], np.asarray(Image.open(tmp_path / "k" / "0.jpg").convert("RGB")))


def test_non_images_and_hidden_files_are_skipped(tmp_path):
    arrays = _tree(tmp_path)
    (tmp_path / "README.txt").write_text("hello")
    (tmp_path / "split" / "cat" / "notes.txt").write_text("x")
    (tmp_path / "split" / "cat" / ".hidden.png").write_bytes(b"junk")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "bad.png").write_bytes(b"junk")
    _check(load_dataset(tmp_path), arrays)
    zp = tmp_path.parent / (tmp_path.name + ".zip")
    with zipfile.ZipFile(zp, "w") as zf:
        for p in sorted(tmp_path.rglob("*")):
            zf.write(p, p.relative_to(tmp_path).as_posix())
        zf.writestr("__MACOSX/split/cat/._000.png", b"junk")
    _check(load_dataset(zp), arrays)


def test_mixed_sizes_name_the_file(tmp_path):
    _tree(tmp_path)
    _image(9, size=(7, 7)).save(tmp_path / "split" / "frog" / "999.png")
    with pytest.raises(CmsisgenError, match=r"frog[/\\]999\.png.*size"):
        load_dataset(tmp_path)
    zp = _zip(tmp_path, tmp_path.parent / "mixed.zip")
    with pytest.raises(CmsisgenError, match=r"mixed\.zip:split/frog/999\.png.*size"):
        load_dataset(zp)


def test_unreadable_image_names_the_file(tmp_path):
    _tree(tmp_path)
    (tmp_path / "split" / "dog" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(CmsisgenError, match=r"dog[/\\]bad\.png") as e:
        load_dataset(tmp_path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", ["missing", "empty_dir", "no_images", "loose", "empty_zip", "junk"])
def test_bad_paths(tmp_path, kind):
    if kind == "missing":
        p = tmp_path / "nope.zip"
        pat = "not found"
    elif kind == "empty_dir":
        p = tmp_path / "empty"
        p.mkdir()
        pat = "no images"
    elif kind == "no_images":
        p = tmp_path / "d"
        (p / "cat").mkdir(parents=True)
        (p / "cat" / "a.txt").write_text("x")
        pat = "no images"
    elif kind == "loose":
        p = tmp_path / "d"
        p.mkdir()
        _image(0).save(p / "a.png")
        pat = "class folder"
    elif kind == "empty_zip":
        p = tmp_path / "e.zip"
        zipfile.ZipFile(p, "w").close()
        pat = "no images"
    else:
        p = tmp_path / "junk.bin"
        p.write_bytes(b"\0" * 10)
        pat = "not a dataset"
    with pytest.raises(CmsisgenError, match=pat) as e:
        load_dataset(p)
    assert str(p) in str(e.value)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------------------- npz


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 4, 5, 3), dtype=np.uint8)
    y = np.array([2, 0, 0, 1, 2, 0, 1], dtype=np.int32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.classes == ("0", "1", "2")
    assert ds.x.shape == (7, 4, 5, 3) and ds.x.dtype == np.uint8 and ds.y.dtype == np.int64
    # round robin over classes, stored order within a class
    order = [1, 3, 0, 2, 6, 4, 5]
    np.testing.assert_array_equal(ds.y, y[order])
    np.testing.assert_array_equal(ds.x, x[order])
    part = load_dataset(tmp_path / "d.npz", limit=3)
    np.testing.assert_array_equal(part.y, [0, 1, 2])
    np.testing.assert_array_equal(part.x, x[[1, 3, 0]])


def test_npz_class_names_and_gray(tmp_path):
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1, 0]), classes=np.array(["no", "yes", "maybe"]))
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.classes == ("no", "yes", "maybe")
    assert ds.x.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(ds.x[0, ..., 2], x[1, ..., 0])


@pytest.mark.parametrize(
    "arrays, pat",
    [
        ({"x": np.zeros((2, 3, 3, 3), np.uint8)}, "'x' and 'y'"),
        ({"x": np.zeros((2, 3, 3, 3), np.float32), "y": np.zeros(2)}, "uint8"),
        ({"x": np.zeros((2, 3, 3, 2), np.uint8), "y": np.zeros(2)}, "shape"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.zeros(3)}, "'x' has 2 images but 'y' has 3 labels"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.zeros((2, 1))}, "'y' must have shape"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([0.5, 1])}, "integer"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([-1, 1])}, "label -1"),
        ({"x": np.zeros((0, 3, 3, 3), np.uint8), "y": np.zeros(0, np.int64)}, "empty"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([0, 3]), "classes": np.array(["a"])}, "classes"),
    ],
)
def test_npz_errors(tmp_path, arrays, pat):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    with pytest.raises(CmsisgenError, match=pat) as e:
        load_dataset(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([0, 10**12])},
         "d.npz: 'y' has label 1000000000000; labels must be in 0..32767"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([0.0, 1e12])},
         "d.npz: 'y' has label 1e+12; labels must be in 0..32767"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([0, 2**64 - 1], np.uint64)},
         "d.npz: 'y' has label 18446744073709551615; labels must be in 0..32767"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([32768, 0])},
         "d.npz: 'y' has label 32768; labels must be in 0..32767"),
        ({"x": np.zeros((2, 3, 3, 3), np.uint8), "y": np.array([-5, 0], np.int8)},
         "d.npz: 'y' has label -5; labels must be in 0..32767"),
        ({"x": np.zeros((2, 3, 3, 3), np.int16), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' must be uint8 images (N, H, W, C), got dtype int16"),
        ({"x": np.zeros((2, 3, 3, 4), np.uint8), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' must have shape (N, H, W, 3), (N, H, W, 1) or (N, H, W), got (2, 3, 3, 4)"),
        ({"x": np.zeros((2, 3, 3, 3, 1), np.uint8), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' must have shape (N, H, W, 3), (N, H, W, 1) or (N, H, W), got (2, 3, 3, 3, 1)"),
        ({"x": np.zeros((2, 9), np.uint8), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' must have shape (N, H, W, 3), (N, H, W, 1) or (N, H, W), got (2, 9)"),
        ({"x": np.zeros((2, 0, 3, 3), np.uint8), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' images are 3x0 pixels"),
        ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.zeros(2, np.int64)},
         "d.npz: 'x' has 3 images but 'y' has 2 labels"),
    ],
)
def test_npz_error_messages(tmp_path, monkeypatch, arrays, message):
    monkeypatch.chdir(tmp_path)
    np.savez("d.npz", **arrays)
    with pytest.raises(CmsisgenError) as e:
        load_dataset("d.npz")
    assert str(e.value) == message


def test_npz_largest_label_and_gray(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)  # (N, H, W) gray
    np.savez(tmp_path / "d.npz", x=x, y=np.array([32767, 0], np.int16))
    ds = load_dataset(tmp_path / "d.npz")
    assert len(ds.classes) == 32768 and ds.x.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(ds.y, [0, 32767])


def test_corrupt_npz(tmp_path):
    p = tmp_path / "d.npz"
    p.write_bytes(b"garbage")
    with pytest.raises(CmsisgenError, match="d.npz"):
        load_dataset(p)


# ------------------------------------------------------------------------------ real CIFAR-10


@pytest.mark.data
def test_cifar10_test_zip():
    zp = CIFAR / "test.zip"
    if not zp.exists():
        pytest.skip(f"CIFAR-10 test set not found at {zp} (shared data folder absent)")
    ds = load_dataset(zp)
    assert ds.x.shape == (10000, 32, 32, 3) and ds.x.dtype == np.uint8
    assert ds.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                          "horse", "ship", "truck")
    assert np.bincount(ds.y).tolist() == [1000] * 10
    np.testing.assert_array_equal(ds.y[:20], list(range(10)) * 2)
    with zipfile.ZipFile(zp) as zf:
        first_truck = np.asarray(Image.open(zf.open("test/truck/0000.jpg")).convert("RGB"))
    np.testing.assert_array_equal(ds.x[9], first_truck)
    part = load_dataset(zp, limit=25)
    np.testing.assert_array_equal(part.x, ds.x[:25])


def test_no_progress_lines_in_a_log(tmp_path, capsys):
    """Progress appears on a terminal only (README): loading images into a log prints nothing."""
    from PIL import Image

    for i in range(12):
        (tmp_path / "a").mkdir(exist_ok=True)
        Image.fromarray(np.full((4, 4, 3), i, dtype=np.uint8)).save(tmp_path / "a" / f"{i}.png")
    load_dataset(tmp_path, progress=True)
    assert capsys.readouterr().err == ""
