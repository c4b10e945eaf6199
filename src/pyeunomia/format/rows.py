"""Compile a record layout into a function that formats a whole run of records.

Why generated code: the per-event path is the product. A loop that dispatches
on each member's kind costs about 80 ns per member per record in CPython; a
function specialised to one layout (one tuple unpack, one %-format) formats an
opensnoop record in well under a microsecond. The generated source is small,
built from member indexes and expressions written in this package (never from
member names or other input), and `source` is kept on the result for debugging.

`compile_rows` is the one engine: a format plus one expression per cell, in
which `{member}` stands for that member's value. The generic table and JSON
writers and tools with their own columns (opensnoop) all build on it.
"""

from __future__ import annotations

import json
import string
import struct
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from .escape import escape_bytes
from .layout import Field, FieldKind, Layout

RowsFunction = Callable[..., None]


class CompiledRows(NamedTuple):
    """`write(view, header, stride, count, out, prefix)` appends one formatted
    line per record of a uniform run in `view` to the list `out`."""

    write: RowsFunction
    source: str


def run_struct(layout: Layout, header: int, stride: int, fmt: str | None = None) -> struct.Struct:
    """A Struct covering one record slot of a run: header, record (`fmt`, by
    default the layout's), padding."""
    fmt = fmt or layout.struct.format
    order, body = fmt[0], fmt[1:]
    pad = stride - header - layout.size
    if pad < 0:
        raise ValueError("record slot smaller than the layout")
    return struct.Struct(f"{order}{header}x{body}{pad}x" if pad else f"{order}{header}x{body}")


def _json_value(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=str, allow_nan=False)


def json_text(value: Any) -> str:
    """Compact, ASCII-only JSON; NaN and infinities become strings."""
    try:
        return _json_value(value)
    except ValueError:
        return _json_value(_finite(value))


def _finite(value: Any) -> Any:
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _text_of(convert: Callable[[Any], Any] | None) -> Callable[[Any], bytes]:
    """Slow-path text for members that are not plain scalars."""

    def text(value: Any) -> bytes:
        v = convert(value) if convert else value
        return escape_bytes(v.encode("utf-8", "surrogateescape")) if isinstance(v, str) else json_text(v).encode()
    return text


def _loop_head(layout: Layout, env: dict[str, Any], used: set[str]) -> tuple[str, dict[str, str]]:
    """The loop header, and how each member's value is written inside it:
    by name and by position (`_0`, `_1`, ...). Members no cell uses are
    skipped in the unpack: fewer objects per record."""
    refs: dict[str, str] = {}
    wanted: list[Field] = []
    for n, f in enumerate(layout.fields):
        keys = {f"_{n}", f.name} - {""}
        if not keys & used:
            continue
        if f.index is None:
            env[f"R{n}"] = f.convert
            ref = f"R{n}(rec)"
        elif layout.needs_raw:
            ref = f"v[{f.index}]"
        else:
            ref = f"v{f.index}"  # named by unpack position: members need not be in offset order
            wanted.append(f)
        refs[f"_{n}"] = ref  # a position always means that member, even one named "_1"
        if f.name:
            refs.setdefault(f.name, ref)
    if layout.needs_raw:
        head = ("    for k in range(count):\n"
                "        rec = view[k * stride + header : k * stride + header + SIZE]\n"
                "        v = UNPACK(rec)\n")
        return head, refs
    env["run_struct"] = _cached_run_struct(layout, _pruned_format(layout, wanted))
    names = "".join(f"v{f.index}, " for f in sorted(wanted, key=lambda f: f.index or 0)) or "_, "
    head = f"    for ({names}) in run_struct(header, stride).iter_unpack(view[: count * stride]):\n"
    if not wanted:  # nothing unpacked: one padding-only value per record
        head = "    for _ in range(count):\n"
    return head, refs


def _pruned_format(layout: Layout, wanted: list[Field]) -> str:
    """The layout's struct format with only the `wanted` members unpacked."""
    keep = {id(f) for f in wanted}
    parts, pos = [], 0
    for f in sorted((f for f in layout.fields if f.index is not None), key=lambda f: f.index or 0):
        if f.offset < pos:
            continue
        if f.offset > pos:
            parts.append(f"{f.offset - pos}x")
        parts.append(f.code if id(f) in keep else f"{f.size}x")
        pos = f.offset + f.size
    if layout.size > pos:
        parts.append(f"{layout.size - pos}x")
    return layout.struct.format[0] + "".join(parts)


