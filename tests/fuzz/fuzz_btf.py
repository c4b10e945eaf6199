"""Fuzz target: BTF blobs, and the layouts, decoders and writers built on them.

    .venv/bin/python tests/fuzz/fuzz_btf.py -max_total_time=300

Contract: Btf.parse gives types or a BTFError; every query, layout, decoder
and writer over parsed types then works or refuses with a BTFError (see checks).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.checks import check_btf_bytes


def TestOneInput(data: bytes) -> None:
    check_btf_bytes(data)


def seeds() -> list[bytes]:
    from pyeunomia.format.elf import ElfFile
    from tests.btfbuilder import ENC_SIGNED, BtfBuilder
    from tests.property.strategies import UPSTREAM, upstream_object

    out = []
    for name in UPSTREAM:
        elf = ElfFile(upstream_object(name))
        section = elf.section(".BTF")
        assert section is not None
        out.append(elf.section_bytes(section))
    b = BtfBuilder()
    i32 = b.int("int", 4, ENC_SIGNED)
    char = b.int("char", 1, ENC_SIGNED)
    b.struct("event", 24, [("pid", i32, 0), ("comm", b.array(char, 16), 32), ("bits", i32, 160, 3)])
    out.append(b.build())
    return out


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "btf", seeds)
