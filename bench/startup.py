"""Start-up and memory: time from launch to the first reported open, and the
tracer's RSS after it has run for a while."""

from __future__ import annotations

import time

from common import Stat, Tracer, repeat, rss_kib, temp_dir


def first_open(tracer: Tracer, reps: int) -> Stat:
    """Seconds from exec to the first open the tracer prints."""
    def once() -> float:
        work = temp_dir()
        start = time.monotonic()
        run = tracer.start(work / "trace.out")
        try:
            run.wait_ready(work)
            return time.monotonic() - start
        finally:
            run.stop()
    return repeat(reps, once)


def rss_after(tracer: Tracer, seconds: float) -> int:
    """KiB resident after `seconds` of tracing the machine's ordinary opens."""
    work = temp_dir()
    run = tracer.start(work / "trace.out")
    try:
        run.wait_ready(work)
        time.sleep(seconds)
        return rss_kib(run.proc.pid)
    finally:
        run.stop()
