"""The one ctypes binding to libbpf.so.1 (and the few libc calls it needs).

Everything that crosses into libbpf or the bpf() syscall goes through here, and
so does the mapping from errno to our exceptions. Handles are opaque integers
(C pointers); callers never see ctypes types except the memory views returned
for mmap'ed regions.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import threading
from collections.abc import Callable

from ..errors import KernelError, MissingPrivilegeError, UnsupportedFeatureError
from .caps import has_privilege

c_int, c_size_t, c_void_p, c_char_p = ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
c_u32, c_u64, c_bool = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_bool

LIBBPF_NAME = "libbpf.so.1"

LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2

PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
PERF_EVENT_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_void_p)


class ObjectOpenOpts(ctypes.Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_u32),
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_char_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_u32),
    ]


class ProgLoadOpts(ctypes.Structure):
    """The head of libbpf's struct bpf_prog_load_opts, up to the attach
    target (a shorter `sz` makes libbpf take every later field as zero)."""

    _fields_ = [("sz", c_size_t), ("attempts", c_int), ("expected_attach_type", c_u32), ("prog_btf_fd", c_u32),
                ("prog_flags", c_u32), ("prog_ifindex", c_u32), ("kern_version", c_u32), ("attach_btf_id", c_u32),
                ("attach_prog_fd", c_u32), ("attach_btf_obj_fd", c_u32)]


class PerfEventAttr(ctypes.Structure):
    _fields_ = [
        ("type", c_u32), ("size", c_u32), ("config", c_u64), ("sample_period", c_u64),
        ("sample_type", c_u64), ("read_format", c_u64), ("flags", c_u64),
        ("wakeup", c_u32), ("bp_type", c_u32), ("config1", c_u64), ("config2", c_u64),
        ("branch_sample_type", c_u64), ("sample_regs_user", c_u64), ("sample_stack_user", c_u32),
        ("clockid", ctypes.c_int32), ("sample_regs_intr", c_u64), ("aux_watermark", c_u32),
        ("sample_max_stack", ctypes.c_uint16), ("_reserved2", ctypes.c_uint16),
    ]


class TcHook(ctypes.Structure):
    """libbpf 1.x's struct bpf_tc_hook (24 bytes on 64-bit)."""

    _fields_ = [("sz", c_size_t), ("ifindex", c_int), ("attach_point", c_u32), ("parent", c_u32)]


class TcOpts(ctypes.Structure):
    """libbpf 1.x's struct bpf_tc_opts (32 bytes on 64-bit)."""

    _fields_ = [("sz", c_size_t), ("prog_fd", c_int), ("flags", c_u32), ("prog_id", c_u32),
                ("handle", c_u32), ("priority", c_u32)]


class LinkCreateOpts(ctypes.Structure):
    """The head of libbpf's struct bpf_link_create_opts: with `sz` this
    short, libbpf reads `flags` and takes every later field as zero."""

    _fields_ = [("sz", c_size_t), ("flags", c_u32)]


class ProgInfo(ctypes.Structure):
    """The head of struct bpf_prog_info, up to the run-time statistics."""

    _fields_ = [
        ("type", c_u32), ("id", c_u32), ("tag", ctypes.c_uint8 * 8), ("jited_prog_len", c_u32),
        ("xlated_prog_len", c_u32), ("jited_prog_insns", c_u64), ("xlated_prog_insns", c_u64),
        ("load_time", c_u64), ("created_by_uid", c_u32), ("nr_map_ids", c_u32),
        ("map_ids", c_u64), ("name", ctypes.c_char * 16), ("ifindex", c_u32), ("gpl", c_u32),
        ("netns_dev", c_u64), ("netns_ino", c_u64), ("nr_jited_ksyms", c_u32),
        ("nr_jited_func_lens", c_u32), ("jited_ksyms", c_u64), ("jited_func_lens", c_u64),
        ("btf_id", c_u32), ("func_info_rec_size", c_u32), ("func_info", c_u64),
        ("nr_func_info", c_u32), ("nr_line_info", c_u32), ("line_info", c_u64),
        ("jited_line_info", c_u64), ("nr_jited_line_info", c_u32), ("line_info_rec_size", c_u32),
        ("jited_line_info_rec_size", c_u32), ("nr_prog_tags", c_u32), ("prog_tags", c_u64),
        ("run_time_ns", c_u64), ("run_cnt", c_u64),
    ]


PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_ATTR_FLAG_WATERMARK = 1 << 14
PERF_ATTR_SIZE_VER5 = 112
PERF_TYPE_HARDWARE = 0
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_ATTR_FLAG_DISABLED, PERF_ATTR_FLAG_FREQ = 1 << 0, 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
# perf_event_open has no libc wrapper: its system call number, by machine
PERF_EVENT_OPEN_NR = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "loongarch64": 241, "ppc64le": 319,
                      "ppc64": 319, "s390x": 331, "i686": 336, "i386": 336, "armv7l": 364, "armv6l": 364}
BPF_TC_INGRESS, BPF_TC_EGRESS = 1 << 0, 1 << 1
BPF_XDP = 37
BPF_STATS_RUN_TIME = 0

_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "libbpf_major_version": (c_u32, []),
    "libbpf_minor_version": (c_u32, []),
    "libbpf_set_print": (c_void_p, [PRINT_FN]),
    "libbpf_num_possible_cpus": (c_int, []),
    "libbpf_probe_bpf_prog_type": (c_int, [c_int, c_void_p]),
    "libbpf_probe_bpf_map_type": (c_int, [c_int, c_void_p]),
    "libbpf_probe_bpf_helper": (c_int, [c_int, c_int, c_void_p]),
    "libbpf_find_vmlinux_btf_id": (c_int, [c_char_p, c_int]),
    "bpf_prog_load": (c_int, [c_int, c_char_p, c_char_p, c_void_p, c_size_t, ctypes.POINTER(ProgLoadOpts)]),
    "bpf_raw_tracepoint_open": (c_int, [c_char_p, c_int]),
    "bpf_object__open_mem": (c_void_p, [c_void_p, c_size_t, ctypes.POINTER(ObjectOpenOpts)]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__section_name": (c_char_p, [c_void_p]),
    "bpf_program__type": (c_int, [c_void_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, c_bool]),
    "bpf_map__set_autocreate": (c_int, [c_void_p, c_bool]),
    "bpf_program__attach": (c_void_p, [c_void_p]),
    "bpf_program__attach_xdp": (c_void_p, [c_void_p, c_int]),
    "bpf_program__attach_uprobe_opts": (c_void_p, [c_void_p, c_int, c_char_p, c_size_t, c_void_p]),
    "bpf_program__attach_perf_event": (c_void_p, [c_void_p, c_int]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "bpf_tc_hook_create": (c_int, [ctypes.POINTER(TcHook)]),
    "bpf_tc_hook_destroy": (c_int, [ctypes.POINTER(TcHook)]),
    "bpf_tc_attach": (c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
    "bpf_tc_detach": (c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
    "bpf_tc_query": (c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
    "bpf_prog_query": (c_int, [c_int, c_int, c_u32, ctypes.POINTER(c_u32), c_void_p, ctypes.POINTER(c_u32)]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__type": (c_int, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__key_size": (c_u32, [c_void_p]),
    "bpf_map__value_size": (c_u32, [c_void_p]),
    "bpf_map__max_entries": (c_u32, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, c_u32]),
    "bpf_map__set_type": (c_int, [c_void_p, c_int]),
    "bpf_map__set_key_size": (c_int, [c_void_p, c_u32]),
    "bpf_map__set_value_size": (c_int, [c_void_p, c_u32]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_u64]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_lookup_batch": (c_int, [c_int, c_void_p, c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_u32), c_void_p]),
    "bpf_link_create": (c_int, [c_int, c_int, c_int, c_void_p]),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, ctypes.POINTER(c_u32)]),
    "bpf_enable_stats": (c_int, [c_int]),
    "perf_buffer__new_raw": (c_void_p, [c_int, c_size_t, ctypes.POINTER(PerfEventAttr), PERF_EVENT_FN,
                                        c_void_p, c_void_p]),
    "perf_buffer__free": (None, [c_void_p]),
    "perf_buffer__buffer_cnt": (c_size_t, [c_void_p]),
    "perf_buffer__buffer_fd": (c_int, [c_void_p, c_size_t]),
    "perf_buffer__buffer": (c_int, [c_void_p, c_int, ctypes.POINTER(c_void_p), ctypes.POINTER(c_size_t)]),
}

_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None
_lock = threading.Lock()
_log_handler: Callable[[int, str], None] | None = None


def _load() -> ctypes.CDLL:
    global _lib, _libc
    with _lock:
        if _lib is not None:
            return _lib
        try:
            lib = ctypes.CDLL(LIBBPF_NAME, use_errno=True)
        except OSError:
            raise UnsupportedFeatureError(
                "libbpf", f"{LIBBPF_NAME} not found: install it with 'apt-get install libbpf1'"
            ) from None
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name, None)
            if fn is None:
                continue  # probed for where it matters; older libbpf lacks a few
            fn.restype = restype
            fn.argtypes = argtypes
        # dlopen(NULL): libc is already in the process; ctypes.util.find_library
        # would fork ldconfig, a few ms of every start-up.
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.vsnprintf.restype = c_int
        _libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
        _libc.prctl.restype = c_int
        _libc.prctl.argtypes = [c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.capget.restype = c_int
        _libc.capget.argtypes = [c_void_p, c_void_p]
        _libc.capset.restype = c_int
        _libc.capset.argtypes = [c_void_p, c_void_p]
        _libc.syscall.restype = ctypes.c_long  # variadic: arguments are passed as c_long
        lib.libbpf_set_print(_PRINT_CALLBACK)
        _lib = lib
        if version() < (1, 0):
            raise UnsupportedFeatureError("libbpf", f"libbpf {version_text()} is older than 1.0")
        return lib


def lib() -> ctypes.CDLL:
    return _lib if _lib is not None else _load()


def version() -> tuple[int, int]:
    b = lib()
    return int(b.libbpf_major_version()), int(b.libbpf_minor_version())


def version_text() -> str:
    major, minor = version()
    return f"{major}.{minor}"


# -- logging -------------------------------------------------------------------

def _format_va(fmt: bytes, ap: int) -> str:
    assert _libc is not None
    saved = ctypes.create_string_buffer(32)
    ctypes.memmove(saved, ap, 32)  # a va_list may be read once: keep a copy for a retry
    buf = ctypes.create_string_buffer(4096)
    n = _libc.vsnprintf(buf, len(buf), fmt, ap)
    if n >= len(buf):
        ctypes.memmove(ap, saved, 32)
        buf = ctypes.create_string_buffer(n + 1)
        _libc.vsnprintf(buf, len(buf), fmt, ap)
    return buf.value.decode("utf-8", "replace")


def _on_print(level: int, fmt: bytes, ap: int) -> int:
    handler = _log_handler
    if handler is not None and fmt:
        try:
            handler(level, _format_va(fmt, ap))
        except Exception:  # noqa: BLE001, S110 - an exception must never unwind through C
            pass
    return 0


_PRINT_CALLBACK = PRINT_FN(_on_print)


def set_log_handler(handler: Callable[[int, str], None] | None) -> None:
    """Route libbpf's messages to `handler(level, text)`; None silences them."""
    global _log_handler
    lib()
    _log_handler = handler


# -- errors ----------------------------------------------------------------------

def _errno(ret: int | None = None) -> int:
    err = ctypes.get_errno()
    if ret is not None and ret < 0:
        err = -ret
    return err or errno_mod.EINVAL


# EOPNOTSUPP, ENOSYS, and the kernel-internal ENOTSUPP (524) some BPF calls leak.
UNSUPPORTED_ERRNOS = {errno_mod.EOPNOTSUPP, errno_mod.ENOSYS, 524}


def error_for(err: int, action: str, *, capability: str = "CAP_BPF") -> KernelError:
    """The exception for a failed kernel operation, from its errno."""
    if err == errno_mod.EPERM and not has_privilege(capability):
        return MissingPrivilegeError(capability, action, err)
    if err in UNSUPPORTED_ERRNOS:
        return UnsupportedFeatureError(action, os.strerror(err), err)
    return KernelError(f"{action} failed: {os.strerror(err)} ({errno_mod.errorcode.get(err, err)})", err)


# -- the few libc calls process policy needs (kernel/process.py) ------------------

_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", c_u32), ("pid", c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", c_u32), ("permitted", c_u32), ("inheritable", c_u32)]


