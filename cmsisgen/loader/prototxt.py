"""Parse a Caffe prototxt (current ``layer`` or legacy V1 ``layers``) into an ``ir.Net``.

Only the TEST phase is kept (that is the net that gets deployed); data layers become
network inputs and their ``transform_param`` becomes ``ir.Transform``; loss and accuracy
layers are dropped. Anything without a CMSIS-NN q7 counterpart is rejected here, with
the layer named, so the user hears about it before any weights are read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from google.protobuf import text_format

from cmsisgen import ir
from cmsisgen.errors import SETTING, CmsisgenError, SettingError
from cmsisgen.loader.fields import describe_parse_error, fork_field_warnings, non_finite
from cmsisgen.loader.heads import DETECTION_TYPES, cut_to_outputs, detection_error
from cmsisgen.ops import kind_of_type, supported_types
from cmsisgen.proto import schema

DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData"}
DROPPED = {"Accuracy"}  # plus every type ending in "Loss"
TEST = 1  # Phase.TEST

# V1LayerParameter.LayerType name -> current type string (Caffe's UpgradeV1LayerType).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}


def unsupported_message() -> str:
    """The one-line reason for a layer type cmsisgen has no kernel for: the types it has."""
    return ("not supported by cmsisgen; supported layer types: " + ", ".join(sorted(supported_types()))
            + " (plus Input and data layers; Accuracy and loss layers are dropped)")


def v1_type_name(layer: Any) -> str:
    """Current-generation type string of a V1LayerParameter."""
    enum = schema.V1LayerParameter.DESCRIPTOR.enum_types_by_name["LayerType"]
    name = enum.values_by_number[layer.type].name if layer.type in enum.values_by_number else "NONE"
    return V1_TYPES.get(name, name)


def layer_type(layer: Any) -> str:
    return v1_type_name(layer) if isinstance(layer, schema.V1LayerParameter) else layer.type


def is_dropped(type_: str) -> bool:
    return type_ in DROPPED or type_.endswith("Loss")


# Bytes that never occur in a text prototxt: C0 controls except \t \n \v \f \r, and DEL.
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\v\f\r") + b"\x7f"
EXCERPT_CHARS = 120


def printable(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` as one printable line: non-printable characters escaped (\\xNN, \\uNNNN),
    cut to ``limit`` characters with "..." when longer."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    s = "".join(out)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _binary_line(raw: bytes) -> Optional[tuple[int, str]]:
    """(line number, escaped excerpt) of the first line holding a byte no text file has."""
    cut = raw.translate(None, _BINARY_BYTES)
    if len(cut) == len(raw):
        return None
    for number, line in enumerate(raw.split(b"\n"), 1):
        if line.translate(None, _BINARY_BYTES) != line:
            # Invalid UTF-8 shows as \xNN (backslashreplace), controls are escaped by printable().
            text = line.strip(b" \t\r").decode("utf-8", errors="backslashreplace")
            return number, printable(text)
    return None  # unreachable: some line holds the byte


def _is_weights(raw: bytes) -> bool:
    """Whether ``raw`` is a trained model (HDF5, or a binary NetParameter with blobs): the
    arguments were swapped."""
    if raw.startswith(b"\x89HDF\r\n\x1a\n"):
        return True
    net = schema.NetParameter()
    try:
        net.ParseFromString(raw)
    except Exception:  # DecodeError, RuntimeError, ...: not a NetParameter at all
        return False
    return any(len(layer.blobs) for layer in [*net.layer, *net.layers])


def is_prototxt(raw: bytes) -> bool:
    """Whether ``raw`` is a text prototxt with layers (given where weights belong)."""
    try:
        net = text_format.Parse(raw.decode("utf-8-sig"), schema.NetParameter())
    except Exception:  # not text, or not a NetParameter
        return False
    return bool(len(net.layer) or len(net.layers))


def read_net_parameter(path: str | Path) -> Any:
    """Text-parse ``path`` into a NetParameter; syntax errors become one-line errors.

    A binary file (e.g. a .caffemodel given in place of the prototxt) is rejected before
    parsing, with an escaped excerpt of the first offending line, never raw bytes.
    """
    if Path(path).is_dir():
        raise CmsisgenError(f"{path}: is a directory, expected a .prototxt file")
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise CmsisgenError(f"{path}: cannot read prototxt ({e.strerror or e})") from None
    if not raw.strip():
        raise CmsisgenError(f"{path}: empty file, expected a Caffe prototxt")
    binary = _binary_line(raw)
    if binary is not None:
        number, excerpt = binary
        hint = "; is this the weights file? give the prototxt first, then the weights" if _is_weights(raw) else ""
        raise CmsisgenError(f"{path}: not a text prototxt (line {number}: {excerpt}){hint}")
    text = raw.decode("utf-8-sig", errors="replace")
    net = schema.NetParameter()
    try:
        # No allow_unknown_field: the schema has every field of BVLC Caffe, so an unknown
        # name is a typo or a fork's field, and dropping it would compile another network.
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        msg = str(e)
        line = e.GetLine() if hasattr(e, "GetLine") else None
        column = e.GetColumn() if hasattr(e, "GetColumn") else None
        where = str(path)
        if line is not None:
            msg = msg.split(" : ", 1)[-1] if msg.startswith(f"{line}:") else msg
            where = f"{path}:{line}" + (f":{column}" if column is not None else "")
        lines = text.split("\n")
        line_text = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
        known = describe_parse_error(msg, line_text, column)
        if known is not None:
            raise CmsisgenError(f"{where}: {printable(known, 300)}") from None
        raise CmsisgenError(f"{where}: syntax error: {printable(msg, 300)}") from None
    except RecursionError:  # the text parser recurses per nested message
        raise CmsisgenError(f"{path}: messages nested too deeply to be a Caffe prototxt") from None
    return net


def _rule_met(rule: Any) -> bool:
    """Caffe's StateMeetsRule for the deploy state: phase TEST, level 0, no stages."""
    if rule.HasField("phase") and rule.phase != TEST:
        return False
    if rule.HasField("min_level") and 0 < rule.min_level:
        return False
    if rule.HasField("max_level") and 0 > rule.max_level:
        return False
    return len(rule.stage) == 0  # the net has no stages, so any required stage fails


