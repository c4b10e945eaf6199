"""pyeunomia.runner.symbolize: real processes' addresses named from their
mapped files (a PIE, a chrooted static binary, a deleted file), kernel
addresses from kallsyms (real, and a made-up /proc), and the caches."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pyeunomia.format.stacks import Frame
from pyeunomia.runner.symbolize import Symbolizer
from tests.conftest import require

PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int pyeu_alpha(int x) { return x * 2; }
__attribute__((noinline)) int pyeu_beta(int x) { return pyeu_alpha(x) + 1; }
int main(void) {
    printf("%p %p\n", (void *)pyeu_alpha, (void *)pyeu_beta);
    fflush(stdout);
    pause();
    return pyeu_beta(1);
}
"""


def build(tmp: Path, *flags: str, name: str = "pyeu_sym") -> Path:
    require(shutil.which("gcc") is not None, "gcc is not installed: apt-get install gcc")
    src = tmp / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp / name
    subprocess.run(["gcc", "-O0", *flags, "-o", str(exe), str(src)], check=True)
    return exe


def static_build(tmp: Path) -> Path:
    try:
        return build(tmp, "-static", name="pyeu_static")
    except subprocess.CalledProcessError:
        pytest.fail("gcc -static failed: install libc6-dev (its libc.a)")