def prctl(option: int, arg: int) -> int:
    """prctl(option, arg, 0, 0, 0): 0, or the errno it failed with."""
    lib()
    assert _libc is not None
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        return ctypes.get_errno() or errno_mod.EINVAL
    return 0


def capget() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) capability masks."""
    lib()
    assert _libc is not None
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise KernelError(f"reading this process's capabilities failed: {os.strerror(err)}", err)
    low, high = data[0], data[1]
    return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability masks."""
    lib()
    assert _libc is not None
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = effective >> (32 * i) & 0xFFFFFFFF
        data[i].permitted = permitted >> (32 * i) & 0xFFFFFFFF
        data[i].inheritable = inheritable >> (32 * i) & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise KernelError(f"setting this process's capabilities failed: {os.strerror(err)}", err)


def mallopt(param: int, value: int) -> bool:
    """glibc's mallopt; False where the C library has none (musl) or refuses."""
    lib()
    assert _libc is not None
    fn = getattr(_libc, "mallopt", None)
    if fn is None:
        return False
    fn.restype, fn.argtypes = c_int, [c_int, c_int]
    return bool(fn(param, value))


def _check_ptr(ptr: int | None, action: str, **kw: str) -> int:
    if not ptr:
        raise error_for(_errno(), action, **kw)
    return ptr


