"""kernel_enum: enum names from a BTF file, read at first use, one scan of
its type headers; the running kernel's agrees with a full parse of its BTF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.kernel_enum import KERNEL_BTF, enum_names
from pyeunomia.format.btf import Btf, Kind
from tests.btfbuilder import ENC_SIGNED, BtfBuilder


def blob(endian: str = "<") -> bytes:
    """Every kind a scan must step over before the enum it looks for."""
    b = BtfBuilder(endian)
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    b.struct("point", 8, [("x", u32, 0), ("y", u32, 32)])
    b.array(u32, 4)
    b.enum("other", [("OTHER_A", 2)])
    b.enum("drop", [("DROP_NONE", 0), ("DROP_NO_SOCKET", 2), ("DROP_ALIAS", 2), ("MINUS", -1)], signed=True)
    b.enum64("wide", [("WIDE_BIG", 1 << 40), ("WIDE_NEG", -2)], signed=True)
    b.float("double", 8)
    b.var("v", s32)
    return b.build()


@pytest.mark.parametrize("endian", ["<", ">"])
def test_names_of_one_enum_from_a_btf_file(tmp_path: Path, endian: str):
    path = tmp_path / "btf"
    path.write_bytes(blob(endian))
    assert enum_names("drop", str(path)) == {0: "DROP_NONE", 2: "DROP_NO_SOCKET", -1: "MINUS"}  # first name wins
    assert enum_names("wide", str(path)) == {1 << 40: "WIDE_BIG", -2: "WIDE_NEG"}
    assert enum_names("nosuch", str(path)) == {}
    assert enum_names("point", str(path)) == {}  # a struct of that name is no enum


def test_the_decoder_reads_at_first_use_cuts_the_prefix_and_shows_unknown_values(tmp_path: Path):
    path = tmp_path / "btf"
    decode = DECODERS["kernel_enum"].make({"type": "drop", "prefix": "DROP_", "btf": str(path)})  # not there yet
    path.write_bytes(blob())
    assert [decode(2), decode(0), decode(-1), decode(7)] == ["NO_SOCKET", "NONE", "MINUS", 7]
    path.unlink()  # read once, then kept
    assert decode(2) == "NO_SOCKET"
    missing = DECODERS["kernel_enum"].make({"type": "drop", "btf": str(tmp_path / "none")})
    assert missing(2) == 2  # no BTF: the number
    for bad in ({}, {"type": "a b"}, {"type": "drop", "prefix": 3}):
        with pytest.raises(ValueError):
            DECODERS["kernel_enum"].make(bad)


def test_the_running_kernels_drop_reasons_match_a_full_parse():
    if not os.path.exists(KERNEL_BTF):
        pytest.skip("this kernel has no BTF (/sys/kernel/btf/vmlinux)")
    btf = Btf.parse(Path(KERNEL_BTF).read_bytes(), max_types=None)  # ~4 s: every type, the slow exact way
    for name in ("skb_drop_reason", "bpf_func_id"):
        t = btf.find(name, Kind.ENUM)
        assert t is not None, name
        want: dict[int, str] = {}
        for n, v in t.enumerators:
            want.setdefault(v, n)
        assert enum_names(name) == want
    decode = DECODERS["kernel_enum"].make({"type": "skb_drop_reason", "prefix": "SKB_DROP_REASON_"})
    no_socket = dict(btf.find("skb_drop_reason", Kind.ENUM).enumerators)["SKB_DROP_REASON_NO_SOCKET"]
    assert decode(no_socket) == "NO_SOCKET"
