"""Images are read as what they hold, within bounds, and only from regular files (issue 11,
items 4, 13 and 15).

16-bit greyscale images were cut to 255 and float images clipped without a word; a FIFO named
1.png hung --calib forever; a zip member's size and an image's pixel count were only found
out by reading and decoding them; greyscale images fed a colour network (a silent 10 %).
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caffe_models import layer, write_model
from cli_run import run
from cmsisgen.dataset import MAX_FILE_BYTES, MAX_IMAGE_PIXELS, load_dataset
from cmsisgen.errors import CmsisgenError

LAYERS = [layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
          layer("ip1", "InnerProduct", num_output=3)]


pytestmark = pytest.mark.usefixtures("cli_tmp")



def expect_error(args, message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert [line for line in result.stderr.splitlines() if "error" in line] == [f"cmsisgen: error: {message}"]
    assert result.stderr.splitlines()[-1] == f"cmsisgen: error: {message}"


def save_tree(root: str, images: list, ext: str) -> Path:
    """images[i] saved as root/c<i % 2>/<i>.<ext> (two classes)."""
    for i, im in enumerate(images):
        folder = Path(root, f"c{i % 2}")
        folder.mkdir(parents=True, exist_ok=True)
        im.save(folder / f"{i}.{ext}")
    return Path(root)


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG file from raw rows (filter bytes included): Pillow cannot write 48-bit RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


EIGHT_BIT = np.random.default_rng(5).integers(0, 256, size=(4, 8, 8), dtype=np.uint8)


# ----------------------------------------------------------------------------- 16-bit and float


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_greyscale_made_by_x257_reads_as_the_8_bit_values(ext):
    wide = save_tree("wide", [Image.fromarray(a.astype(np.uint16) * 257) for a in EIGHT_BIT], ext)
    narrow = save_tree("narrow", [Image.fromarray(a) for a in EIGHT_BIT], "png")
    a, b = load_dataset(wide), load_dataset(narrow)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and a.grey and b.grey
    assert np.array_equal(a.x[..., 0], EIGHT_BIT[[0, 1, 2, 3]])  # round robin keeps 0, 1, 2, 3 here


def test_16_bit_values_round_to_the_nearest_8_bit_value():
    values = np.array([[0, 128, 129, 200, 385, 386, 65278, 65535]], dtype=np.uint16)
    save_tree("t", [Image.fromarray(values)] * 2, "png")
    assert load_dataset("t").x[0, 0, :, 0].tolist() == [0, 0, 1, 1, 1, 2, 254, 255]


def test_16_bit_program_is_the_8_bit_program():
    """The generated test vectors (images and expected outputs) are byte-identical."""
    proto, weights = write_model(Path("."), LAYERS, input_shape=(1, 8, 8))
    save_tree("wide", [Image.fromarray(a.astype(np.uint16) * 257) for a in EIGHT_BIT], "png")
    save_tree("narrow", [Image.fromarray(a) for a in EIGHT_BIT], "png")
    for data in ("wide", "narrow"):
        result = run("compile", proto, weights, "-o", data + "-out", "--calib", data, "--test-vectors", "4", "--scale", "1")
        assert result.exit_code == 0, result.output
    for name in ("nn.c", "parameters.h", "weights.h", "weights.c", "test_vectors.h"):
        assert Path("wide-out", name).read_bytes() == Path("narrow-out", name).read_bytes()


def test_48_bit_png_is_refused_by_name():
    rows = b"".join(b"\x00" + np.full((8, 3), 200 * 257, dtype=">u2").tobytes() for _ in range(8))
    for i in range(2):
        Path(f"d/c{i}").mkdir(parents=True)
        Path(f"d/c{i}/0.png").write_bytes(png(8, 8, 16, 2, rows))
    with pytest.raises(CmsisgenError) as info:
        load_dataset("d")
    assert str(info.value) == ("d/c0/0.png: a 16-bit-per-channel image (Pillow mode RGB, stored as RGB;16B) cannot "
                               "be read faithfully as 8-bit pixels; save it with 8 bits per channel (or 16-bit greyscale)")


@pytest.mark.parametrize("array, what", [
    (np.full((8, 8), 0.5, dtype=np.float32), "a floating-point image (Pillow mode F, stored as F;32F)"),
    (np.full((8, 8), 70000, dtype=np.int32), "a 32-bit integer image (Pillow mode I, stored as I;32S)"),
])
def test_float_and_32_bit_tiff_are_refused_by_name(array, what):
    proto, weights = write_model(Path("."), LAYERS, input_shape=(1, 8, 8))
    save_tree("d", [Image.fromarray(array)] * 2, "tif")
    expect_error(["compile", proto, weights, "-o", "out", "--calib", "d"],
                 f"d/c0/0.tif: {what} cannot be read faithfully as 8-bit pixels; save it with 8 bits per "
                 "channel (or 16-bit greyscale)")


# ----------------------------------------------------------------------------- bounds


def test_image_larger_than_the_limit_is_refused_from_its_header():
    """A 5000x5000 header with no pixel data: refused by its size, not by a decoding error."""
    side = 5000
    assert side * side > MAX_IMAGE_PIXELS
    data = png(side, side, 8, 0, b"")[:-12]  # an empty IDAT and no IEND: decoding would fail
    for i in range(2):
        Path(f"d/c{i}").mkdir(parents=True)
        Path(f"d/c{i}/0.png").write_bytes(data)
    with pytest.raises(CmsisgenError) as info:
        load_dataset("d")
    assert str(info.value) == f"d/c0/0.png: image is 5000x5000 pixels, more than the {MAX_IMAGE_PIXELS:,} cmsisgen decodes"


def test_zip_member_larger_than_the_limit_is_refused_before_reading():
    """A zip whose directory says a member holds 3 GiB: refused naming the member, unread."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(2):
            image = io.BytesIO()
            Image.fromarray(EIGHT_BIT[i]).save(image, "PNG")
            zf.writestr(f"set/c{i}/0.png", image.getvalue())
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")  # first central directory entry: uncompressed size at +24
    data[central + 24:central + 28] = struct.pack("<I", 3 * 2**30)
    Path("big.zip").write_bytes(bytes(data))
    with pytest.raises(CmsisgenError) as info:
        load_dataset("big.zip")
    assert str(info.value) == (f"big.zip:set/c0/0.png: 3,221,225,472 bytes uncompressed, more than the "
                               f"{MAX_FILE_BYTES:,} cmsisgen reads from one zip member")


