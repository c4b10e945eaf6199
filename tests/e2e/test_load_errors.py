"""Load errors that name their cause, from libbpf's own log: eunomia-bpf's
mdflush example where md_flush_request has no BTF (libbpf: "failed to find
kernel BTF type ID", where the errno alone said "No such process"), and a map
with max_entries 0 (named, where the errno said "Invalid argument"). One
line, exit 1, nothing left loaded."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import compiler  # noqa: F401 - compiler is a fixture

from ..conftest import EUNOMIA_EXAMPLES, assert_nothing_new_loaded, loaded_prog_ids, require
from .helpers import command, compile_bpf, run, temp_dir

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

EXAMPLES = EUNOMIA_EXAMPLES


def refused(*args: str) -> str:
    before = loaded_prog_ids()
    done = subprocess.run([*command("ecli"), "run", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecli: error: "), done.stderr
    assert_nothing_new_loaded(before)
    return lines[0]


@functools.cache
def mdflush() -> Path:
    source = EXAMPLES / "mdflush"
    require((source / "mdflush.bpf.c").exists(), f"eunomia-bpf's examples are not at {EXAMPLES}")
    out = temp_dir()
    done = run("ecc", str(source / "mdflush.bpf.c"), str(source / "mdflush.h"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out / "package.json"


def test_mdflush_without_md_btf_names_the_missing_function():
    if Path("/sys/kernel/btf/md_mod").exists():
        pytest.skip("md's module BTF is loaded here: md_flush_request is found, the kernel judges the fentry program")
    line = refused(str(mdflush()))
    assert line.startswith("ecli: error: loading program 'md_flush_request' failed: libbpf: failed to find kernel "
                           "BTF type ID of 'md_flush_request': "), line
    assert "No such process" not in line


def test_a_map_with_max_entries_0_is_named():
    obj = compile_bpf("""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 0); __type(key, int); __type(value, int); }
    counts SEC(".maps");
SEC("tp/syscalls/sys_enter_getppid")
int p(void *ctx) { int k = 0; int *v = bpf_map_lookup_elem(&counts, &k); return v ? *v : 0; }
char LICENSE[] SEC("license") = "GPL";
""", temp_dir())
    line = refused(str(obj))
    assert line == ("ecli: error: creating map 'counts' failed: Invalid argument (its max_entries is 0: a hash map "
                    "needs at least 1)"), line
