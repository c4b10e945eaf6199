"""@column members and their decoders against real activity: kill(2) of a
missing pid and of a child, connect(2) to closed ports on 127.0.0.1 and ::1,
a child exiting with code 3 and one killed by SIGKILL
(tests/e2e/programs/colmeta). The table shows the columns decoded, -j the raw
members plus NAME_text keys."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from typing import Any

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import running

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

CLOSED_PORT = 9  # discard: nothing listens on it here


def missing_pid() -> int:
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def activity() -> tuple[int, int, int]:
    """(missing pid killed, pid exiting with 3, pid killed by SIGKILL)."""
    gone = missing_pid()
    try:
        os.kill(gone, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    for family, address in ((socket.AF_INET, ("127.0.0.1", CLOSED_PORT)), (socket.AF_INET6, ("::1", CLOSED_PORT))):
        with socket.socket(family) as s:
            with pytest.raises(ConnectionRefusedError):
                s.connect(address)
    three = subprocess.Popen(["sh", "-c", "exit 3"])
    assert three.wait() == 3
    sleeper = subprocess.Popen(["sleep", "30"])
    sleeper.kill()
    assert sleeper.wait() == -signal.SIGKILL
    return gone, three.pid, sleeper.pid


def test_columns_table_and_json():
    package = str(built("colmeta") / "package.json")
    me = os.getpid()
    comm = open("/proc/self/comm").read().strip()
    # -T and -e after the package name: the per-package parser takes them too
    with running("ecli", "run", package, "-p", str(me), "-T", "-e") as table, \
            running("ecli", "run", "-j", package, "-p", str(me)) as js:
        _gone, three, killed = activity()
        lines = table.wait_for(lambda line: "signal 9 (SIGKILL)" in line)
        events = [json.loads(line) for line in js.wait_for(
            lambda line: json.loads(line)["kind"] == 3 and json.loads(line)["pid"] == killed)]

    header = lines[0]
    assert header == ("TIME     EVENT       PID COMM             SIG      ERR          ADDR             PORT "
                      "STATUS              LAT(ms) UID\n")
    rows = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines[1:]]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines[1:])
    assert all(re.fullmatch(r".* [ \d]{3}\d\.\d{3} root\n", row, re.S) for row in rows), rows
    cut = [row[:-14] + "LAT root\n" for row in rows]  # LAT(ms): 8 wide, right-aligned; this run's own latency
    zero_addr = "0" * 32
    expected = [
        f"kill    {me:7d} {comm:<16} SIGUSR1  ESRCH        {zero_addr}     0 0                  LAT root\n",
        f"connect {me:7d} {comm:<16} 0        ECONNREFUSED 127.0.0.1           9 0                  LAT root\n",
        f"connect {me:7d} {comm:<16} 0        ECONNREFUSED ::1                 9 0                  LAT root\n",
        f"exit    {three:7d} {'sh':<16} 0        ok           {zero_addr}     0 code 3             LAT root\n",
        f"kill    {me:7d} {comm:<16} SIGKILL  ok           {zero_addr}     0 0                  LAT root\n",
        f"exit    {killed:7d} {'sleep':<16} 0        ok           {zero_addr}     0 signal 9 (SIGKILL) LAT root\n",
    ]
    for line in expected:
        assert line in cut, (line, cut)
    exits = [row for row in rows if row.startswith("exit")]
    assert all(row.endswith(" 0.000 root\n") for row in exits)  # an exit has no latency: 0 ns

    by_kind: dict[tuple[int, int], dict[str, Any]] = {}
    for e in events:
        by_kind.setdefault((e["kind"], e["af"] or e["sig"] or e["pid"]), e)
    kill_missing = by_kind[(1, signal.SIGUSR1)]
    assert {k: kill_missing[k] for k in ("pid", "sig", "err", "kind_text", "sig_text", "err_text")} == {
        "pid": me, "sig": signal.SIGUSR1, "err": 3, "kind_text": "kill", "sig_text": "SIGUSR1",
        "err_text": "ESRCH"}
    assert kill_missing["lat_ns_text"] == "%.3f" % (kill_missing["lat_ns"] / 1e6)
    v4, v6 = by_kind[(2, socket.AF_INET)], by_kind[(2, socket.AF_INET6)]
    assert (v4["addr"][:4], v4["port"], v4["addr_text"], v4["port_text"], v4["err"], v4["err_text"]) == (
        [127, 0, 0, 1], socket.htons(CLOSED_PORT), "127.0.0.1", "9", 111, "ECONNREFUSED")
    assert (v6["addr"], v6["addr_text"], v6["port_text"]) == ([0] * 15 + [1], "::1", "9")
    assert (by_kind[(3, three)]["status"], by_kind[(3, three)]["status_text"]) == (3 << 8, "code 3")
    assert (by_kind[(3, killed)]["status"], by_kind[(3, killed)]["status_text"]) == (9, "signal 9 (SIGKILL)")
    assert by_kind[(3, killed)]["uid_text"] == "root" and by_kind[(3, killed)]["comm"] == "sleep"


def test_without_extended_the_uid_column_is_left_out():
    package = str(built("colmeta") / "package.json")
    me = os.getpid()
    with running("ecli", "run", package, "--pid", str(me)) as table:
        sleeper = subprocess.Popen(["sleep", "30"])
        sleeper.kill()
        sleeper.wait()
        lines = table.wait_for(lambda line: line.startswith("exit") and f" {sleeper.pid} " in line)
    assert lines[0] == ("EVENT       PID COMM             SIG      ERR          ADDR             PORT "
                        "STATUS              LAT(ms)\n")
    assert lines[-1] == (f"exit    {sleeper.pid:7d} sleep            0        ok           {'0' * 32}     0 "
                         "signal 9 (SIGKILL)    0.000\n")


def test_ecc_refuses_a_bad_column_at_its_line(tmp_path):
    from tests.compiler.ecc_programs import copy_sources

    from .helpers import run

    source, header = copy_sources("colmeta", tmp_path)
    text = header.read_text()
    header.write_text(text.replace('"decoder": "signal"', '"decoder": "signals"'))
    line = 1 + text[:text.index('"decoder": "signal"')].count("\n")  # the comment's line
    done = run("ecc", str(source), str(header), "-o", str(tmp_path / "out"))
    assert done.returncode != 0
    assert f"colmeta.bpf.h:{line}: member 'sig': unknown decoder 'signals': use one of " in done.stderr
    header.write_text(text.replace('"family": "af"', '"family": "family"'))
    done = run("ecc", str(source), str(header), "-o", str(tmp_path / "out"))
    assert "member 'addr': decoder inet: 'family' is not another member of the struct" in done.stderr
