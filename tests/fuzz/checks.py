"""What the fuzz targets assert about each parser, shared with the property tests.

Each check takes an input, runs the parser and everything a parsed value
offers (queries, layouts, decoders, writers, options, the ecli parser), and
asserts the contract in contract.py plus the round trips and output rules.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
from typing import Any

from pyeunomia.cli.ecli import program_parser
from pyeunomia.errors import UsageError
from pyeunomia.format.btf import Btf, Kind
from pyeunomia.format.layout import FieldKind, Layout, LayoutCache, struct_layout, value_decoder
from pyeunomia.format.objspec import ObjectSpec
from pyeunomia.format.options import GlobalOption, global_options
from pyeunomia.format.package import Package
from pyeunomia.format.rows import column_width, compile_json_rows, compile_table_rows, table_header
from pyeunomia.output.writers import JsonWriter, RowsWriter, TableWriter
from pyeunomia.source import open_package

from .contract import check_message, outcome

# Layouts larger than this are checked but not decoded or written (a record would be huge).
MAX_DECODED = 4096
MAX_WRITTEN_FIELDS = 300
# Writers compile code per layout: check them on this many structs of one BTF.
MAX_WRITTEN_LAYOUTS = 8
# Layouts whose records decode into more values are checked but not decoded (slow).
MAX_DECODED_VALUES = 4096
PREFIX = b"12:34:56"


# -- BTF and layouts -----------------------------------------------------------------------------

def check_btf_bytes(data: bytes) -> Btf | None:
    btf = outcome(lambda: Btf.parse(data))
    if btf is not None:
        check_btf(btf, data)
    return btf


def check_btf(btf: Btf, seed: bytes = b"") -> None:
    """Every query on every type gives a value or a BTFError; every struct's
    layout decodes records and formats them."""
    written = 0
    cache = LayoutCache()  # shared, as a package's export types share one
    for t in btf.types:
        outcome(lambda t=t: btf.size_of(t.id))  # type: ignore[misc]
        assert isinstance(btf.c_name(t.id), str)
        assert isinstance(btf.plain_c_name(t.id), str)
        btf.resolve(t.id)
        btf.strip_qualifiers(t.id)
        if t.kind in (Kind.STRUCT, Kind.UNION):
            layout = outcome(lambda t=t: struct_layout(btf, t.id, cache))  # type: ignore[misc]
            if layout is not None and cache.values[t.id] <= MAX_DECODED_VALUES:
                check_layout(layout, seed, write=written < MAX_WRITTEN_LAYOUTS)
                written += 1
        elif t.kind not in (Kind.VOID, Kind.FUNC, Kind.FUNC_PROTO, Kind.DATASEC, Kind.VAR, Kind.FWD,
                            Kind.DECL_TAG):
            decode = outcome(lambda t=t: value_decoder(btf, t.id))  # type: ignore[misc]
            size = outcome(lambda t=t: btf.size_of(t.id))  # type: ignore[misc]
            if decode is not None and size is not None and size <= MAX_DECODED:
                decode(_pattern(seed, size))


def _pattern(seed: bytes, size: int, salt: int = 0) -> bytes:
    """`size` bytes cycling through (the end of) `seed`, each byte shifted by `salt`."""
    seed = seed[-61:] or b"\x01\xff\x80\x00\x7f\x22\x5c\x0a"
    shift = bytes((b + salt * 37) & 0xFF for b in range(256))
    return (seed * (size // len(seed) + 1))[:size].translate(shift)


def check_layout(layout: Layout, seed: bytes = b"", write: bool = True) -> None:
    """A layout decodes any record of its size, and formats it in every writer."""
    assert layout.struct.size == layout.size, (
        f"layout {layout.name!r}: struct format covers {layout.struct.size} bytes, the type {layout.size}")
    for f in layout.fields:
        assert (0 <= f.offset and f.offset + f.size <= layout.size) or f.bit_size, f"field {f.name!r} outside"
    if layout.size > MAX_DECODED or len(layout.fields) > MAX_WRITTEN_FIELDS:
        return
    records = [bytes(layout.size), b"\xff" * layout.size] + [_pattern(seed, layout.size, i) for i in range(3)]
    for rec in records:
        decoded = layout.decode(rec)
        assert set(decoded) == {f.name for f in layout.fields}
        _check_bools(layout, rec, decoded)
    if not write:
        return
    check_writers(layout, records)
    if layout.size:
        check_writers(layout, [rec[: layout.size - 1] for rec in records[:2]])  # short records: zero-padded
    check_writers(layout, [rec + b"\x99\x98" for rec in records[:2]])  # longer records: the rest ignored


def _check_bools(layout: Layout, rec: bytes, decoded: dict[str, Any]) -> None:
    names = [f.name for f in layout.fields]
    for f in layout.fields:
        if f.kind == FieldKind.BOOL and not f.bit_size and names.count(f.name) == 1:
            expect = rec[f.offset : f.offset + f.size] != bytes(f.size)
            assert decoded[f.name] is expect, f"bool {f.name!r} of {rec[f.offset:f.offset + f.size]!r}"


def _run(records: list[bytes], header: int = 8) -> tuple[memoryview, int, int, int]:
    """Records of one length laid out like a reader's run: header, record, padding."""
    length = len(records[0])
    stride = (header + length + 7) // 8 * 8
    buf = bytearray(stride * len(records))
    for k, rec in enumerate(records):
        buf[k * stride + header : k * stride + header + length] = rec
    return memoryview(buf), header, stride, length


