"""The kernel's BPF run-time statistics (run time and count per program):
off by default because counting costs each run a little, so a long-running
user (the exporter) turns them on for as long as it holds the fd this
returns. LoadedObject.run_stats() reads them per program."""

from __future__ import annotations

from ..kernel import libbpf


def enable_run_stats() -> int:
    """An fd that keeps the statistics on until it is closed."""
    return libbpf.enable_run_stats()
