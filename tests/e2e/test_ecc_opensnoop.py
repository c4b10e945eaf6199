"""The tutorial's opensnoop, compiled by ecc from its two files as given and
run by ecli: its columns, filled by real opens."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import running

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC


def open_missing(path: str, times: int = 3) -> None:
    for _ in range(times):
        try:
            os.close(os.open(path, OPEN_FLAGS))
        except FileNotFoundError:
            pass


def my_comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


def test_tutorial_columns_for_real_opens():
    package = str(built("opensnoop") / "package.json")
    path = f"/tmp/pyeu-no-such-{uuid.uuid4().hex[:12]}"
    with running("ecli", "run", package, "--targ_tgid", str(os.getpid())) as ecli:
        open_missing(path)
        lines = ecli.wait_for(lambda line: line.rstrip().endswith(path))
    assert lines[0].split() == ["time", "ts", "pid", "uid", "ret", "flags", "comm", "fname"]
    cells = lines[-1].split()
    assert cells[1:] == ["0", str(os.getpid()), str(os.getuid()), "-2", str(OPEN_FLAGS), my_comm(), path]


def test_json_events_of_an_open_that_works_and_one_that_fails(tmp_path):
    package = str(built("opensnoop") / "package.json")
    present = tmp_path / "present"
    present.write_text("x")
    missing = str(tmp_path / "missing")
    with running("ecli", "run", "--json", package, "--targ_tgid", str(os.getpid())) as ecli:
        fd = os.open(present, OPEN_FLAGS)
        os.close(fd)
        open_missing(missing, 1)
        events = ecli.json_events(lambda e: e["fname"] in (str(present), missing), count=2)
    ok, failed = sorted(events, key=lambda e: e["ret"], reverse=True)
    assert ok["fname"] == str(present) and ok["ret"] >= 0
    assert failed["fname"] == missing and failed["ret"] == -2
    for e in events:
        assert (e["pid"], e["uid"], e["flags"], e["comm"]) == (os.getpid(), os.getuid(), OPEN_FLAGS, my_comm())
    assert set(ok) == {"ts", "pid", "uid", "ret", "flags", "comm", "fname"}


def test_failed_only_switch(tmp_path):
    """targ_failed, a bool global, set from the command line."""
    package = str(built("opensnoop") / "package.json")
    present = tmp_path / "present"
    present.write_text("x")
    missing = str(tmp_path / "missing")
    with running("ecli", "run", "--json", package, "--targ_tgid", str(os.getpid()), "--targ_failed") as ecli:
        os.close(os.open(present, OPEN_FLAGS))
        open_missing(missing, 1)
        ecli.json_events(lambda e: e["fname"] == missing)
        code = ecli.stop()
        rest = ecli.rest()
    assert code == 0
    assert not any(str(present) in line for line in rest)


def loaded_names() -> list[str]:
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split(" name ")[1].split()[0] for line in out.splitlines() if " name " in line]


def test_programs_are_loaded_while_running_and_gone_after():
    package = str(built("opensnoop") / "package.json")
    # bpftool shows the full names (from BTF), the kernel itself keeps 15 characters
    ours = {f"tracepoint__syscalls__sys_{d}_{c}" for d in ("enter", "exit") for c in ("open", "openat")}
    short = {n[:15] for n in ours}
    assert not (ours | short) & set(loaded_names())
    with running("ecli", "run", package, "--targ_tgid", "1") as ecli:
        assert ours <= set(loaded_names()) or short <= set(loaded_names())
        assert ecli.stop() == 0
    assert not (ours | short) & set(loaded_names())


def test_kernel_accepted_the_grown_btf():
    """libbpf goes on without BTF when the kernel refuses it, so loading alone
    proves nothing: the kernel's copy of the program's BTF must hold the event."""
    package = str(built("opensnoop") / "package.json")
    with running("ecli", "run", package, "--targ_tgid", "1") as ecli:
        progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                                          check=True).stdout)
        ids = {p["btf_id"] for p in progs if p.get("name", "").startswith("tracepoint__sys") and "btf_id" in p}
        assert len(ids) == 1
        dump = subprocess.run(["bpftool", "btf", "dump", "id", str(ids.pop())], capture_output=True, text=True,
                              check=True).stdout
        ecli.stop()
    assert "STRUCT 'event' size=296 vlen=7" in dump
    assert "'fname' type_id=" in dump
