"""The x86_64 syscall table (format/syscalls.py) that the `syscall` converter
and decoder share: the kernel's own numbers."""

from __future__ import annotations

import ctypes
import os
import platform
import re
from pathlib import Path

import pytest

from pyeunomia.format import syscalls

HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the table is x86_64's")


def test_well_known_numbers():
    t = {name: number for number, name in syscalls.table().items()}
    assert (t["read"], t["write"], t["open"], t["close"], t["kill"], t["execve"], t["openat"], t["openat2"],
            t["clone3"], t["bpf"]) == (0, 1, 2, 3, 62, 59, 257, 437, 435, 321)
    assert syscalls.syscall_name(257) == "openat" and syscalls.syscall_number("openat") == 257
    assert syscalls.syscall_name(100000) == "100000"
    with pytest.raises(ValueError):
        syscalls.syscall_number("nope")


def test_names_and_numbers_are_one_to_one():
    t = syscalls.table()
    assert len(set(t.values())) == len(t) > 350


def test_the_table_matches_the_uapi_header():
    if not HEADER.exists():
        pytest.skip("no linux-libc-dev header")
    found = {m[1]: int(m[2]) for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", HEADER.read_text(), re.M)}
    assert found and all(syscalls.table()[v] == n for n, v in found.items())


def test_the_running_kernel_agrees():
    """getpid and getppid through syscall(2) by the table's numbers."""
    libc = ctypes.CDLL(None, use_errno=True)
    t = {name: number for number, name in syscalls.table().items()}
    assert libc.syscall(t["getpid"]) == os.getpid()
    assert libc.syscall(t["getppid"]) == os.getppid()
    assert libc.syscall(t["getuid"]) == os.getuid()