def _check(ret: int, action: str, **kw: str) -> int:
    if ret < 0:
        raise error_for(_errno(ret), action, **kw)
    return ret


# -- objects, programs, maps ----------------------------------------------------------

def object_open(data: bytes, name: str, btf_path: str | None = None) -> int:
    """Open an ELF object from memory; `name` sets the object name libbpf uses
    for its internal maps (`<name[:8]>.rodata`), ASCII (Package.object_name);
    `btf_path`, when given, is the kernel BTF that CO-RE relocations are
    resolved against."""
    b = lib()
    opts = ObjectOpenOpts(sz=ctypes.sizeof(ObjectOpenOpts), object_name=name.encode(),
                          btf_custom_path=None if btf_path is None else os.fsencode(btf_path))
    buf = ctypes.create_string_buffer(data, len(data))
    ctypes.set_errno(0)
    ptr = b.bpf_object__open_mem(buf, len(data), ctypes.byref(opts))
    if not ptr:
        err = _errno()
        raise KernelError(f"libbpf cannot open the object: {os.strerror(err)}", err)
    return int(ptr)


def object_load(obj: int) -> None:
    ctypes.set_errno(0)
    ret = lib().bpf_object__load(c_void_p(obj))
    if ret < 0:
        raise error_for(_errno(ret), "loading the BPF object")


def object_close(obj: int) -> None:
    lib().bpf_object__close(c_void_p(obj))


def object_programs(obj: int) -> list[int]:
    b, p = lib(), None
    out: list[int] = []
    while True:
        p = b.bpf_object__next_program(c_void_p(obj), c_void_p(p) if p else None)
        if not p:
            return out
        out.append(int(p))


def object_maps(obj: int) -> list[int]:
    b, m = lib(), None
    out: list[int] = []
    while True:
        m = b.bpf_object__next_map(c_void_p(obj), c_void_p(m) if m else None)
        if not m:
            return out
        out.append(int(m))


def program_name(prog: int) -> str:
    return (lib().bpf_program__name(c_void_p(prog)) or b"").decode()


def program_section(prog: int) -> str:
    return (lib().bpf_program__section_name(c_void_p(prog)) or b"").decode()


def program_type(prog: int) -> int:
    return int(lib().bpf_program__type(c_void_p(prog)))


def program_fd(prog: int) -> int:
    return int(lib().bpf_program__fd(c_void_p(prog)))


def program_set_autoload(prog: int, autoload: bool) -> None:
    lib().bpf_program__set_autoload(c_void_p(prog), autoload)


def program_attach(prog: int) -> int:
    """Attach by SEC() name; returns a link handle. Raises with errno set."""
    ctypes.set_errno(0)
    return _check_ptr(lib().bpf_program__attach(c_void_p(prog)), f"attaching '{program_name(prog)}'",
                      capability="CAP_PERFMON")


class UprobeOpts(ctypes.Structure):
    """struct bpf_uprobe_opts as libbpf 1.0 and 1.1 have it (later ones add
    fields after these, zero unless sz covers them)."""

    _fields_ = [("sz", c_size_t), ("ref_ctr_offset", c_size_t), ("bpf_cookie", ctypes.c_uint64),
                ("retprobe", ctypes.c_bool), ("func_name", c_char_p)]


