"""Resource bounds: parsing hostile input of growing size stays within time
and memory limits. Each case once took time or memory growing faster than
the input (quadratic name scans, exponential layouts, zip bombs, ...)."""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from pyeunomia.errors import EunomiaError
from pyeunomia.exporter.config import load_config, program_from_request
from pyeunomia.format.btf import Btf
from pyeunomia.format.elf import ElfFile
from pyeunomia.format.escape import escape_bytes
from pyeunomia.format.layout import struct_layout
from pyeunomia.format.objspec import ObjectSpec
from pyeunomia.format.options import GlobalOption
from pyeunomia.format.package import MAX_OBJECT_SIZE, Package
from tests.btfbuilder import (
    ENC_SIGNED,
    LINKAGE_GLOBAL,
    SHT_NOBITS,
    STB_GLOBAL,
    BtfBuilder,
    ElfBuilder,
    bpf_object,
)

from .strategies import many_types_btf, package_text, upstream_doc

MB = 1 << 20


WALL_GUARD_S = 60.0


def cost(fn: Callable[[], Any], memory: bool = True) -> tuple[float, int]:
    """(CPU seconds, peak bytes allocated) of fn(); our errors count as an
    answer. Tracing memory slows allocation-heavy code severalfold: without
    `memory` the time is the real one and the peak 0. CPU time, not wall time:
    on a shared 2-core machine the 10 s cap of a 4.5 s parse failed 3 runs in
    6 with two CPU hogs beside it (wall 8.6-12.1 s, CPU 3.3 s). A wait that
    costs no CPU still fails, on the wall-clock guard."""
    if memory:
        tracemalloc.start()
    start, wall = time.process_time(), time.perf_counter()
    try:
        fn()
    except EunomiaError:
        pass
    finally:
        seconds = time.process_time() - start
        waited = time.perf_counter() - wall
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
        tracemalloc.stop()
    assert waited < WALL_GUARD_S, f"{waited:.1f} s of wall time ({seconds:.1f} s of CPU): it waited on something"
    return seconds, peak


def assert_linear(make: Callable[[int], bytes], parse: Callable[[bytes], Any], n: int,
                  per_byte: float = 100, factor: int = 4) -> None:
    """Parsing make(n * factor) costs at most about `factor` times make(n),
    and never more than `per_byte` bytes of memory per input byte (+1 MiB)."""
    small, big = make(n), make(n * factor)
    t_small, m_small = cost(lambda: parse(small))
    t_big, m_big = cost(lambda: parse(big))
    assert m_big <= per_byte * len(big) + MB, f"{m_big / MB:.1f} MiB for {len(big)} input bytes"
    assert m_big <= factor * 2 * m_small + MB, f"memory {m_small} -> {m_big}: grows faster than the input"
    assert t_big <= factor * 3 * t_small + 0.2, f"time {t_small:.3f}s -> {t_big:.3f}s: grows faster than the input"


# -- names scanned to their NUL -------------------------------------------------------------------

def test_btf_names_into_one_long_string() -> None:
    assert_linear(lambda n: many_types_btf(n, name_len=n), Btf.parse, 1500)


def test_btf_many_types() -> None:
    assert_linear(lambda n: many_types_btf(n), Btf.parse, 4000)


