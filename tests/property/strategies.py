"""Hypothesis strategies: BTF blobs, event structs, ELF objects, package JSON,
and mutations of the real upstream objects. Built on tests/btfbuilder.py, which
writes the bytes independently of the parsers under test."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.btfbuilder import (
    ENC_BOOL,
    ENC_CHAR,
    ENC_SIGNED,
    LINKAGE_GLOBAL,
    LINKAGE_STATIC,
    STB_GLOBAL,
    STB_LOCAL,
    BtfBuilder,
    bpf_object,
    btf_info,
)

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_FILES = {
    "bootstrap": ROOT / "tests" / "fixtures" / "upstream" / "bootstrap.json",
    "runqlat": ROOT / "tests" / "fixtures" / "upstream" / "runqlat.json",
    "opensnoop": ROOT / "src" / "pyeunomia" / "tools" / "opensnoop" / "package.json",
}
UPSTREAM = tuple(UPSTREAM_FILES)


@cache
def upstream_text(name: str) -> str:
    return UPSTREAM_FILES[name].read_text()


def upstream_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(upstream_text(name))
    return doc


@cache
def upstream_object(name: str) -> bytes:
    return zlib.decompress(base64.b64decode(upstream_doc(name)["bpf_object"]))


def packed(obj: bytes) -> str:
    return base64.b64encode(zlib.compress(obj)).decode()


def package_text(obj: bytes, meta: Any, size: Any = "auto") -> str:
    doc: dict[str, Any] = {"bpf_object": packed(obj), "meta": meta}
    if size == "auto":
        doc["bpf_object_size"] = len(obj)
    elif size is not None:
        doc["bpf_object_size"] = size
    return json.dumps(doc)


# -- names and numbers at the edges ------------------------------------------------------------

NASTY_NAMES = ["", "event", "x", "_0", "_1", "a b", "a\nb", "\t", "%s", "%d%%", '"q"', "\\", "{", "{_0}",
               "é", "\u202e", "\x1b[2J", "x" * 300, "pid", "comm", "--help", "-h", "h", "=", "\x7f", "\u2028"]
names = st.one_of(st.sampled_from(NASTY_NAMES), st.text(max_size=6))
SIZES = [0, 1, 2, 3, 4, 5, 8, 16, 0x7FFFFFFF, 0xFFFFFFFF]
u32_edges = st.one_of(st.sampled_from([0, 1, 2, 7, 8, 24, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
                      st.integers(0, 0xFFFFFFFF))


def _encodable(name: str) -> str:
    return name.encode("utf-8", "replace").decode("utf-8")


# -- arbitrary BTF ------------------------------------------------------------------------------

@dataclass
class BuiltBtf:
    blob: bytes
    builder: BtfBuilder
    count: int  # types added (ids 1..count)


@st.composite
def btf_blobs(draw: st.DrawFn, max_types: int = 14, endian: str | None = None,
              corrupt_header: bool = True) -> BuiltBtf:
    """A BTF blob of random types: references forward, backward, to themselves
    and out of range; members past the struct's end; huge sizes and counts;
    sometimes raw garbage types and a corrupted header."""
    e = endian or draw(st.sampled_from("<>"))
    b = BtfBuilder(e)
    n = draw(st.integers(0, max_types))
    wild = draw(st.booleans())  # refs anywhere (loops, out of range) or only backwards (a DAG)

    def ref(i: int) -> int:
        if wild:
            return draw(st.integers(0, n + 2))
        return draw(st.integers(0, i - 1)) if i > 1 else 0

    def name() -> str:
        return _encodable(draw(names))

    for i in range(1, n + 1):
        kind = draw(st.sampled_from(["int", "int", "ptr", "array", "struct", "struct", "union", "enum", "enum64",
                                     "fwd", "typedef", "const", "volatile", "restrict", "func", "proto", "var",
                                     "datasec", "float", "decl_tag", "type_tag", "raw"]))
        if kind == "int":
            size = draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3]))
            enc = draw(st.sampled_from([0, ENC_SIGNED, ENC_CHAR, ENC_BOOL, ENC_SIGNED | ENC_CHAR, 7]))
            bits = draw(st.one_of(st.just(size * 8), st.integers(0, 255)))
            b.int(draw(st.sampled_from(["int", "char", "_Bool", "u8", ""])) if draw(st.booleans()) else name(),
                  size, enc, bits & 0xFF, draw(st.sampled_from([0, 0, 1, 7, 255])))
        elif kind == "ptr":
            b.ptr(ref(i))
        elif kind == "array":
            b.array(ref(i), draw(st.sampled_from([0, 1, 2, 3, 16, 0xFFFFFFFF])), ref(i))
        elif kind in ("struct", "union"):
            members: list[tuple[str, int, int] | tuple[str, int, int, int]] = []
            kflag = draw(st.booleans())
            for _ in range(draw(st.integers(0, 5))):
                off = draw(st.sampled_from([0, 8, 16, 32, 64, 3, 0xFFFFFF]))
                bits = draw(st.sampled_from([0, 0, 1, 3, 8, 33, 255])) if kflag else 0
                members.append((name(), ref(i), off, bits))
            b.struct(name(), draw(st.sampled_from(SIZES)), members, union=kind == "union", kflag=kflag)
        elif kind == "enum":
            values = [(name(), draw(st.integers(-(1 << 31), (1 << 31) - 1))) for _ in range(draw(st.integers(0, 4)))]
            signed = draw(st.booleans())
            if not signed:
                values = [(k, v & 0xFFFFFFFF) for k, v in values]
            b.enum(name(), values, draw(st.sampled_from([1, 2, 4, 8, 3, 0])), signed)
        elif kind == "enum64":
            values = [(name(), draw(st.integers(-(1 << 63), (1 << 64) - 1))) for _ in range(draw(st.integers(0, 3)))]
            b.enum64(name(), values, draw(st.sampled_from([8, 4, 1, 16])), draw(st.booleans()))
        elif kind == "fwd":
            b.fwd(name(), draw(st.booleans()))
        elif kind == "typedef":
            b.typedef(name(), ref(i))
        elif kind == "const":
            b.const(ref(i))
        elif kind == "volatile":
            b.volatile(ref(i))
        elif kind == "restrict":
            b.restrict(ref(i))
        elif kind == "func":
            b.func(name(), ref(i))
        elif kind == "proto":
            b.func_proto(ref(i), [(name(), ref(i)) for _ in range(draw(st.integers(0, 3)))])
        elif kind == "var":
            b.var(name(), ref(i), draw(st.sampled_from([LINKAGE_GLOBAL, LINKAGE_STATIC, 2, 7])))
        elif kind == "datasec":
            vars_ = [(ref(i), draw(st.sampled_from([0, 4, 8, 0xFFFFFFFF])), draw(st.sampled_from([0, 4, 8])))
                     for _ in range(draw(st.integers(0, 3)))]
            b.datasec(draw(st.sampled_from([".data", ".rodata", ".bss", ".maps", ".rodata.str", "x"])), vars_,
                      draw(st.sampled_from([0, 8, 64])))
        elif kind == "float":
            b.float(name(), draw(st.sampled_from([4, 8, 16, 2, 0])))
        elif kind == "decl_tag":
            b.decl_tag(name(), ref(i), draw(st.integers(-1, 3)))
        elif kind == "type_tag":
            b.type_tag(name(), ref(i))
        else:
            b.raw(draw(st.sampled_from([0, 1, 0xFFFFFFFF])), draw(u32_edges), draw(u32_edges),
                  draw(st.binary(max_size=24)))
    overrides: dict[str, int] = {}
    if corrupt_header and draw(st.integers(0, 5)) == 0:
        field = draw(st.sampled_from(["version", "hdr_len", "type_off", "type_len", "str_off", "str_len", "flags"]))
        overrides[field] = draw(u32_edges if field not in ("version", "flags") else st.integers(0, 255))
    gap = draw(st.sampled_from([0, 0, 0, 3]))
    try:
        blob = b.build(gap=gap, **overrides)
    except struct.error:  # an override that does not fit its header field
        blob = b.build(gap=gap)
    return BuiltBtf(blob, b, n)


# -- well-formed event structs, for decoders and writers ----------------------------------------

@dataclass
class EventStruct:
    btf: bytes
    type_id: int
    size: int


MEMBER_KINDS = ["u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64", "char[]", "char[]", "bool", "bool32",
                "enum1", "enum4", "enum8", "enum64", "enum3", "float", "double", "ldouble", "ptr", "u32[]",
                "s16[]", "struct", "bitfield", "int3", "bool3", "opaque"]


@st.composite
def event_structs(draw: st.DrawFn, endian: str | None = None, max_members: int = 8) -> EventStruct:
    """A struct like the ones programs export: ints, strings, bools, enums,
    floats, arrays, a nested struct, bitfields, overlapping members; names
    that collide, are empty, or hold quotes, escapes and format specifiers."""
    e = endian or draw(st.sampled_from("<<>"))
    b = BtfBuilder(e)
    ints = {}
    for nm, size, signed in [("u8", 1, False), ("s8", 1, True), ("u16", 2, False), ("s16", 2, True),
                             ("u32", 4, False), ("s32", 4, True), ("u64", 8, False), ("s64", 8, True)]:
        ints[nm] = (b.int(nm, size, ENC_SIGNED if signed else 0), size)
    char = b.int("char", 1, ENC_SIGNED)
    enum_names = st.lists(st.tuples(st.sampled_from(["A", "B", "", "a\nb", '"', "\\x", "%s", "é", "Z" * 40]),
                                    st.integers(-3, 300)), max_size=4)

    def member_type(kind: str, depth: int) -> tuple[int, int, int]:
        """(type id, size, alignment) of one member kind."""
        if kind in ints:
            tid, size = ints[kind]
            return tid, size, size
        if kind == "char[]":
            n = draw(st.sampled_from([1, 2, 8, 16]))
            return b.array(char, n), n, 1
        if kind in ("bool", "bool32", "bool3"):
            size = {"bool": 1, "bool32": 4, "bool3": 3}[kind]
            return b.int("_Bool", size, ENC_BOOL), size, 1 if size == 3 else size
        if kind.startswith("enum"):
            size = {"enum1": 1, "enum4": 4, "enum8": 8, "enum64": 8, "enum3": 3}[kind]
            values = draw(enum_names)
            signed = draw(st.booleans())
            if kind == "enum64":
                return b.enum64(draw(names), values, size, signed), size, size
            fixed = [(k, v if signed else v & 0xFFFFFFFF) for k, v in values]
            return b.enum(_encodable(draw(names)), fixed, size, signed), size, 1 if size == 3 else size
        if kind == "float":
            return b.float("float", 4), 4, 4
        if kind == "double":
            return b.float("double", 8), 8, 8
        if kind == "ldouble":
            return b.float("long double", 16), 16, 8
        if kind == "ptr":
            return b.ptr(char), 8, 8
        if kind == "u32[]":
            n = draw(st.sampled_from([1, 2, 4]))
            return b.array(ints["u32"][0], n), 4 * n, 4
        if kind == "s16[]":
            n = draw(st.sampled_from([1, 3]))
            return b.array(ints["s16"][0], n), 2 * n, 2
        if kind == "int3":
            return b.int("int24", 3, ENC_SIGNED), 3, 1
        if kind == "opaque":
            return b.array(b.ptr(0), 1), 8, 8
        if kind == "struct" and depth < 2:
            inner = build(depth + 1, draw(st.integers(1, 3)))
            return inner, sizes[inner], 8
        tid, size = ints["u32"]
        return tid, size, size

    sizes: dict[int, int] = {}

    def build(depth: int, count: int) -> int:
        members: list[tuple[str, int, int] | tuple[str, int, int, int]] = []
        pos = 0
        bitfields = False
        for _ in range(count):
            kind = draw(st.sampled_from(MEMBER_KINDS))
            nm = _encodable(draw(names))
            if kind == "bitfield":
                width = draw(st.integers(1, 31))
                members.append((nm, ints[draw(st.sampled_from(["u32", "s32"]))][0], pos * 8, width))
                pos += (width + 7) // 8
                bitfields = True
                continue
            tid, size, align = member_type(kind, depth)
            if draw(st.integers(0, 9)) == 0 and members:
                start = 0  # overlaps the first member, as in a union
            else:
                start = (pos + align - 1) // align * align
            members.append((nm, tid, start * 8))
            pos = max(pos, start + size)
        total = (pos + 7) // 8 * 8 if draw(st.booleans()) else pos
        sid = b.struct(_encodable(draw(names)) if depth else "event", total, members, kflag=bitfields)
        sizes[sid] = total
        return sid

    top = build(0, draw(st.integers(1, max_members)))
    return EventStruct(b.build(), top, sizes[top])


# -- ELF objects --------------------------------------------------------------------------------

@st.composite
def bpf_objects(draw: st.DrawFn) -> bytes:
    """A small BPF-like object with programs, maps, globals of assorted types
    in .rodata/.data/.bss, symbols that agree or disagree with the BTF."""
    e = draw(st.sampled_from("<<>"))
    b = BtfBuilder(e)
    u32 = b.int("unsigned int", 4)
    s64 = b.int("long long", 8, ENC_SIGNED)
    u8 = b.int("unsigned char", 1)
    char = b.int("char", 1, ENC_SIGNED)
    bool_ = b.int("_Bool", 1, ENC_BOOL)
    flt = b.float("float", 4)
    dbl = b.float("double", 8)
    en = b.enum("mode", [("OFF", 0), ("ON", 1), ("a\nb", 7)], 4, draw(st.booleans()))
    candidates = [u32, s64, u8, bool_, flt, dbl, en, b.array(char, 16), b.array(char, 1), b.array(u32, 2),
                  b.ptr(char), b.int("weird_bool", draw(st.sampled_from([0, 2, 3])), ENC_BOOL)]
    section_vars: dict[str, list[tuple[int, int, int]]] = {}
    symbols = []
    contents: dict[str, bytearray] = {".rodata": bytearray(), ".data": bytearray()}
    bss = 0
    for i in range(draw(st.integers(0, 5))):
        t = draw(st.sampled_from(candidates))
        vname = _encodable(draw(st.sampled_from(["v", "targ_pid", "min_ns", "help", "h", "", "x y", "a\nb",
                                                   f"g{i}", f"g{i}", "__eunomia_dummy_x"])))
        v = b.var(vname, draw(st.sampled_from([t, t, t, 0])), draw(st.sampled_from([LINKAGE_GLOBAL] * 3 + [0])))
        sec = draw(st.sampled_from([".rodata", ".data", ".bss"]))
        size = draw(st.sampled_from([1, 2, 4, 8, 16]))
        if sec == ".bss":
            off, bss = bss, bss + size
        else:
            off = len(contents[sec])
            contents[sec] += draw(st.binary(min_size=size, max_size=size))
        section_vars.setdefault(sec, []).append((v, 0, size))
        if draw(st.integers(0, 5)):
            symbols.append((vname, sec, draw(st.sampled_from([off, off, 0, 1 << 40])), size,
                            draw(st.sampled_from([STB_GLOBAL, STB_GLOBAL, STB_LOCAL]))))
    for sec, vars_ in section_vars.items():
        b.datasec(sec, vars_)
    maps_size = 0
    if draw(st.booleans()):
        ring = b.array(u32, 27)
        def_ = b.struct("", 16, [("type", b.ptr(ring), 0), ("max_entries", b.ptr(b.array(u32, 4096)), 64)])
        ev = b.struct("event", 8, [("pid", u32, 0), ("n", u32, 32)])
        b.ptr(ev)
        b.datasec(".maps", [(b.var("rb", def_), 0, 16)])
        maps_size = 16
    data = {k: bytes(v) for k, v in contents.items() if k in section_vars}
    symbols = [s for s in symbols if s[1] in data or (s[1] == ".bss" and ".bss" in section_vars)]
    return bpf_object(b.build(), endian=e, programs=draw(st.sampled_from([[], [("handle", "tp/sched/x")]])),
                      data=data, bss_size=bss if ".bss" in section_vars else None, symbols=symbols,
                      maps_size=maps_size)


# -- JSON ---------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(1 << 70), 1 << 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
                         st.sampled_from(["", "a\nb", "\x00", "\ud800", "-", "--", "h", "0x10", "1e999", "nan"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
EDGE_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2 ** 64, -(2 ** 63), 1.5, float("inf"), "", "x", "a\nb",
                          "%s", [], {}, [None], {"": None}, "\ud800", 10 ** 30]
replacements = st.one_of(st.sampled_from(EDGE_VALUES), json_values)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, as a path of keys and indexes."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def replaced(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    """A copy of `doc` with the value at `path` replaced (or deleted)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    if not rest and delete:
        del copy[head]
    else:
        copy[head] = replaced(doc[head], rest, value, delete)
    return copy


