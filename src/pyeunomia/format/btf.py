"""BPF Type Format: parse the .BTF section of an object into types.

Pure: it reads bytes and never touches the kernel, so it is testable without
root. Layout questions (sizes, member offsets, C spellings of types) are
answered here; turning a layout into a record decoder lives in `layout.py`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Literal, NamedTuple

from ..errors import PackageError
from .elf import NameTable
from .record import Record

BTF_MAGIC = 0xEB9F


def byte_order(endian: str) -> Literal["little", "big"]:
    """int.from_bytes' name for a struct-module byte order prefix."""
    return "little" if endian == "<" else "big"


class BTFError(PackageError):
    """The BTF blob is malformed or lacks a type we need."""


HEADER_SIZE = 24


def header_problem(head: bytes, size: int) -> str | None:
    """What is wrong with a BTF blob of `size` bytes that starts with `head`
    (its first HEADER_SIZE bytes or more), or None when its header is sound:
    the magic, version 1, and the type and string sections inside the blob.
    Cheap enough for a kernel's 5 MB of BTF (libbpf parses the rest): the
    loader asks it of /sys/kernel/btf/vmlinux on every run."""
    if size == 0:
        return "it is empty"
    if size < HEADER_SIZE or len(head) < HEADER_SIZE:
        return f"it is {size} bytes, shorter than a BTF header"
    if struct.unpack_from("<H", head, 0)[0] == BTF_MAGIC:
        e = "<"
    elif struct.unpack_from(">H", head, 0)[0] == BTF_MAGIC:
        e = ">"
    else:
        return "it is not BTF (no BTF magic)"
    _m, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(e + "HBBIIIII", head, 0)
    if version != 1:
        return f"it is BTF version {version}, not 1"
    if hdr_len < HEADER_SIZE or hdr_len + type_off + type_len > size or hdr_len + str_off + str_len > size:
        return "its BTF header points outside the file (truncated?)"
    return None


class Kind(IntEnum):
    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# How deep types may nest (the kernel allows 32 resolve steps).
MAX_NESTING = 64
# A program's BTF holds the types it uses: 562 for opensnoop, a few thousand for
# the largest programs seen. Parsing costs ~12 us and ~600 bytes a type, so a
# 152 KiB package inflating to 5 million types once took 68 s and 3.2 GB; capped
# here, the worst is ~1.2 s and ~60 MB. The kernel's own BTF (126,700 types on
# 6.18) is parsed with no cap.
MAX_OBJECT_TYPES = 100_000

