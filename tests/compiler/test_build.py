"""ecc end to end without the kernel: real clang, real objects, the package
format checked against upstream's files, reproducibility and errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.format.btf import Btf, Kind
from pyeunomia.format.elf import ElfFile
from pyeunomia.format.objspec import ObjectSpec
from tests.e2e.helpers import UPSTREAM, command, run

from .ecc_programs import NAMES, built, compiler, copy_sources, sources  # noqa: F401 - compiler is a fixture

pytestmark = pytest.mark.usefixtures("compiler")

# Keys our files add to upstream's; upstream's loader keeps unknown keys.
EXTRA_KEYS = {
    "variable": {"size", "offset", "value", "description", "cmdarg"},
    "member": {"offset", "size"},
    "bpf_skel": {"doc"},
    "map": {"mmaped", "sample", "type", "export_config"},
    # upstream's own keys (bpf-loader-rs meta), absent from runqlat.json: the struct of each event buffer
    "meta": {"enable_multiple_export_types"},
}


def load(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text())
    assert isinstance(value, dict)
    return value


def same_type(ours: Any, theirs: Any) -> bool:
    return type(ours) is type(theirs) or (isinstance(ours, int | float) and isinstance(theirs, int | float)
                                          and not isinstance(ours, bool) and not isinstance(theirs, bool))


def check_keys(ours: dict[str, Any], theirs: dict[str, Any], extra: set[str], where: str) -> None:
    missing = set(theirs) - set(ours)
    assert not missing, f"{where}: missing {missing}"
    unexpected = set(ours) - set(theirs) - extra
    assert not unexpected, f"{where}: unexpected {unexpected}"
    for key in theirs:
        assert same_type(ours[key], theirs[key]), f"{where}.{key}: {type(ours[key])} vs {type(theirs[key])}"


def check_sorted(value: Any, where: str = "") -> None:
    if isinstance(value, dict):
        assert list(value) == sorted(value), f"{where}: keys not sorted"
        for k, v in value.items():
            check_sorted(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_sorted(v, f"{where}[{i}]")


@pytest.mark.parametrize("name", NAMES)
def test_package_has_upstreams_shape_field_by_field(name):
    ours = load(built(name) / "package.json")
    theirs = load(UPSTREAM / "runqlat.json")  # has every kind of entry, incl. a sampled map
    check_keys(ours, theirs, set(), "package")
    obj = zlib.decompress(base64.b64decode(ours["bpf_object"], validate=True))
    assert len(obj) == ours["bpf_object_size"]
    assert obj == (built(name) / f"{name}.bpf.o").read_bytes()
    meta, umeta = ours["meta"], theirs["meta"]
    check_keys(meta, umeta, EXTRA_KEYS["meta"], "meta")
    skel, uskel = meta["bpf_skel"], umeta["bpf_skel"]
    buffers = [m for m in skel["maps"] if m["type"] in ("ringbuf", "perf_event_array")]
    assert meta.get("enable_multiple_export_types") is (True if buffers else None)
    for m in buffers:  # each test program's buffer carries its header's first struct
        assert m["export_config"] == {"btf_type_id": meta["export_types"][0]["type_id"]}, m
    check_keys(skel, uskel, EXTRA_KEYS["bpf_skel"], "bpf_skel")
    assert skel["obj_name"] == f"{name}_bpf"
    uvar = uskel["data_sections"][0]["variables"][0]
    for sec in skel["data_sections"]:
        check_keys(sec, uskel["data_sections"][0], set(), "data_section")
        for v in sec["variables"]:
            check_keys(v, uvar, EXTRA_KEYS["variable"], f"variable {v['name']}")
            assert not v["name"].startswith("__eunomia_dummy")
    plain_map = next(m for m in uskel["maps"] if "sample" not in m and "mmaped" not in m)
    for m in skel["maps"]:
        check_keys(m, plain_map, EXTRA_KEYS["map"], f"map {m['name']}")
        if m.get("mmaped"):
            # libbpf's name for a data section's map: 8 chars of the object name, then the section
            assert m["name"] == skel["obj_name"][:8] + "." + m["ident"]
    for p in skel["progs"]:
        check_keys(p, uskel["progs"][0], set(), "prog")
    umember = umeta["export_types"][0]["members"][0]
    assert meta["export_types"], "each test program exports its header's structs"
    for t in meta["export_types"]:
        check_keys(t, umeta["export_types"][0], set(), "export_type")
        for member in t["members"]:
            check_keys(member, umember, EXTRA_KEYS["member"], f"member {member['name']}")
    # the same encoding as upstream's files: compact, keys sorted, one line
    text = (built(name) / "package.json").read_text()
    check_sorted(ours)
    assert text == json.dumps(ours, separators=(",", ":"), sort_keys=True) + "\n"
    assert load(built(name) / f"{name}.skel.json") == meta


def test_upstream_fixture_is_encoded_like_ours():
    """The check above is only meaningful if upstream writes this encoding."""
    text = (UPSTREAM / "bootstrap.json").read_text()
    assert text == json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True) + "\n"


def test_tutorial_opensnoop_meta():
    meta = load(built("opensnoop") / "opensnoop.skel.json")
    skel = meta["bpf_skel"]
    assert [s["name"] for s in skel["data_sections"]] == [".rodata"]
    assert [(v["name"], v["type"]) for v in skel["data_sections"][0]["variables"]] == [
        ("targ_pid", "pid_t"), ("targ_tgid", "pid_t"), ("targ_uid", "uid_t"), ("targ_failed", "bool")]
    assert [(m["ident"], m["type"]) for m in skel["maps"]] == [("start", "hash"), ("events", "perf_event_array"),
                                                               ("rodata", "array")]
    assert {p["attach"] for p in skel["progs"]} == {f"tracepoint/syscalls/sys_{d}_{c}" for d in ("enter", "exit")
                                                    for c in ("open", "openat")}
    (event,) = meta["export_types"]
    assert event["name"] == "event" and event["size"] == 8 + 4 * 4 + 16 + 255 + 1
    assert [(m["name"], m["type"]) for m in event["members"]] == [
        ("ts", "unsigned long long"), ("pid", "int"), ("uid", "int"), ("ret", "int"), ("flags", "int"),
        ("comm", "char[16]"), ("fname", "char[255]")]
    btf = ObjectSpec((built("opensnoop") / "opensnoop.bpf.o").read_bytes()).btf
    assert btf[event["type_id"]].kind == Kind.STRUCT and btf[event["type_id"]].name == "event"


def plain_object(name: str, tmp: Path) -> bytes:
    """The program compiled the way ecc compiles it, without any export step."""
    source, _header = copy_sources(name, tmp)
    vmlinux = next((Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyeunomia" / "vmlinux")
                   .glob("*/vmlinux.h"))
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    obj = tmp / "plain.o"
    subprocess.run(["clang", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", "-g", "-O2", f"-I{vmlinux.parent}",
                    "-c", str(source), "-o", str(obj)], check=True, capture_output=True, cwd=tmp)
    subprocess.run(["llvm-strip", "-g", str(obj)], check=True)
    return obj.read_bytes()


@pytest.mark.parametrize("name", ["opensnoop", "nested"])
def test_export_leaves_the_program_untouched(name, tmp_path):
    """Only .BTF grows: code, data sections, relocations and symbols are the
    compiler's own, and no helper variable leaks into the program."""
    ours = ElfFile((built(name) / f"{name}.bpf.o").read_bytes())
    plain = ElfFile(plain_object(name, tmp_path))
    assert [s.name for s in ours.sections] == [s.name for s in plain.sections]
    for a, b in zip(ours.sections, plain.sections, strict=True):
        if a.name not in (".BTF", ".BTF.ext"):  # .BTF.ext's line info names files differently
            assert ours.section_bytes(a) == plain.section_bytes(b), a.name
    assert [(s.name, s.value, s.size) for s in ours.symbols()] == [(s.name, s.value, s.size) for s in plain.symbols()]
    assert not any("eunomia" in s.name for s in ours.symbols())
    plain_btf = Btf.parse(plain.section_bytes(plain.section(".BTF")))  # type: ignore[arg-type]
    our_btf = Btf.parse(ours.section_bytes(ours.section(".BTF")))  # type: ignore[arg-type]
    assert plain_btf.find("event", Kind.STRUCT) is None  # the event is only a local variable...
    assert our_btf.find("event", Kind.STRUCT) is not None  # ...and still gets exported
    assert our_btf.types[: len(plain_btf)] == plain_btf.types  # existing type ids did not move