@contextmanager
def started(argv: list[str]) -> Iterator[tuple[int, int, int]]:
    """(pid, address of pyeu_alpha, of pyeu_beta) of a paused process."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        alpha, beta = (int(a, 16) for a in proc.stdout.readline().split())
        yield proc.pid, alpha, beta
    finally:
        proc.kill()
        proc.wait()


def test_user_addresses_of_a_pie(tmp_path: Path):
    exe = build(tmp_path)
    s = Symbolizer()
    with started([str(exe)]) as (pid, alpha, beta):
        # a sampled address (exact), then return addresses (looked up one byte back)
        frames = s.user(pid, (alpha + 3, beta + 1, beta))
        assert frames == (Frame(alpha + 3, "pyeu_alpha", 3, str(exe)), Frame(beta + 1, "pyeu_beta", 1, str(exe)),
                          Frame(beta, "pyeu_alpha" if beta - alpha < 64 else frames[2].symbol, frames[2].offset,
                                str(exe)))
        assert frames[2].symbol != "pyeu_beta"  # beta's first byte as a return address is the call before it
        read = s.files_read
        assert s.user(pid, (alpha + 3, beta + 1, beta)) is frames  # the whole stack, cached
        assert s.user(pid, (alpha, beta + 1))[1] is frames[1]  # the address, cached
        assert s.files_read == read == 1


def test_addresses_outside_any_file():
    s = Symbolizer()
    frames = s.user(os.getpid(), (8, 0))
    assert frames == (Frame(8, None, 0, ""), Frame(0, None, 0, ""))


def test_a_process_that_is_gone(tmp_path: Path):
    exe = build(tmp_path)
    with started([str(exe)]) as (pid, alpha, _beta):
        pass
    assert Symbolizer().user(pid, (alpha,)) == (Frame(alpha, None, 0, ""),)


def test_a_deleted_binary_is_read_through_map_files(tmp_path: Path):
    require(os.geteuid() == 0, "/proc/PID/map_files needs CAP_SYS_ADMIN")
    exe = build(tmp_path)
    with started([str(exe)]) as (pid, alpha, _beta):
        exe.unlink()
        exe.write_bytes(b"not the program")  # a different file at the same path
        (frame,) = Symbolizer().user(pid, (alpha + 1,))
        assert frame.symbol == "pyeu_alpha" and frame.offset == 1


def test_a_chrooted_process(tmp_path: Path):
    """In a chroot (our mount namespace) maps names the file as we see it."""
    require(os.geteuid() == 0, "chroot needs root")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(static_build(tmp_path), root / "bin" / "pyeu_chrooted")
    with started(["chroot", str(root), "/bin/pyeu_chrooted"]) as (pid, alpha, beta):
        frames = Symbolizer().user(pid, (alpha, beta + 4))
        assert [(f.symbol, f.offset) for f in frames] == [("pyeu_alpha", 0), ("pyeu_beta", 4)]


def test_a_process_in_a_container_is_read_through_its_root(tmp_path: Path):
    """A process whose root is a tmpfs of its own mount namespace (as a
    container's, by pivot_root): maps names /bin/pyeu_boxed, which we do not
    have; the binary is stripped, and its symbols are only in the debug file
    under the container's own /usr/lib/debug/.build-id/."""
    require(os.geteuid() == 0, "mount namespaces need root")
    for tool in ("unshare", "pivot_root", "objcopy", "strip"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    exe = static_build(tmp_path)
    build_id = subprocess.run(["readelf", "-n", str(exe)], capture_output=True, text=True,
                              check=True).stdout.split("Build ID:")[1].split()[0]
    debug = tmp_path / "debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(debug)], check=True)
    subprocess.run(["strip", str(exe)], check=True)
    box = tmp_path / "box"
    box.mkdir()
    debug_dir = f"{box}/usr/lib/debug/.build-id/{build_id[:2]}"
    script = (f"mount -t tmpfs none {box} && mkdir -p {box}/bin {box}/old {debug_dir} && "
              f"cp {exe} {box}/bin/pyeu_boxed && cp {debug} {debug_dir}/{build_id[2:]}.debug && "
              f"cd {box} && pivot_root . old && exec /bin/pyeu_boxed")
    assert not Path("/bin/pyeu_boxed").exists()
    with started(["unshare", "--mount", "--propagation", "private", "sh", "-c", script]) as (pid, alpha, beta):
        assert " /bin/pyeu_boxed\n" in Path(f"/proc/{pid}/maps").read_text()
        frames = Symbolizer().user(pid, (alpha, beta + 4))
        assert [(f.symbol, f.offset, f.module) for f in frames] == [
            ("pyeu_alpha", 0, "/bin/pyeu_boxed"), ("pyeu_beta", 4, "/bin/pyeu_boxed")]
        stripped = Symbolizer(debug_root="/nonexistent").user(pid, (alpha,))
        assert stripped[0].symbol is None  # without the debug file: nothing names it


def test_one_build_id_read_once(tmp_path: Path):
    """Two copies of one binary (two inodes, as the same library in two
    containers): their build id is the same, so its symbols are read once."""
    exe = build(tmp_path)
    copy = tmp_path / "pyeu_sym_copy"
    shutil.copy(exe, copy)
    assert exe.stat().st_ino != copy.stat().st_ino
    s = Symbolizer()
    with started([str(exe)]) as (pid1, alpha1, _), started([str(copy)]) as (pid2, alpha2, _):
        assert s.user(pid1, (alpha1,))[0].symbol == s.user(pid2, (alpha2,))[0].symbol == "pyeu_alpha"
        assert s.files_read == 1


def test_kernel_from_a_made_up_proc(tmp_path: Path):
    (tmp_path / "kallsyms").write_text("ffffffff81000000 T first\nffffffff81000100 t second\n"
                                       "ffffffffc0001000 t in_module\t[mod]\n")
    s = Symbolizer(proc=str(tmp_path))
    frames = s.kernel((0xFFFFFFFF81000100, 0xFFFFFFFF81000100, 0xFFFFFFFFC0001010, 0x10))
    assert frames == (Frame(0xFFFFFFFF81000100, "second", 0, ""),  # where the sample hit
                      Frame(0xFFFFFFFF81000100, "first", 0x100, ""),  # a return address: the call is in first
                      Frame(0xFFFFFFFFC0001010, "in_module", 0x10, ""),
                      Frame(0x10, None, 0, ""))
    assert s.kernel((0xFFFFFFFF81000100, 0xFFFFFFFF81000100, 0xFFFFFFFFC0001010, 0x10)) is frames


def test_kernel_from_the_real_kallsyms():
    require(os.geteuid() == 0, "kallsyms shows addresses to root only")
    line = next(line for line in Path("/proc/kallsyms").read_text().splitlines() if line.endswith(" T vfs_read"))
    address = int(line.split()[0], 16)
    assert Symbolizer().kernel((address + 0x10,)) == (Frame(address + 0x10, "vfs_read", 0x10, ""),)


def test_only_code_mappings_are_opened(tmp_path: Path):
    """A data mapping names no function, and a device (a GPU's, say) is not
    a file to open: neither is read."""
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6").resolve()
    (tmp_path / "123").mkdir()
    (tmp_path / "123" / "maps").write_text(
        f"1000-2000 r-xp 00000000 00:05 6 /dev/zero\n"
        f"3000-4000 rw-p 00000000 08:01 {libc.stat().st_ino} {libc}\n")
    s = Symbolizer(proc=str(tmp_path))
    assert s.user(123, (0x1500, 0x3500)) == (Frame(0x1500, None, 0, "/dev/zero"), Frame(0x3500, None, 0, str(libc)))
    assert s.files_read == 0