def in_test_phase(layer: Any) -> bool:
    """Caffe's FilterNet: include rules -> any met; exclude rules -> none met."""
    if len(layer.include):
        return any(_rule_met(r) for r in layer.include)
    return not any(_rule_met(r) for r in layer.exclude)


def _params(layer: Any, type_: str, err) -> ir.LayerParams:
    """Normalise Caffe's parameter message into the IR's frozen params: the layer kind reads it."""
    return kind_of_type(type_).parse(layer, err)


def _shape3(dims: Sequence[int], err) -> tuple[int, int, int]:
    """Caffe (N, C, H, W) or (N, C) -> batch-less (C, H, W)."""
    d = [int(x) for x in dims]
    if len(d) == 4:
        shape = (d[1], d[2], d[3])
    elif len(d) == 2:
        shape = (d[1], 1, 1)
    else:
        raise err(f"input shape {tuple(d)} must have 4 dims (N, C, H, W)")
    if min(shape) <= 0:
        raise err(f"input shape {tuple(d)} has a non-positive dimension")
    return shape


def _transform(layer: Any, type_: str) -> ir.Transform:
    """TEST data layer preprocessing; falls back to the deprecated copies in data_param."""
    tp = layer.transform_param
    legacy = {"Data": "data_param", "ImageData": "image_data_param"}.get(type_)
    old = getattr(layer, legacy) if legacy else None
    mean_file = tp.mean_file if tp.HasField("mean_file") else None
    scale, crop = tp.scale, tp.crop_size
    if old is not None:
        if mean_file is None and old.HasField("mean_file"):
            mean_file = old.mean_file
        if not tp.HasField("scale") and old.HasField("scale"):
            scale = old.scale
        if not tp.HasField("crop_size") and old.HasField("crop_size"):
            crop = old.crop_size
    given = layer.HasField("transform_param") or (old is not None and any(
        old.HasField(f) for f in ("mean_file", "scale", "crop_size")))
    return ir.Transform(mean_file=mean_file, mean_values=tuple(float(v) for v in tp.mean_value),
                        scale=float(scale), crop_size=int(crop), given=given)


