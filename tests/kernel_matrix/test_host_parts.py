"""Host-side parts: cpio, apt output, module order, guest deadlines, and
that a run leaves nothing behind on the host."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from kernel_matrix import cpio, debian, kmod, qemu

from ..conftest import require


def test_cpio_entries_are_aligned_and_parents_come_first(tmp_path):
    buf = io.BytesIO()
    w = cpio.Writer(buf)
    w.file("init", b"#!/bin/sh\n", 0o755)
    w.parents("kmx/pkg/a/package.json")
    w.file("kmx/pkg/a/package.json", b"{}")
    w.parents("kmx/pkg/b/x")
    w.close()
    data = buf.getvalue()
    assert len(data) % 4 == 0
    assert cpio.read_names(data) == ["init", "kmx", "kmx/pkg", "kmx/pkg/a", "kmx/pkg/a/package.json", "kmx/pkg/b"]
    root = tmp_path / "r"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"abc")
    os.symlink("d/f", root / "link")
    (root / "skip").mkdir()
    buf = io.BytesIO()
    w = cpio.Writer(buf)
    assert cpio.add_tree(w, root, "pre/fix", skip=("skip",)) == 3
    w.close()
    assert cpio.read_names(buf.getvalue()) == ["pre/fix/d", "pre/fix/link", "pre/fix/d/f"]
    with pytest.raises(ValueError):
        cpio.read_names(b"junk" * 40)


def test_the_mirror_comes_from_the_systems_own_sources():
    deb822 = ("Types: deb\n# comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
              "Components: main\n\nTypes: deb\nURIs: http://security.debian.org/debian-security\n"
              "Suites: bookworm-security\n")
    assert debian.find_mirror([("debian.sources", deb822)]) == "http://deb.debian.org/debian"
    one_line = "deb [signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
    assert debian.find_mirror([("x.list", "# nothing\n"), ("y.list", one_line)]) == "http://mirror.example/debian"
    disabled = deb822.replace("Types: deb\n# comment", "Types: deb\nEnabled: no")
    assert debian.find_mirror([("debian.sources", disabled)]) is None


def test_apt_outputs():
    show = ("Package: linux-image-cloud-amd64\nVersion: 6.1.176-1\n"
            "Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)\n")
    assert debian.parse_depends_on(show, "linux-image-") == ("linux-image-6.1.0-50-cloud-amd64", "6.1.176-1")
    sim = ("NOTE: simulation\nInst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []\n"
           "Inst bash (5.2.15-2+b9 Debian:12.15/oldstable [amd64])\nConf bash (5.2.15-2+b9)\n")
    assert debian.parse_simulated(sim) == ["bash=5.2.15-2+b9", "libc6=2.36-9+deb12u14"]
    packages = "Package: bash\nEssential: yes\n\nPackage: vim\nPriority: optional\n\nPackage: dash\nEssential: yes\n"
    assert debian.essential_packages(packages) == ["bash", "dash"]
    assert debian.root_key(["a=1"]) == debian.root_key(["a=1"]) != debian.root_key(["a=2"])


# The root's Python packages as bookworm has them (apt-cache show, 2026-12-02), and one unrelated package.
BOOKWORM = ["python3-prometheus-client=0.16.0-0.1", "python3-yaml=6.0-3+b2", "python3-bcrypt=3.2.2-1",
            "python3.11=3.11.2-6+deb12u6"]


def test_the_guests_python_dependencies_are_debians_and_meet_pyproject():
    """Nothing comes from PyPI: each of pyproject.toml's dependencies is a
    Debian package in the root, and its lower bound is what bookworm ships."""
    import tomllib
    from pathlib import Path

    requires = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(debian.PYTHON_DEPS) == sorted(r.split(">=")[0].lower().replace("_", "-") for r in requires)
    assert set(debian.PYTHON_DEPS.values()) <= set(debian.ROOT_INCLUDE)
    assert debian.python_deps_problems(requires, BOOKWORM) == []
    # what a run refuses, one line each: a bound above bookworm's, a dependency apt does not give
    assert debian.python_deps_problems(["prometheus_client>=0.17", "bcrypt>=4", "PyYAML>=6.0"], BOOKWORM) == [
        "prometheus_client>=0.17: bookworm has python3-prometheus-client 0.16.0-0.1",
        "bcrypt>=4: bookworm has python3-bcrypt 3.2.2-1"]
    assert debian.python_deps_problems(["requests>=2"], BOOKWORM) == [
        "requests>=2: not a `name>=X` of a dependency in debian.PYTHON_DEPS"]
    assert debian.python_deps_problems(["PyYAML>=6"], BOOKWORM[:1]) == [
        "PyYAML>=6: python3-yaml is not in the guest's root"]
    assert debian.upstream_version("1:0.16.0-0.1") == (0, 16) == debian.upstream_version("0.16")
    assert debian.upstream_version("6.0-3+b2") == (6,) < debian.upstream_version("6.0.1")


def test_module_dependencies_from_modinfo_and_load_order():
    image = b"\x7fELF...\0license=GPL\0depends=md-mod,libcrc32c\0name=raid1\0"
    assert kmod.depends(image) == ["md_mod", "libcrc32c"]
    assert kmod.depends(b"\0name=loop\0depends=\0") == []
    deps = {"raid1": ["md_mod"], "md_mod": [], "loop": [], "libcrc32c": []}
    assert kmod.load_order(["loop", "raid1", "md-mod"], deps) == ["loop", "md_mod", "raid1"]
    with pytest.raises(ValueError):
        kmod.load_order(["a"], {"a": ["b"], "b": ["a"]})
    assert kmod.stem(__import__("pathlib").Path("x/md-mod.ko.xz")) == "md_mod"


def test_guest_deadlines():
    w = qemu.Watch(boot_timeout=100, check_timeouts={"a": 10}, started=0)
    assert w.overdue(50) == ""
    assert "no report" in w.overdue(101)
    w.feed([{"event": "boot"}, {"event": "start", "check": "a"}], now=5)
    assert w.overdue(5 + 10 + qemu.CHECK_MARGIN - 1) == ""
    assert "stuck" in w.overdue(5 + 10 + qemu.CHECK_MARGIN + 1)
    w.feed([{"event": "boot"}, {"event": "start", "check": "a"}, {"event": "result", "check": "a"}], now=6)
    assert w.overdue(6 + qemu.IDLE_LIMIT - 1) == ""


def test_every_guest_gets_the_cpu_workaround_and_bpf_lsm(tmp_path):
    boot = qemu.Boot("6.12", tmp_path / "vmlinuz", tmp_path / "initrd", tmp_path / "c", tmp_path / "r", {})
    argv = qemu.command(boot)
    assert argv[argv.index("-cpu") + 1] == "qemu64,-cx16"
    assert "tcg,thread=single" in argv
    append = argv[argv.index("-append") + 1]
    assert "lsm=" in append and append.split("lsm=")[1].split()[0].endswith(",bpf")
    assert "kmx.kernel=6.12" in append


def test_a_guest_silent_between_checks_or_over_budget_is_given_up():
    w = qemu.Watch(boot_timeout=100, check_timeouts={"a": 10, "b": 10}, started=0)
    assert w.budget == 100 + 2 * (10 + qemu.CHECK_MARGIN) + qemu.IDLE_LIMIT
    w.feed([{"event": "boot"}, {"event": "start", "check": "a"}, {"event": "result", "check": "a"}], now=5)
    assert w.overdue(5 + qemu.IDLE_LIMIT - 1) == ""
    assert "silent between checks" in w.overdue(5 + qemu.IDLE_LIMIT + 1)
    w.feed([{"event": "boot"}, {"event": "start", "check": "a"}, {"event": "result", "check": "a"},
            {"event": "done"}], now=6)
    assert "did not power off" in w.overdue(6 + qemu.IDLE_LIMIT + 1)
    assert "budget" in w.overdue(w.budget + 1)


def test_memo_keeps_only_what_a_run_used(tmp_path):
    from kernel_matrix import layers
    cache = layers.Cache(tmp_path)
    cache.remember("old", 1)
    fresh = layers.Cache(tmp_path)
    assert fresh.recall("old") == 1
    fresh.remember("new", 2)
    fresh.forget_unused()
    assert layers.Cache(tmp_path).memo() == {"old": 1, "new": 2}
    later = layers.Cache(tmp_path)
    later.recall("new")
    later.forget_unused()
    assert later.memo() == {"new": 2}


# -- nothing left on the host: temporary trees, mounts in them, children --------------------------------------

def test_a_runs_temporary_trees_go_with_it_and_a_killed_runs_with_the_next(tmp_path):
    from kernel_matrix import layers
    cache = layers.Cache(tmp_path)
    (cache.tmp / "guest-5.10-x").mkdir(parents=True)  # what a SIGKILLed run left
    (cache.tmp / "guest-5.10-x" / "initrd.cpio").write_bytes(b"x")
    with pytest.raises(RuntimeError), cache.locked():
        assert list(cache.tmp.iterdir()) == []  # swept once the lock is ours
        work = cache.tempdir("root")
        (work / "file").write_text("x")
        assert work.parent == cache.tmp
        raise RuntimeError("a failed build")
    assert not cache.tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]


def test_removing_a_tree_detaches_its_mounts_and_never_reaches_through_them(tmp_path):
    """mmdebstrap mounts /proc and /dev in its chroot: removal must unmount,
    not delete what a mount shows (here a bind mount of a folder outside)."""
    from kernel_matrix import procs
    require(os.geteuid() == 0, "mounting needs root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    tree = tmp_path / "tree"
    (tree / "root" / "dev").mkdir(parents=True)
    (tree / "root" / "proc").mkdir()
    subprocess.run(["mount", "--bind", str(outside), str(tree / "root" / "dev")], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(tree / "root" / "proc")], check=True)
    try:
        assert len(procs.mounts_under(tree)) == 2
        procs.remove_tree(tree)
        assert not tree.exists()
        assert procs.mounts_under(tmp_path) == []
        assert (outside / "keep").read_text() == "mine"
    finally:
        for point in procs.mounts_under(tmp_path):
            subprocess.run(["umount", "-l", point], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid: int) -> None:
    """A failed test's own leftover (the sleep it started), if any."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_a_command_cut_short_is_stopped(tmp_path):
    from kernel_matrix import procs
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        procs.run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"], timeout=1.0)
    child = int(pidfile.read_text())
    try:
        assert not _alive(child)
    finally:
        _kill(child)


def test_a_sigkilled_harness_takes_its_children_with_it(tmp_path):
    """PR_SET_PDEATHSIG: qemu or mmdebstrap never outlive `make test-kernels`."""
    pidfile = tmp_path / "pid"
    harness = subprocess.Popen([sys.executable, "-c", (
        "import sys; from kernel_matrix import procs; "
        f"procs.run(['sh', '-c', 'echo $$ > {pidfile}; exec sleep 60'])")],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    try:
        assert _alive(child)
        harness.kill()
        assert harness.wait(10) == -signal.SIGKILL
        assert _wait_gone(child), f"pid {child} outlived the harness"
    finally:
        harness.kill()
        _kill(child)
