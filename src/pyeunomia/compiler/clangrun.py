"""Running clang and llvm-strip: command lines, concurrent jobs, diagnostics."""

from __future__ import annotations

import logging
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import CompileError
from .toolchain import TOOL_TIMEOUT_S

log = logging.getLogger("pyeunomia.ecc")


@dataclass
class Finished:
    returncode: int
    stdout: bytes
    stderr: str


class Job:
    """One tool run in the background, so independent steps overlap."""

    def __init__(self, argv: list[str], cwd: str | None = None):
        self.argv = argv
        log.info("%s", shlex.join(argv))
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        except OSError as e:
            raise CompileError(f"cannot run {argv[0]}: {e.strerror}") from None
        self._done: Finished | None = None

    def wait(self) -> Finished:
        if self._done is None:
            try:
                out, err = self._proc.communicate(timeout=TOOL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.communicate()
                tool = Path(self.argv[0]).name
                raise CompileError(f"{tool} took longer than {TOOL_TIMEOUT_S} s: stopped it") from None
            self._done = Finished(self._proc.returncode, out, err.decode("utf-8", "replace"))
        return self._done

    def cancel(self) -> None:
        if self._done is None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()

    def check(self, what: str) -> Finished:
        """The result; a CompileError carrying all of the tool's diagnostics
        when it failed."""
        done = self.wait()
        if done.returncode != 0:
            diagnostics = done.stderr.rstrip() or f"(no diagnostics; exit status {done.returncode})"
            raise CompileError(f"{what}:\n{diagnostics}")
        return done


def parse_depfile(text: str) -> list[str]:
    """The prerequisites of a make-style dependency file (`clang -MD`)."""
    body = text.replace("\\\n", " ")
    _target, _sep, rest = body.partition(": ")
    deps, current, i = [], [], 0
    while i < len(rest):
        c = rest[i]
        if c == "\\" and i + 1 < len(rest) and rest[i + 1] in " #":
            current.append(rest[i + 1])
            i += 2
            continue
        if c == "$" and rest[i + 1 : i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if c.isspace():
            if current:
                deps.append("".join(current))
                current = []
        else:
            current.append(c)
        i += 1
    if current:
        deps.append("".join(current))
    return deps
