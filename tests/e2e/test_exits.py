"""Every way a run ends leaves nothing in the kernel and says how it ended."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from .helpers import UPSTREAM, Running, command, run

BOOTSTRAP = str(UPSTREAM / "bootstrap.json")
pytestmark = pytest.mark.usefixtures("kernel")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_cleanly(sig):
    before = loaded_prog_ids()
    ecli = Running([*command("ecli"), "run", BOOTSTRAP], "attached")
    assert loaded_prog_ids() - before  # really loaded while running
    code = ecli.stop(sig)
    assert code == 0
    assert not any("Traceback" in line for line in ecli.stderr_lines)
    assert_nothing_new_loaded(before)


def test_sigkill_leaves_nothing_behind():
    before = loaded_prog_ids()
    ecli = Running([*command("ecli"), "run", BOOTSTRAP], "attached")
    assert ecli.stop(signal.SIGKILL) == -signal.SIGKILL
    assert_nothing_new_loaded(before)  # links and programs die with their fds


def test_duration_ends_run_and_flushes():
    before = loaded_prog_ids()
    start = time.monotonic()
    done = run("ecli", "run", "-d", "1", BOOTSTRAP)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("time ")
    assert 1.0 <= elapsed < 10
    assert_nothing_new_loaded(before)


@pytest.mark.parametrize("argv", [["ecli", "run", BOOTSTRAP], ["opensnoop"]], ids=["ecli", "opensnoop"])
def test_closed_pipe_is_a_quiet_exit(argv):
    before = loaded_prog_ids()
    script = f"{' '.join(command(argv[0]) + argv[1:])} | head -n 2"
    shell = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while shell.poll() is None and time.monotonic() < deadline:
        subprocess.run(["true"])  # events to write into the closed pipe
        time.sleep(0.05)
    out, err = shell.communicate(timeout=10)
    assert shell.returncode == 0
    assert len(out.splitlines()) == 2 and out.split()[0] in ("time", "PID")
    assert "Traceback" not in err and "Broken pipe" not in err
    assert_nothing_new_loaded(before)


def test_error_inside_the_event_loop_is_one_line_and_cleans_up():
    # /dev/full makes the first flush of output fail with ENOSPC, from inside
    # the poll loop, while programs are attached.
    before = loaded_prog_ids()
    with open("/dev/full", "wb") as full:
        ecli = subprocess.Popen([*command("ecli"), "run", BOOTSTRAP], stdout=full, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while ecli.poll() is None and time.monotonic() < deadline:
            subprocess.run(["true"])  # events, so there is output to flush
            time.sleep(0.05)
        _, err = ecli.communicate(timeout=10)
    assert ecli.returncode == 1
    lines = [line for line in err.splitlines() if "attached" not in line]
    assert lines == ["ecli: error: No space left on device: cannot go on"]
    assert_nothing_new_loaded(before)
