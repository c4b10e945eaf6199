"""Kernel-matrix rows of the metadata every catalogue tool is made of
(docs/writing-tools.md), on the end-to-end tests' own programs: an option's
text converted (a signal name) filtering in the kernel with a bool flag, and
maps printed as their @histogram and @table ask, every `-i` round given by
position (`ecli run metamaps -p PID 0.5 60`), clearing a table between rounds.

Standard library only: the guest imports this too.
"""

from __future__ import annotations

import os

from . import actions as a
from .actions import Ctx
from .checks import Json, event
from .matrix import Program, e2e, row

META_FD = 77  # the fd the writes go to: the histogram's key names it
META_WRITES = ((9973, 3), (14157, 4))  # all in the log2 slot 13 (8192 -> 16383): 7 there


def meta_writes(ctx: Ctx) -> None:
    """write(2) calls of the harness itself (the pid the program filters on,
    `{harness_pid}`) on fd META_FD."""
    fd = os.open("/dev/null", os.O_WRONLY)
    os.dup2(fd, META_FD)
    try:
        for size, times in META_WRITES:
            for _ in range(times):
                os.write(META_FD, b"m" * size)
    finally:
        os.close(META_FD)
        os.close(fd)
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    ctx.update(pid=os.getpid(), comm=comm)


SLOTS = str([0] * 13 + [sum(n for _, n in META_WRITES)] + [0] * 12)

ROWS: tuple[Program, ...] = (
    row("meta/options", e2e("metaopts"), "ecli run -j {pkg} -s USR1 -x", a.kill_missing,
        [event(pid="{pid}", tpid="{tpid}", sig="{sig}", ret="{ret}")]),
    row("meta/maps", e2e("metamaps"), "ecli run -j {pkg} -p {harness_pid} 0.5 60", meta_writes,
        [Json({"map": "sizes", "key_text": f"fd = {META_FD}, comm = {{comm}}", "unit": "bytes", "value.slots": SLOTS}),
         Json({"map": "fds", "key": "{pid}", "key_text": "{pid}", "unit": "fd"})]),
)
