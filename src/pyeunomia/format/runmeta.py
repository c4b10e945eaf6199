"""The package's run settings: the top-level keys of `meta` that upstream's
loader reads besides the skeleton (bpf-loader-rs, bpf-loader-lib/src/meta/
mod.rs, EunomiaObjectMeta), with its defaults, checked.

    key                  upstream default   what upstream does with it
    perf_buffer_pages    64                 parsed; libbpf-rs opens 64 pages anyway
                                            (the C loader it replaced used it)
    perf_buffer_time_ms  10                 parsed, never used (by either loader)
    poll_timeout_ms      100                the ring and perf buffer poll timeout
    print_header         false              parsed, never used: the header prints
    debug_verbose        false              overwritten by the program's --verbose

What ours does with each is in README.md (Upstream metadata). Pure.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import PackageError

DEFAULT_PERF_BUFFER_PAGES = 64
DEFAULT_PERF_BUFFER_TIME_MS = 10
DEFAULT_POLL_TIMEOUT_MS = 100
# A perf ring per CPU of this many pages: libbpf takes only powers of two, and
# 4096 pages (16 MiB a CPU) is 64 times the default; more is a typo or a
# memory bomb (1 << 40 pages failed with ENOMEM only after the load).
MAX_PERF_BUFFER_PAGES = 4096
I32_MAX = (1 << 31) - 1


class RunMeta(NamedTuple):
    perf_buffer_pages: int = DEFAULT_PERF_BUFFER_PAGES
    perf_buffer_time_ms: int = DEFAULT_PERF_BUFFER_TIME_MS
    poll_timeout_ms: int = DEFAULT_POLL_TIMEOUT_MS
    print_header: bool | None = None  # None: the package does not say
    debug_verbose: bool = False


def run_meta(meta: Any, where: str) -> RunMeta:
    """The run settings of a package's `meta` object; `where` names it in errors."""
    if not isinstance(meta, dict):
        return RunMeta()
    pages = _int(meta, "perf_buffer_pages", where, DEFAULT_PERF_BUFFER_PAGES, 1, MAX_PERF_BUFFER_PAGES)
    if pages & (pages - 1):
        raise PackageError(f"{where}: 'perf_buffer_pages' is {pages}, and libbpf takes only a power of two "
                           f"(1, 2, 4 ... {MAX_PERF_BUFFER_PAGES}): change it or leave it out (64)")
    return RunMeta(
        pages,
        _int(meta, "perf_buffer_time_ms", where, DEFAULT_PERF_BUFFER_TIME_MS, 0, I32_MAX),
        # upstream's is an i32; 0 or less made epoll wait forever (runner/loop.py keeps it at 1 ms or more)
        _int(meta, "poll_timeout_ms", where, DEFAULT_POLL_TIMEOUT_MS, -I32_MAX - 1, I32_MAX),
        _bool(meta, "print_header", where, None),
        bool(_bool(meta, "debug_verbose", where, False)),
    )


def _int(meta: dict[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = meta.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise PackageError(f"{where}: '{key}' must be an integer")
    if not low <= value <= high:
        raise PackageError(f"{where}: '{key}' must be an integer from {low} to {high}, not {value}")
    return value


def _bool(meta: dict[str, Any], key: str, where: str, default: bool | None) -> bool | None:
    value = meta.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PackageError(f"{where}: '{key}' must be true or false")
    return value
