"""Running where the kernel's own BTF is missing or unusable, against the real
kernel: each command runs in a mount namespace of its own where
/sys/kernel/btf/vmlinux is an empty file (or gone), as on a kernel built
without BTF. A package made with `ecc --btfgen` brings this kernel's minimal
BTF, `--btf PATH` names one, and without either the error is one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyeunomia import open_package
from pyeunomia.runner import corebtf, kernelbtf
from pyeunomia.runner.program import Program

from ..conftest import FIXTURES, assert_nothing_new_loaded, loaded_prog_ids, require
from ..exporter.live import free_port
from .helpers import ROOT, UPSTREAM, Running, command, run, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

HIDE = {
    "empty": 'mount -t tmpfs none /sys/kernel/btf && : > /sys/kernel/btf/vmlinux && exec "$@"',
    "gone": 'mount -t tmpfs none /sys/kernel/btf && exec "$@"',
}
PROGRAM = ROOT / "tests" / "e2e" / "programs" / "execmin"
TUTORIAL = ROOT / "examples" / "opensnoop.yaml"


@pytest.fixture
def compiler(tool) -> None:  # type: ignore[no-untyped-def]
    for name in ("clang", "llvm-strip", "bpftool", "unshare"):
        tool(name)
    require(os.path.exists("/usr/include/bpf/bpf_helpers.h"), "libbpf-dev is not installed (make test installs it)")


def hidden(argv: list[str], how: str = "empty") -> list[str]:
    """`argv` where the kernel's BTF is an empty file (or gone)."""
    return ["unshare", "-m", "sh", "-c", HIDE[how], "sh", *argv]


def archive_with_this_kernel(tmp: Path) -> Path:
    """The fixture's three kernels, and this one's whole BTF under the name
    btfhub (and upstream's loader) would give it."""
    archive = tmp / "archive"
    shutil.copytree(FIXTURES / "btfhub-min", archive, ignore=shutil.ignore_patterns("README.md"))
    here = kernelbtf.this_kernel()
    mine = archive / here.distro / here.version / here.machine / f"{here.release}.btf"
    mine.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(kernelbtf.KERNEL_BTF, mine)
    return archive


def btfgen_build(tmp: Path, archive: Path) -> Path:
    out = tmp / "out"
    done = run("ecc", str(PROGRAM / "execmin.bpf.c"), str(PROGRAM / "execmin.h"), "-o", str(out), "-b",
               "--btfhub-archive", str(archive))
    assert done.returncode == 0, done.stderr
    return out


def exec_event(r: Running) -> None:
    """One exec of a uniquely named program: its event, exact."""
    exe = unique_executable(temp_dir())
    child = subprocess.run([str(exe)], check=True)
    assert child.returncode == 0
    [event] = r.json_events(lambda e: e.get("filename") == str(exe), timeout=15)
    assert event["comm"] == exe.name and event["ppid"] == os.getpid() and event["pid"] > 0


def refused(argv: list[str], status: int = 1) -> str:
    before = loaded_prog_ids()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == status, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert_nothing_new_loaded(before)
    return lines[0]


@pytest.mark.parametrize(("form", "how"), [("package.json", "empty"), ("package.json", "gone"),
                                           ("execmin.tar", "empty")])
def test_a_btfgen_package_runs_where_the_kernel_has_no_btf(form: str, how: str) -> None:
    tmp = temp_dir()
    out = btfgen_build(tmp, archive_with_this_kernel(tmp))
    before = loaded_prog_ids()
    r = Running(hidden([*command("ecli"), "run", "-j", str(out / form)], how), "attached")
    try:
        exec_event(r)
    finally:
        assert r.stop() == 0
    assert_nothing_new_loaded(before)


def test_a_btfgen_package_without_this_kernel_is_one_line() -> None:
    tmp = temp_dir()
    out = btfgen_build(tmp, FIXTURES / "btfhub-min")
    here = kernelbtf.this_kernel()
    line = refused(hidden([*command("ecli"), "run", str(out / "package.json")]))
    assert line == (f"ecli: error: this kernel does not support BTF: /sys/kernel/btf/vmlinux is unusable (it is "
                    f"empty), and execmin has no BTF for {here.describe()}: it carries BTF for 3 other kernels: pass "
                    "this kernel's BTF with --btf PATH, build the package with ecc --btfgen for this kernel, or use "
                    "a kernel built with CONFIG_DEBUG_INFO_BTF=y")


@pytest.mark.parametrize(("how", "said"), [("empty", "is unusable (it is empty)"), ("gone", "is missing")])
def test_an_unusable_kernel_btf_is_named_in_one_line(how: str, said: str) -> None:
    """Before, an empty file there gave "loading the BPF object failed: No such process"."""
    line = refused(hidden([*command("ecli"), "run", str(UPSTREAM / "bootstrap.json")], how))
    assert line == (f"ecli: error: this kernel does not support BTF: /sys/kernel/btf/vmlinux {said}: pass this "
                    "kernel's BTF with --btf PATH, build the package with ecc --btfgen for this kernel, or use a "
                    "kernel built with CONFIG_DEBUG_INFO_BTF=y")


def kernel_btf_copy() -> Path:
    path = temp_dir() / "vmlinux.btf"
    shutil.copy(kernelbtf.KERNEL_BTF, path)
    return path