def elf_symbols_into_one_long_name(n: int) -> bytes:
    b = ElfBuilder()
    s = b.section("d", b"")
    b.symbol("B" * n, s)
    for _ in range(n):
        b.symbol("", s)
    data = bytearray(b.build())
    elf = ElfFile(bytes(data))
    symtab = next(x for x in elf.sections if x.type == 2)
    for k in range(2, symtab.size // 24):
        struct.pack_into("<I", data, symtab.offset + 24 * k, 1 + k % n)
    return bytes(data)


def test_elf_symbol_names_into_one_long_name() -> None:
    assert_linear(elf_symbols_into_one_long_name, lambda d: ElfFile(d).symbols(), 1500)


def elf_section_names_into_one_long_name(n: int) -> bytes:
    b = ElfBuilder()
    for _ in range(min(n, 60000)):
        b.section("", b"")
    b.section(".names", b"N" * n + b"\0")
    data = bytearray(b.build())
    (shoff,) = struct.unpack_from("<Q", data, 40)
    shnum, _ = struct.unpack_from("<HH", data, 60)
    names_index = shnum - 2  # .names, before .shstrtab
    struct.pack_into("<H", data, 62, names_index)
    for i in range(shnum):
        struct.pack_into("<I", data, shoff + 64 * i, i % n)
    return bytes(data)


def test_elf_section_names_into_one_long_name() -> None:
    assert_linear(elf_section_names_into_one_long_name, ElfFile, 1000)


# -- layouts ---------------------------------------------------------------------------------------

def nested_unions(depth: int, width: int = 2) -> tuple[bytes, int]:
    """union u{i} { u{i-1} a, b; }: each level doubles a naive walk."""
    b = BtfBuilder()
    t = b.int("int", 4, ENC_SIGNED)
    for d in range(depth):
        t = b.union(f"u{d}", 4, [(f"m{k}", t, 0) for k in range(width)])
    return b.build(), t


@pytest.mark.parametrize("named", [True, False])
def test_nested_unions(named: bool) -> None:
    """Named members: one layout per type, not per path. Anonymous members
    (spliced into the parent): a member count cap, not 2**60 members."""
    blob, top = nested_unions(60)
    if not named:
        blob = blob.replace(b"m0\0", b"\0\0\0").replace(b"m1\0", b"\0\0\0")
    btf = Btf.parse(blob)
    seconds, peak = cost(lambda: struct_layout(btf, top))
    assert seconds < 5 and peak < 64 * MB


def test_struct_with_many_members() -> None:
    def make(n: int) -> bytes:
        b = BtfBuilder()
        i32 = b.int("int", 4, ENC_SIGNED)
        b.struct("event", 4 * n, [(f"m{k}", i32, 32 * k) for k in range(n)])
        return b.build()

    assert_linear(make, lambda blob: struct_layout(Btf.parse(blob), 2), 2000, per_byte=1000)


def test_many_structs_of_one_big_struct() -> None:
    """Layouts are shared: 2000 structs each holding the same 2000-member struct."""
    b = BtfBuilder()
    i32 = b.int("int", 4, ENC_SIGNED)
    big = b.struct("big", 8000, [(f"m{k}", i32, 32 * k) for k in range(2000)])
    outer = b.struct("outer", 8000 * 2000, [(f"s{k}", big, 8000 * 8 * k) for k in range(2000)])
    btf = Btf.parse(b.build())
    seconds, peak = cost(lambda: struct_layout(btf, outer))
    assert seconds < 10 and peak < 256 * MB


# -- objects ---------------------------------------------------------------------------------------

def test_globals_overlapping_a_large_section() -> None:
    """DATASEC entries that all cover one 64 KiB section: each copied its initial bytes."""
    b = BtfBuilder()
    blob_t = b.array(b.int("char", 1, ENC_SIGNED), 65535)  # not all of it: a whole-bytes slice is no copy
    v = b.var("big", blob_t, LINKAGE_GLOBAL)
    b.datasec(".data", [(v, 0, 65535)] * 2000)
    obj = bpf_object(b.build(), data={".data": bytes(65536)}, symbols=[("big", ".data", 0, 65535, STB_GLOBAL)])
    seconds, peak = cost(lambda: ObjectSpec(obj).globals)
    assert peak < 32 * MB and seconds < 5


def test_many_data_sections_on_one_big_bss() -> None:
    b = BtfBuilder()
    """A DATASEC per type, all naming one 64 MiB .bss: each one allocated its zeros."""
    for _ in range(5000):
        b.datasec(".bss", [])
    builder = ElfBuilder()
    builder.section(".bss", type=SHT_NOBITS, size=64 * MB)
    builder.section(".BTF", b.build())
    obj = builder.build()
    seconds, _peak = cost(lambda: ObjectSpec(obj).globals, memory=False)
    assert seconds < 2


def test_many_export_types() -> None:
    """Export types whose type_id is wrong are looked up by name: in an index,
    not by a scan of every type each; and a struct named many times is laid out once."""
    b = BtfBuilder()
    for _ in range(40000):
        b.float("float", 4)
    b.struct("event", 4, [("x", b.int("int", 4, ENC_SIGNED), 0)])
    meta = {"bpf_skel": {"obj_name": "x_bpf"},
            "export_types": [{"name": "event", "type_id": 1, "members": []}] * 20000}
    text = package_text(bpf_object(b.build()), meta)
    seconds, _peak = cost(lambda: Package.from_json(text, "x.json"), memory=False)
    assert seconds < 5


# -- package JSON ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 1_000_000, '{"a":' * 500_000, "[" * 100 + "]" * 100])
def test_deep_json(text: str) -> None:
    seconds, _peak = cost(lambda: Package.from_json(text, "deep.json"), memory=False)
    assert seconds < 5


def test_zlib_bomb() -> None:
    """100 MiB of zeros in ~100 KiB: refused after inflating at most the limit."""
    z = zlib.compressobj(9)
    chunk = bytes(MB)
    packed = b"".join(z.compress(chunk) for _ in range(100)) + z.flush()
    import base64

    doc = {"bpf_object": base64.b64encode(packed).decode(), "bpf_object_size": 100 * MB,
           "meta": upstream_doc("bootstrap")["meta"]}
    text = json.dumps(doc)
    seconds, peak = cost(lambda: Package.from_json(text, "bomb.json"))
    assert peak < 3 * MAX_OBJECT_SIZE and seconds < 10


@pytest.mark.parametrize("size", [2 ** 62, 10 ** 4000, -1, 1e308])
def test_object_size_claims(size: Any) -> None:
    text = package_text(b"\x7fELF" + bytes(60), upstream_doc("bootstrap")["meta"], size=size)
    seconds, peak = cost(lambda: Package.from_json(text, "claim.json"))
    assert seconds < 2 and peak < 16 * MB


# -- option values and escaping ----------------------------------------------------------------

def test_huge_numbers_in_options() -> None:
    o = GlobalOption("v", "int", "t", ".rodata", 0, 8, True, "<", 0, 0, "h", "v")
    for text in ("9" * 1_000_000, "0x" + "f" * 1_000_000, "1" + "0" * 5000):
        start = time.perf_counter()
        with pytest.raises(ValueError, match="expected an integer") as refused:
            o.parse(text)
        assert time.perf_counter() - start < 2
        assert len(str(refused.value)) < 200  # "a 4000000-bit integer is out of range: ..."


def test_escape_is_linear() -> None:
    assert_linear(lambda n: b"\x1b\xff\\\n\xe2\x80\xae" * n, escape_bytes, 20000, per_byte=200)


# -- bounded before parsing: API bodies, configs, package metadata ---------------------------------

PROGRAM = '{"name": "x", "metrics": {"counters": [{"name": "c"}]}, "options": {"pad": %s, "long": "%s"}}'


def request_body(values: str, size: int = 4 << 20) -> bytes:
    """One program with `values` under options.pad, padded to `size` bytes with a long string."""
    short = PROGRAM % (values, "")
    return (PROGRAM % (values, "x" * (size - len(short)))).encode()


@pytest.mark.parametrize("values", [
    "[" + "[]," * 1_390_000 + "0]",  # 4 MiB of empty lists: 54 s and 1.09 GiB before the values were counted first
    "[" + "0," * 2_000_000 + "0]",  # numbers: 82 s and 1.34 GiB
])
def test_api_body_over_the_value_count_is_refused_at_once(values: str) -> None:
    body = request_body(values, len(values) + 200)
    assert len(body) <= 4 << 20
    seconds, peak = cost(lambda: program_from_request(body, "/"))
    assert seconds < 0.5 and peak < 2 * len(body) + MB, f"{seconds:.2f} s, {peak / MB:.0f} MiB"


@pytest.mark.parametrize("values", [
    "[" + '"ab",' * 199_000 + "0]",  # as many values as the count lets in, the rest one long string
    "{" + ",".join(f'"k{i:06d}": 1' for i in range(199_000)) + "}",
])
def test_api_body_at_both_bounds(values: str) -> None:
    """The costliest 4 MiB body: about 40 MiB and (untraced) 0.3 s."""
    body = request_body(values)
    assert len(body) == 4 << 20
    seconds, peak = cost(lambda: program_from_request(body, "/"))
    assert seconds < 8 and peak < 96 * MB, f"{seconds:.2f} s, {peak / MB:.0f} MiB"


def test_deep_long_keys_store_no_paths() -> None:
    """16 levels of 4 KiB keys over 20,000 values: each value held its 64 KiB key path (1.3 GB)."""
    nested = "".join('{"%s": ' % (chr(97 + i) * 4096) for i in range(16)) + "[" + "0," * 20_000 + "0]" + "}" * 16
    body = request_body(nested, len(nested) + 200)
    seconds, peak = cost(lambda: program_from_request(body, "/"))
    assert seconds < 2 and peak < 16 * MB, f"{seconds:.2f} s, {peak / MB:.0f} MiB"


@pytest.mark.parametrize(("name", "text"), [
    # 15 MiB of empty lists: 288 s and 3.9 GiB (JSON was composed as YAML too) before its error
    ("c.json", '{"programs": [' + "[]," * (5 << 20) + "0]}"),
    ("c.json", '{"programs": [' + '"ab",' * 199_000 + '"' + "x" * (15 << 20) + '"]}'),
    ("c.yaml", "programs:\n" + "- x\n" * 199_000 + "- '" + "x" * (15 << 20) + "'\n"),
])
def test_config_file_at_its_cap(tmp_path: Any, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert path.stat().st_size <= 16 << 20
    seconds, peak = cost(lambda: load_config(str(path)))
    assert seconds < 10 and peak < 8 * path.stat().st_size + 32 * MB, f"{seconds:.2f} s, {peak / MB:.0f} MiB"


def test_package_metadata_has_its_own_cap() -> None:
    """8 MiB of '[],' inside the metadata: refused before json.loads (a 60 MiB one took 1.58 GiB); a big
    object with small metadata costs memory in proportion to the object."""
    doc = upstream_doc("bootstrap")
    padded = (json.dumps(doc)[:-1] + ', "pad": [' + "[]," * ((8 << 20) // 3) + "0]}").encode()
    seconds, peak = cost(lambda: Package.from_json(padded, "pad.json"))
    assert seconds < 0.5 and peak < MB, f"{seconds:.2f} s, {peak / MB:.0f} MiB"
    import base64
    import os

    doc["bpf_object"] = base64.b64encode(zlib.compress(b"\x7fELF" + os.urandom(8 << 20), 1)).decode()
    text = json.dumps(doc).encode()
    seconds, peak = cost(lambda: Package.from_json(text, "big.json"))
    assert peak < 4 * len(text), f"{peak / MB:.0f} MiB for {len(text) / MB:.0f} MiB"
