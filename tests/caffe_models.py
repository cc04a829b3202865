"""Build small Caffe models from a compact description, in every on-disk flavour.

The whole test suite uses this instead of checked-in model files: one description ->
current or V1 prototxt, binary .caffemodel (current ``layer`` or V1 ``layers`` with
legacy 4-D blob dims) or .caffemodel.h5, train/test prototxts and mean files.

    layers = [
        layer("conv1", "Convolution", num_output=4, kernel_size=3, pad=1),
        layer("relu1", "ReLU", inplace=True),
        layer("pool1", "Pooling", pool="MAX", kernel_size=2, stride=2),
        layer("ip1", "InnerProduct", num_output=10),
    ]
    proto, weights = write_model(tmp_path, layers, input_shape=(3, 8, 8))

``bottom`` defaults to the previous layer's first top ("data" for the first layer);
``top`` defaults to the layer name, or to the bottom with ``inplace=True``. Keyword
parameters go into the type's ``*_param`` message (enum values by name, e.g. pool="AVE").
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from google.protobuf import text_format

from cmsisgen.loader.prototxt import V1_TYPES
from cmsisgen.proto import schema

PARAM_FIELD = {
    "Convolution": "convolution_param", "Pooling": "pooling_param",
    "InnerProduct": "inner_product_param", "Concat": "concat_param", "ReLU": "relu_param",
    "Dropout": "dropout_param", "Softmax": "softmax_param", "Flatten": "flatten_param",
    "Data": "data_param", "ImageData": "image_data_param", "HDF5Data": "hdf5_data_param",
    "MemoryData": "memory_data_param", "Input": "input_param", "Eltwise": "eltwise_param", "LRN": "lrn_param",
    "BatchNorm": "batch_norm_param", "Scale": "scale_param", "PReLU": "prelu_param",
    "Reshape": "reshape_param",
    "ReLU6": "relu6_param", "Clip": "clip_param", "Power": "power_param", "ELU": "elu_param",
    "Threshold": "threshold_param", "ArgMax": "argmax_param",
    "ConvolutionDepthwise": "convolution_param", "Deconvolution": "convolution_param",
    "Slice": "slice_param", "Crop": "crop_param", "ShuffleChannel": "shuffle_channel_param",
    "Permute": "permute_param", "Upsample": "upsample_param", "Interp": "interp_param",
}
V1_ENUM = {v: k for k, v in V1_TYPES.items()}

Names = Union[str, Sequence[str], None]


def layer(name: str, type: str, bottom: Names = None, top: Names = None, *,
          inplace: bool = False, weights: Optional[Sequence[np.ndarray]] = None,
          include: Optional[str] = None, exclude: Optional[str] = None,
          transform: Optional[dict] = None, **params: Any) -> dict:
    """One layer description; ``include``/``exclude`` take a phase name ("TRAIN"/"TEST")."""
    return dict(name=name, type=type, bottom=bottom, top=top, inplace=inplace,
                weights=weights, include=include, exclude=exclude, transform=transform,
                params=params)


def _names(v: Names) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def _is_repeated(fd: Any) -> bool:
    rep = getattr(fd, "is_repeated", None)
    return bool(rep) if rep is not None else fd.label == fd.LABEL_REPEATED


def _value(fd: Any, v: Any) -> Any:
    if fd.enum_type is not None and isinstance(v, str):
        return fd.enum_type.values_by_name[v].number
    return v


def set_fields(msg: Any, params: dict) -> None:
    """Fill a protobuf message from a dict (nested dicts for sub-messages)."""
    for key, v in params.items():
        fd = msg.DESCRIPTOR.fields_by_name[key]
        if _is_repeated(fd):
            items = v if isinstance(v, (list, tuple)) else [v]
            container = getattr(msg, key)
            for item in items:
                if fd.message_type is not None:
                    set_fields(container.add(), item)
                else:
                    container.append(_value(fd, item))
        elif fd.message_type is not None:
            set_fields(getattr(msg, key), v)
        else:
            setattr(msg, key, _value(fd, v))


def _resolve(layers: Sequence[dict]) -> list[dict]:
    """Fill in default bottoms/tops."""
    out, prev = [], "data"
    for d in layers:
        d = dict(d)
        bottoms = _names(d["bottom"]) if d["bottom"] is not None else [prev]
        if d["type"] in ("Input", "Data", "ImageData", "HDF5Data", "MemoryData") and d["bottom"] is None:
            bottoms = []
        tops = _names(d["top"]) if d["top"] is not None else (
            list(bottoms[:1]) if d["inplace"] else [d["name"]])
        d["bottom"], d["top"] = bottoms, tops
        out.append(d)
        if tops:
            prev = tops[0]
    return out


def _fill_layer(msg: Any, d: dict, generation: str) -> None:
    msg.name = d["name"]
    if generation == "v1":
        msg.type = schema.V1LayerParameter.DESCRIPTOR.enum_types_by_name["LayerType"] \
            .values_by_name[V1_ENUM[d["type"]]].number
    else:
        msg.type = d["type"]
    msg.bottom.extend(d["bottom"])
    msg.top.extend(d["top"])
    for key in ("include", "exclude"):
        if d.get(key):
            getattr(msg, key).add().phase = schema.NetStateRule.DESCRIPTOR \
                .fields_by_name["phase"].enum_type.values_by_name[d[key]].number
    if d.get("transform"):
        set_fields(msg.transform_param, d["transform"])
    if d["params"]:
        set_fields(getattr(msg, PARAM_FIELD[d["type"]]), d["params"])


def build_net(layers: Sequence[dict], input_shape: Optional[Sequence[int]] = (3, 8, 8), *,
              generation: str = "current", input_style: Optional[str] = None,
              name: str = "testnet", input_name: str = "data") -> Any:
    """NetParameter (no blobs). input_style: "layer" (Input layer), "input_dim",
    "input_shape" or None for the generation's usual one; input_shape=None adds no input."""
    net = schema.NetParameter(name=name)
    style = input_style or ("input_dim" if generation == "v1" else "layer")
    if input_shape is not None:
        dims = [1, *input_shape]
        if style == "layer":
            net.layer.add(name=input_name, type="Input", top=[input_name]) \
                .input_param.shape.add().dim.extend(dims)
        else:
            net.input.append(input_name)
            if style == "input_dim":
                net.input_dim.extend(dims)
            else:
                net.input_shape.add().dim.extend(dims)
    for d in _resolve(layers):
        _fill_layer(net.layers.add() if generation == "v1" else net.layer.add(), d, generation)
    return net


