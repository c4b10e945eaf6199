"""Process policy for the long-running exporter: who it runs as once its
programs are attached, and how its allocator behaves. Policy only: the
system calls are kernel/libbpf.py's (the one ctypes module)."""

from __future__ import annotations

import errno
import os

from ..errors import KernelError
from . import libbpf
from .caps import CAPABILITIES

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = \
    1, 4, 8, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8


def _prctl(option: int, arg: int, what: str, ignore: tuple[int, ...] = ()) -> None:
    err = libbpf.prctl(option, arg)
    if err and err not in ignore:
        raise KernelError(f"{what} failed: {os.strerror(err)}", err)


def drop_privileges(keep: set[str], user: tuple[int, int] | None = None) -> None:
    """Keep only the capabilities in `keep` (names such as CAP_BPF): in the
    effective and permitted sets, none inheritable or ambient, every other one
    out of the bounding set (when allowed) so no later exec regains it. With
    `user` (uid, gid; the caller is root), become that user and group first,
    with no supplementary groups: a uid-0 process without capabilities still
    owns every root-owned file (it could read /etc/shadow and write
    /etc/passwd). The process is made non-dumpable (other processes of that
    user cannot ptrace it or read its memory) and no-new-privs (no set-uid
    exec regains anything). Linux keeps capabilities per thread: call this
    before starting threads (set*id calls reach every thread through glibc)."""
    unknown = keep - CAPABILITIES.keys()
    if unknown:
        raise ValueError(f"unknown capabilities: {', '.join(sorted(unknown))}")
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = max(CAPABILITIES.values())
    mask = 0
    for name in keep:
        mask |= 1 << CAPABILITIES[name]
    for cap in range(last + 1):
        if mask >> cap & 1:
            continue
        err = libbpf.prctl(PR_CAPBSET_DROP, cap)
        if err == errno.EPERM:  # no CAP_SETPCAP: the bounding set stays, the sets below still shrink
            break
        if err:
            raise KernelError(f"dropping capability {cap} from the bounding set failed: {os.strerror(err)}", err)
    if user is not None:
        uid, gid = user
        _prctl(PR_SET_KEEPCAPS, 1, "keeping capabilities across the change of user")
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        except OSError as e:
            raise KernelError(f"changing to user {uid} and group {gid} failed: {e.strerror}", e.errno or 0) from None
        _prctl(PR_SET_KEEPCAPS, 0, "clearing keep-capabilities")
        _prctl(PR_SET_DUMPABLE, 0, "making the process non-dumpable")
    _effective, permitted, _inheritable = libbpf.capget()
    kept = permitted & mask  # after a change of user only the permitted set survives
    libbpf.capset(kept, kept, 0)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, "clearing ambient capabilities", (errno.EINVAL,))
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "setting no-new-privs")


def die_with_parent(parent: int, parent_uid: int | None = None) -> bool:
    """SIGKILL this process when its parent ends (PR_SET_PDEATHSIG); False
    when the parent `parent` has already gone (the signal would never come).
    The kernel sends it when the thread that started this process ends: the
    parent starts it from its main thread, which lives as long as it does.
    The kernel sends it as from the parent, with the parent's permission to
    signal: a parent that has become `parent_uid` (nobody) may not signal a
    root process, and the signal is lost (measured: a root child of a parent
    turned nobody outlived its SIGKILL). So with `parent_uid` this process
    takes it as its saved uid (real and effective stay 0, and with them the
    files it may read): that user's processes may signal it, as they may
    signal the parent, and still cannot ptrace it (ptrace wants all three
    uids to match). Needs CAP_SETUID: call it before dropping capabilities."""
    import signal

    if parent_uid is not None:
        try:
            os.setresuid(-1, -1, parent_uid)
        except OSError as e:
            raise KernelError(f"taking uid {parent_uid} as the saved uid failed: {e.strerror}", e.errno or 0) from None
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "asking to die with the parent")
    return os.getppid() == parent


def close_fds_but(keep: int) -> None:
    """Close every file descriptor but `keep`, and put /dev/null on 0-2:
    nothing this process opens later can land on a standard stream and take
    a stray write (an interpreter's last-gasp traceback), and no descriptor
    inherited from the parent (a listening socket, a BPF object, a token
    file) stays open in it."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in range(3):
        if fd != null:
            os.dup2(null, fd, inheritable=False)
    fds = sorted({int(n) for n in os.listdir("/proc/self/fd")} - {0, 1, 2, keep})
    for fd in fds:
        try:
            os.close(fd)
        except OSError:  # the listing's own descriptor, closed already
            pass


def bpf_calls_need_capability(fd: int) -> bool:
    """Whether this kernel refuses bpf() calls on objects already held (map
    reads, program run statistics) to a thread without CAP_BPF. Kernels
    before 6.x with kernel.unprivileged_bpf_disabled set (Debian's default)
    check it on every command; newer ones only where objects are made.
    Asked of a short-lived thread that gives up its own effective
    capabilities (Linux keeps them per thread), so the caller keeps its own."""
    import threading

    answer: list[bool] = []

    def probe() -> None:
        effective, permitted, inheritable = libbpf.capget()
        libbpf.capset(0, permitted, inheritable)
        try:
            answer.append(libbpf.obj_info_errno(fd) == errno.EPERM)
        finally:
            # Back as it was before the thread ends: glibc changes the user of every thread
            # it still lists (an exiting one too), and aborts the process when one of them
            # lacks the capability to follow (seen: SIGABRT in setgroups, 4 runs in 6).
            libbpf.capset(effective, permitted, inheritable)

    thread = threading.Thread(target=probe, name="bpf-probe")
    thread.start()
    thread.join()
    return bool(answer and answer[0])


def tune_malloc(arenas: int, mmap_threshold: int) -> bool:
    """For a long-running server: glibc malloc with at most `arenas` arenas
    (not one per thread, each keeping what its thread freed), and blocks from
    `mmap_threshold` bytes up always mapped on their own, so freeing them
    gives the memory back. Call before threads start. False where the C
    library has no mallopt (musl)."""
    return libbpf.mallopt(M_ARENA_MAX, arenas) and libbpf.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
