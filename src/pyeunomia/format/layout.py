"""Turn a BTF struct into a record layout: one struct.Struct for the whole
record plus, per member, how to turn the unpacked value into Python.

The per-event path unpacks many records with one precompiled Struct
(`Struct.iter_unpack` over a batch) and then touches only the members that need
conversion. Nothing here runs per event except the small converters.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import Enum
from itertools import islice
from typing import Any, NamedTuple

from .btf import INT_BOOL, INT_SIGNED, Btf, BTFError, BtfType, Kind, byte_order
from .record import FrozenRecord

Converter = Callable[[Any], Any]

# The most members (nested and anonymous ones included) the layouts sharing one
# LayoutCache may hold: a few hundred bytes of BTF can nest unions of two
# unions sixty deep, 2**60 members.
MAX_MEMBERS = 1 << 16
# The most values one record may decode into, members of nested structs and
# array elements counted (a quarter of a second of decoding): a union of two
# unions ... of 4 bytes decodes into 2**60 values unless refused.
MAX_VALUES = 1 << 18


class FieldKind(Enum):
    INT = "int"
    BOOL = "bool"
    FLOAT = "float"
    CHARS = "chars"  # char[N]: a NUL-terminated string
    ENUM = "enum"
    ARRAY = "array"
    STRUCT = "struct"
    OPAQUE = "opaque"  # raw bytes we cannot interpret (e.g. long double)


class Field(FrozenRecord):
    """One member of a record, as seen by decoders and writers.

    `index` is where the member's value sits in the record's unpacked tuple,
    or None when it must be computed from the raw bytes (bitfields,
    overlapping members). `convert` turns the unpacked value (or, with index
    None, the raw record) into Python. `code` is its struct-module format
    code, when it has an index."""

    __slots__ = (
        "bit_offset",
        "bit_size",
        "code",
        "convert",
        "enum_names",
        "index",
        "kind",
        "name",
        "offset",
        "signed",
        "size",
        "type_name",
    )

    name: str
    type_name: str
    kind: FieldKind
    offset: int
    size: int
    signed: bool
    index: int | None
    convert: Converter | None
    enum_names: dict[int, str] | None
    bit_offset: int
    bit_size: int
    code: str

    def __init__(self, name: str, type_name: str, kind: FieldKind, offset: int, size: int,
                 signed: bool = False, index: int | None = None, convert: Converter | None = None,
                 enum_names: dict[int, str] | None = None, bit_offset: int = 0, bit_size: int = 0,
                 code: str = ""):
        self._set(name=name, type_name=type_name, kind=kind, offset=offset, size=size, signed=signed,
                  index=index, convert=convert, enum_names=enum_names, bit_offset=bit_offset,
                  bit_size=bit_size, code=code)


class Layout(NamedTuple):
    name: str
    size: int
    fields: tuple[Field, ...]
    struct: struct.Struct

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def needs_raw(self) -> bool:
        return any(f.index is None for f in self.fields)

    def decode(self, record: bytes | memoryview) -> dict[str, Any]:
        """Decode one record into a dict keyed by member name."""
        values = self.struct.unpack_from(record)
        return self.to_dict(values, record)

    def to_dict(self, values: tuple[Any, ...], record: bytes | memoryview | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.index is None:
                if record is None:
                    raise ValueError("raw record needed for field " + f.name)
                v = f.convert(record) if f.convert else None
            else:
                v = values[f.index]
                if f.convert is not None:
                    v = f.convert(v)
            out[f.name] = v
        return out


_INT_CODES = {(1, True): "b", (1, False): "B", (2, True): "h", (2, False): "H",
              (4, True): "i", (4, False): "I", (8, True): "q", (8, False): "Q"}


def cut_string(raw: bytes) -> str:
    """A char array as text: up to the first NUL, undecodable bytes kept as
    surrogates (like os.fsdecode) so no byte is lost."""
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


class LayoutCache:
    """Layouts made so far, by type id, and the members they hold in all: a
    struct used many times (nested, or by several export types) is laid out
    once, and no BTF makes layouts take more than MAX_MEMBERS members."""

    def __init__(self) -> None:
        self.layouts: dict[int, Layout] = {}
        self.members = 0
        self.values: dict[int, int] = {}  # struct id -> values one record of it decodes into


def struct_layout(btf: Btf, type_id: int, cache: LayoutCache | None = None) -> Layout:
    """The layout of a struct (or union) type for decoding records."""
    cache = cache if cache is not None else LayoutCache()
    t = btf.resolve(type_id)
    if t.id in cache.layouts:
        return cache.layouts[t.id]
    if t.kind not in (Kind.STRUCT, Kind.UNION):
        raise BTFError(f"BTF type {type_id} is {t.kind.name.lower()}, not a struct")
    members = list(islice(_flatten(btf, t, 0), max(0, MAX_MEMBERS - cache.members) + 1))
    cache.members += len(members)
    if cache.members > MAX_MEMBERS:
        raise BTFError(f"BTF type {type_id} has more than {MAX_MEMBERS} members, nested ones included")
    for _name, bit_off, bit_size, mtype in members:  # the kernel refuses such BTF too
        if bit_off + (bit_size or 8 * btf.size_of(mtype)) > 8 * t.size:
            raise BTFError(f"BTF type {type_id} has a member beyond its {t.size} bytes")
    layout, cache.values[t.id] = _layout(btf, t.name, t.size, members, cache, type_id)
    cache.layouts[t.id] = layout
    return layout


def members_layout(btf: Btf, name: str, members: list[tuple[str, int, int]]) -> Layout:
    """The layout of a record described member by member, (name, byte offset,
    BTF type id), as upstream's `custom_members` export config does: as long
    as its last member reaches."""
    cache = LayoutCache()
    flat = [(n, 8 * off, 0, type_id) for n, off, type_id in sorted(members, key=lambda m: m[1])]
    if len(flat) > MAX_MEMBERS:
        raise BTFError(f"more than {MAX_MEMBERS} members")
    end = 0
    for n, bit_off, _bits, type_id in flat:
        if not 0 < type_id < len(btf):
            raise BTFError(f"member {n!r} has no BTF type {type_id}")
        if bit_off // 8 < end:
            raise BTFError(f"member {n!r} overlaps the member before it")
        end = bit_off // 8 + btf.size_of(type_id)
    if end > 1 << 20:
        raise BTFError(f"members reach {end} bytes")
    return _layout(btf, name, end, flat, cache, 0)[0]


def _layout(btf: Btf, name: str, size: int, members: list[tuple[str, int, int, int]], cache: LayoutCache,
            type_id: int) -> tuple[Layout, int]:
    """The layout of `members` (name, bit offset, bit size, type id) in a
    record of `size` bytes, and how many values one record decodes into."""
    order = sorted(range(len(members)), key=lambda i: members[i][1])
    codes: list[str] = []
    index_of: dict[int, int] = {}
    pos = 0
    e = btf.endian
    for i in order:
        _member, bit_off, bit_size, mtype = members[i]
        msize = btf.size_of(mtype)
        if bit_size or bit_off % 8 or bit_off // 8 < pos:
            continue  # bitfield or overlap: decoded from raw bytes
        off = bit_off // 8
        if off > pos:
            codes.append(f"{off - pos}x")
        codes.append(_code(btf, mtype, msize))
        index_of[i] = len(index_of)
        pos = off + msize
    if size > pos:
        codes.append(f"{size - pos}x")
    fields = []
    for i, (member, bit_off, bit_size, mtype) in enumerate(members):
        fields.append(_field(btf, member, mtype, bit_off, bit_size, index_of.get(i), e, cache))
    values = sum(_values(btf, mtype, cache) for _name, _off, _bits, mtype in members)
    if values > MAX_VALUES:
        raise BTFError(f"BTF type {type_id} decodes into more than {MAX_VALUES} values")
    return Layout(name, size, tuple(fields), struct.Struct(e + "".join(codes))), values


def _values(btf: Btf, type_id: int, cache: LayoutCache) -> int:
    """How many values decoding one member of this type makes."""
    t = btf.resolve(type_id)
    if t.kind == Kind.ARRAY:
        return 1 if _is_char(btf, t.elem_id) else t.count * _values(btf, t.elem_id, cache)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        struct_layout(btf, t.id, cache)
        return 1 + cache.values[t.id]
    return 1


def _flatten(btf: Btf, t: BtfType, base_bits: int):  # type: ignore[no-untyped-def]
    """Members with anonymous struct/union members spliced in, as C sees them."""
    for m in t.members:
        mt = btf.resolve(m.type_id)
        if not m.name and mt.kind in (Kind.STRUCT, Kind.UNION):
            yield from _flatten(btf, mt, base_bits + m.bit_offset)
        elif not m.bit_size and mt.kind == Kind.INT and 0 < mt.bits < mt.size * 8:
            # A bitfield without kind_flag: the int type holds its size and offset.
            yield (m.name, base_bits + m.bit_offset + mt.bit_offset, mt.bits, m.type_id)
        else:
            yield (m.name, base_bits + m.bit_offset, m.bit_size, m.type_id)


def _code(btf: Btf, type_id: int, size: int) -> str:
    t = btf.resolve(type_id)
    if t.kind == Kind.INT:
        if t.encoding & INT_BOOL and size == 1:
            return "?"
        return _INT_CODES.get((size, bool(t.encoding & INT_SIGNED)), f"{size}s")
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return _INT_CODES.get((size, t.signed), f"{size}s")
    if t.kind == Kind.PTR:
        return "Q"
    if t.kind == Kind.FLOAT and size in (4, 8):
        return "f" if size == 4 else "d"
    return f"{size}s"



def _is_char(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    return t.kind == Kind.INT and t.size == 1 and t.name == "char"


def _field(btf: Btf, name: str, type_id: int, bit_off: int, bit_size: int,
           index: int | None, e: str, cache: LayoutCache) -> Field:
    size = btf.size_of(type_id)
    type_name = btf.c_name(btf.strip_qualifiers(type_id))
    off = bit_off // 8
    kind, signed, convert, names = _classify(btf, type_id, size, e, cache)
    if index is None:
        convert = _raw_converter(btf, type_id, off, size, bit_off, bit_size, convert, e)
    code = "" if index is None else _code(btf, type_id, size)
    return Field(name, type_name, kind, off, size, signed, index, convert, names, bit_off, bit_size, code)


def _classify(btf: Btf, type_id: int, size: int, e: str, cache: LayoutCache
              ) -> tuple[FieldKind, bool, Converter | None, dict[int, str] | None]:
    t = btf.resolve(type_id)
    if t.kind == Kind.INT:
        signed = bool(t.encoding & INT_SIGNED)
        if t.encoding & INT_BOOL:  # "?" for one byte, an int for 2, 4, 8; else raw bytes
            convert = None if size == 1 else bool if size in (2, 4, 8) else _nonzero
            return FieldKind.BOOL, False, convert, None
        if size in (1, 2, 4, 8):
            return FieldKind.INT, signed, None, None
        return FieldKind.INT, signed, _big_int(signed, e), None
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        names = {v: n for n, v in t.enumerators}
        conv = _big_int(t.signed, e) if size not in (1, 2, 4, 8) else None
        return FieldKind.ENUM, t.signed, _enum_converter(names, conv), names
    if t.kind == Kind.PTR:
        return FieldKind.INT, False, None, None
    if t.kind == Kind.FLOAT:
        return (FieldKind.FLOAT, True, None, None) if size in (4, 8) else (FieldKind.OPAQUE, False, bytes, None)
    if t.kind == Kind.ARRAY:
        if _is_char(btf, t.elem_id):
            return FieldKind.CHARS, False, cut_string, None
        return FieldKind.ARRAY, False, _array_converter(btf, t, e, cache), None
    if t.kind in (Kind.STRUCT, Kind.UNION):
        inner = struct_layout(btf, t.id, cache)
        return FieldKind.STRUCT, False, inner.decode, None
    return FieldKind.OPAQUE, False, bytes, None


def _nonzero(raw: bytes) -> bool:
    return raw != bytes(len(raw))


def _big_int(signed: bool, e: str) -> Converter:
    order = byte_order(e)
    return lambda raw: int.from_bytes(raw, order, signed=signed)


def _enum_converter(names: dict[int, str], pre: Converter | None) -> Converter:
    def convert(value: Any) -> Any:
        if pre is not None:
            value = pre(value)
        return names.get(value, value)
    return convert


def _array_converter(btf: Btf, t: BtfType, e: str, cache: LayoutCache) -> Converter:
    elem_size = btf.size_of(t.elem_id)
    count = t.count
    elem = btf.resolve(t.elem_id)
    if elem.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.PTR) and elem_size in (1, 2, 4, 8):
        many = struct.Struct(e + str(count) + _code(btf, t.elem_id, elem_size))
        _kind, _s, elem_conv, _n = _classify(btf, t.elem_id, elem_size, e, cache)
        if elem_conv is None:
            return lambda raw: list(many.unpack(raw))
        return lambda raw: [elem_conv(v) for v in many.unpack(raw)]
    _kind, _s, conv, _n = _classify(btf, t.elem_id, elem_size, e, cache)
    one = conv or bytes

    def convert(raw: bytes) -> list[Any]:
        return [one(raw[i * elem_size:(i + 1) * elem_size]) for i in range(count)]
    return convert


def _raw_converter(btf: Btf, type_id: int, off: int, size: int, bit_off: int, bit_size: int,
                   convert: Converter | None, e: str) -> Converter:
    """Decode a member straight from the record bytes (bitfield or overlap)."""
    t = btf.resolve(type_id)
    signed = (t.kind == Kind.INT and bool(t.encoding & INT_SIGNED)) or (t.kind in (Kind.ENUM, Kind.ENUM64) and t.signed)
    order = byte_order(e)
    if bit_size:
        # The kernel's rule for a bitfield: load the containing bytes, shift by
        # the bit offset counted from the least significant end (little endian).
        first = bit_off // 8
        nbytes = (bit_off % 8 + bit_size + 7) // 8
        shift = bit_off % 8 if e == "<" else nbytes * 8 - bit_off % 8 - bit_size
        mask = (1 << bit_size) - 1
        names = {v: n for n, v in t.enumerators} if t.kind in (Kind.ENUM, Kind.ENUM64) else None

        def bits(record: Any) -> Any:
            word = int.from_bytes(bytes(record[first:first + nbytes]), order)
            v = (word >> shift) & mask
            if signed and v >> (bit_size - 1):
                v -= 1 << bit_size
            if t.kind == Kind.INT and t.encoding & INT_BOOL:
                return bool(v)
            return names.get(v, v) if names else v
        return bits
    one = struct.Struct(e + _code(btf, type_id, size))

    def member(record: Any) -> Any:
        (v,) = one.unpack_from(record, off)
        return convert(v) if convert else v
    return member


def value_decoder(btf: Btf, type_id: int) -> Callable[[bytes], Any]:
    """Decode one value of any BTF type (a map key or value) from its bytes."""
    t = btf.resolve(type_id)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        return struct_layout(btf, type_id).decode
    size = btf.size_of(type_id)
    cache = LayoutCache()
    if _values(btf, type_id, cache) > MAX_VALUES:
        raise BTFError(f"BTF type {type_id} decodes into more than {MAX_VALUES} values")
    _kind, _signed, convert, _names = _classify(btf, type_id, size, btf.endian, cache)
    try:
        one = struct.Struct(btf.endian + _code(btf, type_id, size))
    except struct.error:  # larger than any map value the kernel allows
        raise BTFError(f"BTF type {type_id} is too large to decode") from None

    def decode(raw: bytes) -> Any:
        (v,) = one.unpack_from(raw)
        return convert(v) if convert else v
    return decode