def test_merged_btf_passes_bpftool(tool):
    bpftool = tool("bpftool")
    done = subprocess.run([bpftool, "btf", "dump", "file", str(built("nested") / "nested.bpf.o")],
                          capture_output=True, text=True, check=True)
    assert "STRUCT 'event' size=" in done.stdout and "UNION 'pun' size=4" in done.stdout


def test_builds_are_byte_identical_across_directories(tmp_path):
    outputs = []
    for place in ("one", "two/deeper"):
        source, header = copy_sources("allglobals", tmp_path / place / "src")
        out = tmp_path / place / "out"
        cwd = tmp_path / place if place == "one" else tmp_path  # relative and absolute invocations
        done = run("ecc", os.path.relpath(source, cwd), os.path.relpath(header, cwd), "-o", str(out), cwd=cwd)
        assert done.returncode == 0, done.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert set(outputs[0]) == {"package.json", "allglobals.skel.json", "allglobals.bpf.o"}
    assert outputs[0] == outputs[1]
    obj = outputs[0]["allglobals.bpf.o"]
    assert str(tmp_path).encode() not in obj and b"pyeunomia" not in obj
    assert b"bpf_ringbuf_submit(e, 0);" in obj  # line info keeps the source text for verifier logs


def test_default_output_is_next_to_the_source(tmp_path):
    source, header = copy_sources("hist", tmp_path)
    done = run("ecc", str(source), str(header))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "package.json").exists() and (tmp_path / "hist.bpf.o").exists()
    assert "ecc: hist: 1 program, 2 maps, export types: struct hist" in done.stderr


