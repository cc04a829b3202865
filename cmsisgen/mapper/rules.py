"""Rule machinery: the predicates behind every kernel choice, and choosing by them.

A rule is a predicate on a :class:`Site` (one layer's geometry in kernel terms). Its
docstring is the reason shown to the user when it fails and its line in
docs/supported-operators.md (:mod:`cmsisgen.ops.catalogue`); the :func:`rule` decorator adds the values it looked at, so a
refusal says what was found (``stride 3x1``, ``padding 2 >= stride 1``). The rules of each
layer kind live in that kind's module (:mod:`cmsisgen.ops`); the ones several kinds share
are here, with the named limits they test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

from ..errors import CmsisgenError

#: CMSIS-NN q7 size arguments are uint16_t.
UINT16_MAX = 65535
#: Some q7 kernels count image rows and columns in int16_t loop variables.
INT16_MAX = 32767


@dataclass(frozen=True)
class Site:
    """What the rules look at: one layer's geometry in CMSIS-NN terms (HWC)."""

    layer: str
    type: str
    in_ch: int
    in_h: int
    in_w: int
    out_ch: int
    out_h: int
    out_w: int
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    group: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    method: str = ""
    negative_slope: float = 0.0
    slope_max: float = 0.0  # largest |negative slope| of a leaky ReLU / PReLU
    inputs: int = 1
    #: Q formats (fractional bits) of input and output, once quantized (None before)
    in_frac: Optional[int] = None
    out_frac: Optional[int] = None
    #: the layers reading the output ("'ip2', 'relu3'"), for the rules about readers
    readers: str = ""
    #: an element-wise table (ReLU6, Clip) that is max(x, 0) in the quantized formats (None before)
    table_is_relu: Optional[bool] = None


Rule = Callable[[Site], bool]


def rule(detail: str) -> Callable[[Rule], Rule]:
    """Attach the values a rule looked at: ``detail`` is formatted with the Site's fields
    (``"stride {stride_h}x{stride_w}"``) and shown after the rule's reason when it fails."""
    def attach(predicate: Rule) -> Rule:
        predicate.detail = detail  # type: ignore[attr-defined]
        return predicate
    return attach


def reason(predicate: Rule, site: Optional[Site] = None) -> str:
    """The user-facing sentence of a rule (its docstring, on one line), with the values found
    at ``site`` when given."""
    text = " ".join((predicate.__doc__ or predicate.__name__).split())
    detail = getattr(predicate, "detail", "")
    if site is not None and detail:
        stop = "." if text.endswith(".") else ""
        text = f"{text[:len(text) - len(stop)]} ({detail.format(**asdict(site))}){stop}"
    return text


def choose(key: str, candidates: Sequence[tuple[str, Sequence[Rule]]], site: Site,
           forced: Optional[str] = None) -> str:
    """The first function whose rules all hold at ``site``, or the ``forced`` one when its
    rules hold; else raise naming the layer, the function(s) and the failed rules."""
    where = f"layer '{site.layer}' ({site.type})"
    if forced is not None:
        listed = dict((function, rules) for function, rules in candidates)
        if forced not in listed:
            raise CmsisgenError(f"{where}: kernel {forced} is not a function for this layer "
                                f"(candidates: {', '.join(listed)})")
        failed = [r for r in listed[forced] if not r(site)]
        if failed:
            raise CmsisgenError(f"{where}: {forced} cannot run it: {reason(failed[0], site)}")
        return forced
    failures: list[tuple[str, str]] = []
    for function, rules in candidates:
        failed = [r for r in rules if not r(site)]
        if not failed:
            return function
        failures.append((function, reason(failed[0], site)))
    reasons = {why for _, why in failures}
    # A reason every candidate shares (no dilation, ...) is said once, not once per function.
    text = (reasons.pop() if len(failures) > 1 and len(reasons) == 1
            else "; ".join(f"{function}: {why}" for function, why in failures))
    raise CmsisgenError(f"{where}: no kernel fits: {text}")


@rule("group {group}")
def dense(site: Site) -> bool:
    """CMSIS-NN q7 convolutions are dense: group must be 1."""
    return site.group == 1


@rule("dilation {dilation_h}x{dilation_w}")
def undilated(site: Site) -> bool:
    """CMSIS-NN q7 convolutions have no dilation: dilation must be 1."""
    return site.dilation_h == site.dilation_w == 1


@rule("input {in_h}x{in_w}x{in_ch}, output {out_h}x{out_w}x{out_ch}, kernel {kernel_h}x{kernel_w}, "
      "stride {stride_h}x{stride_w}, padding {pad_h}x{pad_w}")
def sizes_fit_int16(site: Site) -> bool:
    """CMSIS-NN passes sizes, kernel, stride and padding as uint16_t and counts some loops in int16_t: each must be at most 32767."""
    dims = (site.in_ch, site.in_h, site.in_w, site.out_ch, site.out_h, site.out_w,
            site.kernel_h, site.kernel_w, site.stride_h, site.stride_w, site.pad_h, site.pad_w)
    return all(d <= INT16_MAX for d in dims)


@rule("input {in_h}x{in_w}, kernel {kernel_h}x{kernel_w}, stride {stride_h}x{stride_w}, padding {pad_h}x{pad_w}")
def square_geometry(site: Site) -> bool:
    """The square variants take one size for input, kernel, stride and padding: height and width must match in each."""
    return (site.in_h == site.in_w and site.kernel_h == site.kernel_w
            and site.stride_h == site.stride_w and site.pad_h == site.pad_w)
