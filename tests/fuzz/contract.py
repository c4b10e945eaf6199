"""The contract every parser keeps, shared by the fuzz targets and the property tests.

Any input gives either a value or one of our errors, whose message is one
non-empty line (the command line prints it as "ecli: error: <message>"). Any
other exception (IndexError, KeyError, struct.error, RecursionError,
UnicodeError, OverflowError, TypeError, ...) is a bug: it propagates, and the
fuzzer or the test reports it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from pyeunomia.errors import EunomiaError, FetchError, PackageError, UsageError

T = TypeVar("T")

# What a package, object or BTF parser may raise (ELFError and BTFError are PackageErrors).
PARSE_ERRORS: tuple[type[Exception], ...] = (PackageError, FetchError, UsageError)
# Longest error message we accept: one terminal line, give or take an origin path.
MAX_MESSAGE = 2000
# Per-test wall-clock limit: a hang fails the test instead of stalling the suite.
TEST_SECONDS = 60


class Hang(Exception):
    """A test ran past its time limit."""


def check_message(error: BaseException) -> str:
    """Our errors say what is wrong in one line."""
    text = str(error)
    assert text.strip(), f"{type(error).__name__} with an empty message"
    assert "\n" not in text and "\r" not in text, f"{type(error).__name__} message is not one line: {text!r}"
    assert len(text) <= MAX_MESSAGE, f"{type(error).__name__} message is {len(text)} characters long"
    return text


def outcome(fn: Callable[[], T], allowed: tuple[type[Exception], ...] = PARSE_ERRORS) -> T | None:
    """fn()'s value, or None when it raised one of `allowed` with a proper message."""
    try:
        return fn()
    except allowed as e:
        check_message(e)
        return None


def raises_ours(fn: Callable[[], Any], allowed: tuple[type[Exception], ...] = PARSE_ERRORS) -> str:
    """fn() must raise one of `allowed`; returns its message."""
    try:
        fn()
    except allowed as e:
        return check_message(e)
    raise AssertionError("no error raised")


def is_ours(error: BaseException) -> bool:
    return isinstance(error, EunomiaError)


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Fail a test that runs longer than TEST_SECONDS (SIGALRM, main thread)."""

    def on_alarm(_signum: int, _frame: object) -> None:
        raise Hang(f"the test ran longer than {TEST_SECONDS} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