def test_vmlinux_option_gives_the_same_package(tmp_path):
    vmlinux = next((Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyeunomia" / "vmlinux")
                   .glob("*/vmlinux.h"))
    copy = tmp_path / "vm" / "kernel-types.h"
    copy.parent.mkdir()
    shutil.copy(vmlinux, copy)
    source, header = sources("hist")
    done = run("ecc", str(source), str(header), "-o", str(tmp_path / "out"), "--vmlinux", str(copy))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "package.json").read_bytes() == (built("hist") / "package.json").read_bytes()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PROLOGUE = "#include <vmlinux.h>\n#include <bpf/bpf_helpers.h>\n"


def test_doc_comment_at_the_top_of_the_file(tmp_path):
    src = write(tmp_path / "top.bpf.c", "// SPDX-License-Identifier: GPL-2.0\n/// Says hello.\n/// @version 2.0\n"
                + PROLOGUE + "/// how loud\nconst volatile int level = 3;\n"
                "SEC(\"tp/syscalls/sys_enter_getpid\") int hello(void *ctx) { return level; }\n"
                "char LICENSE[] SEC(\"license\") = \"GPL\";\n")
    done = run("ecc", str(src), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    skel = load(tmp_path / "out" / "top.skel.json")["bpf_skel"]
    assert skel["doc"] == {"description": "Says hello.", "version": "2.0"}
    (level,) = skel["data_sections"][0]["variables"]
    assert level["description"] == "how loud" and level["value"] == 3


def test_top_comment_on_a_declaration_documents_that_declaration(tmp_path):
    src = write(tmp_path / "decl.bpf.c", "/// the only knob\nconst volatile int knob = 1;\n"
                "char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n")
    done = run("ecc", str(src), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    skel = load(tmp_path / "out" / "decl.skel.json")["bpf_skel"]
    assert "doc" not in skel
    assert skel["data_sections"][0]["variables"][0]["description"] == "the only knob"


def test_include_dirs_and_cflags(tmp_path):
    write(tmp_path / "inc" / "extra.h", "#define ANSWER VALUE\n")
    src = write(tmp_path / "src" / "flags.bpf.c", PROLOGUE + '#include "extra.h"\nconst volatile int answer = ANSWER;\n'
                "char LICENSE[] SEC(\"license\") = \"GPL\";\n")
    done = run("ecc", str(src), "-o", str(tmp_path / "out"), "-I", "inc", "--cflags", "-DVALUE=42 -Wall",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (answer,) = load(tmp_path / "out" / "flags.skel.json")["bpf_skel"]["data_sections"][0]["variables"]
    assert answer["value"] == 42


# -- bad input: one clear message, a non-zero exit, no traceback --------------


def failing(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(command("ecc") + list(args), capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ecc: error: ")
    return done.stderr


def test_clang_diagnostics_are_shown_uncut(tmp_path):
    lines = [f"const volatile int v{i} = {i}" for i in range(30)]  # 30 missing semicolons: many errors
    src = write(tmp_path / "broken.bpf.c", PROLOGUE + "\n".join(lines) + "\n")
    err = failing(str(src), "-o", str(tmp_path / "out"))
    assert err.startswith("ecc: error: clang could not compile ")
    assert f"{src}:3:26: error: expected ';' after top level declarator\nconst volatile int v0 = 0\n" in err
    assert f"{src}:21:28: error:" in err  # later diagnostics are not cut off...
    assert err.rstrip().endswith("20 errors generated.")  # ...up to clang's own limit
    assert not (tmp_path / "out").exists()


def test_missing_source_and_header(tmp_path):
    err = failing(str(tmp_path / "nope.bpf.c"))
    assert "nope.bpf.c: no such source file" in err
    source, _header = sources("hist")
    err = failing(str(source), str(tmp_path / "nope.h"), "-o", str(tmp_path))
    assert "nope.h: no such header file" in err


def test_header_without_a_struct(tmp_path):
    header = write(tmp_path / "empty.h", "#define NOTHING 1\nstruct only_declared;\n")
    source, _ = sources("hist")
    err = failing(str(source), str(header), "-o", str(tmp_path / "out"))
    assert "empty.h: declares no named struct to export" in err


def test_bad_cmdarg_points_at_the_line(tmp_path):
    src = write(tmp_path / "bad.bpf.c", PROLOGUE + '/// @cmdarg {"short": "pid"}\nconst volatile int pid = 0;\n'
                "char LICENSE[] SEC(\"license\") = \"GPL\";\n")
    err = failing(str(src), "-o", str(tmp_path / "out"))
    assert f"{src}:4: @cmdarg 'short' must be a single character" in err


def test_missing_clang_names_the_package(tmp_path):
    source, header = sources("hist")
    env = {**os.environ, "PATH": str(tmp_path)}
    env.pop("PYEUNOMIA_CLANG", None)
    err = failing(str(source), str(header), env=env)
    assert err.strip() == "ecc: error: clang not found: install it with 'apt-get install clang'"


def test_missing_bpftool_names_the_package(tmp_path):
    source, header = sources("hist")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "PYEUNOMIA_BPFTOOL": "no-bpftool-here"}
    err = failing(str(source), str(header), "-o", str(tmp_path / "out"), env=env)
    assert "apt-get install bpftool" in err and err.count("\n") == 1


def test_bad_usage(tmp_path):
    source, _ = sources("hist")
    err = failing(str(source), "--arch", "vax")
    assert "unknown architecture 'vax'" in err
    err = failing("a.bpf.c", "--cflags", "-DX='unclosed")
    assert "--cflags" in err


# -- the guesses the build makes to run steps in parallel, and their fallbacks --


def cached_vmlinux() -> Path:
    return next((Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyeunomia" / "vmlinux")
                .glob("*/vmlinux.h"))


def test_source_with_its_own_vmlinux_h(tmp_path):
    """libbpf-bootstrap style: vmlinux.h next to the source, included with quotes."""
    source, header = copy_sources("hist", tmp_path)
    shutil.copy(cached_vmlinux(), tmp_path / "vmlinux.h")
    source.write_text(source.read_text().replace("#include <vmlinux.h>", '#include "vmlinux.h"'))
    done = run("ecc", str(source), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    # the same types, and no path in the output: the very same package
    assert (tmp_path / "out" / "package.json").read_bytes() == (built("hist") / "package.json").read_bytes()


def test_source_without_vmlinux_h_and_a_header_it_does_not_include(tmp_path):
    header = write(tmp_path / "event.h", "struct event { __u32 pid; char comm[16]; };\n")
    src = write(tmp_path / "uapi.bpf.c",
                "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
                "/// @sample {\"interval\": 100}\nstruct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);"
                " __type(key, __u32); __type(value, __u64); } counts SEC(\".maps\");\n"
                "SEC(\"tp/syscalls/sys_enter_getpid\") int count(void *ctx) { __u32 k = 0;"
                " __u64 *v = bpf_map_lookup_elem(&counts, &k); if (v) __sync_fetch_and_add(v, 1); return 0; }\n"
                "char LICENSE[] SEC(\"license\") = \"GPL\";\n")
    done = run("ecc", str(src), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    meta = load(tmp_path / "out" / "uapi.skel.json")
    assert [(m["name"], m["type"]) for m in meta["export_types"][0]["members"]] == [("pid", "__u32"),
                                                                                  ("comm", "char[16]")]
    assert meta["bpf_skel"]["maps"][0]["sample"] == {"interval": 100}


def test_header_without_include_guard(tmp_path):
    """Including such a header twice fails, so the guessed units fail; the
    build redoes them knowing the source includes the header."""
    source, header = copy_sources("nested", tmp_path)
    header.write_text(header.read_text().replace("#ifndef NESTED_H\n#define NESTED_H\n", "")
                      .replace("#endif\n", ""))
    done = run("ecc", "-v", str(source), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "export.c" in done.stderr  # the exact export unit ran, after the guessed one failed
    ours, reference = load(tmp_path / "out" / "nested.skel.json"), load(built("nested") / "nested.skel.json")
    assert ours == reference


RINGBUF_SOURCE = ("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
                  "/// @intepreter INTERPRETER\n"
                  "struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(\".maps\");\n"
                  "SEC(\"tp/syscalls/sys_enter_getpid\") int count(void *ctx) { return 0; }\n"
                  "char LICENSE[] SEC(\"license\") = \"GPL\";\n")


def test_intepreter_comment_is_copied_to_the_map(tmp_path):
    """`/// @intepreter` (sic, upstream's spelling, as eunomia's profile example writes it)."""
    header = write(tmp_path / "event.h", "struct event { __u32 pid; };\n")
    value = '{"stack_trace": {"field_map": {"pid": "pid"}, "with_symbols": false}}'
    src = write(tmp_path / "st.bpf.c", RINGBUF_SOURCE.replace("INTERPRETER", value))
    done = run("ecc", str(src), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    events = load(tmp_path / "out" / "st.skel.json")["bpf_skel"]["maps"][0]
    assert events["name"] == "events" and events["intepreter"] == json.loads(value)


def test_a_bad_intepreter_comment_is_one_line(tmp_path):
    header = write(tmp_path / "event.h", "struct event { __u32 pid; };\n")
    bad = '{"stack_trace": {"field_map": {"stack": "x"}}}'
    src = write(tmp_path / "st.bpf.c", RINGBUF_SOURCE.replace("INTERPRETER", bad))
    done = run("ecc", str(src), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ecc: error: {src}:4: intepreter.stack_trace.field_map: unknown key 'stack': use pid, cpu_id, comm, "
        "kstack_sz, ustack_sz, kstack, ustack or weight"]
