"""What every command shares: one-line errors with exit statuses, clean
stops on signals and closed pipes, and closed standard streams."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from ..errors import EunomiaError, StreamClosedError, UsageError
from ..format.escape import escape_text

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line raises one UsageError line instead of
    printing the usage block."""

    def __init__(self, *args: Any, **kwargs: Any):
        # argparse's formatters ask shutil for the terminal width; importing shutil
        # (and the bz2 and lzma it pulls in) costs every start-up ~2 ms.
        base = kwargs.pop("formatter_class", argparse.HelpFormatter)
        kwargs["formatter_class"] = lambda prog: base(prog, width=_terminal_width())
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # argparse quotes the arguments it refuses as they are: escape their control characters
        raise UsageError(f"{escape_text(message)} (see '{self.prog} --help')")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """--help, --version and usage: argparse's own version swallows a
        failed write (and a closed stdout sends help to stderr), and the
        interpreter's last flush then fails after exit status 0. Written and
        flushed here, a full disk is one error line and status 1, as for any
        other output, and a closed stdout says so."""
        if message:
            stream = file or sys.stderr
            stream.write(message)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()


def _terminal_width() -> int:
    """What shutil.get_terminal_size() gives, less the 2 columns argparse keeps free."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    columns = columns or 80
    return max(columns, 24) - 2


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds (-d/--duration)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class StopSignals:
    """Turns SIGINT, SIGTERM and SIGHUP into a flag plus a wake-up of the poll
    loop, so the loop ends between batches and cleans up."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        self._old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    @property
    def wakeup_fd(self) -> int:
        return self._r

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum

    def stop_requested(self) -> bool:
        return self.received is not None

    def restore(self) -> None:
        signal.set_wakeup_fd(self._old_fd)
        for s, old in self._old.items():
            signal.signal(s, old)
        os.close(self._r)
        os.close(self._w)


def setup_logging(verbose: bool) -> None:
    """Show debug logs with -v; otherwise Python's default (warnings to stderr)
    applies and logging is not even imported."""
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)


class ClosedStream:
    """Stands in for sys.stdin or sys.stdout when that descriptor was closed
    at start (Python leaves None there, so the first use was an
    AttributeError): reading or writing raises StreamClosedError, one line
    saying what to do; flushing, as the interpreter does at exit, does nothing."""

    closed = False

    def __init__(self, fd: int):
        self.fd = fd

    def _refuse(self, *_args: object) -> NoReturn:
        raise StreamClosedError(self.fd)

    write = writelines = read = readline = readlines = fileno = __iter__ = _refuse
    buffer = property(_refuse)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def guard_standard_streams() -> None:
    """Started with fd 0, 1 or 2 closed, the process would hand those numbers
    to the next files it opens (BPF maps, a package), and a message or an
    event would be written into them. Each closed one is reopened on
    /dev/null to hold its number; stdin and stdout become a ClosedStream, so a
    command that needs one says so, and stderr writes to /dev/null, so
    messages go nowhere and the command runs as usual. Python's own None in
    sys.stdin/stdout/stderr tells which were closed: no system call at all
    when none was."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        if getattr(sys, name) is not None:
            continue
        _hold_descriptor(fd)
        if fd == 2:
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        else:
            setattr(sys, name, cast(TextIO, ClosedStream(fd)))


def _hold_descriptor(fd: int) -> None:
    try:
        os.fstat(fd)
        return  # already taken again: leave it be
    except OSError:
        pass
    null = os.open(os.devnull, os.O_RDWR)
    if null == fd:
        os.set_inheritable(fd, True)  # a standard descriptor, as children expect
    else:
        os.dup2(null, fd)
        os.close(null)


def require_stdout() -> None:
    """For a command whose output is its point: fail before loading
    anything when standard output was closed."""
    if isinstance(sys.stdout, ClosedStream):
        raise StreamClosedError(1)


def run_command(prog: str, main: Callable[[list[str]], int], argv: list[str] | None = None) -> NoReturn:
    """Run `main`, turning our errors into one line on stderr and an exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        guard_standard_streams()
        status = main(args)
    except EunomiaError as e:
        _say(f"{prog}: error: {controls_escaped(str(e))}")
        status = e.exit_status
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        status = EXIT_OK
    except OSError as e:  # writing output failed: a full disk, a closed terminal
        where = f" ({escape_text(str(e.filename))})" if e.filename else ""
        _say(f"{prog}: error: {e.strerror or e}{where}: cannot go on")
        status = EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - a bug still gets one line, and the trace on request
        if os.environ.get("PYEUNOMIA_DEBUG"):
            import traceback

            traceback.print_exc()
        _say(f"{prog}: internal error: {type(e).__name__}: {escape_text(str(e))} "
             "(set PYEUNOMIA_DEBUG=1 for the traceback)")
        status = EXIT_ERROR
    _quiet_stdout_close()
    sys.exit(status)


def controls_escaped(message: str) -> str:
    """The last line of defence before a terminal: control characters that
    reached a message anyway (a file name, a compiler's diagnostic) escaped,
    its line breaks kept (a verifier log's tail has several lines) and
    nothing else touched, so text escaped earlier is not escaped twice."""
    if message.isprintable():
        return message
    return "\n".join("".join(c if c.isprintable() or c == "\t" else escape_text(c) for c in line)
                     for line in message.split("\n"))


def _say(line: str) -> None:
    try:
        sys.stderr.write(line.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: stderr closed, and it failed before the guard
        pass


def _quiet_stdout_close() -> None:
    """A reader that went away (ecli ... | head -1) is not an error: make the
    interpreter's final flush of stdout go nowhere instead of printing one."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