def program_attach_uprobe(prog: int, retprobe: bool, binary: str, func: str, pid: int = -1) -> int:
    """A uprobe on `func` of `binary` (a path, or a name libbpf finds on PATH
    or in the library directories), in every process (`pid` -1)."""
    opts = UprobeOpts(ctypes.sizeof(UprobeOpts), 0, 0, retprobe, func.encode())
    ctypes.set_errno(0)
    return _check_ptr(lib().bpf_program__attach_uprobe_opts(c_void_p(prog), pid, binary.encode(), 0,
                                                            ctypes.byref(opts)),
                      f"attaching '{program_name(prog)}' to {func} in {binary}", capability="CAP_PERFMON")


def program_attach_xdp(prog: int, ifindex: int) -> int:
    ctypes.set_errno(0)
    return _check_ptr(lib().bpf_program__attach_xdp(c_void_p(prog), ifindex),
                      f"attaching '{program_name(prog)}' to XDP", capability="CAP_NET_ADMIN")


def link_create(prog_fd: int, target_fd: int, attach_type: int) -> int:
    """A kernel link (an fd; closing it detaches), for attach types libbpf
    1.x has no helper for, such as tcx."""
    ctypes.set_errno(0)
    return _check(lib().bpf_link_create(prog_fd, target_fd, attach_type, None), "creating a BPF link",
                  capability="CAP_NET_ADMIN")


def link_destroy(link: int) -> None:
    lib().bpf_link__destroy(c_void_p(link))


# -- tc (netlink clsact and tcx), xdp with flags, perf events ----------------------------

def _tc_hook(ifindex: int, attach_point: int) -> TcHook:
    return TcHook(sz=ctypes.sizeof(TcHook), ifindex=ifindex, attach_point=attach_point)


def _tc_opts(handle: int, priority: int, prog_fd: int = 0) -> TcOpts:
    return TcOpts(sz=ctypes.sizeof(TcOpts), prog_fd=prog_fd, handle=handle, priority=priority)


def tc_hook_create(ifindex: int) -> bool:
    """Add a clsact qdisc to the interface: True if this call added it,
    False if one was there already (someone else's, then: leave it)."""
    ret = lib().bpf_tc_hook_create(ctypes.byref(_tc_hook(ifindex, BPF_TC_INGRESS)))
    if ret == -errno_mod.EEXIST:
        return False
    _check(ret, "adding a clsact qdisc", capability="CAP_NET_ADMIN")
    return True


def tc_hook_destroy(ifindex: int) -> None:
    """Delete the interface's clsact qdisc, with every filter on it. (With one
    attach point libbpf would instead flush every filter there, anyone's.)"""
    hook = _tc_hook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)
    _check(lib().bpf_tc_hook_destroy(ctypes.byref(hook)), "deleting a clsact qdisc", capability="CAP_NET_ADMIN")


def tc_attach(ifindex: int, attach_point: int, prog_fd: int, handle: int, priority: int) -> tuple[int, int, int]:
    """Add a cls_bpf filter (direct action) running `prog_fd`; never replaces
    one (EEXIST). Returns (handle, priority, program id) as the kernel set
    them (0 asks the kernel to choose)."""
    opts = _tc_opts(handle, priority, prog_fd)
    _check(lib().bpf_tc_attach(ctypes.byref(_tc_hook(ifindex, attach_point)), ctypes.byref(opts)),
           "adding a tc filter", capability="CAP_NET_ADMIN")
    return int(opts.handle), int(opts.priority), int(opts.prog_id)


def tc_query(ifindex: int, attach_point: int, handle: int, priority: int) -> int | None:
    """The id of the program in the filter (handle, priority); None if there is none."""
    opts = _tc_opts(handle, priority)
    ret = lib().bpf_tc_query(ctypes.byref(_tc_hook(ifindex, attach_point)), ctypes.byref(opts))
    if ret == -errno_mod.ENOENT:
        return None
    _check(ret, "looking up a tc filter", capability="CAP_NET_ADMIN")
    return int(opts.prog_id)


def tc_detach(ifindex: int, attach_point: int, handle: int, priority: int) -> None:
    hook, opts = _tc_hook(ifindex, attach_point), _tc_opts(handle, priority)
    _check(lib().bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts)), "removing a tc filter",
           capability="CAP_NET_ADMIN")