def compile_rows(layout: Layout, fmt: bytes | str | None, cells: list[str],
                 env: dict[str, Any] | None = None) -> CompiledRows:
    """A function appending `fmt % (cell, ...)` for every record of a run;
    with `fmt` None it appends the tuple `(cell, ...)` itself (for callers
    that count or aggregate records rather than print them).

    Each cell is a Python expression in which `{member}` (or `{_n}`, the n-th
    member) is that member's value and `prefix` is the caller's argument.
    Names the expressions use come from `env`.
    """
    namespace: dict[str, Any] = {"SIZE": layout.size, "UNPACK": layout.struct.unpack_from, "FMT": fmt}
    namespace.update(env or {})
    used = {name for cell in cells for _text, name, _spec, _conv in string.Formatter().parse(cell) if name}
    head, refs = _loop_head(layout, namespace, used)
    args = [cell.format_map(refs) for cell in cells]
    if fmt is None:
        body = f"        append(({', '.join(args)},))\n"
    else:
        body = f"        append(FMT % ({''.join(a + ', ' for a in args)}))\n"  # no cells: FMT % ()
    return _build(head, body, namespace)


def compile_table_rows(layout: Layout, widths: list[int], escape: bool) -> CompiledRows:
    """Rows for the table: `prefix` (the time) then each member, padded."""
    env: dict[str, Any] = {"escape": escape_bytes}
    fmt_parts, cells = [b"%s"], ["prefix"]
    last = len(layout.fields) - 1
    for n, (f, w) in enumerate(zip(layout.fields, widths, strict=True)):
        ref = f"{{_{n}}}"
        pad = b"" if n == last else b"-%d" % w
        if f.kind == FieldKind.INT and f.index is not None and f.convert is None:
            fmt_parts.append(b"%" + pad + b"d")
            cells.append(ref)
            continue
        fmt_parts.append(b"%" + pad + b"s")
        if f.kind == FieldKind.CHARS and f.index is not None:
            expr = f"{ref}.partition(b'\\0')[0]"
            cells.append(f"escape({expr})" if escape else expr)
        elif f.kind == FieldKind.BOOL and f.size in (1, 2, 4, 8):  # else raw bytes: convert them below
            cells.append(f"(b'true' if {ref} else b'false')")
        elif (f.kind == FieldKind.ENUM and f.index is not None and f.convert is not None and f.enum_names
              and f.size in (1, 2, 4, 8)):
            env[f"E{n}"] = {v: escape_bytes(k.encode()) for v, k in f.enum_names.items()}
            cells.append(f"(E{n}.get({ref}) or b'%d' % {ref})")
        elif f.kind == FieldKind.FLOAT and f.index is not None:
            cells.append(f"b'%r' % {ref}")
        else:
            # a raw member's ref is already converted (R{n}(rec)): do not convert it twice
            env[f"T{n}"] = _text_of(f.convert if f.index is not None else None)
            cells.append(f"T{n}({ref})")
    return compile_rows(layout, b" ".join(fmt_parts) + b"\n", cells, env)


def compile_json_rows(layout: Layout, extra: tuple[list[str], list[str], dict[str, Any]] | None = None
                      ) -> CompiledRows:
    """Rows as JSON objects, one per line, keys in member order; `extra`:
    (format parts, cells, their names) of more keys after the members
    (output/colrows.py: the decoded columns' NAME_text)."""
    env: dict[str, Any] = {"enc": encode_basestring_ascii, "json_text": json_text}
    parts, cells = [], []
    for n, f in enumerate(layout.fields):
        key = encode_basestring_ascii(f.name).replace("%", "%%")
        ref = f"{{_{n}}}"
        if f.kind == FieldKind.INT and f.index is not None and f.convert is None:
            parts.append(f"{key}:%d")
            cells.append(ref)
            continue
        parts.append(f"{key}:%s")
        if f.kind == FieldKind.CHARS and f.index is not None:
            cells.append(f"enc({ref}.partition(b'\\0')[0].decode('utf-8', 'backslashreplace'))")
        elif f.kind == FieldKind.BOOL and f.size in (1, 2, 4, 8):
            cells.append(f"('true' if {ref} else 'false')")
        elif f.kind == FieldKind.ENUM and f.index is not None and f.enum_names:
            env[f"E{n}"] = {v: encode_basestring_ascii(k) for v, k in f.enum_names.items()}
            env[f"C{n}"] = f.convert
            cells.append(f"(E{n}.get({ref}) or json_text(C{n}({ref})))")
        else:
            # a raw member's ref is already converted (R{n}(rec)): do not convert it twice
            env[f"J{n}"] = _json_of(f.convert if f.index is not None else None)
            cells.append(f"J{n}({ref})")
    if extra is not None:
        parts, cells = parts + extra[0], cells + extra[1]
        env.update(extra[2])
    return compile_rows(layout, "{" + ",".join(parts) + "}\n", cells, env)


