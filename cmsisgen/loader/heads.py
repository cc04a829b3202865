"""Where the network stops: the ``output`` setting (``--output BLOB``) and detection heads.

Real nets end in layers cmsisgen has no q7 kernel for and that a firmware engineer runs in
float on the host side anyway: SSD's ``PriorBox`` and ``DetectionOutput`` (anchor boxes and
non-maximum suppression). Such a net is compiled up to the blobs that feed them: the
``output`` setting names those blobs, and the net is cut to the layers they need (walking
back from them over Caffe's blob names, so an in-place layer on a named blob is kept and
the blob is its last version, as pycaffe's ``net.blobs[name]`` shows it after a forward).
Everything after them is dropped before any layer is checked, so what follows the cut can
be of any type.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

from cmsisgen.errors import SETTING, SettingError

#: Detection heads: refused by name, with the way around them.
DETECTION_TYPES = ("PriorBox", "DetectionOutput")


def split_outputs(values: Union[str, Sequence[str], None]) -> list[str]:
    """``--output a,b --output c`` -> [a, b, c] (repeatable, comma-separated), duplicates once."""
    names: list[str] = []
    for value in [values] if isinstance(values, str) else values or ():
        for name in value.split(","):
            name = name.strip()
            if not name:
                raise SettingError("output", f"{SETTING} '{value}': a blob name is empty")
            if name not in names:
                names.append(name)
    return names


def cut_to_outputs(layers: list[Any], outputs: Sequence[str], source: str, always: Callable[[Any], bool],
                   printable: Callable[[str], str], inputs: Sequence[str] = ()) -> list[Any]:
    """The Caffe layers (in order) that the blobs ``outputs`` need, plus those ``always``
    keeps (inputs, data layers). An unknown blob is an error listing the net's blobs; a network
    input (``inputs``: the prototxt's ``input:`` fields, or an Input or data layer's top) is an
    error saying so."""
    blobs: list[str] = list(dict.fromkeys(inputs))
    for layer in layers:
        blobs.extend(top for top in layer.top if top not in blobs)
    for name in outputs:
        if name not in blobs:
            raise SettingError("output", f"{source}: {SETTING} {printable(name)}: the network has no blob "
                                          f"'{printable(name)}' (blobs: {printable(', '.join(blobs), 2000)})")
    computed = {top for layer in layers if not always(layer) for top in layer.top}
    for name in outputs:
        if name not in computed:
            raise SettingError("output", f"{source}: {SETTING} {printable(name)}: '{printable(name)}' is an input "
                                          "of the network; name a blob that a layer computes")
    needed = set(outputs)
    kept = []
    for layer in reversed(layers):
        if always(layer) or needed & set(layer.top):
            kept.append(layer)
            needed -= set(layer.top)
            needed |= set(layer.bottom)
    return kept[::-1]


def detection_error(source: str, unsupported: dict[str, str], layers: list[Any],
                    type_of: Callable[[Any], str], others: str) -> SettingError:
    """The refusal of a net with detection heads: their names and the ``output`` setting that
    compiles the net before them (``others``: the general refusal of the other unsupported
    types, or empty)."""
    owners = ", ".join(owner for kind, owner in unsupported.items() if kind in DETECTION_TYPES)
    produced = {top for layer in layers if type_of(layer) in DETECTION_TYPES for top in layer.top}
    feeds: list[str] = []
    for layer in layers:
        if type_of(layer) == "DetectionOutput":
            feeds.extend(b for b in layer.bottom if b not in produced and b not in feeds)
    example = f" (here {SETTING} {','.join(feeds)})" if feeds else ""
    text = (f"{source}: {owners}: detection heads (PriorBox, DetectionOutput) are not supported by cmsisgen; "
            f"compile the network before them with {SETTING} BLOB{example}")
    return SettingError("output", text + (f"; {others}" if others else ""))