def _data_shape(layer: Any, type_: str, transform: ir.Transform,
                input_shape: Optional[tuple[int, int, int]], err,
                check, fallback: Callable[[], Optional[tuple[int, int, int]]]) -> tuple[int, int, int]:
    """A data layer's (C, H, W): from the prototxt where it says, else ``input_shape``, else
    the mean file's (C, H, W) (``fallback()``: the mean given to the compile, or the one the
    prototxt names).

    ``check(shape)`` rejects an ``input_shape`` that disagrees with what the prototxt says.
    Only ImageData (is_color) and MemoryData (channels) fix C; a Data/HDF5Data layer with
    crop_size fixes H and W, and C is taken from ``input_shape`` (default 3).
    """
    channels: Optional[int] = None
    hw: Optional[tuple[int, int]] = None
    if type_ == "MemoryData":
        mp = layer.memory_data_param
        if mp.channels and mp.height and mp.width:
            channels, hw = mp.channels, (mp.height, mp.width)
    if type_ == "ImageData":
        ip = layer.image_data_param
        channels = 3 if ip.is_color else 1
        if not transform.crop_size and ip.new_height and ip.new_width:
            hw = (ip.new_height, ip.new_width)
    if hw is None and transform.crop_size:
        hw = (transform.crop_size, transform.crop_size)
    if hw is None:
        if input_shape is not None:
            return input_shape
        mean_shape = fallback()
        if mean_shape is not None:  # Caffe sizes such a net by its mean file too
            return mean_shape
        raise SettingError("input_shape", err("the input size is not in the prototxt (no crop_size) nor in a mean "
                                              f"file; give it as {SETTING} C,H,W").args[0])
    if channels is None:
        channels = input_shape[0] if input_shape is not None else 3
    return check((channels, *hw))


def _check_input_shape(input_shape: Optional[Sequence[int]], source: str
                       ) -> Optional[tuple[int, int, int]]:
    """The ``input_shape`` setting: three positive integers (C, H, W), or None."""
    if input_shape is None:
        return None
    dims = tuple(input_shape)
    text = ",".join(str(d) for d in dims)
    if len(dims) != 3 or not all(isinstance(d, (int, float, np.number)) and not isinstance(d, bool)
                                 and float(d).is_integer() for d in dims):
        raise SettingError("input_shape", f"{source}: {SETTING} {text} must be three integers C,H,W "
                           "such as 3,32,32")
    if min(dims) <= 0:
        raise SettingError("input_shape", f"{source}: {SETTING} {text} has a non-positive dimension")
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


def _refuse_non_finite(layer: Any, err) -> None:
    bad = non_finite(layer)
    if bad is not None:
        raise err(f"{bad}; parameters must be finite numbers")


