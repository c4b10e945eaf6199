"""Programs in today's libbpf style (tests/e2e/programs/kfuncs and uprobes:
kfuncs declared by vmlinux.h, bpf_ksym_exists, weak and typeless __ksym,
BPF_UPROBE/BPF_URETPROBE), compiled by ecc with make toolchain's libbpf
headers and bpftool, run by ecli on the system's libbpf, against real
activity. The kernel matrix runs the same packages on 5.10, 6.1 and 6.12."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import pytest

from pyeunomia.compiler.private import headers_version
from tests.compiler.ecc_programs import built, compiler, current_toolchain, sources  # noqa: F401 - fixtures
from tests.conftest import skip_unsupported

from .helpers import run, running

pytestmark = pytest.mark.usefixtures("kernel", "current_toolchain")


def kallsyms(names: set[str]) -> dict[str, int]:
    found = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            address, _kind, name = line.split()[:3]
            if name in names:
                found[name] = int(address, 16)
    return found


def test_kfuncs_ksym_exists_and_ksyms(tmp_path):
    symbols = kallsyms({"bpf_task_from_pid", "do_exit"})
    skip_unsupported("the kfunc bpf_task_from_pid (Linux 6.2)", "bpf_task_from_pid" in symbols)
    paths = []
    for i in range(3):  # unique names: each exec's filename is known
        paths.append(tmp_path / f"pyeu-kfunc-{i}")
        shutil.copy("/bin/true", paths[-1])
    package = str(built("kfuncs") / "package.json")
    with running("ecli", "run", "-j", package, "--parent_pid", str(os.getpid())) as ecli:
        pids = {}
        for path in paths:
            child = subprocess.Popen([str(path)])
            assert child.wait(10) == 0
            pids[child.pid] = str(path)
        events = ecli.json_events(lambda e: True, count=len(paths))
        assert ecli.stop() == 0
        rest = ecli.rest()
    assert rest == []  # only this process's children exec'd: nothing else came
    assert {e["pid"] for e in events} == set(pids)
    for e in events:
        assert e == {"pid": e["pid"], "kfunc_tgid": e["pid"],  # bpf_task_from_pid(pid)->tgid: the kfunc ran
                     "has_task_from_pid": 1, "has_missing_kfunc": 0, "has_missing_var": 0, "pad": 0,
                     "do_exit_addr": symbols["do_exit"], "filename": pids[e["pid"]]}


def test_uprobe_macros_on_libc_by_library_name():
    package = str(built("uprobes") / "package.json")
    libc = ctypes.CDLL("libc.so.6")
    libc.strtol.restype = ctypes.c_long
    libc.strtol.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    calls = [(b"-4711xyz", 10), (b"ff", 16), (b"777", 8)]
    with running("ecli", "run", "-j", package, "--target_pid", str(os.getpid())) as ecli:
        results = [libc.strtol(text, None, base) for text, base in calls]
        events = ecli.json_events(lambda e: True, count=2 * len(calls))
        assert ecli.stop() == 0
        rest = ecli.rest()
    assert results == [-4711, 255, 511]
    assert rest == []
    pid = os.getpid()
    expected = []
    for (text, base), value in zip(calls, results, strict=True):
        expected.append({"pid": pid, "exit": 0, "base": base, "pad": 0, "ret": 0, "text": text.decode()})
        expected.append({"pid": pid, "exit": 1, "base": 0, "pad": 0, "ret": value, "text": ""})
    assert events == expected


@pytest.mark.parametrize("name", ["uprobes", "kfuncs"])
def test_the_system_toolchain_says_what_it_lacks(tmp_path, name):
    """PYEUNOMIA_TOOLCHAIN=system: Debian 12's libbpf-dev 1.1 and bpftool 7.1. One line says why clang
    failed and what to do, before clang's own diagnostics."""
    have = headers_version("/usr/include")
    if have is not None and have >= (1, 2):
        pytest.skip(f"the system's libbpf headers are {have}: current enough for these programs")
    source, header = sources(name)
    env = {**os.environ, "PYEUNOMIA_TOOLCHAIN": "system"}
    done = run("ecc", str(source), str(header), "-o", str(tmp_path), env=env)
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    version = ".".join(map(str, have)) if have else "older ones"
    needs = {"uprobes": "BPF_UPROBE, BPF_URETPROBE need", "kfuncs": "bpf_ksym_exists needs"}[name]
    assert first.startswith(f"ecc: error: clang could not compile {source}: {needs} libbpf headers 1.2+ "
                            f"(these are {version}, in /usr/include/bpf)")
    assert first.endswith(": run make toolchain (libbpf headers 1.4+, bpftool 7.5+)")
    if name == "kfuncs":  # bpftool 7.1's vmlinux.h: no kfunc prototypes
        assert "vmlinux.h declares no kfuncs (bpf_task_from_pid, bpf_task_release?): bpftool 7.1" in first
    assert "error:" in done.stderr.split("\n", 1)[1]  # clang's diagnostics follow
    assert list(tmp_path.iterdir()) == []
