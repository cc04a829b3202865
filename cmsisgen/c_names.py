"""C names for a program's generated code, unique by construction.

Every name the generated code defines for a step is ``<PREFIX>_<SUFFIX>`` with the step's
prefix (``CONV1``) and a suffix of its kernel (``_OUT_CH``, ``_WT``, ``_OUT``...). Two such
names can only be equal when one prefix is the other plus ``_`` and more (a layer ``x``
giving ``X_OUT_CH`` and a layer ``x_out`` giving ``X_OUT`` + ``_CH``), so no prefix is
allowed to extend another one that way; nor may a prefix enter the namespaces of the
generated API (``NN_``), of CMSIS (``ARM_``) or of the C library's limit macros
(``INT8_WIDTH``, ``SIZE_MAX``...). :func:`check_unique` checks the rendered files before
they are written, and text from the model is made safe inside comments and string
literals (``*/``, quotes, trigraphs such as ``??/``).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Iterator

#: Prefixes that would define names in another owner's namespace: they get ``L_`` in front.
FOREIGN = re.compile(r"^(NN|ARM|U?INT\d*|U?INT_(LEAST|FAST)\d+|U?INTMAX|U?INTPTR|SIZE|PTRDIFF|SIG_ATOMIC|WCHAR|WINT"
                     r"|CHAR|SCHAR|UCHAR|SHRT|USHRT|LONG|ULONG|LLONG|ULLONG|FLT|DBL|LDBL)(_|$)")
#: Identifiers a generated file defines: macros, and (outside nn.h, which only declares)
#: arrays, functions and the static asserts' typedefs.
_MACRO = re.compile(r"(?m)^#define (\w+)")
_DEFINITION = re.compile(r"(?m)^(?:static )?(?:const )?\w+ (?:\*const )?(\w+)(?:\[|\()|^NN_STATIC_ASSERT\((\w+),")


def c_identifier(name: str) -> str:
    """Upper-case C identifier for a Caffe layer or blob name ('conv1@1' -> 'CONV1_1')."""
    ident = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper() or "T"
    return "L_" + ident if ident[0].isdigit() else ident


def _overlaps(name: str, taken: Iterable[str]) -> bool:
    return any(name == t or name.startswith(t + "_") or t.startswith(name + "_") for t in taken)


def unique_prefixes(bases: list[str], owned: Iterable[str] = ()) -> list[str]:
    """One prefix per base, none equal to or extending (by ``_``) another or an ``owned`` one
    (the generated API's own prefixes, such as NN_INPUT, which keep their name): a base that
    would is written without its underscores, then numbered (``X_OUT`` beside ``X`` becomes
    ``XOUT``, or ``XOUT2``...)."""
    owned = set(owned)
    taken: list[str] = []
    names = []
    for base in bases:
        if base not in owned and FOREIGN.match(base):
            base = "L_" + base
        name, n = base, 1
        while _overlaps(name, taken) and base not in owned:
            n += 1
            name = base.replace("_", "") + (str(n) if n > 2 or "_" not in base else "")
            if FOREIGN.match(name):  # I_NT8 beside I becomes INT8: keep it out of <stdint.h>'s names
                name = "L_" + name
        taken.append(name)
        names.append(name)
    return names


def check_unique(files: dict[str, str]) -> None:
    """Every identifier the generated ``files`` define is defined once (a bug in cmsisgen otherwise)."""
    defined = Counter(name for file, text in files.items()
                      for pattern in ((_MACRO,) if file.endswith("nn.h") else (_MACRO, _DEFINITION))
                      for match in pattern.finditer(_line_starts(text)) for name in match.groups() if name)
    twice = sorted(name for name, count in defined.items() if count > 1 and not name.endswith("_H"))
    if twice:
        raise AssertionError(f"generated C defines {', '.join(twice)} more than once")


def _line_starts(text: str) -> str:
    """The lines that can define something: see :func:`unindented_lines`."""
    return "\n".join(unindented_lines(text))


#: Where an unindented line starts (after its newline).
_UNINDENTED = re.compile(r"\n(?=[^ \t\n])")


def unindented_lines(text: str) -> Iterator[str]:
    """The non-empty lines that do not start with a blank, in order: a weights.c of tens of
    millions of values is mostly indented lines, which neither a Python loop over every
    line nor a line-anchored pattern (tried at every character) should have to visit."""
    starts = ([0] if text[:1] not in ("", " ", "\t", "\n") else []) + [m.end() for m in _UNINDENTED.finditer(text)]
    for start in starts:
        end = text.find("\n", start)
        yield text[start:end] if end >= 0 else text[start:]


def c_comment(text: str) -> str:
    """Text safe inside a C block comment: a layer named 'a*/b' must not end it, and no
    trigraph (``??/`` is a backslash under -std=c99) may splice or end anything."""
    return str(text).replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")


def c_string(text: str) -> str:
    """Text safe inside a C string literal: quotes, backslashes, trigraphs (``?`` escaped) and
    control characters escaped."""
    out = []
    for ch in str(text):
        if ch in '"\\?':
            out.append("\\" + ch)
        elif ch.isprintable() and ch.isascii():
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return "".join(out)