class _Builder:
    """Turns Caffe blob names into SSA tensor names while walking layers in order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.current: dict[str, str] = {}  # Caffe blob name -> newest tensor name
        self.versions: dict[str, int] = {}
        self.produced: set[str] = set()

    def define(self, blob: str, owner: str, in_place: bool) -> str:
        """The tensor name for ``blob`` written by ``owner`` ("layer 'x' (Type)" or "input 'x'")."""
        if blob not in self.current:
            self.current[blob] = blob
            self.versions[blob] = 0
            return blob
        if not in_place:
            raise CmsisgenError(f"{self.source}: {owner}: top '{printable(blob)}' is already "
                                "produced by an earlier layer")
        self.versions[blob] += 1
        name = f"{blob}@{self.versions[blob]}"
        self.current[blob] = name
        return name


class _Reader:
    """Reads a NetParameter's inputs and TEST-phase layers into the IR, in order."""

    def __init__(self, source: str, input_shape: Optional[tuple[int, int, int]],
                 mean_file: Optional[Path] = None) -> None:
        self.source = source
        self.input_shape = input_shape
        self.mean_file = mean_file
        self.blobs = _Builder(source)
        self.inputs: dict[str, tuple[int, int, int]] = {}
        self.transform = ir.Transform()
        self.layers: list[ir.Layer] = []
        #: unsupported type -> the first layer of that type ("layer 'x' (Type)"), in order
        self.unsupported: dict[str, str] = {}

    def mean_shape(self) -> Optional[tuple[int, int, int]]:
        """(C, H, W) of the mean file given to the compile, else of the one the data layer names
        (beside the prototxt, then the current folder), or None."""
        path = self.mean_file
        if path is None and self.transform.mean_file:
            named = Path(self.transform.mean_file)
            beside = Path(self.source).parent / named
            path = beside if not named.is_absolute() and beside.is_file() else named
        if path is None or not Path(path).is_file():
            return None
        from cmsisgen.loader.mean import read_mean_binaryproto  # (mean.py imports this module)

        c, h, w = read_mean_binaryproto(path).shape
        return c, h, w

    def net_err(self, msg: str) -> CmsisgenError:
        return CmsisgenError(f"{self.source}: {msg}")

    def check(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """A shape the prototxt defines; an explicit input_shape must equal it."""
        if self.input_shape is not None and tuple(shape) != self.input_shape:
            raise SettingError("input_shape", f"{SETTING} {','.join(map(str, self.input_shape))} disagrees with "
                               f"the input shape {tuple(shape)} in {self.source}")
        return shape

    def net_inputs(self, netp: Any) -> None:
        """Deprecated net-level inputs: `input:` with `input_shape` or 4 `input_dim` each."""
        for i, name in enumerate(netp.input):
            def err(m: str, n: str = name) -> CmsisgenError:
                return self.net_err(f"input '{n}': {m}")

            if len(netp.input_shape) > i:
                shape = self.check(_shape3(list(netp.input_shape[i].dim), err))
            elif len(netp.input_dim) >= 4 * (i + 1):
                shape = self.check(_shape3(list(netp.input_dim[4 * i:4 * i + 4]), err))
            elif self.input_shape is not None:
                shape = self.input_shape
            else:
                raise self.net_err(f"input '{name}' has no input_shape or input_dim")
            self.inputs[self.blobs.define(name, f"input '{printable(name)}'", False)] = shape

    def layer(self, cl: Any) -> None:
        """One Caffe layer: an input, a data layer, a dropped layer or one the IR keeps."""
        type_ = layer_type(cl)
        name = cl.name or f"<unnamed {type_}>"
        owner = f"layer '{printable(name)}' ({printable(type_)})"

        def err(msg: str) -> CmsisgenError:
            return CmsisgenError(f"{self.source}: {owner}: {msg}")

        if is_dropped(type_):
            return
        _refuse_non_finite(cl, err)
        if type_ == "Input":
            self._input_layer(cl, owner, err)
        elif type_ in DATA_TYPES:
            if not len(cl.top):
                raise err("data layer has no top")
            self.transform = _transform(cl, type_)
            # The first top is the image; a second top is the label, which is dropped.
            self.inputs[self.blobs.define(cl.top[0], owner, False)] = _data_shape(
                cl, type_, self.transform, self.input_shape, err, self.check, self.mean_shape)
        elif type_ not in supported_types():
            # noted, and read on as if it were supported: the refusal lists every unsupported type
            self.unsupported.setdefault(type_, owner)
            for top in cl.top:
                self.blobs.define(top, owner, top in cl.bottom)
        else:
            self._kept_layer(cl, name, type_, owner, err)

    def _input_layer(self, cl: Any, owner: str, err) -> None:
        shapes = list(cl.input_param.shape)
        for i, top in enumerate(cl.top):
            if shapes:
                shape = self.check(_shape3(list(shapes[i if len(shapes) > 1 else 0].dim), err))
            elif self.input_shape is not None:
                shape = self.input_shape
            else:
                raise err("input_param has no shape")
            self.inputs[self.blobs.define(top, owner, False)] = shape

    def _kept_layer(self, cl: Any, name: str, type_: str, owner: str, err) -> None:
        params = _params(cl, type_, err)
        bottoms = []
        for blob in cl.bottom:
            if blob not in self.blobs.current:
                raise err(f"input '{blob}' is not produced by any earlier layer")
            bottoms.append(self.blobs.current[blob])
        tops = [self.blobs.define(t, owner, t in cl.bottom) for t in cl.top]
        if not tops:
            raise err("has no top")
        self.layers.append(ir.Layer(name=name, type=type_, bottoms=bottoms, tops=tops, params=params))


def _refuse_unsupported(source: str, unsupported: dict[str, str], layers: list[Any]) -> None:
    """One line for every unsupported layer type of the net (with the first layer of each);
    detection heads are named first, with the way around them (heads.py)."""
    others = {kind: owner for kind, owner in unsupported.items() if kind not in DETECTION_TYPES}
    message = ""
    if len(others) == 1:
        (owner,) = others.values()
        message = f"{owner}: {unsupported_message()}"
    elif others:
        message = f"{len(others)} layer types are " + unsupported_message().replace(
            "not supported by cmsisgen;", "not supported by cmsisgen (" + ", ".join(others.values()) + ");")
    if len(others) < len(unsupported):
        raise detection_error(source, unsupported, layers, layer_type, message)
    if message:
        raise CmsisgenError(f"{source}: {message}")


def parse_prototxt(path: str | Path, input_shape: Optional[Sequence[int]] = None,
                   mean_file: Optional[Path] = None, outputs: Sequence[str] = ()) -> ir.Net:
    """Build the IR (without shapes or weights) from a prototxt file; a data layer that does not
    say its size takes ``input_shape``, else the shape of ``mean_file`` or of its own mean file.
    ``outputs`` (Caffe blob names) cuts the net to the layers they need; they are then its
    outputs (in the order of their layers), whether later layers read them or not."""
    source = str(path)
    netp = read_net_parameter(path)
    if len(netp.layer) and len(netp.layers):
        raise CmsisgenError(f"{source}: mixes 'layer' and legacy 'layers' definitions")
    caffe_layers = list(netp.layer) or list(netp.layers)
    if any(isinstance(cl, schema.V1LayerParameter) and cl.type == 0 for cl in caffe_layers):
        # V0 nets nest everything in `layers { layer { ... } }`, which leaves the type unset.
        raise CmsisgenError(f"{source}: layer definitions without a type (V0 format?) are not "
                            "supported; upgrade the file with Caffe's upgrade_net_proto_text")
    reader = _Reader(source, _check_input_shape(input_shape, source), mean_file)
    reader.net_inputs(netp)
    test_layers = [cl for cl in caffe_layers if in_test_phase(cl)]
    if outputs:
        test_layers = cut_to_outputs(test_layers, outputs, source, printable=printable, inputs=list(netp.input),
                                     always=lambda cl: layer_type(cl) == "Input" or layer_type(cl) in DATA_TYPES)
    for cl in test_layers:
        reader.layer(cl)
    _refuse_unsupported(source, reader.unsupported, test_layers)
    if not reader.inputs:
        raise reader.net_err("no network input (expected input:/input_shape, an Input layer "
                             "or a TEST-phase data layer)")
    if not reader.layers:
        raise reader.net_err("no supported layers in the TEST phase")
    layers = reader.layers
    consumed = {t for layer in layers for t in layer.bottoms}
    named = {reader.blobs.current.get(blob, blob) for blob in outputs}
    outputs = [t for layer in layers for t in layer.tops if (t in named if named else t not in consumed)]
    return ir.Net(name=netp.name, input_shapes=reader.inputs, layers=layers, outputs=outputs,
                  transform=reader.transform, source=source,
                  warnings=fork_field_warnings(test_layers, source, lambda cl: printable(cl.name)))
