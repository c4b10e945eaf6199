"""Every way a run can be refused: one line on stderr saying what is wrong and
what to do, a non-zero exit, no traceback, and nothing left in the kernel."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from pyeunomia.kernel import features

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids, require
from ..hostile import HEADERS_THEN_DRIPPED_BODY, fifo
from ..hostile import dripping_server as dripping
from .helpers import UPSTREAM, command, compile_bpf, run, temp_dir

BOOTSTRAP = UPSTREAM / "bootstrap.json"
pytestmark = pytest.mark.usefixtures("kernel")


def refused(args: list[str], status: int = 1, prefix: list[str] | None = None,
            timeout: float = 60) -> str:
    """Run ecli, expect exit `status` and exactly one stderr line; return it."""
    before = loaded_prog_ids()
    done = subprocess.run((prefix or []) + command("ecli") + args, capture_output=True, text=True,
                          timeout=timeout)
    lines = done.stderr.splitlines()
    assert done.returncode == status, done.stderr
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("ecli: error: ")
    assert done.stdout == ""
    assert_nothing_new_loaded(before)
    return lines[0]


def corrupt(tmp: Path, change) -> str:
    doc = json.loads(BOOTSTRAP.read_text())
    change(doc)
    path = tmp / "bad.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_missing_capability():
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is missing")
    line = refused(["run", str(BOOTSTRAP)], prefix=["setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin"])
    assert "needs CAP_BPF" in line and "run as root" in line


def test_missing_kernel_btf():
    require(shutil.which("unshare") is not None, "unshare (util-linux) is missing")
    # A private mount namespace where /sys/kernel/btf is an empty tmpfs.
    script = 'mount -t tmpfs none /sys/kernel/btf && exec "$@"'
    line = refused(["run", str(BOOTSTRAP)], prefix=["unshare", "-m", "sh", "-c", script, "sh"])
    assert "/sys/kernel/btf/vmlinux is missing" in line and "CONFIG_DEBUG_INFO_BTF" in line


@pytest.mark.parametrize(("change", "expect"), [
    (lambda d: d.update(bpf_object="!!not base64!!"), "not valid base64"),
    (lambda d: d.update(bpf_object=base64.b64encode(b"plain bytes").decode()), "not zlib data"),
    (lambda d: d.update(bpf_object_size=d["bpf_object_size"] + 1), "bpf_object_size says"),
    (lambda d: d.update(bpf_object=base64.b64encode(zlib.compress(b"MZ not an elf")).decode(),
                        bpf_object_size=13), "not an ELF object"),
    (lambda d: d.pop("meta"), "missing 'meta'"),
    (lambda d: d["meta"]["bpf_skel"].pop("obj_name"), "missing 'obj_name'"),
    (lambda d: d["meta"]["bpf_skel"].update(maps="x"), "'maps' must be a list"),
])
def test_corrupted_package(change, expect):
    line = refused(["run", corrupt(temp_dir(), change)])
    assert expect in line


def test_not_json_at_all():
    path = temp_dir() / "x.json"
    path.write_text("{ this is not json")
    assert "invalid JSON" in refused(["run", str(path)])


def test_unreachable_url():
    line = refused(["run", "http://127.0.0.1:9/package.json"])
    assert "cannot fetch" in line and "check the address" in line


def test_a_dripping_download_meets_the_deadline():
    """One byte every 0.2 s never trips a per-read timeout; --timeout bounds it all."""
    with dripping(*HEADERS_THEN_DRIPPED_BODY) as url:
        start = time.monotonic()
        line = refused(["run", "--timeout", "1", "-d", "0.3", f"{url}/x.json"], timeout=15)
        took = time.monotonic() - start
    assert line == f"ecli: error: {url}/x.json: no complete answer within 1 s: check the address and the network"
    assert took < 5


def test_timeout_help_gives_the_default():
    from pyeunomia.source import FETCH_TIMEOUT_S

    done = run("ecli", "run", "--help")
    assert f"(default: {FETCH_TIMEOUT_S:g})" in " ".join(done.stdout.split())


def test_fifo_is_refused_without_blocking():
    path = fifo(temp_dir() / "pkg.json")
    line = refused(["run", str(path)], timeout=15)
    assert line == f"ecli: error: {path}: not a regular file (a FIFO): pass a package file, or '-' for standard input"


def test_missing_file():
    line = refused(["run", "/nonexistent/package.json"])
    assert "no such file, URL or built-in package" in line


@pytest.mark.parametrize(("args", "expect"), [
    (["--min_duration_ns", "abc"], "expected an integer from 0 to 18446744073709551615, got 'abc'"),
    (["--min_duration_ns", "-1"], "expected an integer from 0 to 18446744073709551615"),
    (["--min_duration_ns", "18446744073709551616"], "out of range"),
    (["--no_such_option", "1"], "unrecognized arguments: --no_such_option"),
])
def test_bad_program_option(args, expect):
    line = refused(["run", str(BOOTSTRAP), *args], status=2)
    assert expect in line


def test_runner_option_after_package():
    line = refused(["run", str(BOOTSTRAP), "-j"], status=2)
    assert "-j is a runner option: put it before PACKAGE" in line


GLOBALS_PROGRAM = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
const volatile char name[8] = "abc";
const volatile unsigned char small = 1;
SEC("tp/syscalls/sys_enter_getppid")
int probe(void *ctx) { return name[0] + small; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize(("args", "expect"), [
    (["--name", "12345678"], "expected a string of at most 7 bytes"),
    (["--small", "256"], "expected an integer from 0 to 255"),
    (["--small", "1.5"], "expected an integer from 0 to 255, got '1.5'"),
])
def test_bad_option_of_plain_object(args, expect, tool):
    tool("clang")
    obj = compile_bpf(GLOBALS_PROGRAM, temp_dir())
    line = refused(["run", str(obj), *args], status=2)
    assert expect in line


def test_verifier_rejection_shows_log_tail(tool):
    tool("clang")
    obj = compile_bpf("""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tp/syscalls/sys_enter_getppid")