# -- inputs at and over the parsers' bounds -------------------------------------------------------

# Number texts no parser may turn into an internal error: over Python's 4300
# digits (a ValueError from int()), wider than 128 bits in other bases, YAML's
# base 60 (quadratic to build), a float that overflows, an impossible date.
HUGE_NUMBERS = ["9" * 5000, "-" + "9" * 4301, "1" + "0" * 39, "0x" + "f" * 3600, "0b" + "1" * 129,
                "1" + ":0" * 300, "1e99999", "-" + "9" * 101]
YAML_ONLY_VALUES = ["0x" + "f" * 3600, "0b" + "1" * 129, "1" + ":0" * 300, "2024-13-45", "!!int x"]


def count_values(doc: Any) -> int:
    """Values in a document tree, as the config parsers count them (keys not counted)."""
    if isinstance(doc, dict):
        return 1 + sum(count_values(v) for v in doc.values())
    if isinstance(doc, list):
        return 1 + sum(count_values(v) for v in doc)
    return 1


@st.composite
def alias_documents(draw: st.DrawFn) -> tuple[str, int, int]:
    """YAML whose anchors are aliased (and merged) into more values than it
    has lines: (the text, the values parsing it builds with every alias
    expanded, the values left in its tree: a merged mapping's own node goes)."""
    width = draw(st.integers(1, 6))
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    sizes = [1 + width]
    for i in range(1, draw(st.integers(1, 5))):
        uses = draw(st.integers(1, 4))
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * uses) + "]")
        sizes.append(1 + uses * sizes[-1])
    total = 1 + sum(sizes)
    merged = draw(st.booleans())
    if merged:  # a merge copies an anchored mapping's values in
        lines.append("m0: &m0 {p: *a0, q: 1}")
        lines.append("m1:\n  <<: *m0\n  r: 2")
        total += (2 + sizes[0]) + (1 + 1 + sizes[0] + 1 + 1)
    return "\n".join(lines) + "\n", total, total - merged


