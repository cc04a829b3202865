"""Fields a Caffe file holds beyond what cmsisgen computes with: misspelt, fork-only, unknown.

The schema (cmsisgen/proto/caffe.proto) is all of BVLC Caffe's plus a few fields of Caffe
forks, so a name it lacks in a prototxt is a typo or another fork's field. Dropping it would
compile another network than the one written (``poll: AVE`` gave a MAX pooling), so the
text parser refuses it, as Caffe does, and this module words that refusal. Binary
.caffemodel files carry unknown fields as numbers only; the loader reads nothing but blobs
from them, so an unknown field outside a blob is named in a warning and one inside a blob
(data in a format this reader does not know) is an error.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from cmsisgen.errors import CmsisgenError
from cmsisgen.proto import schema

PACKAGE = "cmsisgen.caffe."
#: Enums with more values than this are not listed in an error (V1 layer types are 40).
MAX_LISTED = 8


@dataclass(frozen=True)
class ForkField:
    """A field of a Caffe fork that the schema accepts on purpose.

    ``inert(value)`` is true when the value computes what BVLC Caffe computes without the
    field: such uses are named in a warning, since the field then does nothing.
    """

    message: str
    field: str
    fork: str
    meaning: str
    inert: Callable[[Any], bool]


FORK_FIELDS = (
    ForkField("PoolingParameter", "ceil_mode", "SSD-era forks (BVLC/caffe PR #3057)",
              "false rounds the output size down (round_mode: FLOOR); true is BVLC's default rounding",
              lambda value: bool(value)),
    ForkField("ReLU6Parameter", "threshold", "brocolli-caffe (ReLU6 with parameters)",
              "ReLU6 clamps at threshold; 6 is the ReLU6 of the forks without parameters", lambda value: value == 6),
    ForkField("ReLU6Parameter", "negative_slope", "brocolli-caffe (ReLU6 with parameters)",
              "negative inputs are multiplied by it; 0 is the ReLU6 of the forks without parameters",
              lambda value: value == 0),
    # read so that SSD prototxts parse; their layers are refused by name or cut off (loader/heads.py)
    ForkField("LayerParameter", "prior_box_param", "SSD-era forks", "PriorBox's anchors", lambda value: False),
    ForkField("LayerParameter", "detection_output_param", "SSD-era forks", "DetectionOutput's decoding and NMS",
              lambda value: False),
)


# ----------------------------------------------------------------------------- text files

_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "([^"]*)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "([\w.]+)" has no value (named|with number) (\S+?)\.?$')
_NO_EXTENSIONS = re.compile(r'Message type "([\w.]+)" does not have extensions')


def _short(full_name: str) -> str:
    return full_name[len(PACKAGE):] if full_name.startswith(PACKAGE) else full_name


def _suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_before(line: str, column: Optional[int]) -> Optional[str]:
    """The field name written before ``column`` on ``line`` (``pool`` in ``pool: AVG``)."""
    head = line[:column - 1] if column else line
    found = re.search(r"([A-Za-z_]\w*)\s*:\s*$", head)
    return found.group(1) if found else None


def describe_parse_error(message: str, line_text: str, column: Optional[int]) -> Optional[str]:
    """The words for a text_format error about a field or enum value the schema lacks;
    None for any other syntax error."""
    found = _UNKNOWN_FIELD.search(message)
    if found:
        owner, name = found.groups()
        desc = schema.POOL.FindMessageTypeByName(owner)
        return f"unknown field '{name}' in {_short(owner)}{_suggestion(name, list(desc.fields_by_name))}"
    found = _UNKNOWN_ENUM.search(message)
    if found:
        enum_name, _, value = found.groups()
        enum = schema.POOL.FindEnumTypeByName(enum_name)
        names = [v.name for v in enum.values]
        field = _field_before(line_text, column)
        what = f"'{field}'" if field else _short(enum_name)
        listed = f"; {_short(enum_name)} has {', '.join(names)}" if len(names) <= MAX_LISTED else ""
        return f"unknown value '{value}' for {what}{_suggestion(value, names)}{listed}"
    found = _NO_EXTENSIONS.search(message)
    if found:
        return f"extension fields ([...]) are not part of Caffe's {_short(found.group(1))}"
    return None


def _repeated(desc: Any) -> bool:
    """protobuf 7 dropped FieldDescriptor.label; is_repeated came in 5.x."""
    flag = getattr(desc, "is_repeated", None)
    return bool(flag) if flag is not None else desc.label == desc.LABEL_REPEATED


def _walk(message: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, descriptor, value) of every field set in ``message`` and its sub-messages."""
    for desc, value in message.ListFields():
        where = f"{path}.{desc.name}" if path else desc.name
        yield where, desc, value
        if desc.message_type is None or desc.message_type.name == "BlobProto":
            continue
        items = value if _repeated(desc) else [value]
        for item in items:
            yield from _walk(item, where)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def fork_field_warnings(layers: list[Any], source: str, name_of: Callable[[Any], str]) -> list[str]:
    """One warning per fork field and value that changes nothing, naming the layers."""
    inert: dict[tuple[ForkField, str], list[str]] = {}
    for layer in layers:
        for _, desc, value in _walk(layer, ""):
            for fork in FORK_FIELDS:
                if desc.containing_type.name == fork.message and desc.name == fork.field and fork.inert(value):
                    inert.setdefault((fork, _text(value)), []).append(f"'{name_of(layer)}'")
    return [f"{source}: {fork.field}: {value} in layer{'s' if len(names) > 1 else ''} {', '.join(names)} "
            f"changes nothing ({fork.field} is a field of {fork.fork}, not of BVLC Caffe; {fork.meaning})"
            for (fork, value), names in inert.items()]