def prog_query_count(target: int, attach_type: int) -> int:
    """How many programs are attached at (target, attach_type): BPF_PROG_QUERY,
    whose errno says whether the kernel knows the attach type at all."""
    flags, count = c_u32(0), c_u32(0)
    ctypes.set_errno(0)
    ret = lib().bpf_prog_query(target, attach_type, 0, ctypes.byref(flags), None, ctypes.byref(count))
    _check(ret, "querying attached programs", capability="CAP_NET_ADMIN")
    return int(count.value)


def xdp_link_create(prog_fd: int, ifindex: int, flags: int) -> int:
    """An XDP link (an fd) with mode flags (XDP_FLAGS_SKB_MODE, ...), which
    bpf_program__attach_xdp cannot pass."""
    opts = LinkCreateOpts(sz=ctypes.sizeof(LinkCreateOpts), flags=flags)
    ctypes.set_errno(0)
    return _check(lib().bpf_link_create(prog_fd, ifindex, BPF_XDP, ctypes.byref(opts)), "attaching to XDP",
                  capability="CAP_NET_ADMIN")


def perf_event_open_sampling(hardware: bool, frequency: int, cpu: int, pid: int = -1) -> int:
    """A disabled perf event sampling `frequency` times a second: the CPU
    cycles counter, or the software cpu-clock. An fd; raises with the errno."""
    lib()
    assert _libc is not None
    nr = PERF_EVENT_OPEN_NR.get(os.uname().machine)
    if nr is None:
        raise UnsupportedFeatureError("perf events here", f"no perf_event_open number known for {os.uname().machine}")
    attr = PerfEventAttr()
    attr.type = PERF_TYPE_HARDWARE if hardware else PERF_TYPE_SOFTWARE
    attr.config = PERF_COUNT_HW_CPU_CYCLES if hardware else PERF_COUNT_SW_CPU_CLOCK
    attr.size, attr.sample_period = PERF_ATTR_SIZE_VER5, frequency  # sample_freq, with the freq flag
    attr.flags = PERF_ATTR_FLAG_DISABLED | PERF_ATTR_FLAG_FREQ
    c_long = ctypes.c_long
    ctypes.set_errno(0)
    fd = int(_libc.syscall(c_long(nr), ctypes.byref(attr), c_long(pid), c_long(cpu), c_long(-1),
                           c_long(PERF_FLAG_FD_CLOEXEC)))
    if fd < 0:  # a system call: -1 and errno, not -errno
        raise error_for(ctypes.get_errno() or errno_mod.EINVAL, "opening a sampling perf event",
                        capability="CAP_PERFMON")
    return fd


def program_attach_perf_event(prog: int, pfd: int) -> int:
    """Attach to a perf event and enable it; the link then owns `pfd` (libbpf
    closes it on destroy). On failure the caller still owns `pfd`."""
    ctypes.set_errno(0)
    return _check_ptr(lib().bpf_program__attach_perf_event(c_void_p(prog), pfd),
                      f"attaching '{program_name(prog)}' to a perf event", capability="CAP_PERFMON")


def map_name(m: int) -> str:
    return (lib().bpf_map__name(c_void_p(m)) or b"").decode()


def map_type(m: int) -> int:
    return int(lib().bpf_map__type(c_void_p(m)))


def map_fd(m: int) -> int:
    return int(lib().bpf_map__fd(c_void_p(m)))


def map_sizes(m: int) -> tuple[int, int, int]:
    """(key size, value size, max entries)."""
    b, p = lib(), c_void_p(m)
    return int(b.bpf_map__key_size(p)), int(b.bpf_map__value_size(p)), int(b.bpf_map__max_entries(p))


def map_set_autocreate(m: int, create: bool) -> None:
    """Whether the load creates this map (libbpf 0.8+): a map only programs
    left unloaded use need not exist."""
    _check(lib().bpf_map__set_autocreate(c_void_p(m), create), f"choosing whether to create map '{map_name(m)}'")


def map_set_max_entries(m: int, n: int) -> None:
    _check(lib().bpf_map__set_max_entries(c_void_p(m), n), f"resizing map '{map_name(m)}'")


def map_set_value_size(m: int, n: int) -> None:
    _check(lib().bpf_map__set_value_size(c_void_p(m), n), f"setting the value size of map '{map_name(m)}'")


def map_make_ringbuf(m: int, size: int) -> None:
    """Create map `m` as a BPF_MAP_TYPE_RINGBUF of `size` bytes instead of
    what the object declares (runner/perf2ring.py)."""
    b, p, what = lib(), c_void_p(m), f"making map '{map_name(m)}' a ring buffer"
    _check(b.bpf_map__set_type(p, 27), what)
    _check(b.bpf_map__set_key_size(p, 0), what)
    _check(b.bpf_map__set_value_size(p, 0), what)
    _check(b.bpf_map__set_max_entries(p, size), what)