def test_btf_option_stands_in_for_the_kernels_own() -> None:
    btf = kernel_btf_copy()
    before = loaded_prog_ids()
    r = Running(hidden([*command("ecli"), "run", "-j", "--btf", str(btf), str(UPSTREAM / "bootstrap.json"),
                        "--min_duration_ns", "0"]), "attached")
    try:
        exe = unique_executable(temp_dir())
        subprocess.run([str(exe)], check=True)
        events = r.json_events(lambda e: e.get("comm") == exe.name, count=2, timeout=15)
        assert [e["exit_event"] for e in events] == [False, True] and events[0]["filename"] == str(exe)
        assert events[0]["ppid"] == os.getpid()
    finally:
        assert r.stop() == 0
    assert_nothing_new_loaded(before)


def test_btf_option_leaves_the_minimal_btf_cache_alone(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop(corebtf.DISABLE_ENV, None)
    done = subprocess.run([*command("ecli"), "run", "-d", "0.3", "--btf", str(kernel_btf_copy()),
                           str(UPSTREAM / "bootstrap.json")], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "cache").exists()  # neither read nor written
    done = subprocess.run([*command("ecli"), "run", "-d", "0.3", str(UPSTREAM / "bootstrap.json")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and list((tmp_path / "cache").rglob("*.btf"))  # without --btf it is used


def test_a_btf_file_libbpf_cannot_parse_is_one_line() -> None:
    bad = kernel_btf_copy()
    data = bytearray(bad.read_bytes())
    data[200:4000] = b"\xff" * 3800  # a sound header over garbage types
    bad.write_bytes(bytes(data))
    line = refused(hidden([*command("ecli"), "run", "--btf", str(bad), str(UPSTREAM / "bootstrap.json")]))
    assert line == (f"ecli: error: --btf {bad}: libbpf cannot read it as BTF (Invalid argument): pass a kernel's "
                    "BTF file (its /sys/kernel/btf/vmlinux, or bpftool gen min_core_btf output)")
    line = refused([*command("ecli"), "run", "--btf", "/dev/zero", str(UPSTREAM / "bootstrap.json")], status=2)
    assert "--btf /dev/zero: not a regular file (a character device)" in line


def test_opensnoop_with_btf_option() -> None:
    line = refused(hidden([*command("opensnoop"), "-d", "1"]))
    assert line == ("opensnoop: error: this kernel does not support BTF: /sys/kernel/btf/vmlinux is unusable (it is "
                    "empty): pass this kernel's BTF with --btf PATH, build the package with ecc --btfgen for this "
                    "kernel, or use a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    btf = kernel_btf_copy()
    r = Running(hidden([*command("opensnoop"), "-j", "--btf", str(btf)]), "attached")
    try:
        target = temp_dir() / "opened-under-btf-option"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        [event] = r.json_events(lambda e: e.get("fname") == str(target) and e.get("pid") == os.getpid(), timeout=15)
        assert event["ret"] == fd
    finally:
        assert r.stop() == 0


def test_exporter_with_btf_option() -> None:
    tmp = temp_dir()
    (tmp / "config.yaml").write_text(TUTORIAL.read_text())
    argv = [*command("eunomia-exporter"), "-c", str(tmp / "config.yaml"), "--check"]
    line = refused(hidden(argv))
    assert line.startswith("eunomia-exporter: error: this kernel does not support BTF:") and "--btf PATH" in line
    done = subprocess.run(hidden([*argv, "--btf", str(kernel_btf_copy())]), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("config.yaml: OK\n")
    # and serving: every program's relocations from that file, read once before the privileges go
    port = free_port()
    r = Running(hidden([*command("eunomia-exporter"), "-c", str(tmp / "config.yaml"), "--listen",
                        f"127.0.0.1:{port}", "--btf", str(kernel_btf_copy())]), "listening on")
    try:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            assert b"eunomia_exporter_events_received_total" in page.read()
    finally:
        assert r.stop() == 0


def test_the_python_api_takes_a_btf_file() -> None:
    btf = kernel_btf_copy()
    package = open_package(UPSTREAM / "bootstrap.json")
    with Program(package, {"min_duration_ns": 0}, btf=btf) as prog:
        assert prog.loaded.btf_source == f"--btf {btf}" and prog.loaded.core_btf is None
        exe = unique_executable(temp_dir())
        subprocess.run([str(exe)], check=True)
        mine = [e for e in prog.events(duration=1.0) if e["comm"] == exe.name]
    assert [e["exit_event"] for e in mine] == [False, True]


def test_sigkill_leaves_no_btf_file_behind() -> None:
    """The package's BTF reaches libbpf through a memory file: a run killed
    outright leaves nothing on disk (TMPDIR stays empty)."""
    tmp = temp_dir()
    out = btfgen_build(tmp, archive_with_this_kernel(tmp))
    scratch = tmp / "tmpdir"
    scratch.mkdir(mode=0o700)
    env = {**os.environ, "TMPDIR": str(scratch)}
    before = loaded_prog_ids()
    r = Running(hidden([*command("ecli"), "run", str(out / "package.json")]), "attached", env=env)
    os.killpg(r.proc.pid, signal.SIGKILL)
    assert r.proc.wait(10) == -signal.SIGKILL
    time.sleep(0.2)
    assert list(scratch.iterdir()) == []
    assert_nothing_new_loaded(before)
