"""Writing a whole batch to a binary stream, however short its writes are.

sys.stdout.buffer is a BufferedWriter, which loops until every byte is out,
only when Python buffers stdout: under PYTHONUNBUFFERED=1 or `python -u`
(common in containers and CI) it is the raw FileIO, whose write() is one
write(2) and returns how much it took. A signal that interrupts a write to a
full pipe (Ctrl-C on `ecli run -j ... | jq`, SIGINT or SIGTERM from a
supervisor) makes write(2) return the bytes it had copied, and the rest of the
batch was lost: a line cut in the middle, then the next batch. Measured with
two open() loops on 2 CPUs and `ecli run -j opensnoop --targ_pid 0` stopped by
SIGINT after 0.5 s: 9 runs in 31 had a cut line before this, 0 in 40 after.
"""

from __future__ import annotations

import select
from typing import IO


def write_all(stream: IO[bytes], data: bytes) -> None:
    """Write all of `data`. A buffered stream takes it in one call (the
    usual case: no extra work per batch); a raw one may take part of it, and
    is called again for the rest. A raw non-blocking descriptor that is full
    (its write() gives None) is waited for."""
    n = stream.write(data)
    if n is None or n < len(data):
        _write_rest(stream, memoryview(data), n or 0)


def _write_rest(stream: IO[bytes], view: memoryview, done: int) -> None:
    while done < len(view):
        n = stream.write(view[done:])
        if n is None:  # non-blocking and full: wait until it drains
            select.select([], [stream.fileno()], [])
            continue
        done += n