def map_initial_value(m: int) -> memoryview | None:
    """The writable image of a data map (.rodata/.data/.bss) before load."""
    size = c_size_t(0)
    ptr = lib().bpf_map__initial_value(c_void_p(m), ctypes.byref(size))
    if not ptr:
        return None
    return memoryview((ctypes.c_char * size.value).from_address(ptr)).cast("B")


# -- map syscalls --------------------------------------------------------------------

def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    value = ctypes.create_string_buffer(value_size)
    ret = lib().bpf_map_lookup_elem(fd, key, value)
    if ret < 0:
        err = _errno(ret)
        if err == errno_mod.ENOENT:
            return None
        raise error_for(err, "reading a map")
    return value.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    _check(lib().bpf_map_update_elem(fd, key, value, flags), "writing a map")


def map_delete(fd: int, key: bytes) -> None:
    ret = lib().bpf_map_delete_elem(fd, key)
    if ret < 0 and _errno(ret) != errno_mod.ENOENT:
        raise error_for(_errno(ret), "deleting from a map")


def map_keys(fd: int, key_size: int, limit: int) -> list[bytes]:
    b = lib()
    keys: list[bytes] = []
    cur = ctypes.create_string_buffer(key_size)
    nxt = ctypes.create_string_buffer(key_size)
    ret = b.bpf_map_get_next_key(fd, None, nxt)
    while ret == 0 and len(keys) < limit:
        keys.append(nxt.raw)
        ctypes.memmove(cur, nxt, key_size)
        ret = b.bpf_map_get_next_key(fd, cur, nxt)
    if ret < 0 and _errno(ret) != errno_mod.ENOENT:
        raise error_for(_errno(ret), "listing map keys")
    return keys


def map_lookup_all(fd: int, key_size: int, value_size: int, chunk: int) -> tuple[bytes, bytes, int] | None:
    """Every entry, `chunk` per syscall, as (keys, values, count) packed end to
    end. None when the kernel lacks batch lookup for this map type."""
    b = lib()
    keys_out, values_out, total = bytearray(), bytearray(), 0
    keys = ctypes.create_string_buffer(key_size * chunk)
    values = ctypes.create_string_buffer(value_size * chunk)
    token_in = ctypes.create_string_buffer(max(key_size, 8))
    token_out = ctypes.create_string_buffer(max(key_size, 8))
    first = True
    while True:
        n = c_u32(chunk)
        ret = b.bpf_map_lookup_batch(fd, None if first else token_in, token_out, keys, values, ctypes.byref(n), None)
        err = _errno(ret) if ret < 0 else 0
        if ret < 0 and err != errno_mod.ENOENT:
            if first and (err == errno_mod.EINVAL or err in UNSUPPORTED_ERRNOS):  # 5.10: ENOTSUPP (524)
                return None
            raise error_for(err, "reading a map in batches")
        got = int(n.value)
        keys_out += keys.raw[: got * key_size]
        values_out += values.raw[: got * value_size]
        total += got
        if ret < 0:  # ENOENT: the end of the map
            return bytes(keys_out), bytes(values_out), total
        ctypes.memmove(token_in, token_out, len(token_out))
        first = False


def prog_run_stats(prog_fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of a loaded program; counted while stats are on."""
    info = ProgInfo()
    size = c_u32(ctypes.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(prog_fd, ctypes.byref(info), ctypes.byref(size)), "reading program info")
    return int(info.run_time_ns), int(info.run_cnt)


def obj_info_errno(fd: int) -> int:
    """0 when bpf(BPF_OBJ_GET_INFO_BY_FD) answers for `fd`, else its errno:
    a cheap bpf() call on an object already held, for probing whether the
    kernel lets this thread make such calls at all."""
    info = (ctypes.c_char * 256)()
    size = c_u32(len(info))
    ctypes.set_errno(0)
    ret = lib().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size))
    return _errno(ret) if ret < 0 else 0


def enable_run_stats() -> int:
    """Turn on the kernel's BPF run-time statistics while the returned fd is open."""
    return _check(lib().bpf_enable_stats(BPF_STATS_RUN_TIME), "enabling BPF statistics")


def num_possible_cpus() -> int:
    return _check(lib().libbpf_num_possible_cpus(), "counting CPUs")


def probe_prog_type(prog_type: int) -> bool:
    return bool(lib().libbpf_probe_bpf_prog_type(prog_type, None) == 1)


def probe_map_type(map_type: int) -> bool:
    return bool(lib().libbpf_probe_bpf_map_type(map_type, None) == 1)


def probe_helper(prog_type: int, helper_id: int) -> bool:
    """Whether programs of `prog_type` may call helper `helper_id` here
    (libbpf loads a two-instruction program that calls it)."""
    return bool(lib().libbpf_probe_bpf_helper(prog_type, helper_id, None) == 1)


BPF_PROG_TYPE_TRACING = 26
# r0 = 0; exit: the smallest program the verifier takes
_RETURN_ZERO = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])


