"""Upstream ecc's own command-line options (its compiler/cmd/src/config/mod.rs)
with the real ecc and clang: each does what upstream's does, or is refused in
one line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pyeunomia.compiler.upstream import wasm_header
from tests.conftest import EUNOMIA_EXAMPLES
from tests.e2e.helpers import command, run

from .ecc_programs import compiler, sources  # noqa: F401 - compiler is a fixture

pytestmark = pytest.mark.usefixtures("compiler")

EXAMPLES = EUNOMIA_EXAMPLES
NEEDS_FOO = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#ifndef FOO
#error "FOO is not defined"
#endif
#include "extra.h"
const volatile int foo = FOO;
const volatile int bar = BAR;
SEC("tracepoint/syscalls/sys_enter_openat")
int on_open(void *ctx) { return foo + bar; }
char LICENSE[] SEC("license") = "GPL";
"""


def ecc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = run("ecc", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done


def refused(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    done = subprocess.run(command("ecc") + list(args), capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    return done.returncode, done.stderr


def values(package: Path) -> dict[str, object]:
    doc = json.loads(package.read_text())
    return {v["name"]: v.get("value") for s in doc["meta"]["bpf_skel"]["data_sections"] for v in s["variables"]}


def test_additional_cflags_one_argument_each(tmp_path: Path):
    """`-a "-DFOO=1" -a "-DMAX_ENTRIES=1024"`, as upstream's README writes it;
    a relative -I is taken from where ecc was run, like --cflags'."""
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "extra.h").write_text("#define BAR 5\n")
    (tmp_path / "p.bpf.c").write_text(NEEDS_FOO)
    ecc("p.bpf.c", "-a", "-DFOO=7", "-a", "-Iinc", "--additional-cflags", "-DUNUSED=1", cwd=tmp_path)
    assert values(tmp_path / "package.json") == {"foo": 7, "bar": 5}
    ecc("p.bpf.c", "--additional-cflags=-DFOO=3", "-a=-Iinc", "--cflags", "-DIGNORED -DALSO", cwd=tmp_path)
    assert values(tmp_path / "package.json") == {"foo": 3, "bar": 5}
    # one argument: "-DFOO=1 -Iinc" is one define whose value is "1 -Iinc", so extra.h is not found
    done = run("ecc", "p.bpf.c", "-a", "-DFOO=1 -Iinc", cwd=tmp_path)
    assert done.returncode == 1 and "'extra.h' file not found" in done.stderr


def test_output_path_and_no_package(tmp_path: Path):
    source, header = sources("hist")
    ecc(str(source), str(header), "--output-path", str(tmp_path / "a"), "-n")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["hist.bpf.o", "hist.skel.json"]
    ecc(str(source), str(header), "-o", str(tmp_path / "b"), "--no-generate-package-json")
    assert (tmp_path / "a" / "hist.skel.json").read_bytes() == (tmp_path / "b" / "hist.skel.json").read_bytes()


def test_yaml_outputs_hold_what_the_json_ones_do(tmp_path: Path):
    source, header = sources("hist")
    ecc(str(source), str(header), "-o", str(tmp_path / "json"))
    done = ecc(str(source), str(header), "-o", str(tmp_path / "yaml"), "-y")
    assert sorted(p.name for p in (tmp_path / "yaml").iterdir()) == ["hist.bpf.o", "hist.skel.yaml", "package.yaml"]
    assert "ecc: wrote " + str(tmp_path / "yaml" / "package.yaml") in done.stderr
    skel = yaml.safe_load((tmp_path / "yaml" / "hist.skel.yaml").read_text())
    assert skel == json.loads((tmp_path / "json" / "hist.skel.json").read_text())
    package = yaml.safe_load((tmp_path / "yaml" / "package.yaml").read_text())
    assert package == json.loads((tmp_path / "json" / "package.json").read_text())
    assert (tmp_path / "yaml" / "package.yaml").read_text().startswith("bpf_object: ")  # block style, keys sorted


def test_wasm_header_carries_the_package(tmp_path: Path):
    """ewasm-skel.h, upstream's template, with the package as a C string
    that gives back the package byte for byte."""
    source, header = sources("hist")
    ecc(str(source), str(header), "-o", str(tmp_path), "--wasm-header")
    text = (tmp_path / "ewasm-skel.h").read_text()
    match = re.fullmatch(r'\n    // auto generated\. do not edit\.\n    #ifndef EWASM_JSON_INCLUDE_H_\n'
                         r'    #define EWASM_JSON_INCLUDE_H_\n    char\* program_data = "(.*)";\n    #endif\n    ',
                         text, re.S)
    assert match is not None, text[:300]
    assert printed_by_c(tmp_path, text) + "\n" == (tmp_path / "package.json").read_text()


def printed_by_c(tmp_path: Path, header: str) -> str:
    """What a C program including `header` prints for program_data."""
    clang = shutil.which("clang")
    assert clang is not None
    (tmp_path / "ewasm-skel.h").write_text(header)
    probe = tmp_path / "probe.c"
    probe.write_text('#include "ewasm-skel.h"\n#include <stdio.h>\nint main(void) { fputs(program_data, stdout); }\n')
    subprocess.run([clang, "-o", str(tmp_path / "probe"), str(probe)], check=True, capture_output=True)
    return subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True).stdout


def test_wasm_header_escapes_backslashes_too(tmp_path: Path):
    """Upstream escapes only quotes: a JSON escape such as \\n (a newline in
    a description) became a raw newline, and the JSON invalid."""
    package = json.dumps({"meta": {"doc": {"details": 'two\nlines, "quoted", a \\ backslash'}}})
    assert "\\n" in package and '\\"' in package and "\\\\" in package
    assert printed_by_c(tmp_path, wasm_header(package)) == package


def test_header_only_as_sigsnoops_readme(tmp_path: Path):
    """`ecc sigsnoop.h --header-only`: an object whose BTF carries the
    header's struct, named as upstream names it, and no program."""
    header = EXAMPLES / "sigsnoop" / "sigsnoop.h"
    if not header.exists():
        pytest.skip(f"eunomia-bpf's examples are not at {EXAMPLES}")
    shutil.copy(header, tmp_path)
    ecc("sigsnoop.h", "--header-only", cwd=tmp_path)
    doc = json.loads((tmp_path / "package.json").read_text())
    assert doc["meta"]["bpf_skel"]["progs"] == [] and doc["meta"]["bpf_skel"]["data_sections"] == []
    exported = doc["meta"]["export_types"]
    assert [(t["name"], t["size"]) for t in exported] == [("event", 32)]
    assert [(m["name"], m["type"], m["offset"]) for m in exported[0]["members"]] == [
        ("pid", "unsigned int", 0), ("tpid", "unsigned int", 4), ("sig", "int", 8), ("ret", "int", 12),
        ("comm", "char[16]", 16)]
    assert (tmp_path / "sigsnoop.bpf.o").exists() and (tmp_path / "sigsnoop.skel.json").exists()
    (tmp_path / "broken.h").write_text("struct event { int x; unknown_t y; };\n")
    done = run("ecc", "broken.h", "--header-only", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("ecc: error: clang could not compile broken.h:\n")
    assert "unknown type name 'unknown_t'" in done.stderr and "/tmp/ecc-" not in done.stderr  # no made-up unit
    assert refused("sigsnoop.h", "other.h", "--header-only", cwd=tmp_path)[1] == (
        "ecc: error: --header-only takes one header as SOURCE, and its structs are the export types: "
        "leave out other.h\n")


def test_workspace_include_dirs_come_first(tmp_path: Path):
    """Upstream's workspace: include/ and include/vmlinux/<arch>/ are searched first."""
    ws = tmp_path / "ws"
    (ws / "include").mkdir(parents=True)
    (ws / "include" / "extra.h").write_text("#define BAR 11\n")
    (tmp_path / "extra.h").write_text("#define BAR 99\n")  # beside the source: found after the workspace's
    (tmp_path / "p.bpf.c").write_text(NEEDS_FOO.replace('#include "extra.h"', "#include <extra.h>"))
    ecc("p.bpf.c", "-w", str(ws), "-a", "-DFOO=1", cwd=tmp_path)
    assert values(tmp_path / "package.json") == {"foo": 1, "bar": 11}
    assert refused("p.bpf.c", "-w", str(tmp_path / "nothing"), cwd=tmp_path) == (
        2, f"ecc: error: -w {tmp_path / 'nothing'}: no such directory: pass upstream's workspace (include/, bin/)\n")


def test_clang_and_strip_binaries(tmp_path: Path):
    """-c/-l pick the tools: a wrapper that records its use shows it ran."""
    source, header = sources("hist")
    log = tmp_path / "used"
    for name, real in (("myclang", "clang"), ("mystrip", "llvm-strip")):
        target = shutil.which(real) or shutil.which(real + "-14") or real
        wrapper = tmp_path / name
        wrapper.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec "{target}" "$@"\n')
        wrapper.chmod(0o755)
    ecc(str(source), str(header), "-o", str(tmp_path / "out"), "-c", str(tmp_path / "myclang"),
        "-l", str(tmp_path / "mystrip"))
    used = log.read_text().split()
    assert "myclang" in used and used.count("mystrip") == 1
    assert refused(str(source), "-c", str(tmp_path / "no-clang")) == (
        2, f"ecc: error: -c/--clang-bin {tmp_path / 'no-clang'}: no such program: pass the path of an executable\n")


def test_standalone_is_refused_in_one_line(tmp_path: Path):
    source, header = sources("hist")
    assert refused(str(source), str(header), "-s") == (
        2, "ecc: error: -s/--standalone builds upstream's C runner into an executable, which pyeunomia has no "
           "counterpart of: run the package with 'ecli run OUTDIR/package.json'\n")
    assert not (source.parent / "package.json").exists()
