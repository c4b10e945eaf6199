"""Encode BTF types back into bytes, and append types to an existing blob.

The inverse of `btf.py`'s parser, kept pure (bytes in, bytes out) so it is
tested by round-tripping through `Btf.parse`. Appending never moves what is
already there: new types go after the old ones and new strings after the old
strings, so existing type ids, the `.rel.BTF` relocations (offsets into the
type section) and `.BTF.ext` string offsets all stay valid.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..format.btf import BTF_MAGIC, BTFError, BtfType, Kind

HEADER_LEN = 24  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
ARRAY_SIZE_TYPE = "__ARRAY_SIZE_TYPE__"  # what clang names an array's index type


class StringTable:
    """A BTF string section: offset 0 is the empty string; adding a string
    that is already present gives its existing offset."""

    def __init__(self, existing: bytes = b"\0"):
        if not existing or existing[0] != 0:
            raise BTFError("BTF string section must start with an empty string")
        self.data = bytearray(existing)
        self._offsets: dict[str, int] = {}
        pos = 0
        for chunk in bytes(existing).split(b"\0"):
            self._offsets.setdefault(chunk.decode("utf-8", "replace"), pos)
            pos += len(chunk) + 1

    def add(self, text: str) -> int:
        found = self._offsets.get(text)
        if found is not None:
            return found
        offset = len(self.data)
        self.data += text.encode("utf-8") + b"\0"
        self._offsets[text] = offset
        return offset


def _info(kind: Kind, vlen: int = 0, kflag: bool = False) -> int:
    if vlen > 0xFFFF:
        raise BTFError(f"BTF {kind.name.lower()} has too many members ({vlen})")
    return (int(kflag) << 31) | (int(kind) << 24) | vlen


def encode_type(t: BtfType, strings: StringTable, endian: str = "<", array_index_id: int = 0) -> bytes:
    """One type record. ARRAY index types are not kept by the parser, so every
    array gets `array_index_id` (an unsigned 4-byte INT, as clang emits)."""
    e = endian
    name = strings.add(t.name) if t.name else 0
    k = t.kind
    head = struct.Struct(e + "III")
    if k == Kind.INT:
        word = (t.encoding << 24) | (t.bit_offset << 16) | t.bits
        return head.pack(name, _info(k), t.size) + struct.pack(e + "I", word)
    if k == Kind.ARRAY:
        return head.pack(name, _info(k), 0) + head.pack(t.elem_id, array_index_id, t.count)
    if k in (Kind.STRUCT, Kind.UNION):
        kflag = any(m.bit_size for m in t.members)
        out = [head.pack(name, _info(k, len(t.members), kflag), t.size)]
        for m in t.members:
            if kflag and (m.bit_offset >= 1 << 24 or m.bit_size >= 1 << 8):
                raise BTFError(f"BTF member {m.name} of {t.name or 'an anonymous type'} does not fit a bitfield slot")
            offset = (m.bit_size << 24) | m.bit_offset if kflag else m.bit_offset
            out.append(head.pack(strings.add(m.name) if m.name else 0, m.type_id, offset))
        return b"".join(out)
    if k == Kind.ENUM:
        out = [head.pack(name, _info(k, len(t.enumerators), t.signed), t.size)]
        value = struct.Struct(e + ("Ii" if t.signed else "II"))
        out += [value.pack(strings.add(n), v) for n, v in t.enumerators]
        return b"".join(out)
    if k == Kind.ENUM64:
        out = [head.pack(name, _info(k, len(t.enumerators), t.signed), t.size)]
        for n, v in t.enumerators:
            raw = v & 0xFFFFFFFFFFFFFFFF
            out.append(head.pack(strings.add(n), raw & 0xFFFFFFFF, raw >> 32))
        return b"".join(out)
    if k == Kind.FUNC_PROTO:
        out = [head.pack(0, _info(k, len(t.params)), t.type_id)]
        pair = struct.Struct(e + "II")
        out += [pair.pack(strings.add(n) if n else 0, tid) for n, tid in t.params]
        return b"".join(out)
    if k == Kind.VAR:
        return head.pack(name, _info(k), t.type_id) + struct.pack(e + "I", t.linkage)
    if k == Kind.DATASEC:
        out = [head.pack(name, _info(k, len(t.vars)), t.size)]
        out += [head.pack(v.type_id, v.offset, v.size) for v in t.vars]
        return b"".join(out)
    if k == Kind.DECL_TAG:
        # The parser drops component_idx; -1 means "the declaration itself".
        return head.pack(name, _info(k), t.type_id) + struct.pack(e + "i", -1)
    if k == Kind.FLOAT:
        return head.pack(name, _info(k), t.size)
    if k == Kind.FWD:
        return head.pack(name, _info(k, 0, t.fwd_union), 0)
    if k == Kind.FUNC:
        return head.pack(name, _info(k, t.linkage), t.type_id)
    if k in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
        return head.pack(name, _info(k), t.type_id)
    raise BTFError(f"cannot encode BTF kind {k.name}")


def encode_btf(types: Sequence[BtfType], endian: str = "<", array_index_id: int = 0) -> bytes:
    """A whole BTF blob from types 1..n (`types[0]`, void, is skipped)."""
    strings = StringTable()
    body = b"".join(encode_type(t, strings, endian, array_index_id) for t in types[1:])
    header = struct.pack(endian + "HBBIIIII", BTF_MAGIC, 1, 0, HEADER_LEN, 0, len(body), len(body), len(strings.data))
    return header + body + bytes(strings.data)


class BtfBlob:
    """A raw BTF blob split into header, types and strings, ready to grow."""

    def __init__(self, data: bytes, endian: str):
        self.endian = endian
        magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            endian + "HBBIIIII", data, 0)
        if magic != BTF_MAGIC or version != 1 or hdr_len < HEADER_LEN:
            raise BTFError("not a BTF blob this tool can extend")
        if type_off != 0 or str_off < type_len or hdr_len + str_off + str_len > len(data):
            # Relocations point into the type section right after the header;
            # any other layout would need them rewritten.
            raise BTFError("unexpected BTF layout (types must directly follow the header)")
        self.header = bytearray(data[:hdr_len])
        self.flags = flags
        self.types = data[hdr_len : hdr_len + type_len]
        self.strings = StringTable(data[hdr_len + str_off : hdr_len + str_off + str_len])

    def extend(self, new_types: Sequence[BtfType], array_index_id: int) -> bytes:
        """The blob with `new_types` appended; their ids must follow the old ones."""
        added = b"".join(encode_type(t, self.strings, self.endian, array_index_id) for t in new_types)
        types = self.types + added
        header = bytearray(self.header)
        struct.pack_into(self.endian + "IIII", header, 8, 0, len(types), len(types), len(self.strings.data))
        return bytes(header) + types + bytes(self.strings.data)
