"""What a package names itself and says about itself: any object name loads
(libbpf gets an encodable name, and the globals are found under the map
prefix it derives from it), and none of it reaches the terminal raw."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from .helpers import UPSTREAM, compile_bpf, run, running, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

BOOTSTRAP = UPSTREAM / "bootstrap.json"

MARKED_EVENTS = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct event { unsigned int pid; unsigned long long marker; };
const volatile unsigned long long marker = 0;
struct event *__eunomia_dummy_event_ptr __attribute__((unused));  /* puts struct event in BTF */
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } events SEC(".maps");
SEC("tp/syscalls/sys_enter_getppid")
int probe(void *ctx)
{
    struct event *e;
    if (!marker)
        return 0;  /* the global was not written: no events at all */
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->marker = marker;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def bootstrap_named(tmp: Path, obj_name: str, **skel: object) -> Path:
    doc = json.loads(BOOTSTRAP.read_text())
    doc["meta"]["bpf_skel"]["obj_name"] = obj_name
    doc["meta"]["bpf_skel"].update(skel)
    path = tmp / "package.json"
    path.write_text(json.dumps(doc))  # ASCII JSON: a lone surrogate is written as \ud800
    return path


def test_object_file_name_that_is_not_utf8(tool):
    """ecli names a plain object after its file: b'\\xff.bpf.o' loads, and
    the global set on the command line is written (events carry it)."""
    tool("clang")
    tmp = temp_dir()
    obj = compile_bpf(MARKED_EVENTS, tmp)
    odd = tmp / os.fsdecode(b"\xff.bpf.o")
    obj.rename(odd)
    before = loaded_prog_ids()
    with running("ecli", "run", "-j", str(odd), "--marker", "424242") as ecli:
        os.getppid()  # attached (the ready line says so): the program sees this call
        events = ecli.json_events(lambda e: e["pid"] == os.getpid())
        assert events[0]["marker"] == 424242
        assert ecli.stop() == 0
    assert "ecli: \\xff: 1 program attached" in "".join(ecli.stderr_lines)
    assert_nothing_new_loaded(before)


@pytest.mark.parametrize("obj_name", ["\ud800", "prög-x_bpf"], ids=["surrogate", "non-ascii"])
def test_package_obj_name_libbpf_cannot_take_as_is(obj_name):
    """obj_name from package.json: a lone surrogate, or a name libbpf would
    sanitise (ö, -). Each loads, and the global is written: with
    min_duration_ns set bootstrap reports no execs, only exits."""
    tmp = temp_dir()
    package = bootstrap_named(tmp, obj_name)
    before = loaded_prog_ids()
    with running("ecli", "run", "-j", str(package), "--min_duration_ns", "1") as ecli:
        child = subprocess.Popen(["sleep", "0.01"])
        child.wait(10)
        seen = ecli.json_events(lambda e: e["pid"] == child.pid)
        assert ecli.stop() == 0
    assert seen[0]["exit_event"] is True  # no exec event came first: the global took effect
    assert not any("Traceback" in line for line in ecli.stderr_lines)
    assert_nothing_new_loaded(before)


HOSTILE_NAME = "evil\x1b[2J\x1b]0;owned\x07_bpf"
HOSTILE_DOC = {"brief": "brief \x1b[31mred\x1b[0m text",
               "details": "first line\n\x1b[2Jsecond\r line\n\tindented"}


def hostile_package(tmp: Path) -> Path:
    doc = json.loads(BOOTSTRAP.read_text())
    skel = doc["meta"]["bpf_skel"]
    variables = skel["data_sections"][0]["variables"]
    variables[0]["cmdarg"] = {"help": "help \x1b[5mblinks\x1b[0m"}
    return bootstrap_named(tmp, HOSTILE_NAME, doc=HOSTILE_DOC, data_sections=skel["data_sections"])


def test_program_help_escapes_a_packages_text():
    """--help shows the package's doc and option help with ESC escaped; the
    details keep their lines (a newline cannot rewrite the screen; \\r can,
    and is escaped)."""
    done = run("ecli", "run", str(hostile_package(temp_dir())), "--help", env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout and "\r" not in done.stdout
    lines = done.stdout.splitlines()
    assert "brief \\x1b[31mred\\x1b[0m text" in lines
    assert "help \\x1b[5mblinks\\x1b[0m" in done.stdout
    assert lines[-3:] == ["first line", "\\x1b[2Jsecond\\r line", "        indented"]


def test_attached_line_escapes_the_object_name():
    before = loaded_prog_ids()
    done = run("ecli", "run", "-d", "0.5", str(hostile_package(temp_dir())))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stderr
    assert "ecli: evil\\x1b[2J\\x1b]0;owned\\x07: 2 programs attached" in done.stderr
    assert_nothing_new_loaded(before)


@pytest.mark.parametrize("argv", [
    ["ecc", "{tmp}/\x1b[31mb.bpf.c"],
    ["ecc", "{tmp}/real.bpf.c", "{tmp}/\x1b]0;owned\x07.h"],
    ["eunomia-exporter", "-c", "{tmp}/\x1b[31mx.yaml", "--check"],
    ["eunomia-exporter", "-c", "{tmp}/x.yaml", "--web.config.file", "{tmp}/\x1b[31mw.yml"],
    ["ecli", "run", "{tmp}/\x1b[2Jgone.json"],
])
def test_file_names_in_errors_reach_the_terminal_escaped(argv):
    tmp = temp_dir()
    (tmp / "real.bpf.c").write_text("int x;\n")
    (tmp / "x.yaml").write_text("programs: []\n")
    done = run(argv[0], *(a.format(tmp=tmp) for a in argv[1:]))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr and "\\x1b" in done.stderr, done.stderr
