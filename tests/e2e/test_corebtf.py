"""The minimal kernel BTF cache, with the real kernel: the first load writes
it, later loads relocate against it and see the same events, and a damaged
file costs nothing but its own replacement."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyeunomia import open_package
from pyeunomia.errors import VerifierError
from pyeunomia.format.btfext import TYPE_ID_TARGET, core_relocations
from pyeunomia.format.elf import ElfFile
from pyeunomia.format.package import Package
from pyeunomia.kernel import libbpf
from pyeunomia.runner import corebtf
from pyeunomia.runner.loader import LoadedObject
from pyeunomia.runner.program import Program

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from .helpers import UPSTREAM, Running, command, compile_bpf, temp_dir, unique_executable

pytestmark = pytest.mark.usefixtures("kernel")
FIELD_BYTE_OFFSET = 0


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(corebtf.DISABLE_ENV, raising=False)
    return tmp_path


def _exec_events(package_bytes: bytes) -> tuple[list[dict[str, object]], str | None]:
    exe = unique_executable(temp_dir())
    with Program(open_package(package_bytes), {"min_duration_ns": 0}) as prog:
        used = prog.loaded.core_btf
        subprocess.run([str(exe)], check=True)
        mine = [e for e in prog.events(duration=1.0) if e["comm"] == exe.name]
    return mine, used


def test_first_load_writes_the_cache_and_later_loads_use_it(cache_home: Path) -> None:
    data = (UPSTREAM / "bootstrap.json").read_bytes()
    package = open_package(data)
    path = corebtf.cache_path(package.object)
    assert path is not None and not os.path.exists(path)

    first, used = _exec_events(data)
    assert used is None
    assert os.path.getsize(path) > 0
    assert corebtf.trusted(path)

    second, used = _exec_events(data)
    assert used == os.path.realpath(path)
    # CO-RE read the same fields at the same offsets: the events agree
    assert [e["exit_event"] for e in first] == [e["exit_event"] for e in second] == [False, True]
    assert first[0]["filename"] != second[0]["filename"]  # two executables, both decoded
    assert second[0]["ppid"] == os.getpid()


def _damaged_cache_file() -> tuple[Package, str]:
    """bootstrap, with a cache file of ours that starts like BTF and is not."""
    package = open_package((UPSTREAM / "bootstrap.json").read_bytes())
    path = corebtf.cache_path(package.object)
    assert path is not None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    Path(path).write_bytes(b"\x9f\xeb\x01\x00 not really BTF")
    os.chmod(path, 0o600)
    return package, path


def test_a_damaged_cache_file_is_replaced_and_the_load_still_works(cache_home: Path) -> None:
    package, path = _damaged_cache_file()
    with LoadedObject(package, {"min_duration_ns": 0}, attach=False) as loaded:
        assert loaded.core_btf is None  # went again with the kernel's own BTF
    assert Path(path).read_bytes()[:2] == b"\x9f\xeb" and os.path.getsize(path) > 24
    with LoadedObject(package, {"min_duration_ns": 0}, attach=False) as loaded:
        assert loaded.core_btf == os.path.realpath(path)


TYPE_ID_KERNEL = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct { int pid; } __attribute__((preserve_access_index));

__u64 kernel_type_id = 0;
int pid_offset_seen = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe(void *ctx)
{
    kernel_type_id = bpf_core_type_id_kernel(struct task_struct);
    pid_offset_seen = bpf_core_field_offset(struct task_struct, pid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_an_object_asking_for_kernel_type_ids_is_never_cached(cache_home: Path) -> None:
    # the minimal file would give its own type id, not the kernel's
    obj = compile_bpf(TYPE_ID_KERNEL, temp_dir()).read_bytes()
    elf = ElfFile(obj)
    ext = elf.section(".BTF.ext")
    assert ext is not None
    assert {r.kind for r in core_relocations(elf.section_bytes(ext))} == {FIELD_BYTE_OFFSET, TYPE_ID_TARGET}
    package = open_package(obj)
    path = corebtf.cache_path(package.object)
    assert path is not None
    for _ in range(2):
        with LoadedObject(package, attach=False) as loaded:
            assert loaded.core_btf is None
    assert not os.path.exists(path)


def test_a_cache_file_that_cannot_be_removed_costs_one_retry(cache_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    package, path = _damaged_cache_file()
    monkeypatch.setattr(corebtf, "discard", lambda _path: None)  # as on a read-only cache
    opened: list[str | None] = []
    real_open = libbpf.object_open

    def counting_open(data: bytes, name: str, btf_path: str | None = None) -> int:
        opened.append(btf_path)
        return real_open(data, name, btf_path)

    monkeypatch.setattr(libbpf, "object_open", counting_open)
    with LoadedObject(package, {"min_duration_ns": 0}, attach=False) as loaded:
        assert loaded.core_btf is None
    assert opened == [os.path.realpath(path), None]


FAKE_BPFTOOL = """#!/bin/sh
touch "$PYEU_TEST_MARK"
exec sleep 60
"""


def test_sigkill_while_the_cache_is_generated_leaves_nothing(tmp_path: Path) -> None:
    """The cache is written when a run ends, by bpftool: a SIGKILL then (here
    while a stand-in bpftool sleeps) leaves no temporary file, in TMPDIR or
    in the cache."""
    fake = tmp_path / "bpftool"
    fake.write_text(FAKE_BPFTOOL)
    fake.chmod(0o755)
    mark, tmp, cache = tmp_path / "bpftool-started", tmp_path / "tmp", tmp_path / "cache"
    tmp.mkdir(mode=0o700)
    env = {**os.environ, "PYEUNOMIA_BPFTOOL": str(fake), "PYEU_TEST_MARK": str(mark), "TMPDIR": str(tmp),
           "XDG_CACHE_HOME": str(cache)}
    env.pop(corebtf.DISABLE_ENV, None)
    before = loaded_prog_ids()
    run = Running([*command("ecli"), "run", "-d", "0.2", str(UPSTREAM / "bootstrap.json")], "attached", env=env)
    try:
        deadline = time.monotonic() + 30
        while not mark.exists():
            assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr_lines
            time.sleep(0.05)
    finally:
        os.killpg(run.proc.pid, signal.SIGKILL)  # ecli and the stand-in bpftool
        run.proc.wait(10)
    assert run.proc.returncode == -signal.SIGKILL
    assert list(tmp.iterdir()) == []
    assert [p for p in cache.rglob("*") if not p.is_dir()] == []
    assert_nothing_new_loaded(before)


REJECTED = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct { int tgid; } __attribute__((preserve_access_index));

int seen = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();

    seen = BPF_CORE_READ(task, tgid);
    return *(int *)(long)bpf_get_prandom_u32();  /* a number used as a pointer: the verifier says no */
}

char LICENSE[] SEC("license") = "GPL";
"""


