"""Label values as clean text, and how each label gets its value from a field.

A label value is the field's value as people read it: `bash`, not `"bash"`
(upstream kept JSON quotes); an enum member by name; kernel bytes that are not
printable UTF-8 escaped (\\xff, \\n) and a backslash doubled, so two names never
share a value. Quote characters that are really in a name stay, and the
exposition format escapes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..decoders import DECODERS
from ..format.escape import escape_text
from ..format.layout import Field, FieldKind
from .config import DecoderConfig, LabelConfig
from .document import shown

LABEL_KINDS = {FieldKind.INT: "int", FieldKind.ENUM: "int", FieldKind.BOOL: "bool", FieldKind.FLOAT: "float",
               FieldKind.CHARS: "str"}


def clean_text(text: str) -> str:
    """`text` with non-printable characters and undecodable bytes escaped,
    and a backslash doubled, as in a table: otherwise a file named
    `coll<ESC>X` and one named `coll\\x1bX` would be one series."""
    if text.isprintable() and "\\" not in text:
        return text
    return escape_text(text)


def label_text(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return clean_text(value.partition(b"\0")[0].decode("utf-8", "surrogateescape"))
    return str(value)


@dataclass(frozen=True)
class LabelPlan:
    """A label and the field it reads: `cell` is the compile_rows expression
    giving the raw value per event (cheap, hashable), `text` turns a raw value
    into the label's text (run once per distinct value). A decoder reading
    sibling members (inet's `family`) gets the tuple (value, siblings...):
    `siblings` are their positions in the struct, `cell` builds that tuple."""

    name: str
    field: Field
    cell: str
    text: Callable[[Any], str]
    siblings: tuple[int, ...] = ()


def value_kind(f: Field) -> str:
    """What a field's value is once converted: int, str (chars, enum names),
    bool, float, bytes (another array's raw bytes)."""
    if f.kind == FieldKind.ENUM:
        return "str"
    if f.kind == FieldKind.ARRAY and f.index is not None:
        return "bytes"
    return LABEL_KINDS.get(f.kind, "other")


def plan_label(label: LabelConfig, f: Field, position: int, what: str,
               members: list[Field] | None = None) -> LabelPlan:
    """How `label` reads field `f` (the `position`-th of `members`, its
    struct's fields). ConfigError when the field cannot be a label or a
    decoder does not fit."""
    kind = value_kind(f)
    if f.kind not in LABEL_KINDS and kind != "bytes":
        raise label.at.error(f"{what} {shown(f.name)} is {f.type_name}: only numbers, enums, bools, char arrays and "
                             "byte arrays (with a decoder such as inet) can be labels", "from")
    types = DECODERS
    steps: list[Callable[[Any], Any]] = []
    siblings: list[int] = []
    for d in label.decoders:
        t = types[d.name]
        # a static map takes anything; the others need what they say
        if kind not in t.accepts and not (kind == "bool" and "int" in t.accepts):
            raise d.at.error(f"decoder {d.name} takes {' or '.join(t.accepts)} values, and {f.name} is "
                             f"{f.type_name}")
        for param in t.siblings:
            siblings += [_sibling(d, param, f, members or [], what)] if d.params.get(param) is not None else []
        step = t.make(d.params)
        if t.prime_as_root and not steps:
            step(0)  # loads its table now, before the exporter drops its privileges (ksym: kallsyms)
        steps.append(step)
        kind = "str"
    ref = f"{{_{position}}}"
    pre: Callable[[Any], Any] | None
    if f.kind == FieldKind.CHARS and f.index is not None:
        ref = f"{ref}.partition(b'\\0')[0]"
        pre = _chars
    elif f.kind == FieldKind.ARRAY and not steps:
        pre = bytes.hex  # raw bytes with no decoder: as hex, never cut at a zero byte
    else:
        # a member read from raw bytes (a bitfield) comes converted already
        pre = f.convert if f.index is not None and f.kind != FieldKind.ARRAY else None
    if siblings:
        cell = "(" + ", ".join([ref, *(f"{{_{n}}}" for n in siblings)]) + ")"
        return LabelPlan(label.name, f, cell, _chain_tuple(pre, tuple(steps)), tuple(siblings))
    return LabelPlan(label.name, f, ref, _chain(pre, tuple(steps)))


def _sibling(d: DecoderConfig, param: str, f: Field, members: list[Field], what: str) -> int:
    """The position of the member decoder `d`'s parameter `param` names: an
    integer member of the same struct, other than `f`."""
    name = d.params[param]
    for n, m in enumerate(members):
        if m.name == name and m is not f and m.index is not None and value_kind(m) in ("int", "bool"):
            return n
    others = ", ".join(m.name for m in members if m is not f and m.name)
    raise d.at.error(f"decoder {d.name}: {param} {shown(name)} is not another integer {what} of the struct "
                     f"(members: {others or 'none'})", param)


def _chars(raw: bytes) -> str:
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def _chain_tuple(pre: Callable[[Any], Any] | None, steps: tuple[Callable[[Any], Any], ...]
                 ) -> Callable[[Any], str]:
    """The text of (value, siblings...): the first decoder takes the tuple, `pre` only the value."""
    def text(values: tuple[Any, ...]) -> str:
        value: Any = values if pre is None else (pre(values[0]), *values[1:])
        for step in steps:
            value = step(value)
        return label_text(value)
    return text


def _chain(pre: Callable[[Any], Any] | None, steps: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        if pre is not None:
            value = pre(value)
        for step in steps:
            value = step(value)
        return label_text(value)
    return text
