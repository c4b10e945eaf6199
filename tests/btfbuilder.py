"""Build raw BTF blobs and small ELF64 objects for tests, byte by byte.

The encodings follow the kernel's Documentation/bpf/btf.rst: a 24-byte header
(magic 0xeb9f, version 1, flags, hdr_len, type_off, type_len, str_off,
str_len), then the type section (each type a 12-byte `struct btf_type`
followed by its kind-specific data) and the string section (NUL-separated,
offset 0 is the empty string). Type ids count from 1 in the order types are
added; id 0 is void.

Nothing here imports pyeunomia: the bytes are written independently of the
parser they test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BTF_MAGIC = 0xEB9F

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

ENC_SIGNED = 1
ENC_CHAR = 2
ENC_BOOL = 4

LINKAGE_STATIC = 0
LINKAGE_GLOBAL = 1
LINKAGE_EXTERN = 2


def btf_info(kind: int, vlen: int = 0, kflag: bool = False) -> int:
    """The `info` word: vlen in bits 0-15, kind in bits 24-28, kind_flag in bit 31."""
    return (vlen & 0xFFFF) | ((kind & 0x1F) << 24) | (int(kflag) << 31)


class BtfBuilder:
    """Collects types and strings; `build()` returns the BTF blob."""

    def __init__(self, endian: str = "<"):
        self.e = endian
        self.strings = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}
        self.types: list[bytes] = []

    # -- strings and raw types ----------------------------------------------

    def str_off(self, s: str) -> int:
        if s not in self._offsets:
            self._offsets[s] = len(self.strings)
            self.strings += s.encode("utf-8") + b"\0"
        return self._offsets[s]

    @property
    def next_id(self) -> int:
        """The id the next added type will get."""
        return len(self.types) + 1

    def raw(self, name_off: int, info: int, size_or_type: int, extra: bytes = b"") -> int:
        """Append a type from its raw words (for malformed input)."""
        self.types.append(struct.pack(self.e + "III", name_off, info, size_or_type) + extra)
        return len(self.types)

    def add(self, name: str, kind: int, vlen: int, kflag: bool, size_or_type: int, extra: bytes = b"") -> int:
        return self.raw(self.str_off(name), btf_info(kind, vlen, kflag), size_or_type, extra)

    # -- one method per kind -------------------------------------------------

    def int(self, name: str, size: int, encoding: int = 0, bits: int | None = None, offset: int = 0) -> int:
        bits = size * 8 if bits is None else bits
        word = (encoding << 24) | (offset << 16) | bits
        return self.add(name, KIND_INT, 0, False, size, struct.pack(self.e + "I", word))

    def ptr(self, target: int) -> int:
        return self.add("", KIND_PTR, 0, False, target)

    def array(self, elem: int, count: int, index_type: int = 0) -> int:
        return self.add("", KIND_ARRAY, 0, False, 0, struct.pack(self.e + "III", elem, index_type, count))

    def struct(self, name: str, size: int, members: list[tuple[str, int, int] | tuple[str, int, int, int]],
               union: bool = False, kflag: bool | None = None) -> int:
        """members: (name, type id, bit offset[, bitfield size]). kind_flag is
        set when any member has a bitfield size, unless given."""
        if kflag is None:
            kflag = any(len(m) == 4 and m[3] for m in members)
        extra = b""
        for m in members:
            name_, type_id, bit_off = m[0], m[1], m[2]
            bit_size = m[3] if len(m) == 4 else 0
            off = (bit_size << 24) | bit_off if kflag else bit_off
            extra += struct.pack(self.e + "III", self.str_off(name_), type_id, off)
        kind = KIND_UNION if union else KIND_STRUCT
        return self.add(name, kind, len(members), kflag, size, extra)

    def union(self, name: str, size: int, members: list[tuple[str, int, int] | tuple[str, int, int, int]]) -> int:
        return self.struct(name, size, members, union=True)

    def enum(self, name: str, values: list[tuple[str, int]], size: int = 4, signed: bool = False) -> int:
        fmt = self.e + ("Ii" if signed else "II")
        extra = b"".join(struct.pack(fmt, self.str_off(n), v) for n, v in values)
        return self.add(name, KIND_ENUM, len(values), signed, size, extra)

    def enum64(self, name: str, values: list[tuple[str, int]], size: int = 8, signed: bool = False) -> int:
        extra = b""
        for n, v in values:
            u = v & 0xFFFFFFFFFFFFFFFF
            extra += struct.pack(self.e + "III", self.str_off(n), u & 0xFFFFFFFF, u >> 32)
        return self.add(name, KIND_ENUM64, len(values), signed, size, extra)

    def fwd(self, name: str, union: bool = False) -> int:
        return self.add(name, KIND_FWD, 0, union, 0)

    def typedef(self, name: str, target: int) -> int:
        return self.add(name, KIND_TYPEDEF, 0, False, target)

    def volatile(self, target: int) -> int:
        return self.add("", KIND_VOLATILE, 0, False, target)

    def const(self, target: int) -> int:
        return self.add("", KIND_CONST, 0, False, target)

    def restrict(self, target: int) -> int:
        return self.add("", KIND_RESTRICT, 0, False, target)

    def func(self, name: str, proto: int, linkage: int = LINKAGE_GLOBAL) -> int:
        return self.add(name, KIND_FUNC, linkage, False, proto)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        extra = b"".join(struct.pack(self.e + "II", self.str_off(n), t) for n, t in params)
        return self.add("", KIND_FUNC_PROTO, len(params), False, ret, extra)

    def var(self, name: str, target: int, linkage: int = LINKAGE_GLOBAL) -> int:
        return self.add(name, KIND_VAR, 0, False, target, struct.pack(self.e + "I", linkage))

    def datasec(self, name: str, vars_: list[tuple[int, int, int]], size: int = 0) -> int:
        """vars_: (VAR type id, offset, size)."""
        extra = b"".join(struct.pack(self.e + "III", *v) for v in vars_)
        return self.add(name, KIND_DATASEC, len(vars_), False, size, extra)

    def float(self, name: str, size: int) -> int:
        return self.add(name, KIND_FLOAT, 0, False, size)

    def decl_tag(self, name: str, target: int, component_idx: int = -1) -> int:
        return self.add(name, KIND_DECL_TAG, 0, False, target, struct.pack(self.e + "i", component_idx))

    def type_tag(self, name: str, target: int) -> int:
        return self.add(name, KIND_TYPE_TAG, 0, False, target)

    # -- the blob ------------------------------------------------------------

    def type_bytes(self) -> bytes:
        return b"".join(self.types)

    def build(self, *, version: int = 1, flags: int = 0, hdr_len: int = 24, gap: int = 0,
              type_off: int | None = None, type_len: int | None = None,
              str_off: int | None = None, str_len: int | None = None) -> bytes:
        """Header, types, `gap` zero bytes, strings. Any header field can be
        overridden to make a malformed blob."""
        types = self.type_bytes()
        strings = bytes(self.strings)
        t_off = 0 if type_off is None else type_off
        t_len = len(types) if type_len is None else type_len
        s_off = len(types) + gap if str_off is None else str_off
        s_len = len(strings) if str_len is None else str_len
        header = struct.pack(self.e + "HBBIIIII", BTF_MAGIC, version, flags, hdr_len, t_off, t_len, s_off, s_len)
        header = header.ljust(hdr_len, b"\0") if hdr_len >= 24 else header
        return header + types + bytes(gap) + strings


# ---------------------------------------------------------------------------
# ELF64 relocatable objects

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
EM_BPF = 247


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    data: bytes
    size: int
    link: int
    info: int
    entsize: int


class ElfBuilder:
    """Sections and symbols of a little ELF64 ET_REL object.

    Section 0 is the null section; added sections follow in order; then
    .symtab and .strtab (when there are symbols) and .shstrtab last.
    """

    def __init__(self, endian: str = "<", machine: int = EM_BPF):
        self.e = endian
        self.machine = machine
        self.sections: list[_Section] = []
        self.symbols: list[tuple[str, int, int, int, int, int]] = []

    def section(self, name: str, data: bytes = b"", *, type: int = SHT_PROGBITS, flags: int = 0,
                size: int | None = None, link: int = 0, info: int = 0, entsize: int = 0) -> int:
        """Add a section; returns its index. `size` overrides len(data) (for NOBITS)."""
        self.sections.append(_Section(name, type, flags, data, len(data) if size is None else size,
                                      link, info, entsize))
        return len(self.sections)

    def symbol(self, name: str, section: int, value: int = 0, size: int = 0,
               bind: int = STB_GLOBAL, type: int = STT_OBJECT) -> None:
        self.symbols.append((name, section, value, size, bind, type))

    def build(self) -> bytes:
        e = self.e
        sections = list(self.sections)
        if self.symbols:
            strtab = bytearray(b"\0")
            entries = [bytes(24)]
            for name, shndx, value, size, bind, typ in self.symbols:
                off = len(strtab)
                strtab += name.encode() + b"\0"
                entries.append(struct.pack(e + "IBBHQQ", off, (bind << 4) | typ, 0, shndx, value, size))
            symtab_index = len(sections) + 1
            locals_ = 1 + sum(1 for s in self.symbols if s[4] == STB_LOCAL)
            sections.append(_Section(".symtab", SHT_SYMTAB, 0, b"".join(entries), 24 * len(entries),
                                     symtab_index + 1, locals_, 24))
            sections.append(_Section(".strtab", SHT_STRTAB, 0, bytes(strtab), len(strtab), 0, 0, 0))
        shstrtab = bytearray(b"\0")
        name_offs = []
        for s in sections:
            name_offs.append(len(shstrtab))
            shstrtab += s.name.encode() + b"\0"
        name_offs.append(len(shstrtab))
        shstrtab += b".shstrtab\0"
        sections.append(_Section(".shstrtab", SHT_STRTAB, 0, bytes(shstrtab), len(shstrtab), 0, 0, 0))

        body = bytearray(bytes(64))
        offsets = []
        for s in sections:
            while len(body) % 8:
                body.append(0)
            offsets.append(len(body))
            if s.type != SHT_NOBITS:
                body += s.data
        while len(body) % 8:
            body.append(0)
        shoff = len(body)
        shnum = len(sections) + 1
        body += bytes(64)  # the null section header
        for s, off, name_off in zip(sections, offsets, name_offs, strict=True):
            body += struct.pack(e + "IIQQQQIIQQ", name_off, s.type, s.flags, 0, off, s.size,
                                s.link, s.info, 8, s.entsize)
        ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1, 0]) + bytes(8)
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, self.machine, 1, 0, 0, shoff, 0,
                                     64, 0, 0, 64, shnum, shnum - 1)
        body[:64] = header
        return bytes(body)


def bpf_object(btf: bytes, *, endian: str = "<", programs: list[tuple[str, str]] | None = None,
               data: dict[str, bytes] | None = None, bss_size: int | None = None,
               symbols: list[tuple[str, str, int, int, int]] | None = None,
               maps_size: int = 0) -> bytes:
    """A BPF-like object: one exec section per program (name, SEC name) with a
    global FUNC symbol, data sections with contents, an optional .bss, a .maps
    section, .BTF, and OBJECT symbols (name, section, value, size, bind)."""
    b = ElfBuilder(endian)
    b.section(".text", b"", flags=SHF_ALLOC | SHF_EXECINSTR)
    index: dict[str, int] = {}
    for name, sec in programs or []:
        if sec not in index:
            index[sec] = b.section(sec, bytes(16), flags=SHF_ALLOC | SHF_EXECINSTR)
        b.symbol(name, index[sec], 0, 16, STB_GLOBAL, STT_FUNC)
    for name, content in (data or {}).items():
        index[name] = b.section(name, content, flags=SHF_ALLOC | (0 if name.startswith(".rodata") else SHF_WRITE))
    if bss_size is not None:
        index[".bss"] = b.section(".bss", type=SHT_NOBITS, flags=SHF_ALLOC | SHF_WRITE, size=bss_size)
    if maps_size:
        index[".maps"] = b.section(".maps", bytes(maps_size), flags=SHF_ALLOC | SHF_WRITE)
    b.section(".BTF", btf)
    for name, sec, value, size, bind in symbols or []:
        b.symbol(name, index[sec], value, size, bind, STT_OBJECT)
    return b.build()