def compile_json_fast_rows(layout: Layout, extra: tuple[list[bytes], list[str], dict[str, Any], int] | None = None
                           ) -> tuple[CompiledRows, int] | None:
    """JSON rows as bytes with strings copied raw between quotes, and how many
    double quotes each line then has; valid for a batch only when the batch
    passes escape.is_safe_batch with that count (else use compile_json_rows).
    None when a member's text cannot be predicted that way. `extra`: (format
    parts, cells, their names, their quotes) of keys after the members, as
    compile_json_rows takes them."""
    env: dict[str, Any] = {"TF": (b"false", b"true")}
    parts, cells = [], []
    quotes = 0
    for n, f in enumerate(layout.fields):
        key = encode_basestring_ascii(f.name).replace("%", "%%").encode()
        ref = f"{{_{n}}}"
        quotes += key.count(b'"')
        if f.index is None:
            return None
        if f.kind == FieldKind.INT and f.convert is None:
            parts.append(key + b":%d")
            cells.append(ref)
        elif f.kind == FieldKind.CHARS:
            parts.append(key + b':"%s"')
            cells.append(f"{ref}.partition(b'\\0')[0]")
            quotes += 2
        elif f.kind == FieldKind.BOOL and f.convert is None:
            parts.append(key + b":%s")
            cells.append(f"TF[{ref}]")
        elif f.kind == FieldKind.ENUM and f.enum_names and f.convert is not None and f.size in (1, 2, 4, 8):
            # an unknown value prints as a number: its line then has two quotes
            # fewer and the batch takes the careful path, which does the same
            env[f"E{n}"] = {v: encode_basestring_ascii(k).encode() for v, k in f.enum_names.items()}
            parts.append(key + b":%s")
            cells.append(f"(E{n}.get({ref}) or b'%d' % {ref})")
            quotes += 2
        else:
            return None
    if extra is not None:
        parts, cells, quotes = parts + extra[0], cells + extra[1], quotes + extra[3]
        env.update(extra[2])
    return compile_rows(layout, b"{" + b",".join(parts) + b"}\n", cells, env), quotes


def _json_of(convert: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        v = convert(value) if convert else value
        if isinstance(v, str):
            return encode_basestring_ascii(v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
        return json_text(v)
    return text


def _cached_run_struct(layout: Layout, fmt: str) -> Callable[[int, int], struct.Struct]:
    cache: dict[tuple[int, int], struct.Struct] = {}

    def get(header: int, stride: int) -> struct.Struct:
        s = cache.get((header, stride))
        if s is None:
            s = cache[(header, stride)] = run_struct(layout, header, stride, fmt)
        return s
    return get


def _build(head: str, body: str, env: dict[str, Any]) -> CompiledRows:
    source = "def write(view, header, stride, count, append, prefix):\n" + head + body
    namespace: dict[str, Any] = dict(env)
    exec(compile(source, "<pyeunomia rows>", "exec"), namespace)  # noqa: S102 - see module docstring
    return CompiledRows(namespace["write"], source)


def column_width(f: Field) -> int:
    """A table column's width: wide enough for its name and typical values."""
    if f.kind == FieldKind.INT:
        natural = {1: 4, 2: 6, 4: 7, 8: 12}.get(f.size, 12)
    elif f.kind == FieldKind.CHARS:
        natural = min(f.size - 1, 16)
    elif f.kind == FieldKind.BOOL:
        natural = 5
    elif f.kind == FieldKind.ENUM and f.enum_names:
        natural = min(max(len(n) for n in f.enum_names.values()), 24)
    else:
        natural = 8
    return max(natural, len(f.name))


def table_header(layout: Layout, widths: Iterable[int], time_width: int = 8) -> bytes:
    names = [f.name.encode() for f in layout.fields]
    cells = [b"time".ljust(time_width)] + [n.ljust(w) for n, w in zip(names, widths, strict=True)]
    cells[-1] = cells[-1].rstrip()
    return escape_bytes(b" ".join(cells)) + b"\n"
