"""Compiled rows for a struct with `@column` members: the table shows those
members only, with their headers, widths, alignment and decoders, and JSON
lines gain a `NAME_text` key per decoded column (decoders/columns.py).

A decoded cell costs one dict lookup per event: the generated code reads
`M.get(value) or D(value)`, where M is the column's memo of value -> text
and D (decoders/columns.memo_decoder) decodes a value not seen before, stores it and
empties the memo at MEMO_LIMIT entries. A decoder reading sibling members
is keyed by the tuple of the values.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from ..decoders import DECODERS
from ..decoders.columns import Column, memo_decoder
from ..format.escape import escape_bytes
from ..format.layout import FieldKind, Layout
from ..format.rows import CompiledRows, compile_json_fast_rows, compile_json_rows, compile_rows


def _cut(raw: bytes) -> str:
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def _table_text(value: Any) -> bytes:
    text = value if isinstance(value, str) else str(value)
    return escape_bytes(text.encode("utf-8", "surrogateescape"))


def _json_text(value: Any) -> str:
    """A JSON string always: NAME_text is text, whatever the decoder returned."""
    text = value if isinstance(value, str) else str(value)
    return encode_basestring_ascii(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _raw_text(value: Any) -> bytes:
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "surrogateescape")


def _decoded_cell(layout: Layout, c: Column, n: int, env: dict[str, Any], to_text: Callable[[Any], Any],
                  tag: str) -> str:
    """The expression of a decoded cell, its memo and decoder put in `env`."""
    f = layout.fields[c.position]
    ref = f"{{_{c.position}}}"
    pre: Callable[[Any], Any] | None = None
    if f.kind == FieldKind.CHARS and f.index is not None:
        ref = f"{ref}.partition(b'\\0')[0]"
        pre = _cut
    key = f"({ref}, {', '.join(f'{{_{s}}}' for s in c.siblings)})" if c.siblings else ref
    if c.siblings:
        pre = None
    decode = DECODERS[c.decoder or ""].make(c.params)
    memo: dict[Any, Any] = {}
    env[f"M{tag}{n}"] = memo
    env[f"D{tag}{n}"] = memo_decoder(decode, to_text, memo, pre)
    return f"(M{tag}{n}.get({key}) or D{tag}{n}({key}))"


def compile_column_rows(layout: Layout, columns: list[Column], escape: bool, prefix: bool,
                        vertical: bool = False) -> CompiledRows:
    """Table rows of `columns`; with `prefix`, the caller's prefix (the time,
    -T) first. `escape`: the variant escaping kernel text (see RowsWriter).
    `vertical` (--detailed, libbpf-tools' mountsnoop -d): a line per column,
    `HEADER: value`, and an empty line after each event."""
    env: dict[str, Any] = {"escape": escape_bytes}
    fmt_parts: list[bytes] = [b"%s"] if prefix else []
    cells = ["prefix"] if prefix else []
    last = len(columns) - 1
    for n, c in enumerate(columns):
        f = layout.fields[c.position]
        ref = f"{{_{c.position}}}"
        pad = b"" if vertical or (n == last and c.left) else (b"-%d" if c.left else b"%d") % c.width
        if c.decoder is None and f.kind == FieldKind.INT and f.index is not None and f.convert is None:
            fmt_parts.append(b"%" + pad + b"d")
            cells.append(ref)
            continue
        fmt_parts.append(b"%" + pad + b"s")
        if c.decoder is not None:
            cells.append(_decoded_cell(layout, c, n, env, _table_text, "T"))
        elif f.kind == FieldKind.CHARS and f.index is not None:
            expr = f"{ref}.partition(b'\\0')[0]"
            cells.append(f"escape({expr})" if escape else expr)
        elif f.kind == FieldKind.BOOL and f.size in (1, 2, 4, 8):
            cells.append(f"(b'true' if {ref} else b'false')")
        else:
            convert = f.convert if f.index is not None else None
            env[f"C{n}"] = lambda v, conv=convert: _table_text(conv(v) if conv else v)
            cells.append(f"C{n}({ref})")
    if vertical:
        labels = ([b"TIME"] if prefix else []) + [escape_bytes(c.header.encode("utf-8", "surrogateescape"))
                                                  for c in columns]
        width = max((len(h) for h in labels), default=0) + 2
        lines = [(h + b":").ljust(width).replace(b"%", b"%%") + part + b"\n"
                 for h, part in zip(labels, fmt_parts, strict=True)]
        return compile_rows(layout, b"".join(lines) + b"\n", cells, env)
    return compile_rows(layout, b" ".join(fmt_parts) + b"\n", cells, env)


def column_header(columns: list[Column], time_width: int | None, elapsed: bool = False) -> bytes:
    cells = [b"TIME".ljust(time_width)] if time_width is not None else []
    if elapsed:  # libbpf-tools' header of its seconds since the start (execsnoop -t)
        cells.append(b"TIME(s)".ljust(8))
    for c in columns:
        h = c.header.encode("utf-8", "surrogateescape")
        cells.append(h.ljust(c.width) if c.left else h.rjust(c.width))
    return escape_bytes(b" ".join(cells).rstrip()) + b"\n"


def compile_json_text_rows(layout: Layout, columns: list[Column]
                           ) -> tuple[CompiledRows, tuple[CompiledRows, int] | None]:
    """JSON lines of every member plus `NAME_text` for each decoded column,
    after the members, in one compiled function: (the careful rows, the fast
    rows and their quotes per line, or None) as rows.compile_json_rows and
    compile_json_fast_rows make them. The fast rows copy a decoded text raw
    between quotes: a text with a quote, a backslash or a byte beyond ASCII
    fails the batch check and the batch takes the careful rows."""
    decoded = [c for c in columns if c.decoder is not None]
    env: dict[str, Any] = {}
    fast_env: dict[str, Any] = {}
    parts, cells, fast_parts, fast_cells = [], [], [], []
    quotes = 0
    for n, c in enumerate(decoded):
        key = encode_basestring_ascii(c.key or c.member + "_text").replace("%", "%%")
        parts.append(key + ":%s")
        cells.append(_decoded_cell(layout, c, n, env, _json_text, "J"))
        fast_parts.append(key.encode() + b':"%s"')
        fast_cells.append(_decoded_cell(layout, c, n, fast_env, _raw_text, "F"))
        quotes += key.count('"') + 2
    if not decoded:
        return compile_json_rows(layout), compile_json_fast_rows(layout)
    return (compile_json_rows(layout, (parts, cells, env)),
            compile_json_fast_rows(layout, (fast_parts, fast_cells, fast_env, quotes)))
