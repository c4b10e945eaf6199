"""`ksym`: a kernel text address as "vfs_read+0x12" (the function alone at
offset 0; `"offset": false` leaves offsets out). /proc/kallsyms is read on
the first address decoded (0.3-0.6 s for 122k symbols, as the stack
symbolizer: format/symbols.py parses it), never when the decoder is made;
an address in no symbol, or with kallsyms hidden, shows as 0x... hex."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..format.symbols import SymbolTable, parse_kallsyms
from .registry import Decode, DecoderType

KALLSYMS_LIMIT = 256 << 20


def read_kallsyms(path: str = "/proc/kallsyms") -> SymbolTable:
    try:
        with open(path, "rb") as f:  # procfs: a size of 0, read to the end (bounded)
            text = f.read(KALLSYMS_LIMIT).decode("ascii", "replace")
    except OSError:
        text = ""
    return parse_kallsyms(text)


def ksym_text(table: SymbolTable, address: int, offset: bool = True) -> str:
    found = table.lookup(address)
    if found is None:
        return f"0x{address:x}"
    return f"{found.name}+0x{found.offset:x}" if offset and found.offset else found.name


def _make(params: Mapping[str, Any]) -> Decode:
    path = params.get("kallsyms", "/proc/kallsyms")
    show_offset = params.get("offset", True)
    if not isinstance(path, str):
        raise ValueError("kallsyms: expected a path")
    if not isinstance(show_offset, bool):
        raise ValueError("offset: expected true or false")
    tables: list[SymbolTable] = []

    def decode(address: int) -> str:
        if not tables:
            tables.append(read_kallsyms(path))
        return ksym_text(tables[0], address, show_offset)
    return decode


DECODER = DecoderType("ksym", ("int",), ("offset", "kallsyms"), _make,
                      "a kernel address as its symbol and offset ('vfs_read+0x12')", prime_as_root=True)
