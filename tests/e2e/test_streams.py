"""Closed or broken standard streams: a command that needs the stream says so
in one line and exits 1; one that does not (opensnoop without stderr, the
exporter serving without stdout) runs as usual; the closed descriptor numbers
never go to the files the command opens."""

from __future__ import annotations

import http.client
import os
import subprocess
import time

import pytest

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from ..exporter.live import READY, free_port
from .helpers import ROOT, UPSTREAM, Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

BOOTSTRAP = str(UPSTREAM / "bootstrap.json")
TUTORIAL = str(ROOT / "examples" / "opensnoop.yaml")
NO_STDOUT = "standard output is closed: redirect it to a file or /dev/null"


def closing(redirect: str, argv: list[str]) -> list[str]:
    """`argv` started by a shell with `redirect` applied (e.g. '>&-')."""
    return ["sh", "-c", f'exec "$@" {redirect}', "sh", *argv]


def one_line_failure(argv: list[str], redirect: str, stdin: int | None = None) -> str:
    before = loaded_prog_ids()
    done = subprocess.run(closing(redirect, argv), stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert_nothing_new_loaded(before)
    return lines[0]


@pytest.mark.parametrize("argv", [
    [*command("opensnoop"), "-d", "1"],
    [*command("ecli"), "run", "-d", "1", BOOTSTRAP],
    [*command("ecli"), "list"],
    [*command("eunomia-exporter"), "--check", "-c", TUTORIAL],
    [*command("ecc"), "--help"],
], ids=["opensnoop", "ecli-run", "ecli-list", "exporter-check", "ecc-help"])
def test_closed_stdout_is_one_line(argv):
    prog = {"pyeunomia.cli.opensnoop": "opensnoop", "pyeunomia.cli.ecli": "ecli",
            "pyeunomia.cli.exporter": "eunomia-exporter", "pyeunomia.cli.ecc": "ecc"}[argv[2]]
    assert one_line_failure(argv, ">&-") == f"{prog}: error: {NO_STDOUT}"


def test_closed_stdin_for_a_package_from_stdin():
    line = one_line_failure([*command("ecli"), "run", "-"], "<&-")
    assert line == "ecli: error: standard input is closed: redirect it from a file or a pipe"


@pytest.mark.parametrize("argv", [[*command("opensnoop"), "--help"], [*command("ecli"), "--version"]],
                         ids=["opensnoop-help", "ecli-version"])
def test_help_to_a_full_disk_is_an_output_error(argv):
    done = subprocess.run(closing(">/dev/full", argv), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    name = "opensnoop" if "opensnoop" in argv[2] else "ecli"
    assert done.stderr.splitlines() == [f"{name}: error: No space left on device: cannot go on"]


def test_closed_stderr_still_prints_events():
    """Messages go nowhere; the events still come, and the run ends as usual."""
    tmp = temp_dir()
    target = tmp / "seen-without-stderr"
    target.write_text("x")
    before = loaded_prog_ids()
    snoop = subprocess.Popen(closing("2>&-", [*command("opensnoop"), "-d", "3"]), stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while snoop.poll() is None and time.monotonic() < deadline:
        with open(target):  # opened until opensnoop, attached by now, sees it and -d ends it
            pass
        time.sleep(0.05)
    out, _ = snoop.communicate(timeout=30)
    assert snoop.returncode == 0
    assert str(target) in out
    assert_nothing_new_loaded(before)


def test_exporter_serves_without_stdout():
    """Serving needs no stdout; fd 1 stays /dev/null, never a map, a ring or the socket."""
    port = free_port()
    before = loaded_prog_ids()
    argv = [*command("eunomia-exporter"), "-c", TUTORIAL, "--listen", f"127.0.0.1:{port}"]
    exporter = Running(closing(">&-", argv), READY)
    try:
        assert os.readlink(f"/proc/{exporter.proc.pid}/fd/1") == "/dev/null"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        assert resp.status == 200 and "eunomia_file_open_counter" in body
    finally:
        code = exporter.stop()
    assert code == 0, exporter.stderr_lines
    assert not any("Traceback" in line or "error" in line for line in exporter.stderr_lines)
    assert_nothing_new_loaded(before)
