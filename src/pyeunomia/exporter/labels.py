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
from .config import LabelConfig
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
    into the label's text (run once per distinct value)."""

    name: str
    field: Field
    cell: str
    text: Callable[[Any], str]


def value_kind(f: Field) -> str:
    """What a field's value is once converted: int, str (chars, enum names), bool, float."""
    if f.kind == FieldKind.ENUM:
        return "str"
    return LABEL_KINDS.get(f.kind, "other")


def plan_label(label: LabelConfig, f: Field, position: int, what: str) -> LabelPlan:
    """How `label` reads field `f` (the `position`-th member of its layout).
    ConfigError when the field cannot be a label or a decoder does not fit."""
    if f.kind not in LABEL_KINDS:
        raise label.at.error(f"{what} {shown(f.name)} is {f.type_name}: only numbers, enums, bools and char arrays "
                             "can be labels", "from")
    kind = value_kind(f)
    types = DECODERS
    steps = []
    for d in label.decoders:
        t = types[d.name]
        # a static map takes anything; the others need what they say
        if kind not in t.accepts and not (kind == "bool" and "int" in t.accepts):
            raise d.at.error(f"decoder {d.name} takes {' or '.join(t.accepts)} values, and {f.name} is "
                             f"{f.type_name}")
        steps.append(t.make(d.params))
        kind = "str"
    ref = f"{{_{position}}}"
    if f.kind == FieldKind.CHARS and f.index is not None:
        cell = f"{ref}.partition(b'\\0')[0]"
        pre: Callable[[Any], Any] | None = _chars
    else:
        cell = ref
        # a member read from raw bytes (a bitfield) comes converted already
        pre = f.convert if f.index is not None else None
    return LabelPlan(label.name, f, cell, _chain(pre, tuple(steps)))


def _chars(raw: bytes) -> str:
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def _chain(pre: Callable[[Any], Any] | None, steps: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        if pre is not None:
            value = pre(value)
        for step in steps:
            value = step(value)
        return label_text(value)
    return text
