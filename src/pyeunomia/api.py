"""What `import pyeunomia` offers beyond Program and open_package: printing
a running program's events as ecli does. Above runner and output, so
neither needs the other."""

from __future__ import annotations

import sys
from typing import IO

from .output.sampled import SamplePrinter
from .output.writers import plan_writer
from .runner.program import Program, RunStats


def print_events(program: Program, stream: IO[bytes] | None = None, *, as_json: bool = False,
                 duration: float | None = None) -> RunStats:
    """Print `program`'s events (and sampled maps) to `stream` (stdout by
    default) as a table or JSON lines, until `duration` seconds pass."""
    out = stream or sys.stdout.buffer
    writer = plan_writer(program.exports, out, as_json, header=bool(program.buffer_maps()))
    return program.run(writer, SamplePrinter(out, as_json), duration=duration)