# Kinds that only qualify or rename another type.
_TRANSPARENT = {Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
_QUALIFIERS = {Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}


class Member(NamedTuple):
    name: str
    type_id: int
    bit_offset: int
    bit_size: int = 0  # non-zero for a bitfield


class SectionVar(Record):
    __slots__ = ("offset", "size", "type_id")

    def __init__(self, type_id: int, offset: int, size: int):
        self.type_id, self.offset, self.size = type_id, offset, size


class BtfType(Record):
    """One type. Which attributes mean something depends on the kind."""

    __slots__ = (
        "bit_offset",
        "bits",
        "count",
        "elem_id",
        "encoding",
        "enumerators",
        "fwd_union",
        "id",
        "kind",
        "linkage",
        "members",
        "name",
        "params",
        "signed",
        "size",
        "type_id",
        "vars",
    )

    def __init__(self, id: int, kind: Kind, name: str, size: int = 0, type_id: int = 0, *,
                 encoding: int = 0, bits: int = 0, bit_offset: int = 0, elem_id: int = 0, count: int = 0,
                 members: list[Member] | None = None, enumerators: list[tuple[str, int]] | None = None,
                 signed: bool = False, vars: list[SectionVar] | None = None,
                 params: list[tuple[str, int]] | None = None, fwd_union: bool = False, linkage: int = 0):
        self.id, self.kind, self.name = id, kind, name
        self.size = size  # INT, STRUCT, UNION, ENUM, DATASEC, FLOAT
        self.type_id = type_id  # PTR, TYPEDEF, qualifiers, FUNC, VAR, DECL_TAG
        self.encoding, self.bits, self.bit_offset = encoding, bits, bit_offset  # INT
        self.elem_id, self.count = elem_id, count  # ARRAY
        self.members: list[Member] = members if members is not None else []  # STRUCT, UNION
        self.enumerators: list[tuple[str, int]] = enumerators if enumerators is not None else []  # ENUM, ENUM64
        self.signed = signed
        self.vars: list[SectionVar] = vars if vars is not None else []  # DATASEC
        self.params: list[tuple[str, int]] = params if params is not None else []  # FUNC_PROTO
        self.fwd_union = fwd_union
        self.linkage = linkage  # VAR: 0 static, 1 global, 2 extern


_VOID = BtfType(0, Kind.VOID, "void")


class Btf:
    """The types of one BTF blob, indexed by type id."""

    def __init__(self, types: list[BtfType], endian: str = "<"):
        self.types = types
        self.endian = endian

    # -- parsing -----------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes, max_types: int | None = MAX_OBJECT_TYPES) -> Btf:
        """`max_types`: refuse BTF with more types (MAX_OBJECT_TYPES for a
        program's own BTF, the default; None for a kernel's)."""
        if len(data) < 24:
            raise BTFError("BTF is truncated")
        magic_le = struct.unpack_from("<H", data, 0)[0]
        if magic_le == BTF_MAGIC:
            e = "<"
        elif struct.unpack_from(">H", data, 0)[0] == BTF_MAGIC:
            e = ">"
        else:
            raise BTFError("not BTF (bad magic)")
        _m, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            e + "HBBIIIII", data, 0
        )
        if version != 1:
            raise BTFError(f"unsupported BTF version {version}")
        if hdr_len < 24 or hdr_len > len(data):
            raise BTFError("BTF header length is out of range")
        tstart, sstart = hdr_len + type_off, hdr_len + str_off
        if tstart + type_len > len(data) or sstart + str_len > len(data):
            raise BTFError("BTF type or string section lies outside the blob")
        strings = data[sstart : sstart + str_len]
        types = _parse_types(data[tstart : tstart + type_len], strings, e, max_types)
        btf = cls(types, e)
        btf._check_references()
        btf._check_loops()
        return btf

    def _check_references(self) -> None:
        n = len(self.types)

        def ok(i: int) -> bool:
            return 0 <= i < n

        for t in self.types[1:]:
            refs = [t.type_id, t.elem_id]
            refs += [m.type_id for m in t.members] + [v.type_id for v in t.vars]
            refs += [p[1] for p in t.params]
            if not all(ok(r) for r in refs):
                raise BTFError(f"BTF type {t.id} refers to a type id out of range")

    def _check_loops(self) -> None:
        """Refuse what the kernel refuses: a chain of typedefs, qualifiers,
        pointers and arrays that comes back to itself, a struct that holds
        itself by value, or nesting deeper than MAX_NESTING. Afterwards every
        walk over the types (resolve, size_of, c_name, layouts) ends, and
        ends within bounded recursion."""
        for by_value in (False, True):  # the chains c_name follows, then the ones layouts follow
            refs = [self._refs(i, by_value) for i in range(len(self.types))]
            depth = [0] * len(self.types)  # 0 unvisited, -1 being visited, else nesting depth
            for root, root_refs in enumerate(refs):
                if depth[root]:
                    continue
                if not root_refs:  # most types: nothing to walk
                    depth[root] = 1
                    continue
                depth[root] = -1
                stack = [(root, iter(root_refs))]
                while stack:
                    node, children = stack[-1]
                    child = next(children, None)
                    if child is None:
                        stack.pop()
                        depth[node] = 1 + max(depth[c] for c in refs[node]) if refs[node] else 1
                        if depth[node] > MAX_NESTING:
                            raise BTFError(f"BTF type {node} nests too deeply")
                    elif depth[child] == -1:
                        raise BTFError(f"BTF type {child} has a reference loop")
                    elif depth[child] == 0:
                        depth[child] = -1
                        stack.append((child, iter(refs[child])))

    def _refs(self, type_id: int, by_value: bool) -> list[int]:
        t = self.types[type_id]
        if t.kind == Kind.ARRAY:
            return [t.elem_id]
        if t.kind in _TRANSPARENT or (t.kind == Kind.PTR and not by_value):
            return [t.type_id]
        if by_value and t.kind in (Kind.STRUCT, Kind.UNION):
            return [m.type_id for m in t.members]
        return []

    # -- lookup ------------------------------------------------------------

    def __getitem__(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BTFError(f"BTF type id {type_id} is out of range")
        return self.types[type_id]

    def __len__(self) -> int:
        return len(self.types)

    def find(self, name: str, kind: Kind) -> BtfType | None:
        for t in self.types:
            if t.kind == kind and t.name == name:
                return t
        return None

    def datasec(self, name: str) -> BtfType | None:
        return self.find(name, Kind.DATASEC)

    def resolve(self, type_id: int) -> BtfType:
        """Follow typedefs and qualifiers to the underlying type."""
        seen = 0
        t = self[type_id]
        while t.kind in _TRANSPARENT:
            t = self[t.type_id]
            seen += 1
            if seen > 64:
                raise BTFError(f"BTF type {type_id} has a reference loop")
        return t

    def strip_qualifiers(self, type_id: int) -> int:
        """The id under const/volatile/restrict, keeping typedef names."""
        t = self[type_id]
        seen = 0
        while t.kind in _QUALIFIERS:
            type_id = t.type_id
            t = self[type_id]
            seen += 1
            if seen > 64:
                raise BTFError(f"BTF type {type_id} has a reference loop")
        return type_id

    def size_of(self, type_id: int, _depth: int = 0) -> int:
        if _depth > 64:
            raise BTFError(f"BTF type {type_id} nests too deeply")
        t = self.resolve(type_id)
        if t.kind in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.DATASEC):
            return t.size
        if t.kind == Kind.PTR:
            return 8
        if t.kind == Kind.ARRAY:
            return t.count * self.size_of(t.elem_id, _depth + 1)
        raise BTFError(f"BTF type {type_id} ({t.kind.name}) has no size")

    # -- C spelling --------------------------------------------------------

    def c_name(self, type_id: int, _depth: int = 0) -> str:
        """The type as C spells it: 'unsigned int', 'char[16]', 'struct event *'."""
        if _depth > 32:
            return "..."
        t = self[type_id]
        k = t.kind
        if k == Kind.VOID:
            return "void"
        if k in (Kind.INT, Kind.FLOAT, Kind.TYPEDEF):
            return t.name
        if k in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            tag = {Kind.STRUCT: "struct", Kind.UNION: "union"}.get(k, "enum")
            return f"{tag} {t.name}" if t.name else f"{tag} (anon)"
        if k == Kind.FWD:
            return f"{'union' if t.fwd_union else 'struct'} {t.name}"
        if k == Kind.PTR:
            inner = self.c_name(t.type_id, _depth + 1)
            target = self[t.type_id].kind
            if target == Kind.FUNC_PROTO:  # already spelled as a function pointer
                return inner
            if target == Kind.ARRAY:  # a pointer to an array: char (*)[16]
                base, _, rest = inner.partition("[")
                return base + ("(*)[" if base.endswith("*") else " (*)[") + rest
            return inner + ("*" if inner.endswith("*") else " *")
        if k == Kind.ARRAY:
            dims = []
            while t.kind == Kind.ARRAY:
                dims.append(f"[{t.count}]")
                t = self[t.elem_id]
            return self.c_name(t.id, _depth + 1) + "".join(dims)
        if k in _QUALIFIERS:
            word = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}.get(k)
            inner = self.c_name(t.type_id, _depth + 1)
            if word and self[t.type_id].kind == Kind.PTR:  # a const pointer: char *const
                return inner + word
            return f"{word} {inner}" if word else inner
        if k == Kind.FUNC_PROTO:
            return "void (*)(...)"
        return t.name or k.name.lower()

    def plain_c_name(self, type_id: int) -> str:
        """The C type without const/volatile, also on array elements:
        `const volatile char x[16]` is "char[16]", the spelling upstream's
        ecli parses command-line values by."""
        dims = []
        t = self[self.strip_qualifiers(type_id)]
        while t.kind == Kind.ARRAY:
            dims.append(f"[{t.count}]")
            t = self[self.strip_qualifiers(t.elem_id)]
        return self.c_name(t.id) + "".join(dims)

    # -- data sections -----------------------------------------------------

    def place_section_vars(self, section_sizes: dict[str, int], symbols: dict[tuple[str, str], int]) -> None:
        """Fill DATASEC sizes and variable offsets, which clang leaves at zero.

        `symbols` maps (section name, variable name) to the symbol's value,
        the variable's offset in that section, as the ELF symbol table says.
        """
        for t in self.types:
            if t.kind != Kind.DATASEC:
                continue
            if t.name in section_sizes:
                t.size = section_sizes[t.name]
            for v in t.vars:
                var = self[v.type_id]
                off = symbols.get((t.name, var.name))
                if off is not None:
                    v.offset = off
                try:
                    v.size = self.size_of(var.type_id)
                except BTFError:
                    pass


