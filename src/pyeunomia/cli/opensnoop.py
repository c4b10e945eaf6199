"""opensnoop: trace every file open on the machine.

Flags follow bcc's and libbpf-tools' opensnoop. Filters run in the kernel;
the built-in package needs no compiler.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UsageError
from .common import ArgumentParser, StopSignals, require_stdout, run_command, seconds, setup_logging
from .containeropts import add_container_options, container_filters, start_container_filter

EXAMPLES = """examples:
  opensnoop                 # every open on the machine
  opensnoop -T -U -e        # with time, uid, decoded flags, mode and syscall
  opensnoop -x              # failed opens only
  opensnoop -p 181          # process 181 only
  opensnoop -n sshd         # processes whose name contains "sshd"
  opensnoop -f O_CREAT -f O_WRONLY   # opens with either flag
  opensnoop -F              # relative names resolved to full paths
  opensnoop -j | jq .fname  # JSON lines
"""
COMM_LEN = 16
RING_BYTES = 8 << 20  # mapped twice by the kernel: 16 MiB of RSS
POLL_MS = 1000  # an idle reader's timeout: the BPF program wakes it when events come


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="opensnoop", description="Trace open(), openat(), openat2() and creat() "
                       "system-wide, with filters in the kernel.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-T", "--timestamp", action="store_true", help="include a TIME(s) column (seconds since start)")
    p.add_argument("-U", "--print-uid", action="store_true", help="include a UID column")
    p.add_argument("-x", "--failed", action="store_true", help="only failed opens")
    p.add_argument("-p", "--pid", type=_id("PID"), help="only this process id")
    p.add_argument("-t", "--tid", type=_id("TID"), help="only this thread id")
    p.add_argument("-u", "--uid", type=_id("UID", zero_ok=True), help="only this user id")
    p.add_argument("-n", "--name", help="only process names containing NAME")
    p.add_argument("--exact-name", action="store_true", help="with -n, the name must match exactly")
    p.add_argument("-e", "--extended-fields", action="store_true", help="show TID, decoded flags, mode and syscall")
    p.add_argument("-E", "--errno-names", action="store_true", help="show ERR as a name (ENOENT)")
    p.add_argument("-f", "--flag", action="append", default=[], metavar="FLAG",
                   help="only opens with this flag (O_CREAT, O_WRONLY, ...); repeat for any of several")
    p.add_argument("-F", "--full-path", action="store_true", help="resolve relative names to full paths")
    p.add_argument("--cgroup", metavar="PATH", help="only processes in this cgroup v2 (or below it)")
    add_container_options(p)
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("-j", "--json", action="store_true", help="one JSON object per open")
    p.add_argument("-b", "--buffer-mb", type=_buffer_mb, default=RING_BYTES >> 20, metavar="MB",
                   help=f"ring buffer size in MiB, a power of two (default: {RING_BYTES >> 20})")
    p.add_argument("--btf", metavar="PATH",
                   help="the kernel BTF that CO-RE relocations resolve against instead of /sys/kernel/btf/vmlinux "
                        "(for kernels without BTF)")
    p.add_argument("-v", "--verbose", action="store_true", help="show libbpf's own log")
    return p


def _id(what: str, zero_ok: bool = False) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a numeric {what}, got {text!r}") from None
        if value < (0 if zero_ok else 1) or value > 0xFFFFFFFE:
            raise argparse.ArgumentTypeError(f"{what} {value} is out of range")
        return value
    return parse


def _buffer_mb(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or value > 1024 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"expected a power of two from 1 to 1024, got {text!r}")
    return value


def program_values(args: argparse.Namespace) -> dict[str, Any]:
    """The BPF program's globals for these flags (see opensnoop.bpf.c)."""
    from ..decoders.cgroup import cgroup_id_and_level
    from ..decoders.open_flags import ACCESS_MODES, parse_open_flag

    values: dict[str, Any] = {"targ_failed": args.failed, "full_path": args.full_path,
                              "wakeup_bytes": (args.buffer_mb << 20) // 4}
    if args.pid:
        values["targ_pid"] = args.pid
    if args.tid:
        values["targ_tid"] = args.tid
    if args.uid is not None:
        values["targ_uid"] = args.uid
    if args.name:
        if len(args.name.encode()) >= COMM_LEN:
            raise UsageError(f"-n: a process name has at most {COMM_LEN - 1} bytes, got {args.name!r}")
        values["targ_comm"] = args.name
        values["targ_comm_exact"] = args.exact_name
    flags = accmodes = 0
    for text in args.flag:
        try:
            bits = parse_open_flag(text)
        except ValueError as e:
            raise UsageError(f"-f: {e}") from None
        if text.strip().upper().removeprefix("O_") in {m.removeprefix("O_") for m in ACCESS_MODES.values()}:
            accmodes |= 1 << bits
        else:
            flags |= bits
    values["targ_flags"], values["targ_accmodes"] = flags, accmodes
    if args.cgroup:
        try:
            values["targ_cgroup"], values["targ_cgroup_level"] = cgroup_id_and_level(args.cgroup)
        except OSError as e:
            raise UsageError(f"--cgroup: {e}") from None
    return values


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    require_stdout()  # the events are the point: say so before loading anything
    setup_logging(args.verbose)
    from ..output import opensnoop as output
    from ..runner.program import Program
    from ..source import open_package

    start_ns = output.boot_time_ns()  # TIME(s) counts from here, before anything attaches
    package = open_package("opensnoop")
    layout = package.export_layout()
    assert layout is not None
    values = program_values(args)
    programs = {p.name: p.section for p in package.spec.programs}
    columns = output.Columns(args.timestamp, args.print_uid, args.extended_fields, args.errno_names,
                             args.containers)
    filters = container_filters(package, values, args)
    stops = StopSignals()
    try:
        with Program(package, values, verbose=args.verbose, map_sizes={"events": args.buffer_mb << 20},
                     poll_ms=POLL_MS, btf=args.btf) as prog:
            # the program drops every event until this fills its cgroup_filter map: filled before
            # "attached" is said, so that what a caller does after it is filtered in (as ecli)
            extra = [start_container_filter(prog, args)] if filters else []
            attached = ", ".join(sorted(s.split("sys_exit_")[-1] for n, s in programs.items()
                                        if "sys_exit_" in s and prog.loaded.program_loaded(n)))
            sys.stderr.write(f"opensnoop: attached to {attached}; Ctrl-C to stop\n")
            sys.stderr.flush()
            out = sys.stdout.buffer
            if args.json:
                writer = output.json_lines(layout, out, columns)
            else:
                writer = output.table(layout, out, columns, start_ns)
            stats = prog.run(writer, duration=args.duration, should_stop=stops.stop_requested,
                             wakeup_fd=stops.wakeup_fd, extra=extra)
    finally:
        stops.restore()
    if stats.lost:
        sys.stderr.write(f"opensnoop: {stats.lost} events lost (of {stats.received + stats.lost}): "
                         "the ring buffer was full; try a larger -b\n")
    return 0


def entry() -> None:
    run_command("opensnoop", main)


if __name__ == "__main__":
    entry()