def padded_package(meta_pad: int, object_pad: int, escape_slashes: bool = False) -> tuple[str, int]:
    """The bootstrap package with `object_pad` incompressible bytes after its
    ELF object and `meta_pad` bytes of empty lists in its metadata:
    (the text, its length besides the bpf_object string)."""
    obj = upstream_object("bootstrap") + bytes(range(256)) * (object_pad // 256)
    blob = base64.b64encode(zlib.compress(obj, 1)).decode()
    if escape_slashes:
        blob = blob.replace("/", "\\/")  # JSON's escaped '/', as some encoders write it
    doc = upstream_doc("bootstrap")
    doc.update(bpf_object="@", bpf_object_size=len(obj))
    doc["meta"]["pad"] = [[]] * (meta_pad // 3)
    text = json.dumps(doc, separators=(",", ":"))
    return text.replace('"@"', f'"{blob}"'), len(text) - 1


# -- mutating real objects ----------------------------------------------------------------------

def section_headers(obj: bytes) -> tuple[str, int, int, int]:
    """(endian, shoff, shentsize, shnum) of a well-formed object."""
    e = "<" if obj[5] == 1 else ">"
    (shoff,) = struct.unpack_from(e + "Q", obj, 40)
    shentsize, shnum = struct.unpack_from(e + "HH", obj, 58)
    return e, shoff, shentsize, shnum


def btf_range(obj: bytes) -> tuple[int, int]:
    """(offset, size) of the .BTF section of a well-formed object."""
    from pyeunomia.format.elf import ElfFile

    elf = ElfFile(obj)
    s = elf.section(".BTF")
    assert s is not None
    return s.offset, s.size


# Offsets and formats of the section header fields a mutation may set.
SH_FIELDS = {"name": (0, "I"), "type": (4, "I"), "flags": (8, "Q"), "offset": (24, "Q"), "size": (32, "Q"),
             "link": (40, "I"), "info": (44, "I"), "entsize": (56, "Q")}
BTF_FIELDS = {"version": (2, "B"), "flags": (3, "B"), "hdr_len": (4, "I"), "type_off": (8, "I"),
              "type_len": (12, "I"), "str_off": (16, "I"), "str_len": (20, "I")}
EDGES = [0, 1, 2, 3, 7, 8, 23, 24, 63, 64, 255, 256, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, 1 << 62,
         (1 << 64) - 1]


@st.composite
def mutated_objects(draw: st.DrawFn, name: str | None = None) -> bytes:
    """An upstream object after one to three mutations: flipped bytes, a
    truncation, a section header field or BTF header field set to an edge
    value, a spliced range, garbage over part of the BTF types."""
    obj = bytearray(upstream_object(name or draw(st.sampled_from(UPSTREAM))))
    e, shoff, shentsize, shnum = section_headers(bytes(obj))
    btf_off, btf_size = btf_range(bytes(obj))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "truncate", "sh_field", "btf_field", "splice", "btf_garbage",
                                    "btf_flip", "ehdr"]))
        if not obj:
            break
        if how == "flip":
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, len(obj) - 1))
                obj[i] ^= draw(st.integers(1, 255))
        elif how == "truncate":
            del obj[draw(st.integers(0, len(obj) - 1)):]
        elif how == "sh_field":
            index = draw(st.integers(0, shnum - 1))
            off, fmt = SH_FIELDS[draw(st.sampled_from(sorted(SH_FIELDS)))]
            value = draw(st.sampled_from(EDGES)) & (0xFFFFFFFF if fmt == "I" else (1 << 64) - 1)
            at = shoff + index * shentsize + off
            if at + struct.calcsize(fmt) <= len(obj):
                struct.pack_into(e + fmt, obj, at, value)
        elif how in ("btf_field", "btf_garbage", "btf_flip"):
            if btf_off + 24 > len(obj):
                continue
            if how == "btf_field":
                off, fmt = BTF_FIELDS[draw(st.sampled_from(sorted(BTF_FIELDS)))]
                value = draw(st.sampled_from(EDGES)) & {"B": 0xFF, "I": 0xFFFFFFFF}[fmt]
                struct.pack_into(e + fmt, obj, btf_off + off, value)
            elif how == "btf_garbage":
                start = btf_off + 24 + draw(st.integers(0, max(0, btf_size - 64)))
                junk = draw(st.binary(min_size=1, max_size=48))
                obj[start:start + len(junk)] = junk
            else:  # flip bits in the type section, where the kinds and ids are
                for _ in range(draw(st.integers(1, 4))):
                    i = btf_off + 24 + draw(st.integers(0, max(0, btf_size - 25)))
                    if i < len(obj):
                        obj[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "splice":
            donor = upstream_object(draw(st.sampled_from(UPSTREAM)))
            src = draw(st.integers(0, len(donor) - 1))
            length = draw(st.integers(1, 512))
            dst = draw(st.integers(0, len(obj) - 1))
            obj[dst:dst + length] = donor[src:src + length]
        else:  # ELF header: class, byte order, machine, shoff, shentsize, shnum, shstrndx
            off, fmt = draw(st.sampled_from([(4, "B"), (5, "B"), (18, "H"), (40, "Q"), (58, "H"), (60, "H"),
                                             (62, "H")]))
            value = draw(st.sampled_from(EDGES)) & {"B": 0xFF, "H": 0xFFFF, "Q": (1 << 64) - 1}[fmt]
            if len(obj) >= 64:
                struct.pack_into(e + fmt, obj, off, value)
    return bytes(obj)


# -- BTF with many types, for resource bounds ---------------------------------------------------

def many_types_btf(n: int, name_len: int = 0) -> bytes:
    """n FLOAT types; with name_len, all named by offsets into one long
    unterminated run (a parser that scans each name to its NUL is quadratic)."""
    b = BtfBuilder()
    if name_len:
        b.strings += b"A" * name_len + b"\0"
    for i in range(n):
        b.raw(1 + i % max(1, name_len) if name_len else 0, btf_info(16), 4)
    return b.build()