def probe_traced_attach(attach_type: int, target: str) -> bool | None:
    """Whether this kernel loads and attaches a BTF-traced program (fentry,
    fexit: `target` a function; tp_btf: a tracepoint) there, as libbpf-tools'
    fentry_can_attach asks: a two-instruction program loaded and attached
    for a moment, then closed. None when vmlinux BTF does not name the
    target (a module's function): no answer; False without usable kernel BTF."""
    b = lib()
    ctypes.set_errno(0)
    btf_id = int(b.libbpf_find_vmlinux_btf_id(target.encode(), attach_type))
    if btf_id == -errno_mod.ENOENT:
        return None  # BTF loaded, no such name in it
    if btf_id <= 0:
        return False  # no usable kernel BTF: nothing BTF-traced attaches
    opts = ProgLoadOpts(sz=ctypes.sizeof(ProgLoadOpts), expected_attach_type=attach_type, attach_btf_id=btf_id)
    code = ctypes.create_string_buffer(_RETURN_ZERO, len(_RETURN_ZERO))
    fd = int(b.bpf_prog_load(BPF_PROG_TYPE_TRACING, b"probe", b"GPL", code, 2, ctypes.byref(opts)))
    if fd < 0:
        return False
    try:
        link = int(b.bpf_raw_tracepoint_open(None, fd))
        if link >= 0:
            os.close(link)
        return link >= 0
    finally:
        os.close(fd)


# -- perf buffers ---------------------------------------------------------------------

def _ignore_perf_record(ctx: int, cpu: int, header: int) -> int:
    return 0  # records are read from the rings' memory directly, never through libbpf


_unused_perf_callback = PERF_EVENT_FN(_ignore_perf_record)


def perf_buffer_open(map_fd: int, page_cnt: int, watermark_bytes: int) -> int:
    """Per-CPU perf rings for a PERF_EVENT_ARRAY map that wake the reader once
    `watermark_bytes` have accumulated, not once per record."""
    attr = PerfEventAttr()
    attr.type, attr.size = PERF_TYPE_SOFTWARE, PERF_ATTR_SIZE_VER5
    attr.config, attr.sample_type, attr.sample_period = PERF_COUNT_SW_BPF_OUTPUT, PERF_SAMPLE_RAW, 1
    attr.flags = PERF_ATTR_FLAG_WATERMARK
    attr.wakeup = watermark_bytes
    ctypes.set_errno(0)
    ptr = lib().perf_buffer__new_raw(map_fd, page_cnt, ctypes.byref(attr), _unused_perf_callback, None, None)
    return _check_ptr(ptr, "opening perf buffers", capability="CAP_PERFMON")


def perf_buffer_rings(pb: int) -> list[tuple[int, memoryview]]:
    """Each CPU ring as (fd, memory): the control page followed by the data pages."""
    b = lib()
    out = []
    for i in range(int(b.perf_buffer__buffer_cnt(c_void_p(pb)))):
        base, size = c_void_p(), c_size_t()
        _check(b.perf_buffer__buffer(c_void_p(pb), i, ctypes.byref(base), ctypes.byref(size)), "mapping a perf ring")
        total = size.value + os.sysconf("SC_PAGE_SIZE")
        mem = memoryview((ctypes.c_char * total).from_address(base.value or 0)).cast("B")
        out.append((int(b.perf_buffer__buffer_fd(c_void_p(pb), i)), mem))
    return out


def perf_buffer_close(pb: int) -> None:
    lib().perf_buffer__free(c_void_p(pb))