def _rejected_with_cache(opened: list[str | None], monkeypatch: pytest.MonkeyPatch) -> tuple[Package, str]:
    """A CO-RE program the verifier rejects, its minimal BTF cached, and
    every BTF path the loader opens the object with recorded."""
    package = open_package(compile_bpf(REJECTED, temp_dir()).read_bytes())
    path = corebtf.cache_path(package.object)
    assert path is not None and corebtf.generate(package.object, path)
    real_open = libbpf.object_open

    def counting_open(data: bytes, name: str, btf_path: str | None = None) -> int:
        opened.append(btf_path)
        return real_open(data, name, btf_path)

    monkeypatch.setattr(libbpf, "object_open", counting_open)
    return package, path


def test_a_verifier_rejection_with_the_cache_is_reported_as_it_is(cache_home: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached file relocated the program as the kernel's own BTF would:
    the verifier's verdict is the error, with no second load (which, with
    the kernel's BTF unusable, used to replace it with "No such process"),
    and the file stays."""
    opened: list[str | None] = []
    package, path = _rejected_with_cache(opened, monkeypatch)
    with pytest.raises(VerifierError) as e:
        LoadedObject(package, attach=False)
    assert opened == [os.path.realpath(path)]
    assert str(e.value).startswith("the verifier rejected program 'probe'") and "invalid mem access" in str(e.value)
    assert os.path.exists(path)


def test_when_the_retry_fails_too_both_errors_are_said(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged cache file costs a retry with the kernel's own BTF; when that
    fails as well, the message says both, the first first."""
    opened: list[str | None] = []
    package, path = _rejected_with_cache(opened, monkeypatch)
    Path(path).write_bytes(b"\x9f\xeb\x01\x00 not really BTF")
    with pytest.raises(VerifierError) as e:
        LoadedObject(package, attach=False)
    assert opened == [os.path.realpath(path), None]
    first_line = str(e.value).splitlines()[0]
    assert first_line == (f"the cached minimal BTF {os.path.realpath(path)} is damaged (libbpf cannot parse it: "
                          "Invalid argument); then with the kernel's own BTF: the verifier rejected program 'probe' "
                          "(log tail, see -v for all):")
    assert "invalid mem access" in str(e.value)
