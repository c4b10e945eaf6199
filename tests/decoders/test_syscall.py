import os
import re

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.format.syscalls import GENERIC, X86_64, syscall_name, syscall_number

HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


def test_syscall_names_per_architecture():
    assert [syscall_name(n, "x86_64") for n in (0, 2, 59, 257, 435)] == ["read", "open", "execve", "openat",
                                                                         "clone3"]
    assert [syscall_name(n, "aarch64") for n in (56, 63, 80, 221)] == ["openat", "read", "fstat", "execve"]
    assert syscall_name(99999, "x86_64") == "99999"
    decode = DECODERS["syscall"].make({"arch": "aarch64"})
    assert decode(56) == "openat"


def test_numbers_from_names():
    assert syscall_number("openat", "x86_64") == 257
    assert syscall_number("sys_openat", "aarch64") == 56
    assert syscall_number("0x3b", "x86_64") == 59
    with pytest.raises(ValueError, match="unknown system call 'nosuch'"):
        syscall_number("nosuch", "x86_64")


def test_x86_64_table_is_the_headers_one():
    if not os.path.exists(HEADER):
        pytest.skip(f"{HEADER} is not installed (linux-libc-dev)")
    with open(HEADER) as f:
        found = {int(n): name for name, n in re.findall(r"#define __NR_(\w+)\s+(\d+)", f.read())}
    assert found == X86_64
    assert len(GENERIC) > 300