def write_prototxt(path: Path, net: Any) -> Path:
    path.write_text(text_format.MessageToString(net))
    return path


def make_weights(prototxt: Path, layers: Sequence[dict], seed: int = 0,
                 input_shape: Optional[Sequence[int]] = None) -> dict[str, list[np.ndarray]]:
    """Given arrays where the description has them, else N(0, 0.1) in Caffe's shapes."""
    from cmsisgen.loader import load_net
    from cmsisgen.shapes import expected_blob_shapes

    net = load_net(prototxt, input_shape=input_shape)
    given = {d["name"]: d["weights"] for d in layers if d["weights"] is not None}
    rng = np.random.default_rng(seed)
    out = {}
    for lay in net.layers:
        shapes = expected_blob_shapes(net, lay)
        if lay.name in given:
            out[lay.name] = [np.asarray(a, dtype=np.float32) for a in given[lay.name]]
        elif shapes:
            out[lay.name] = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    return out


def _fill_blob(blob: Any, arr: np.ndarray, legacy: bool) -> None:
    arr = np.asarray(arr, dtype=np.float32)
    if legacy:
        if arr.ndim > 4:
            raise ValueError("legacy blobs have at most 4 dims")
        n, c, h, w = (1,) * (4 - arr.ndim) + arr.shape
        blob.num, blob.channels, blob.height, blob.width = n, c, h, w
    else:
        blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.ravel().tolist())