def _written(writer: RowsWriter, stream: io.BytesIO, records: list[bytes]) -> bytes:
    view, header, stride, length = _run(records)
    writer.write_run(view, header, stride, len(records), length)
    writer.end_batch()
    return stream.getvalue()


def check_writers(layout: Layout, records: list[bytes]) -> None:
    """Table lines hold no control byte but their final newline; JSON lines
    parse; the fast writers and the careful ones write the same bytes; JSON
    values agree with Layout.decode."""
    widths = [column_width(f) for f in layout.fields]
    fast_out = io.BytesIO()
    fast = TableWriter(layout, fast_out)
    fast._prefix_of = lambda: PREFIX
    careful_out = io.BytesIO()
    careful = RowsWriter(layout, careful_out, compile_table_rows(layout, widths, escape=True),
                         header=table_header(layout, widths), prefix=lambda: PREFIX)
    table = _written(fast, fast_out, records)
    assert table == _written(careful, careful_out, records), "fast and careful table rows differ"
    lines = table.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(records) + 2  # header, rows, the empty rest
    for line in lines[:-1]:
        assert not any(c < 0x20 or c == 0x7F for c in line), f"control byte in table line {line!r}"
        text = line.decode("utf-8")
        assert text.isprintable(), f"unprintable character in table line {text!r}"

    lost = io.StringIO()
    fast_out, careful_out = io.BytesIO(), io.BytesIO()
    out = _written(JsonWriter(layout, fast_out, lost_stream=lost), fast_out, records)
    slow = _written(RowsWriter(layout, careful_out, compile_json_rows(layout), json=True), careful_out, records)
    assert out == slow, "fast and careful JSON rows differ"
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(records) + 1
    unique = {f.name for f in layout.fields if [g.name for g in layout.fields].count(f.name) == 1}
    for line, rec in zip(lines[:-1], records, strict=True):
        assert line.isascii()
        row = json.loads(line)
        assert isinstance(row, dict)
        full = rec.ljust(layout.size, b"\0")[: layout.size]
        decoded = layout.decode(full)
        for f in layout.fields:
            if f.name in unique:
                assert row[f.name] == _as_json(decoded[f.name], top=True), f"JSON {f.name!r}"


