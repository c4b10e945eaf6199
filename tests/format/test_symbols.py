"""pyeunomia.format.symbols: symbol tables from kallsyms text, /proc/PID/maps
lines and ELF files written byte by byte here (and one gcc builds, checked
against nm)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pyeunomia.format.elf import ELFError
from pyeunomia.format.symbols import Mapping, Symbol, SymbolTable, elf_symbols, parse_kallsyms, parse_maps

STT_FUNC, STT_OBJECT, STB_GLOBAL, STB_LOCAL, STB_WEAK = 2, 1, 1, 0, 2


def build_elf(symbols: list[tuple[str, int, int, int, int]], *, dynsym: list[tuple[str, int, int, int, int]] = (),
              build_id: bytes = b"\xab\xcd\xef\x01", segments: list[tuple[int, int, int]] | None = None,
              endian: str = "<", etype: int = 3) -> bytes:
    """An ELF64 shared object: PT_LOADs (offset, vaddr, filesz), a PT_NOTE
    with the build id, and .symtab/.strtab (+ .dynsym/.dynstr) holding
    `symbols` as (name, value, size, type, binding)."""
    e = endian
    segments = segments if segments is not None else [(0x1000, 0x401000, 0x2000)]

    def strtab(names: list[str]) -> tuple[bytes, dict[str, int]]:
        blob, offs = bytearray(b"\0"), {}
        for n in names:
            offs[n] = len(blob)
            blob += n.encode() + b"\0"
        return bytes(blob), offs

    def symtab(entries: list[tuple[str, int, int, int, int]], offs: dict[str, int]) -> bytes:
        out = bytes(24)  # the null symbol
        for name, value, size, typ, bind in entries:
            out += struct.pack(e + "IBBHQQ", offs[name], (bind << 4) | typ, 0, 1, value, size)
        return out

    note = struct.pack(e + "III", 4, len(build_id), 3) + b"GNU\0" + build_id + bytes(-len(build_id) % 4) \
        if build_id else b""
    sym_str, sym_offs = strtab([s[0] for s in symbols])
    dyn_str, dyn_offs = strtab([s[0] for s in dynsym])
    blobs = [note, symtab(symbols, sym_offs), sym_str, symtab(list(dynsym), dyn_offs), dyn_str]
    phnum = len(segments) + (1 if note else 0)
    pos = 64 + 56 * phnum
    offsets = []
    for blob in blobs:
        offsets.append(pos)
        pos += len(blob)
    shoff = pos
    # sections: null, note, symtab(link 3), strtab, dynsym(link 5), dynstr
    shdrs = [bytes(64),
             struct.pack(e + "IIQQQQIIQQ", 0, 7, 0, 0, offsets[0], len(note), 0, 0, 4, 0),
             struct.pack(e + "IIQQQQIIQQ", 0, 2, 0, 0, offsets[1], len(blobs[1]), 3, 0, 8, 24),
             struct.pack(e + "IIQQQQIIQQ", 0, 3, 0, 0, offsets[2], len(blobs[2]), 0, 0, 1, 0),
             struct.pack(e + "IIQQQQIIQQ", 0, 11, 0, 0, offsets[3], len(blobs[3]), 5, 0, 8, 24),
             struct.pack(e + "IIQQQQIIQQ", 0, 3, 0, 0, offsets[4], len(blobs[4]), 0, 0, 1, 0)]
    ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1]) + bytes(9)
    header = ident + struct.pack(e + "HHIQQQIHHHHHH", etype, 62, 1, 0, 64, shoff, 0, 64, 56, phnum, 64,
                                 len(shdrs), 0)
    phdrs = b"".join(struct.pack(e + "IIQQQQQQ", 1, 5, off, vaddr, vaddr, size, size, 0x1000)
                     for off, vaddr, size in segments)
    if note:
        phdrs += struct.pack(e + "IIQQQQQQ", 4, 4, offsets[0], 0, 0, len(note), len(note), 4)
    return header + phdrs + b"".join(blobs) + b"".join(shdrs)


def parse(data: bytes):  # type: ignore[no-untyped-def]
    return elf_symbols(lambda off, n: data[off:off + n], len(data))


def test_functions_build_id_and_segments():
    data = build_elf([("spin", 0x401100, 0x40, STT_FUNC, STB_GLOBAL),
                      ("helper", 0x401140, 0x10, STT_FUNC, STB_LOCAL),
                      ("table", 0x401150, 0x100, STT_OBJECT, STB_GLOBAL)])  # data: not a frame's name
    syms = parse(data)
    assert syms.build_id == b"\xab\xcd\xef\x01"
    assert syms.has_symtab
    assert len(syms.symbols) == 2
    assert syms.symbols.lookup(0x401100) == Symbol("spin", 0)
    assert syms.symbols.lookup(0x40113F) == Symbol("spin", 0x3F)
    assert syms.symbols.lookup(0x401140) == Symbol("helper", 0)
    assert syms.symbols.lookup(0x401150) is None  # past helper's 16 bytes
    assert syms.symbols.lookup(0x4010FF) is None
    # file offset -> link-time address through the PT_LOAD at offset 0x1000
    assert syms.address_of(0x1100) == 0x401100
    assert syms.address_of(0x0FFF) is None and syms.address_of(0x3000) is None


def test_big_endian():
    syms = parse(build_elf([("f", 0x401000, 8, STT_FUNC, STB_GLOBAL)], endian=">"))
    assert syms.symbols.lookup(0x401004) == Symbol("f", 4)


def test_symtab_name_beats_dynsym_and_global_beats_local():
    data = build_elf([("local_alias", 0x401000, 0x20, STT_FUNC, STB_LOCAL),
                      ("real_name", 0x401000, 0x20, STT_FUNC, STB_GLOBAL)],
                     dynsym=[("dyn_name", 0x401000, 0x20, STT_FUNC, STB_GLOBAL),
                             ("only_dynamic", 0x401800, 0x20, STT_FUNC, STB_WEAK)])
    syms = parse(data)
    assert syms.symbols.lookup(0x401010) == Symbol("real_name", 0x10)
    assert syms.symbols.lookup(0x401801) == Symbol("only_dynamic", 1)


def test_stripped_file_has_dynsym_only():
    syms = parse(build_elf([], dynsym=[("exported", 0x401000, 0x10, STT_FUNC, STB_GLOBAL)]))
    assert not syms.has_symtab
    assert syms.symbols.lookup(0x401000) == Symbol("exported", 0)


def test_sizeless_symbol_ends_at_the_next_or_its_segment():
    data = build_elf([("_init", 0x401000, 0, STT_FUNC, STB_GLOBAL), ("main", 0x401100, 0x10, STT_FUNC, STB_GLOBAL),
                      ("_fini", 0x402F00, 0, STT_FUNC, STB_GLOBAL)])
    syms = parse(data)
    assert syms.symbols.lookup(0x4010FF) == Symbol("_init", 0xFF)
    assert syms.symbols.lookup(0x402FFF) == Symbol("_fini", 0xFF)
    assert syms.symbols.lookup(0x403000) is None  # past the segment: not _fini+0x100


def test_no_build_id():
    assert parse(build_elf([("f", 0x401000, 8, STT_FUNC, STB_GLOBAL)], build_id=b"")).build_id == b""


@pytest.mark.parametrize(("data", "message"), [
    (b"\x7fELX" + bytes(60), "bad magic"),
    (b"\x7fELF\x01\x01" + bytes(58), "64-bit"),
    (b"\x7fELF", "bad magic"),
])
def test_not_an_elf64_file(data: bytes, message: str):
    with pytest.raises(ELFError, match=message):
        parse(data)


def test_relocatable_object_is_refused():
    with pytest.raises(ELFError, match="neither an executable nor a shared object"):
        parse(build_elf([], etype=1))


def test_truncated_files_are_errors_never_index_errors():
    data = build_elf([("spin", 0x401100, 0x40, STT_FUNC, STB_GLOBAL)])
    for cut in range(0, len(data), 7):
        try:
            parse(data[:cut])
        except ELFError:
            pass


def test_section_beyond_the_file_is_refused():
    data = bytearray(build_elf([("f", 0x401000, 8, STT_FUNC, STB_GLOBAL)]))
    shoff = struct.unpack_from("<Q", data, 40)[0]
    struct.pack_into("<Q", data, shoff + 2 * 64 + 32, 1 << 40)  # .symtab's sh_size
    with pytest.raises(ELFError, match="outside the file"):
        parse(bytes(data))


def test_reads_only_what_it_needs():
    data = build_elf([("f", 0x401000, 8, STT_FUNC, STB_GLOBAL)]) + bytes(1 << 20)  # a large file
    read = []

    def reader(off: int, n: int) -> bytes:
        read.append(n)
        return data[off:off + n]

    elf_symbols(reader, len(data))
    assert sum(read) < 2048


def test_a_known_build_id_reads_no_symbol_table():
    data = build_elf([("f", 0x401000, 8, STT_FUNC, STB_GLOBAL)] * 50)
    first = parse(data)
    asked, read = [], []

    def reader(off: int, n: int) -> bytes:
        read.append(n)
        return data[off:off + n]

    def known(build_id: bytes):  # type: ignore[no-untyped-def]
        asked.append(build_id)
        return first

    assert elf_symbols(reader, len(data), known) is first
    assert asked == [b"\xab\xcd\xef\x01"]
    assert sum(read) < 64 + 2 * 56 + 64 * 6 + 32  # headers and the note, no symbols


def test_kallsyms():
    table = parse_kallsyms("ffffffffc0000000 t mod_fn\t[mymod]\n"  # out of order: sorted
                           "ffffffff81000000 T _stext\n"
                           "ffffffff81000100 t do_work\n"
                           "ffffffff81000100 T do_work_alias\n"
                           "ffffffff82000000 D some_data\n"
                           "0000000000000000 A fixed_percpu_data\n"
                           "garbage line\n")
    assert len(table) == 4  # aliases too: of one address lookup names the first listed
    assert table.lookup(0xFFFFFFFF81000010) == Symbol("_stext", 0x10)
    assert table.lookup(0xFFFFFFFF81000180) == Symbol("do_work", 0x80)
    assert table.lookup(0xFFFFFFFFC0000004) == Symbol("mod_fn", 4)
    assert table.lookup(0x1000) is None


def test_kallsyms_of_32_bit_addresses():
    table = parse_kallsyms("c1000000 T _stext\nc1000100 t do_work\n00000000 t hidden\n")
    assert len(table) == 2 and table.lookup(0xC1000104) == Symbol("do_work", 4)


def test_kallsyms_hidden_addresses_give_an_empty_table():
    assert len(parse_kallsyms("0000000000000000 T _stext\n0000000000000000 t do_work\n")) == 0


def test_symbol_table_lookup_is_a_bisection():
    table = SymbolTable([(30, 0, "c"), (10, 5, "a"), (20, 0, "b")])
    assert [table.lookup(a) for a in (9, 10, 14, 15, 20, 29, 30, 10**9)] == [
        None, Symbol("a", 0), Symbol("a", 4), None, Symbol("b", 0), Symbol("b", 9), Symbol("c", 0),
        Symbol("c", 10**9 - 30)]


def test_maps():
    text = ("55d0c7d29000-55d0c7d2a000 r--p 00000000 08:01 1234 /tmp/busy\n"
            "55d0c7d2a000-55d0c7d2b000 r-xp 00001000 08:01 1234 /tmp/busy\n"
            "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
            "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]\n"
            "7f1000000000-7f1000001000 r-xp 00000000 08:01 99 /tmp/with space (deleted)\n"
            "not a line\n")
    maps = parse_maps(text)
    assert maps[1] == Mapping(0x55D0C7D2A000, 0x55D0C7D2B000, 0x1000, 1234, "/tmp/busy", True)
    assert maps[2].path == "" and maps[2].inode == 0 and not maps[2].executable
    assert maps[3].path == "/tmp/with space (deleted)"  # sorted by address
    assert maps[4].path == "[vdso]"
    assert [m.start for m in maps] == sorted(m.start for m in maps)
    assert len(maps) == 5


@pytest.mark.skipif(not shutil.which("gcc") or not shutil.which("nm"), reason="needs gcc and nm")
def test_a_real_binary_agrees_with_nm(tmp_path: Path):
    src = tmp_path / "p.c"
    src.write_text("static int __attribute__((noinline)) inner(int x) { return x * 3; }\n"
                   "int __attribute__((noinline)) outer(int x) { return inner(x) + 1; }\n"
                   "int main(int c, char **v) { (void)v; return outer(c); }\n")
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
    data = exe.read_bytes()
    syms = parse(data)
    nm = subprocess.run(["nm", "--defined-only", str(exe)], capture_output=True, text=True, check=True).stdout
    functions = {line.split()[2]: int(line.split()[0], 16) for line in nm.splitlines()
                 if line.split()[1] in "tT" and line.split()[2] in ("inner", "outer", "main")}
    assert set(functions) == {"inner", "outer", "main"}
    for name, address in functions.items():
        assert syms.symbols.lookup(address) == Symbol(name, 0)
        assert syms.symbols.lookup(address + 1) == Symbol(name, 1)
    readelf = subprocess.run(["readelf", "-n", str(exe)], capture_output=True, text=True).stdout
    if "Build ID:" in readelf:
        assert syms.build_id.hex() == readelf.split("Build ID:")[1].split()[0]


def test_corrupted_bytes_give_elf_errors_or_tables():
    """Seeded mutations of every header field and table: an ELFError or a
    table, never another exception."""
    import random

    data = build_elf([("spin", 0x401100, 0x40, STT_FUNC, STB_GLOBAL), ("x", 0x401200, 0, STT_FUNC, STB_LOCAL)],
                     dynsym=[("d", 0x401300, 8, STT_FUNC, STB_GLOBAL)])
    rng = random.Random(14)
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            parse(bytes(mutated))
        except ELFError:
            pass
