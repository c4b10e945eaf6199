"""Shared test set-up.

Kernel tests use the `kernel` fixture: outside CI they skip with a stated
reason when not root; with CI=true a missing privilege or tool is a failure,
because only a feature the kernel lacks may skip a kernel test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"
# eunomia-bpf's 14 examples, upstream's code used by path (not copied into this repository)
EUNOMIA_EXAMPLES = Path(os.environ.get("PYEUNOMIA_EUNOMIA_EXAMPLES",
                                       ROOT.parent / "shared" / "fixtures" / "eunomia-examples"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip for a missing privilege or tool, or fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def skip_unsupported(feature: str, supported: bool) -> None:
    """Skip because the kernel lacks a feature; allowed even in CI."""
    if not supported:
        pytest.skip(f"this kernel lacks {feature}")


@pytest.fixture
def kernel() -> None:
    """Mark a test that loads programs into the real kernel."""
    require(os.geteuid() == 0, "kernel tests need root")
    require(Path("/sys/kernel/btf/vmlinux").exists(), "kernel tests need /sys/kernel/btf/vmlinux")


@pytest.fixture
def tool():
    def need(name: str) -> str:
        path = shutil.which(name)
        require(path is not None, f"{name} is not installed (make test installs it)")
        assert path is not None
        return path
    return need


def loaded_prog_ids() -> set[str]:
    if shutil.which("bpftool") is None:
        return set()
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[0] for line in out.splitlines() if line[:1].isdigit()}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_loaded():
    """After the whole suite no eBPF program the tests loaded may remain."""
    before = loaded_prog_ids()
    yield
    from tests.e2e.helpers import stop_leftovers

    left = stop_leftovers()  # after a failed test only: its own failure says what went wrong
    if left:
        print(f"\nstopped {len(left)} commands that failed tests left running: {left}", file=sys.stderr)
    assert_nothing_new_loaded(before)


def assert_nothing_new_loaded(before: set[str], wait: float = 5.0) -> None:
    """The kernel frees a program an RCU grace period after its last fd
    closes, so give it a moment before calling it a leak."""
    deadline = time.monotonic() + wait
    while True:
        left = loaded_prog_ids() - before
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"eBPF programs left loaded: ids {sorted(left)}"
