"""Fuzz target: ELF objects (elf.ElfFile, objspec.ObjectSpec, Package.from_object).

    .venv/bin/python tests/fuzz/fuzz_elf.py -max_total_time=300

Contract: any bytes give an object spec or an ELFError/BTFError; programs,
maps, globals, section bytes, the package made from the object, its options
and its layouts then work or refuse in one line (see checks).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.checks import check_object_bytes


def TestOneInput(data: bytes) -> None:
    check_object_bytes(data)


def seeds() -> list[bytes]:
    from tests.btfbuilder import ENC_SIGNED, LINKAGE_GLOBAL, STB_GLOBAL, BtfBuilder, bpf_object
    from tests.property.strategies import UPSTREAM, upstream_object

    b = BtfBuilder()
    i32 = b.int("int", 4, ENC_SIGNED)
    v = b.var("limit", i32, LINKAGE_GLOBAL)
    b.datasec(".rodata", [(v, 0, 4)])
    small = bpf_object(b.build(), programs=[("handle", "tp/sched/x")], data={".rodata": b"\x05\0\0\0"},
                       symbols=[("limit", ".rodata", 0, 4, STB_GLOBAL)])
    return [upstream_object(name) for name in UPSTREAM] + [small]


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "elf", seeds)