def non_finite(layer: Any) -> Optional[str]:
    """The first float parameter of ``layer`` (any depth, blobs aside) that is NaN or
    infinite, as ``"relu_param.negative_slope is nan"``, or None.

    Caffe reads ``nan`` and ``inf`` in a prototxt without a word; a NaN slope, coefficient
    or epsilon gives a NaN float forward and some q7 constant, so no such value is let in.
    """
    for where, desc, value in _walk(layer, ""):
        if desc.type not in (desc.TYPE_FLOAT, desc.TYPE_DOUBLE):
            continue
        values = list(value) if _repeated(desc) else [value]
        for i, v in enumerate(values):
            if not math.isfinite(v):
                index = f"[{i}]" if _repeated(desc) else ""
                return f"{where}{index} is {v}"
    return None


# ----------------------------------------------------------------------------- binary files

def _unknown_numbers(message: Any) -> list[int]:
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
    except ImportError:  # protobuf < 4.24
        return sorted({f.field_number for f in message.UnknownFields()})
    return sorted({f.field_number for f in UnknownFieldSet(message)})


def unknown_numbers(message: Any) -> list[int]:
    """Field numbers in ``message`` (not its sub-messages) that the schema does not know."""
    return _unknown_numbers(message)


def _unknown_in(message: Any, path: str) -> Iterator[tuple[str, list[int]]]:
    numbers = _unknown_numbers(message)
    if numbers:
        yield path, numbers
    for desc, value in message.ListFields():
        if desc.message_type is None:
            continue
        where = f"{path}.{desc.name}" if path else desc.name
        if _repeated(desc):
            for i, item in enumerate(value):
                yield from _unknown_in(item, f"{where}[{i}]")
        else:
            yield from _unknown_in(value, where)


def binary_unknown_fields(layer: Any, where: str) -> Optional[str]:
    """A warning for fields of ``layer`` (from a .caffemodel) that the schema does not know,
    or None; an error when they are inside a blob, whose values they might be."""
    found = list(_unknown_in(layer, ""))
    for path, numbers in found:
        if path.startswith("blobs["):
            raise CmsisgenError(f"{where}: {path} holds fields this reader does not know (numbers "
                                f"{', '.join(map(str, numbers))}): blob data in a Caffe fork's format?")
    if not found:
        return None
    listed = "; ".join(f"{path + ' ' if path else ''}field{'s' if len(numbers) > 1 else ''} "
                       f"{', '.join(map(str, numbers))}" for path, numbers in found)
    return f"{where}: skipped {listed}, unknown to BVLC Caffe (only the blobs are read from a .caffemodel)"
