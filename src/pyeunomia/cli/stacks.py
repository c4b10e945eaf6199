"""ecli's stack traces: the writer a `stack_trace` package gets, and the
folded stacks and flame graph written when the run ends.

    ecli run profile.json                           # symbolized stacks, as upstream prints them
    ecli run profile.json --folded out.folded       # and folded counts at exit (flamegraph.pl input)
    ecli run profile.json --flamegraph out.svg      # and an SVG flame graph at exit
    ecli run profile.json --folded - > out.folded   # folded counts on stdout instead of the stacks
"""

from __future__ import annotations

import argparse
import os
from typing import IO, TYPE_CHECKING

from ..errors import UsageError
from ..format.stacks import SampleReader, stack_trace_specs
from ..output.flamegraph import render_svg
from ..output.stacks import FoldedProfile, StackWriter
from ..runner.stackmap import stack_map
from ..runner.symbolize import Symbolizer

if TYPE_CHECKING:
    from ..format.package import Package
    from ..runner.program import Program


class StackOutput:
    """The files asked for, opened before anything loads (a bad path is a
    usage error, not a lost profile), written by `finish`."""

    def __init__(self, package: Package, args: argparse.Namespace):
        self.specs = stack_trace_specs(package)
        self.folded_path: str | None = getattr(args, "folded", None)
        self.svg_path: str | None = getattr(args, "flamegraph", None)
        self.title = f"{package.name}: stack samples"
        if (self.folded_path or self.svg_path) and not self.specs:
            raise UsageError(f"{package.origin} has no map with the stack_trace interpreter: --folded and "
                             "--flamegraph need one (\"intepreter\": {\"stack_trace\": {}} on its event buffer)")
        if self.folded_path and self.folded_path == self.svg_path:
            raise UsageError(f"--folded and --flamegraph both name {self.folded_path}: give each its own file")
        self.files: dict[str, IO[bytes]] = {}
        try:
            for path in (self.folded_path, self.svg_path):
                if path and path != "-":
                    self.files[path] = _create(path)
        except BaseException:
            self.close()
            raise
        self.profile = FoldedProfile(bool(getattr(args, "delimited", False))) \
            if (self.folded_path or self.svg_path) else None
        self.writer: StackWriter | None = None
        self.symbolizer = Symbolizer()
        if self.specs and self.specs[0].with_symbols:
            # kallsyms now, before anything samples: read on the first kernel stack it held that sample (and
            # a stop) for 0.3 s here and many seconds in the matrix's qemu guests, while samples piled up
            self.symbolizer.kernel_table()

    def event_writer(self, prog: Program, stream: IO[bytes], as_json: bool, containers: bool = False) -> StackWriter:
        # the struct of the buffer that carries the stacks (each buffer has its own: format/exports.py)
        buffer = prog.exports.buffers.get(self.specs[0].map_name)
        layout = buffer.layout if buffer is not None else prog.layout
        if layout is None:
            raise UsageError(f"map '{self.specs[0].map_name}' asks for stack traces but the package has no "
                             "export type: rebuild it with ecc")
        ids = stack_map(prog.loaded.maps())
        reader = SampleReader(self.specs[0], layout, ids.addresses if ids is not None else None)
        try:
            self.writer = StackWriter(reader, self.symbolizer, None if self.folded_path == "-" else stream, as_json,
                                      self.profile, containers=containers)
        except ValueError as e:  # --containers without a cgroup id member
            raise UsageError(str(e)) from None
        return self.writer

    def finish(self, stdout: IO[bytes]) -> list[str]:
        """Writes the files; returns notes for stderr."""
        notes: list[str] = []
        if self.profile is None:
            return notes
        lines = self.profile.lines()
        samples = sum(self.profile.counts.values())
        if self.folded_path:
            data = "".join(lines).encode("utf-8", "surrogateescape")
            target = stdout if self.folded_path == "-" else self.files[self.folded_path]
            target.write(data)
            target.flush()
            if self.folded_path != "-":
                notes.append(f"{len(lines)} distinct stacks of {samples} samples folded into {self.folded_path}")
        if self.svg_path:
            self.files[self.svg_path].write(render_svg(self.profile.counts, self.title).encode("utf-8"))
            self.files[self.svg_path].flush()
            notes.append(f"flame graph of {samples} samples written to {self.svg_path}")
        return notes

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def _create(path: str) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {os.strerror(e.errno) if e.errno else e}: "
                         "choose a writable path") from None