def write_caffemodel(path: Path, layers: Sequence[dict], blobs: dict[str, list[np.ndarray]],
                     generation: str = "current", name: str = "testnet") -> Path:
    """Binary NetParameter as Caffe saves it: every layer, with blobs where trained."""
    net = build_net(layers, None, generation=generation, name=name)
    for lay in (net.layers if generation == "v1" else net.layer):
        for arr in blobs.get(lay.name, []):
            _fill_blob(lay.blobs.add(), arr, legacy=generation == "v1")
    path.write_bytes(net.SerializeToString())
    return path


def write_h5(path: Path, blobs: dict[str, list[np.ndarray]]) -> Path:
    """Caffe's Net::ToHDF5 layout: data/<layer>/<index>."""
    import h5py

    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for lname, arrays in blobs.items():
            g = data.create_group(lname)
            for i, arr in enumerate(arrays):
                g.create_dataset(str(i), data=np.asarray(arr, dtype=np.float32))
    return path


def write_model(directory: Path, layers: Sequence[dict], input_shape: Sequence[int] = (3, 8, 8),
                *, generation: str = "current", weights_format: str = "binary",
                weights_generation: Optional[str] = None, seed: int = 0,
                input_style: Optional[str] = None, stem: str = "model") -> tuple[Path, Path]:
    """Write ``<stem>.prototxt`` and its weights; returns (prototxt_path, weights_path)."""
    directory = Path(directory)
    proto = write_prototxt(directory / f"{stem}.prototxt",
                           build_net(layers, input_shape, generation=generation,
                                     input_style=input_style))
    blobs = make_weights(proto, layers, seed)
    if weights_format == "h5":
        wpath = write_h5(directory / f"{stem}.caffemodel.h5", blobs)
    else:
        wpath = write_caffemodel(directory / f"{stem}.caffemodel", layers, blobs,
                                 generation=weights_generation or generation)
    return proto, wpath


def write_train_test(directory: Path, layers: Sequence[dict], *, crop_size: int = 0,
                     mean_file: Optional[str] = None, mean_value: Sequence[float] = (),
                     scale: Optional[float] = None, data_type: str = "Data",
                     generation: str = "current", stem: str = "train_test") -> Path:
    """A training prototxt: TRAIN + TEST data layers (tops data, label) with
    transform_param, the given layers, then Accuracy (TEST only) and SoftmaxWithLoss."""
    transform: dict[str, Any] = {}
    if crop_size:
        transform["crop_size"] = crop_size
    if mean_file:
        transform["mean_file"] = mean_file
    if mean_value:
        transform["mean_value"] = list(mean_value)
    if scale is not None:
        transform["scale"] = scale
    src = {"Data": {"source": "db", "batch_size": 4}, "ImageData": {"source": "list.txt"},
           "HDF5Data": {"source": "h5.txt", "batch_size": 4}, "MemoryData": {"batch_size": 4}}
    data = [layer("data", data_type, top=["data", "label"], include=phase,
                  transform=dict(transform, mirror=(phase == "TRAIN")) if transform or phase == "TRAIN" else None,
                  **src[data_type]) for phase in ("TRAIN", "TEST")]
    resolved = _resolve([*data, *layers])
    last = resolved[-1]["top"][0]
    tail = [layer("accuracy", "Accuracy", [last, "label"], "accuracy", include="TEST"),
            layer("loss", "SoftmaxWithLoss", [last, "label"], "loss")]
    net = build_net([*data, *layers, *tail], None, generation=generation)
    return write_prototxt(Path(directory) / f"{stem}.prototxt", net)


def write_mean_binaryproto(path: Path, mean: np.ndarray, legacy: bool = True) -> Path:
    """mean (C, H, W) as Caffe's compute_image_mean writes it (legacy dims 1,C,H,W)."""
    blob = schema.BlobProto()
    arr = np.asarray(mean, dtype=np.float32)[None]
    _fill_blob(blob, arr, legacy)
    Path(path).write_bytes(blob.SerializeToString())
    return Path(path)
