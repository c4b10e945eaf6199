"""Every scalar type as a global set on the command line, copied by the
program into a ring-buffer event on a real openat(2) by this process."""

from __future__ import annotations

import os
import threading

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import running

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

U64_MAX, S64_MIN = (1 << 64) - 1, -(1 << 63)

GIVEN = {  # option -> value on the command line
    "--g_u8": "200", "--g_u16": "60000", "--g_u32": "4000000000", "--g_u64": str(U64_MAX),
    "--g_s8": "-100", "--g_s16": "-30000", "--g_s32": "-2000000000", "--g_s64": str(S64_MIN),
    "--g_f32": "3.5", "--g_f64": "-2.125", "--g_color": "COLOR_BLUE", "--name": "hello world",
    "--g_data": "77", "--g_bss": "99",
}


class Opener:
    """Opens a missing file every 50 ms from this process until stopped."""

    def __init__(self, path: str):
        self.path = path
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.05):
            try:
                os.close(os.open(self.path, os.O_RDONLY))
            except OSError:
                pass

    def __enter__(self) -> Opener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def first_event(*options: str) -> dict:
    package = str(built("allglobals") / "package.json")
    with running("ecli", "run", "--json", package, "-p", str(os.getpid()), *options) as ecli, \
            Opener("/tmp/pyeu-globals-no-such-file"):
        (event,) = ecli.json_events(lambda e: e["pid"] == os.getpid())
    return event


def test_command_line_values_reach_the_event():
    args = [part for option, value in GIVEN.items() for part in (option, value)]
    event = first_event(*args, "--g_bool")
    assert event == {
        "pid": os.getpid(),
        "u8v": 200, "u16v": 60000, "u32v": 4_000_000_000, "u64v": U64_MAX,
        "s8v": -100, "s16v": -30000, "s32v": -2_000_000_000, "s64v": S64_MIN,
        "flag": True, "f32": 3.5, "f64": -2.125, "color": "COLOR_BLUE", "name": "hello world",
        "data_word": 77, "bss_word": 99,
        # computed in the program from the globals: s64 * 2^64 + u32 and u64 << 64 | u32
        "s128": S64_MIN * (1 << 64) + 4_000_000_000,
        "u128": (U64_MAX << 64) | 4_000_000_000,
    }


def test_without_options_the_initial_values_apply():
    event = first_event()
    # g_u16's @cmdarg gives a default of its own, which wins over the initializer
    expected = {"u8v": 8, "u16v": 1234, "u32v": 32, "u64v": 64, "s8v": -8, "s16v": -16, "s32v": -32, "s64v": -64,
                "flag": False, "f32": 1.5, "f64": 2.25, "color": "COLOR_GREEN", "name": "initial",
                "data_word": 7, "bss_word": 0, "s128": -64 * (1 << 64) + 32, "u128": (64 << 64) | 32}
    assert {k: event[k] for k in expected} == expected


def test_enum_by_number_and_long_option_aliases():
    event = first_event("--target_pid", str(os.getpid()), "--g_color", "1", "--g_name", "x")
    assert event["color"] == "COLOR_RED" and event["name"] == "x"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--g_u8", "256", "256 is out of range"),
    ("--g_s8", "-129", "out of range"),
    ("--name", "x" * 16, "at most 15 bytes"),
    ("--g_color", "COLOR_PINK", "one of COLOR_RED, COLOR_GREEN, COLOR_BLUE"),
])
def test_bad_values_are_refused_before_loading(option, value, message):
    from .helpers import run
    done = run("ecli", "run", str(built("allglobals") / "package.json"), option, value)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