def _as_json(value: Any, top: bool) -> Any:
    """What a decoded value looks like once written as JSON and read back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return str(value)
    if isinstance(value, str) and top:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, list):
        return [_as_json(v, False) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v, False) for k, v in value.items()}
    return value


# -- objects -------------------------------------------------------------------------------------

def check_object_bytes(data: bytes) -> ObjectSpec | None:
    spec = outcome(lambda: ObjectSpec(data))
    if spec is None:
        return None
    outcome(lambda: spec.programs)
    outcome(lambda: spec.maps)
    outcome(lambda: spec.globals)
    for s in spec.elf.sections:
        outcome(lambda s=s: spec.elf.section_bytes(s))  # type: ignore[misc]
    pkg = outcome(lambda: Package.from_object(data, "fuzz", "fuzz.o"))
    if pkg is not None:
        check_package(pkg, strict_round_trip=False)
    return spec


# -- packages ------------------------------------------------------------------------------------

def check_package_text(text: bytes | str) -> Package | None:
    pkg = outcome(lambda: Package.from_json(text, "fuzz.json"))
    if pkg is not None:
        check_package(pkg, strict_round_trip=True)
    if isinstance(text, bytes):
        outcome(lambda: open_package(text))
    return pkg


def check_package(pkg: Package, strict_round_trip: bool) -> None:
    """Writing a package and reading it back gives the same package; its
    layouts, options and command-line parser all work or refuse in one line."""
    text = pkg.to_json()
    again = outcome(lambda: Package.from_json(text, "again.json"))
    if strict_round_trip:
        assert again is not None, "a package read from JSON is refused once written back"
    if again is not None:
        assert again.object == pkg.object
        assert again.to_json() == text
    layout = outcome(pkg.export_layout)
    if layout is not None:
        check_layout(layout)
    for m in outcome(lambda: pkg.spec.maps) or []:
        for which in ("key", "value"):
            found = outcome(lambda m=m, which=which: pkg.map_layout(m.name, which))  # type: ignore[misc]
            if found is not None:
                check_layout(found)
    options = outcome(lambda: global_options(pkg))
    if options is not None:
        for o in options:
            check_option(o)
        check_command_line(pkg, options, [])


def check_command_line(pkg: Package, options: list[GlobalOption], argv: list[str]) -> dict[str, Any] | None:
    """ecli's program parser builds for any package our parsers accept, and
    any arguments give values or one UsageError line."""
    parser = program_parser(pkg, options)

    def parse() -> dict[str, Any] | None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return vars(parser.parse_args(argv))
        except SystemExit as e:  # -h or --help among the arguments
            assert e.code == 0
            return None

    values = outcome(parse, (UsageError,))
    if values:
        for o in options:
            o.encode(values[o.name])  # what the loader writes into the object
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        parser.parse_args(["--help"])
    return values


# -- options -------------------------------------------------------------------------------------

OPTION_TEXTS = ["0", "1", "-1", "0x10", "1e3", "nan", "-inf", "true", "off", "", " 7 ", "1_0", "9" * 30,
                "A", "ON", "a\nb", "\x00", "é", "\udcff", "3.4028235e38", "-0.0", "0b101", "010"]
OPTION_VALUES: list[Any] = [0, 1, -1, True, False, 2 ** 64, -(2 ** 63), 1.5, float("nan"), float("inf"),
                            3.5e38, "", "x", "a\0b", "\ud800", "\udcff", None, [], b"x", "OFF", "ON"]


def check_option(o: GlobalOption, texts: list[str] | None = None, values: list[Any] | None = None,
                 raw: bytes | None = None) -> None:
    """parse, check, encode and decode: values or a ValueError that says what
    is accepted; whatever they accept round-trips through the object bytes."""
    accepts = o.accepts()
    assert "\n" not in accepts and "\r" not in accepts, f"accepts() is not one line: {accepts!r}"
    assert len(o.encode(o.default)) == o.size, "the default does not encode"
    back = o.decode(o.encode(o.initial))
    assert _nan(o.initial) or o.check(back) == o.check(o.initial), "the initial value does not round-trip"
    for text in OPTION_TEXTS + (texts or []):
        value = _accepted(o, lambda text=text: o.parse(text))
        if value is not _REFUSED:
            _round_trip(o, value)
    for v in OPTION_VALUES + (values or []):
        value = _accepted(o, lambda v=v: o.check(v))
        if value is not _REFUSED:
            _round_trip(o, value)
    if raw is not None and len(raw) >= o.size:
        decoded = o.decode(raw[: o.size])
        _accepted(o, lambda: o.check(decoded))


_REFUSED = object()


def _accepted(o: GlobalOption, fn: Any) -> Any:
    try:
        return fn()
    except ValueError as e:
        text = check_message(e)
        assert o.accepts() in text, f"{text!r} does not say what is accepted ({o.accepts()!r})"
        return _REFUSED


def _nan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _round_trip(o: GlobalOption, value: Any) -> None:
    raw = o.encode(value)
    assert len(raw) == o.size
    back = o.decode(raw)
    if o.kind == "float":
        code = o.endian + ("f" if o.size == 4 else "d")
        expect = struct.unpack(code, struct.pack(code, value))[0]
        assert back == expect or (_nan(back) and _nan(expect))
    elif o.kind == "enum":  # a number with a name decodes to the name (one that parses back to it)
        assert back == value or dict(o.enum_values).get(back) == value
    else:
        assert back == value, f"{o.name}: {value!r} encodes to {raw!r}, which decodes to {back!r}"
    if not _nan(back):  # what decode gives, check takes (a float as it was rounded to the type)
        assert o.check(back) == (back if o.kind == "float" else o.check(value))


def argv_for(options: list[GlobalOption], picks: list[tuple[int, str]]) -> list[str]:
    """Command-line arguments setting options (by index into `options`) to texts."""
    argv = []
    for i, text in picks:
        if options:
            o = options[i % len(options)]
            argv += [o.flag] if o.kind == "bool" else [o.flag, text]
        else:
            argv.append(text)
    return argv

