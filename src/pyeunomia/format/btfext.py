"""The CO-RE relocation records of an object's .BTF.ext section.

Pure parsing: which types an object's CO-RE relocations name, and how, so
the loader can tell whether a minimal kernel BTF answers them as the whole
kernel would (see runner/corebtf.py).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import PackageError

BTF_EXT_MAGIC = 0xEB9F
CORE_RELO_SIZE = 16  # insn_off, type_id, access_str_off, kind: four u32
TYPE_ID_LOCAL, TYPE_ID_TARGET = 6, 7  # enum bpf_core_relo_kind


class BtfExtError(PackageError):
    """.BTF.ext is malformed."""


class CoreRelocation(NamedTuple):
    section_name_off: int
    insn_off: int
    type_id: int
    access_str_off: int
    kind: int


def core_relocations(data: bytes, endian: str = "<") -> list[CoreRelocation]:
    """Every CO-RE relocation record in a .BTF.ext blob (none when the header
    predates them)."""
    if len(data) < 24:
        raise BtfExtError(".BTF.ext is truncated")
    magic, version, _flags, hdr_len = struct.unpack_from(endian + "HBBI", data, 0)
    if magic != BTF_EXT_MAGIC or version != 1:
        raise BtfExtError(".BTF.ext has a bad magic or version")
    if hdr_len < 32:
        return []  # no core_relo_off/len in this header
    if hdr_len > len(data):
        raise BtfExtError(".BTF.ext header length is out of range")
    off, length = struct.unpack_from(endian + "II", data, 24)
    start, end = hdr_len + off, hdr_len + off + length
    if end > len(data):
        raise BtfExtError(".BTF.ext CO-RE records lie outside the section")
    if length == 0:
        return []
    if length < 4:
        raise BtfExtError(".BTF.ext CO-RE records are truncated")
    (rec_size,) = struct.unpack_from(endian + "I", data, start)
    if rec_size < CORE_RELO_SIZE:
        raise BtfExtError(f".BTF.ext CO-RE record size {rec_size} is too small")
    record = struct.Struct(endian + "IIII")
    out: list[CoreRelocation] = []
    pos = start + 4
    while pos < end:
        if pos + 8 > end:
            raise BtfExtError(".BTF.ext CO-RE section header is truncated")
        name_off, count = struct.unpack_from(endian + "II", data, pos)
        pos += 8
        if pos + count * rec_size > end:
            raise BtfExtError(".BTF.ext CO-RE records are truncated")
        for i in range(count):
            out.append(CoreRelocation(name_off, *record.unpack_from(data, pos + i * rec_size)))
        pos += count * rec_size
    return out