int deref_null(void *ctx) { volatile int *p = 0; return *p; }
char LICENSE[] SEC("license") = "GPL";
""", temp_dir())
    before = loaded_prog_ids()
    done = run("ecli", "run", str(obj))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    first, *tail = done.stderr.splitlines()
    assert first.startswith("ecli: error: the verifier rejected program 'deref_null'")
    assert any("invalid mem access" in line for line in tail), done.stderr
    assert_nothing_new_loaded(before)


def test_missing_tracepoint_is_an_attach_error(tool):
    tool("clang")
    obj = compile_bpf("""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tp/no_such_category/no_such_event")
int probe(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
""", temp_dir())
    line = refused(["run", str(obj)])
    assert "cannot attach program 'probe' (tp/no_such_category/no_such_event)" in line
    assert "does not exist" in line


def test_kprobe_without_kernel_support(tool):
    if features.has_kprobes():
        pytest.skip("this kernel has kprobes; the refusal path is for kernels without them")
    tool("clang")
    obj = compile_bpf("""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_sys_openat2")
int probe(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
""", temp_dir())
    line = refused(["run", str(obj)])
    assert "does not support kprobes" in line and "'probe'" in line


def test_program_type_the_kernel_refuses(tool):
    """fentry needs BTF-typed attach support the kernel may refuse (EPERM
    here): one line naming the program type, nothing loaded."""
    tool("clang")
    obj = compile_bpf("""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("fentry/do_sys_openat2")
int on_open(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
""", temp_dir())
    before = loaded_prog_ids()
    done = run("ecli", "run", "-d", "0.5", str(obj))
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        pytest.skip("this kernel loads fentry programs")
    lines = [line for line in done.stderr.splitlines() if "attached" not in line]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("ecli: error: this kernel does not support fentry programs: "
                               "the kernel refused to load 'on_open'"), lines[0]
    assert_nothing_new_loaded(before)
