"""CO-RE relocation records from .BTF.ext, from bytes."""

from __future__ import annotations

import struct

import pytest

from pyeunomia.format.btfext import BtfExtError, CoreRelocation, core_relocations


def ext(records: list[tuple[int, list[tuple[int, int, int, int]]]], rec_size: int = 16,
        hdr_len: int = 32) -> bytes:
    body = struct.pack("<I", rec_size)
    for name_off, recs in records:
        body += struct.pack("<II", name_off, len(recs))
        for r in recs:
            body += (struct.pack("<IIII", *r) + bytes(max(0, rec_size - 16)))[:rec_size]
    header = struct.pack("<HBBIIIIIII", 0xEB9F, 1, 0, hdr_len, 0, 0, 0, 0, 0, len(body))
    return header[:hdr_len] + body if hdr_len >= 32 else header[:hdr_len]


def test_records_of_every_section() -> None:
    data = ext([(5, [(8, 3, 9, 0), (16, 4, 11, 7)]), (20, [(0, 2, 0, 8)])])
    assert core_relocations(data) == [CoreRelocation(5, 8, 3, 9, 0), CoreRelocation(5, 16, 4, 11, 7),
                                      CoreRelocation(20, 0, 2, 0, 8)]


def test_larger_records_are_read_by_their_declared_size() -> None:
    data = ext([(1, [(8, 3, 9, 2), (24, 5, 9, 6)])], rec_size=24)
    assert [r.kind for r in core_relocations(data)] == [2, 6]


def test_an_older_header_has_no_records() -> None:
    data = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 0)
    assert core_relocations(data) == []


@pytest.mark.parametrize("data, message", [
    (b"\x9f\xeb\x01", "truncated"),
    (struct.pack("<HBBIIIII", 0x1234, 1, 0, 24, 0, 0, 0, 0), "bad magic"),
    (ext([(1, [(0, 1, 0, 0)])], rec_size=12), "too small"),
    (ext([(1, [(0, 1, 0, 0)])])[:-4], "outside the section|truncated"),
])
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(BtfExtError, match=message):
        core_relocations(data)


def test_a_count_past_the_end_is_refused() -> None:
    data = bytearray(ext([(1, [(0, 1, 0, 0)])]))
    struct.pack_into("<I", data, 32 + 4 + 4, 1000)  # num_info of the first section
    with pytest.raises(BtfExtError, match="truncated"):
        core_relocations(bytes(data))