def test_image_file_larger_than_the_limit_is_refused_before_reading():
    save_tree("d", [Image.fromarray(EIGHT_BIT[0])] * 2, "png")
    with open("d/c1/1.png", "ab") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(CmsisgenError) as info:
        load_dataset("d")
    assert str(info.value) == f"d/c1/1.png: {MAX_FILE_BYTES + 1:,} bytes, more than the {MAX_FILE_BYTES:,} " \
                              "cmsisgen reads from one image file"


def cli_in_subprocess(*args) -> subprocess.CompletedProcess:
    """The CLI in its own process: the guard timeout is only there so that a regression
    (a blocking read) fails instead of hanging the suite."""
    return subprocess.run([sys.executable, "-m", "cmsisgen.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"}, timeout=120)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_an_image_tree_is_refused():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    save_tree("d", [Image.fromarray(EIGHT_BIT[0]).convert("RGB")], "png")
    Path("d/c1").mkdir()
    os.mkfifo("d/c1/1.png")
    proc = cli_in_subprocess("compile", proto, weights, "-o", "out", "--calib", "d")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "cmsisgen: error: d/c1/1.png: a FIFO, not a regular file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["calib.npz", "calib.zip"])
def test_fifo_given_as_the_data_set_is_refused(name):
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    os.mkfifo(name)
    proc = cli_in_subprocess("compile", proto, weights, "-o", "out", "--calib", name)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == f"cmsisgen: error: {name}: a FIFO, not a regular file"


def test_device_given_as_the_data_set_is_refused():
    with pytest.raises(CmsisgenError) as info:
        load_dataset("/dev/null")
    assert str(info.value) == "/dev/null: a device, not a regular file"


# ----------------------------------------------------------------------------- channels


@pytest.mark.parametrize("extra", [[], ["--resize"]])
def test_greyscale_images_for_a_colour_network_are_an_error(extra):
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    size = (6, 6) if extra else (8, 8)
    save_tree("grey", [Image.fromarray(a).resize(size) for a in EIGHT_BIT], "png")
    expect_error(["compile", proto, weights, "-o", "out", "--calib", "grey", *extra],
                 "grey: the images are greyscale (1 channel) and the network input has 3 channels (colour); "
                 "give colour images")


def test_greyscale_npz_for_a_colour_network_is_an_error():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    np.savez("grey.npz", x=EIGHT_BIT, y=np.array([0, 1, 0, 1]))
    expect_error(["evaluate", proto, weights, "--data", "grey.npz"],
                 "grey.npz: the images are greyscale (1 channel) and the network input has 3 channels (colour); "
                 "give colour images")


def test_mixed_and_colour_images_are_taken():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(3, 8, 8))
    images = [Image.fromarray(a) for a in EIGHT_BIT]
    images[1] = images[1].convert("RGB")
    save_tree("mixed", images, "png")
    assert not load_dataset("mixed").grey
    assert run("compile", proto, weights, "-o", "out", "--calib", "mixed", "--scale", "1").exit_code == 0


def test_bgr_on_a_greyscale_network_is_an_error():
    proto, weights = write_model(Path("."), LAYERS, input_shape=(1, 8, 8))
    expect_error(["compile", proto, weights, "-o", "out", "--bgr"],
                 "--bgr: the network input has 1 channel; a channel order applies only to 3-channel inputs")
