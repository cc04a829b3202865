"""Read trained blobs from a binary ``.caffemodel`` or an HDF5 ``.caffemodel.h5``.

Returns plain float32 arrays keyed by layer name; matching them to the prototxt (by
layer name, as Caffe's CopyTrainedLayersFrom does) is the caller's job.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from google.protobuf.message import DecodeError

from cmsisgen.errors import CmsisgenError
from cmsisgen.loader.fields import binary_unknown_fields
from cmsisgen.loader.prototxt import is_prototxt, printable
from cmsisgen.proto import schema

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def blob_to_array(blob: Any, where: str) -> np.ndarray:
    """BlobProto -> float32 array with its stored shape (``shape`` or legacy N,C,H,W)."""
    if len(blob.double_data) and not len(blob.data):
        data = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    else:
        data = np.asarray(blob.data, dtype=np.float32)
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    elif any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = (data.size,)
    if any(d < 0 for d in shape):
        raise CmsisgenError(f"{where}: shape {shape} has a negative dimension")
    count = 1
    for d in shape:  # Python ints: a product of huge dims must not wrap around as int64 would
        count *= d
    if count != data.size:
        raise CmsisgenError(f"{where}: shape {shape} does not match its {data.size} values")
    try:
        return data.reshape(shape)
    except ValueError:  # an empty blob with dims too large for numpy's index type
        raise CmsisgenError(f"{where}: shape {shape} is too large") from None


def _is_hdf5(path: Path) -> bool:
    if path.suffix.lower() in (".h5", ".hdf5"):
        return True
    try:
        with path.open("rb") as f:
            return f.read(8) == HDF5_MAGIC
    except OSError:
        return False


def read_binary(path: Path, warnings: Optional[list[str]] = None) -> dict[str, list[np.ndarray]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CmsisgenError(f"{path}: cannot read weights ({e.strerror or e})") from None
    hint = "; is this the prototxt? give the prototxt first, then the weights" if is_prototxt(raw) else ""
    net = schema.NetParameter()
    try:
        net.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise CmsisgenError(f"{path}: not a readable .caffemodel ({e}){hint}") from None
    layers = list(net.layer) or list(net.layers)
    if not layers:
        raise CmsisgenError(f"{path}: not a readable .caffemodel (no layers found){hint}")
    out: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        name = layer.name  # bytes when the file's name is not UTF-8
        shown = printable(name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else name)
        note = binary_unknown_fields(layer, f"{path}: layer '{shown}'")
        if note is not None and warnings is not None:
            warnings.append(note)
        if len(layer.blobs) and not out.get(layer.name):
            out[layer.name] = [blob_to_array(b, f"{path}: layer '{layer.name}' blob {i}")
                               for i, b in enumerate(layer.blobs)]
    return out


def read_hdf5(path: Path) -> dict[str, list[np.ndarray]]:
    """Caffe's Net::ToHDF5 layout: ``data/<layer name>/<blob index>`` datasets.

    Anything else (``data`` or a layer that is not a group, a blob that is not a numeric
    dataset, ...) is a one-line error naming the file, never an h5py/numpy traceback.
    """
    import h5py

    def bad(msg: str) -> CmsisgenError:
        return CmsisgenError(f"{path}: not a Caffe HDF5 model ({msg})")

    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise bad("no 'data' group")
            data = f["data"]
            if not isinstance(data, h5py.Group):
                raise bad("'data' is a dataset, expected a group of layers")
            out: dict[str, list[np.ndarray]] = {}
            for name in data.keys():
                group = data.get(name)
                if not isinstance(group, h5py.Group):
                    raise bad(f"'data/{name}' is not a group of blobs")
                keys = sorted((k for k in group.keys() if k.isdigit()), key=int)
                if keys != [str(i) for i in range(len(keys))]:
                    raise CmsisgenError(f"{path}: layer '{name}' has blobs {keys}, "
                                        "expected 0, 1, ...")
                arrays = []
                for k in keys:
                    blob = group.get(k)
                    if not isinstance(blob, h5py.Dataset):
                        raise bad(f"'data/{name}/{k}' is not a dataset")
                    if blob.dtype.kind not in "iuf":
                        raise bad(f"'data/{name}/{k}' has dtype {blob.dtype}, expected numbers")
                    arrays.append(np.asarray(blob[()], dtype=np.float32))
                if arrays:
                    out[name] = arrays
            return out
    except CmsisgenError:
        raise
    except Exception as e:  # h5py raises OSError, KeyError, TypeError, RuntimeError, ...
        msg = " ".join(str(e).split()) or type(e).__name__
        raise CmsisgenError(f"{path}: not a readable .caffemodel.h5 ({msg})") from None


def read_weights(path: str | Path, warnings: Optional[list[str]] = None) -> dict[str, list[np.ndarray]]:
    """{layer_name: [float32 arrays]} from either format (chosen by extension or magic);
    fields of a .caffemodel that the schema does not know are named in ``warnings``."""
    p = Path(path)
    if p.is_dir():
        raise CmsisgenError(f"{path}: is a directory, expected a .caffemodel or .caffemodel.h5 file")
    if not p.is_file():
        raise CmsisgenError(f"{path}: weights file not found")
    if p.stat().st_size == 0:
        raise CmsisgenError(f"{path}: not a readable .caffemodel (empty file)")
    return read_hdf5(p) if _is_hdf5(p) else read_binary(p, warnings)
