"""ecc's choice of struct per event buffer (compiler/exportchoice.py), as the
package writes it in upstream's form, and its one-line notes and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.format.btf import Btf, Kind
from pyeunomia.format.elf import ElfFile
from tests.e2e.helpers import run

from .ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture
from .test_build import PROLOGUE, failing, write

pytestmark = pytest.mark.usefixtures("compiler")


def meta_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "package.json").read_text())["meta"]


def struct_id(out: Path, name: str) -> int:
    obj = next(out.glob("*.bpf.o")).read_bytes()
    elf = ElfFile(obj)
    section = elf.section(".BTF")
    assert section is not None
    t = Btf.parse(elf.section_bytes(section)).find(name, Kind.STRUCT)
    assert t is not None
    return t.id


def map_configs(out: Path) -> dict[str, Any]:
    return {m["name"]: m.get("export_config") for m in meta_of(out)["bpf_skel"]["maps"]}


def test_a_helper_struct_first_in_the_header_is_not_the_event():
    out = built("helperfirst")
    meta = meta_of(out)
    assert meta["enable_multiple_export_types"] is True
    assert map_configs(out) == {"start": None, "events": {"btf_type_id": struct_id(out, "event")},
                                "helperfi.rodata": None}
    assert [t["name"] for t in meta["export_types"]] == ["event", "args_t"]  # for readers of export_types[0]


def test_each_ring_gets_its_struct_by_annotation_or_size(tmp_path):
    from .ecc_programs import sources

    source, header = sources("tworings")
    done = run("ecc", str(source), str(header), "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert map_configs(tmp_path)["opens"] == {"btf_type_id": struct_id(tmp_path, "open_ev")}
    assert map_configs(tmp_path)["closes"] == {"btf_type_id": struct_id(tmp_path, "close_ev")}
    guesses = [line for line in done.stderr.splitlines() if "guessed" in line]
    assert guesses == ["ecc: map 'closes': guessed that it carries struct close_ev (its 16 bytes are what the "
                       "program writes into the map); make it explicit with '/// @export close_ev' above the map"]


def test_a_contradicting_annotation_is_warned_about(tmp_path):
    from .ecc_programs import sources

    source, header = sources("misfit")
    done = run("ecc", str(source), str(header), "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert ("ecc: warning: map 'wrong' gets 24-byte records but struct event is 16 bytes: ecli will print them in "
            "hex; name the struct it carries with '/// @export STRUCT' above the map\n") in done.stderr
    assert "'right'" not in done.stderr  # the perf array gets struct event itself


RING = ("struct {\n\t__uint(type, BPF_MAP_TYPE_RINGBUF);\n\t__uint(max_entries, 4096);\n} %s SEC(\".maps\");\n")
PROG = ("SEC(\"tp/syscalls/sys_enter_getpid\") int prog(void *ctx) {\n"
        "\tstruct %s *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);\n"
        "\tif (e) bpf_ringbuf_submit(e, 0);\n\treturn 0;\n}\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n")


def test_upstreams_bare_export_annotation_on_a_struct(tmp_path):
    """Upstream's README documents `/// @export` above a struct, in the source."""
    src = write(tmp_path / "marked.bpf.c", PROLOGUE + "struct helper { long x; };\n/// @export\n"
                "struct sampled { int pid; char comm[16]; };\n" + RING % "rb" + PROG % "sampled")
    done = run("ecc", str(src), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert [t["name"] for t in meta_of(tmp_path / "out")["export_types"]] == ["sampled"]
    assert map_configs(tmp_path / "out")["rb"] == {"btf_type_id": struct_id(tmp_path / "out", "sampled")}
    assert "guessed" not in done.stderr


def test_a_map_annotation_naming_a_source_struct_without_a_header(tmp_path):
    src = write(tmp_path / "named.bpf.c", PROLOGUE + "struct rec { int a; int b; };\n/// @export rec\n"
                + RING % "rb" + PROG % "rec")
    done = run("ecc", str(src), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert map_configs(tmp_path / "out")["rb"] == {"btf_type_id": struct_id(tmp_path / "out", "rec")}


def test_an_annotation_naming_no_struct_is_one_line(tmp_path):
    src = write(tmp_path / "bad.bpf.c", PROLOGUE + "struct rec { int a; };\n/// @export nosuch\n"
                + RING % "rb" + PROG % "rec")
    err = failing(str(src), "-o", str(tmp_path / "out"))
    line = src.read_text().splitlines().index("} rb SEC(\".maps\");") + 1  # the map's line
    assert err == (f"ecc: error: {src}:{line}: @export above 'rb' names struct nosuch, which the source and its "
                   "headers do not define: name the struct the map carries\n")


def test_an_annotation_on_something_else_than_a_buffer(tmp_path):
    src = write(tmp_path / "bad.bpf.c", PROLOGUE + "struct rec { int a; };\n/// @export rec\n"
                "const volatile int level = 1;\n" + RING % "rb" + PROG % "rec")
    err = failing(str(src), "-o", str(tmp_path / "out"))
    assert "@export is for ring buffers and perf event arrays, and 'level' is not one" in err
    assert err.count("\n") == 1


def test_the_header_error_shows_real_braces(tmp_path):
    header = write(tmp_path / "empty.h", "#define NOTHING 1\n")
    src = write(tmp_path / "x.bpf.c", PROLOGUE + "struct rec { int a; };\n" + RING % "rb" + PROG % "rec")
    err = failing(str(src), str(header), "-o", str(tmp_path / "out"))
    assert "(struct event { ... };)" in err and "{{" not in err