# Bytes that follow a type's 12-byte header: per kind, or per item for kinds with items.
_EXTRA_BYTES = {Kind.INT: 4, Kind.ARRAY: 12, Kind.STRUCT: 12, Kind.UNION: 12, Kind.ENUM: 8, Kind.ENUM64: 12,
                Kind.FUNC_PROTO: 8, Kind.VAR: 4, Kind.DATASEC: 12, Kind.DECL_TAG: 4}
_PER_ITEM = {Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FUNC_PROTO, Kind.DATASEC}


def _parse_types(blob: bytes, strings: bytes, e: str, max_types: int | None) -> list[BtfType]:
    names = NameTable(strings, BTFError, "BTF")
    seen = names.names  # most lookups hit: skip a call

    def name_at(off: int) -> str:
        name = seen.get(off)
        if name is None:
            if off >= len(strings) and off != 0:
                raise BTFError("BTF string offset is out of range")
            name = names(off)
        return name

    kinds = {k.value: k for k in Kind}  # a dict lookup: Kind(n) costs a microsecond per type
    types: list[BtfType] = [_VOID]
    pos, end = 0, len(blob)
    u32x3 = struct.Struct(e + "III")
    while pos < end:
        if pos + 12 > end:
            raise BTFError("BTF type section is truncated")
        if max_types is not None and len(types) > max_types:
            raise BTFError(f"more than {max_types} BTF types: no BPF program carries that many (a kernel has ~130k)")
        name_off, info, size_or_type = u32x3.unpack_from(blob, pos)
        pos += 12
        vlen, kind_no, kflag = info & 0xFFFF, (info >> 24) & 0x1F, bool(info >> 31)
        kind = kinds.get(kind_no)
        if kind is None:
            raise BTFError(f"unknown BTF kind {kind_no}")
        t = BtfType(len(types), kind, name_at(name_off))
        need = _EXTRA_BYTES.get(kind, 0) * (vlen if kind in _PER_ITEM else 1)
        if pos + need > end:
            raise BTFError(f"BTF type {t.id} is truncated")
        if kind == Kind.INT:
            (word,) = struct.unpack_from(e + "I", blob, pos)
            pos += 4
            t.size, t.encoding = size_or_type, (word >> 24) & 0xF
            t.bit_offset, t.bits = (word >> 16) & 0xFF, word & 0xFF
        elif kind == Kind.ARRAY:
            t.elem_id, _index, t.count = u32x3.unpack_from(blob, pos)
            pos += 12
        elif kind in (Kind.STRUCT, Kind.UNION):
            t.size = size_or_type
            if kflag:
                t.members = [Member(name_at(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24)
                             for m_name, m_type, m_off in u32x3.iter_unpack(blob[pos : pos + 12 * vlen])]
            else:
                t.members = [Member(name_at(m_name), m_type, m_off, 0)
                             for m_name, m_type, m_off in u32x3.iter_unpack(blob[pos : pos + 12 * vlen])]
            pos += 12 * vlen
        elif kind == Kind.ENUM:
            t.size, t.signed = size_or_type, kflag
            for i in range(vlen):
                v_name, v_val = struct.unpack_from(e + "Ii" if kflag else e + "II", blob, pos + 8 * i)
                t.enumerators.append((name_at(v_name), v_val))
            pos += 8 * vlen
        elif kind == Kind.ENUM64:
            t.size, t.signed = size_or_type, kflag
            for i in range(vlen):
                v_name, lo, hi = u32x3.unpack_from(blob, pos + 12 * i)
                val = (hi << 32) | lo
                if kflag and val >= 1 << 63:
                    val -= 1 << 64
                t.enumerators.append((name_at(v_name), val))
            pos += 12 * vlen
        elif kind == Kind.FUNC_PROTO:
            t.type_id = size_or_type
            for i in range(vlen):
                p_name, p_type = struct.unpack_from(e + "II", blob, pos + 8 * i)
                t.params.append((name_at(p_name), p_type))
            pos += 8 * vlen
        elif kind == Kind.VAR:
            t.type_id = size_or_type
            (t.linkage,) = struct.unpack_from(e + "I", blob, pos)
            pos += 4
        elif kind == Kind.DATASEC:
            t.size = size_or_type
            for i in range(vlen):
                v_type, v_off, v_size = u32x3.unpack_from(blob, pos + 12 * i)
                t.vars.append(SectionVar(v_type, v_off, v_size))
            pos += 12 * vlen
        elif kind == Kind.DECL_TAG:
            t.type_id = size_or_type
            pos += 4
        elif kind == Kind.FLOAT:
            t.size = size_or_type
        elif kind == Kind.FWD:
            t.fwd_union = kflag
        else:  # PTR, TYPEDEF, qualifiers, FUNC, TYPE_TAG
            t.type_id = size_or_type
        types.append(t)
    return types
