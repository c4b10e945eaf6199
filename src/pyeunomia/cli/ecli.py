"""ecli: run a compiled eBPF package.

    ecli run [runner options] PACKAGE [program options]

The program options come from the package's global variables.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import PackageError, UsageError
from ..format.escape import escape_text
from .common import ArgumentParser, StopSignals, require_stdout, run_command, seconds, setup_logging
from .containeropts import add_container_options, container_filters, start_container_filter
from .registry import registry_commands, registry_options

if TYPE_CHECKING:
    from ..format.options import ConverterOf, GlobalOption
    from ..format.package import Package
    from ..runner.mapdump import MapDumper
    from ..runner.program import Program

UPSTREAM_VERSION = "0.1.0"  # upstream's loader shows this when the package's doc has no version
RUNNER_FLAGS = {"-j", "--json", "-d", "--duration", "-v", "--verbose", "--ifname", "-F", "--frequency", "--btf",
                "--only", "--skip", "--folded", "--flamegraph", "-i", "--interval", "--all-maps", "--count",
                "--containers", "--container", "--pod", "--namespace"}
# Runner options every tool also takes after PACKAGE (docs/writing-tools.md), unless a global has the spelling
PER_PACKAGE_FLAGS = {"extended": (("-e", "--extended"), "show the extended columns too"),
                     "timestamp": (("-T", "--timestamp"), "print the wall-clock time (HH:MM:SS) first"),
                     "elapsed": (("--elapsed",), "print the seconds since the start (TIME(s)) first"),
                     "detailed": (("--detailed",), "print every column of an event, one per line")}
# Runner options a package may also spell with a short name of its own after PACKAGE, as its
# libbpf-tools peer does (`@runner {"elapsed": "t"}`: execsnoop -t); name -> (help, type)
RUNNER_SHORTS: dict[str, tuple[str, Any]] = {
    **{name: (text, None) for name, (_flags, text) in PER_PACKAGE_FLAGS.items()},
    "duration": ("stop after this many seconds", seconds),
    "interval": ("print the maps every this many seconds", seconds),
    "frequency": ("sample this many times a second per CPU", None),
    "folded": ("print the folded stacks, one line per stack, instead of the samples", None),
    "delimited": ("in folded stacks, a '-' frame between the user and the kernel frames", None),
}
POSITIONAL = "positional-"  # dests of a package's @positional arguments: no C global can have them


def runner_parser() -> ArgumentParser:
    p = ArgumentParser(prog="ecli", description="Run eBPF programs packaged by ecc (eunomia-bpf format).")
    p.add_argument("-V", "--version", action="version", version=f"pyeunomia {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    run = sub.add_parser("run", help="load a package, attach it and print its events",
                         description="Load PACKAGE (a package.json, a .bpf.o, '-' for stdin, an http(s) URL, "
                                     "a built-in name such as 'opensnoop', or an OCI registry reference "
                                     "host[:port]/repo[:tag|@sha256:DIGEST] that 'ecli push' wrote), attach its "
                                     "programs and print its events until Ctrl-C. Options after PACKAGE set "
                                     "the program's globals: see 'ecli run PACKAGE --help'.")
    run.add_argument("-j", "--json", action="store_true", help="print one JSON object per event")
    run.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after this many seconds")
    run.add_argument("-v", "--verbose", action="store_true", help="show libbpf's own log")
    run.add_argument("-i", "--interval", type=seconds, metavar="SECONDS",
                     help="also print the maps and globals the program fills every SECONDS (they print at exit)")
    run.add_argument("--count", type=rounds, metavar="N",
                     help="with -i: stop after N rounds (libbpf-tools' 'runqlat 1 5')")
    run.add_argument("--all-maps", action="store_true",
                     help="print every hash and array map at exit, state kept between events included")
    run.add_argument("--ifname", metavar="IFACE", help="network interface for xdp and tc programs (default: the "
                                                       "package's, else lo)")
    run.add_argument("-F", "--frequency", type=hertz, metavar="HZ",
                     help="sampling frequency of perf_event programs, per CPU (default: 49, as libbpf-tools' profile)")
    run.add_argument("--btf", metavar="PATH",
                     help="the kernel BTF (whole, or minimal from bpftool gen min_core_btf) that CO-RE relocations "
                          "resolve against instead of /sys/kernel/btf/vmlinux: for kernels without BTF")
    chosen = run.add_mutually_exclusive_group()
    chosen.add_argument("--only", type=names, metavar="NAME,...",
                        help="load only these programs (by function name), exactly as named")
    chosen.add_argument("--skip", type=names, metavar="NAME,...",
                        help="leave these programs out; of twins on one kernel event (tp_btf and raw_tp, fentry "
                             "and kprobe) the best this kernel takes loads, which -v shows")
    run.add_argument("--sha256", metavar="HEX", help="refuse the package unless its bytes have this SHA-256")
    run.add_argument("--insecure", action="store_true",
                     help="allow plain http:// for a package URL; for a registry REF, skip its TLS certificate check")
    registry_options(run, timeout=False)
    run.add_argument("--timeout", type=seconds, metavar="SECONDS", default=None,
                     help="give up downloading a package URL (connect, TLS, headers and body) after this many "
                          "seconds (default: 60)")
    run.add_argument("--no-header", action="store_true", help="leave out the table's header line")
    add_container_options(run)
    run.add_argument("--perf-array", action="store_true",
                     help="keep perf event arrays as written (by default, where the kernel has ring buffers, a "
                          "perf array used only by bpf_perf_event_output is loaded as a ring buffer: cheaper per "
                          "event; a full ring drops records without a count)")
    for dest, (flags, text) in PER_PACKAGE_FLAGS.items():
        run.add_argument(*flags, dest=dest, action="store_true", help=text + " (tables of @column structs)")
    run.add_argument("--folded", metavar="FILE",
                     help="for stack trace packages: write each distinct stack and its count at exit, folded "
                          "('comm;caller;callee count', flamegraph.pl's input); '-' prints them instead of the "
                          "stacks")
    run.add_argument("--delimited", action="store_true",
                     help="for stack trace packages: in folded stacks and flame graphs, a '-' frame between the "
                          "user and the kernel frames (libbpf-tools' profile -d)")
    run.add_argument("--flamegraph", metavar="FILE.svg",
                     help="for stack trace packages: write an SVG flame graph of the samples at exit")
    run.add_argument("package", metavar="PACKAGE")
    run.add_argument("program_args", nargs=argparse.REMAINDER, metavar="...")
    sub.add_parser("list", help="list the built-in tools, each with the first sentence of its description")
    registry_commands(sub)
    return p


class _DocFormatter(argparse.HelpFormatter):
    """Wraps the description and the options' help as usual, but keeps the
    lines of a program's `details` (the epilog), which its author laid out:
    examples, lists; only a line wider than the screen (a paragraph, as ecc
    writes the top comment's later paragraphs) is wrapped. Only the epilog
    can hold a newline (see _doc_lines)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return super()._fill_text(text, width, indent)
        # a line longer than the screen is a paragraph (a tool's details): wrapped; shorter ones kept
        return "\n".join(super(_DocFormatter, self)._fill_text(line, width, indent) if len(line) > width
                         else indent + line if line else "" for line in text.split("\n"))


def _doc_text(text: str) -> str:
    """Package text argparse re-wraps (the description, an option's help):
    its whitespace is collapsed as argparse would, and every other control
    character escaped, so an ESC sequence from a package never reaches the
    terminal."""
    return escape_text(" ".join(text.split()))


def _doc_lines(text: str) -> str:
    """A program's details: its newlines are kept (the author's layout, and a
    newline cannot rewrite the screen), tabs expanded, and every other control
    character (ESC, \\r, which would overwrite a line) escaped."""
    return "\n".join(escape_text(line.expandtabs()) for line in text.split("\n")).strip("\n")


def _argparse_text(text: str) -> str:
    """argparse %-formats a description or epilog only when it holds %(prog)."""
    doubled = text.replace("%", "%%")
    return doubled if "%(prog)" in doubled else text


class _ProgramParser(ArgumentParser):
    """A program's options; its --help starts with the program's description
    (what the tool does), then the usage line and the options."""

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_text(self.description)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()


def program_parser(package: Package, options: list[GlobalOption]) -> ArgumentParser:
    doc = package.meta.doc
    description = _doc_text(doc.brief or doc.description or f"eBPF program {package.name}")
    epilog = _doc_lines(doc.details) if doc.details else None
    p = _ProgramParser(prog=f"ecli run {package.origin}", description=_argparse_text(description),
                       epilog=_argparse_text(epilog) if epilog else None, formatter_class=_DocFormatter)
    for o in options:
        flags = [f"-{o.short}"] if o.short else []
        flags.append(o.flag)
        if o.long != o.name:
            flags.append("--" + o.name)
        takes = f"{o.syntax}, " if o.syntax else ""
        help_text = _doc_text(f"{o.help} ({takes}{o.type_name}, default: {o.show(o.default)})").replace("%", "%%")
        if o.kind == "bool":
            p.add_argument(*flags, dest=o.name, action=argparse.BooleanOptionalAction, default=o.default,
                           help=help_text)
        else:
            p.add_argument(*flags, dest=o.name, type=_parser_of(o), default=o.default, help=help_text,
                           metavar=_metavar(o))
    _upstream_program_flags(p, package, options)
    _runner_shorts(p, package)
    _positional_arguments(p, package, options)
    return p


def _runner_shorts(p: ArgumentParser, package: Package) -> None:
    """`@runner {"elapsed": "t", "duration": "d"}`: runner options the
    package's users may give after PACKAGE by its peer's short names."""
    for name, short in package.meta.doc.runner_options:
        if name not in RUNNER_SHORTS:
            raise PackageError(f"{package.origin}: @runner {escape_text(name)!r} is not one of "
                               f"{', '.join(RUNNER_SHORTS)}")
        text, kind = RUNNER_SHORTS[name]
        try:
            if name == "folded":  # libbpf-tools' profile -f: folded stacks on stdout (--folded -)
                p.add_argument(f"-{short}", dest=RUNNER_PREFIX + name, action="store_const", const="-",
                               default=argparse.SUPPRESS, help=f"{text} (as ecli run --folded -)")
            elif name in PER_PACKAGE_FLAGS or name == "delimited":
                p.add_argument(f"-{short}", dest=RUNNER_PREFIX + name, action="store_true",
                               default=argparse.SUPPRESS, help=f"{text} (as ecli run --{name})")
            else:
                p.add_argument(f"-{short}", dest=RUNNER_PREFIX + name, type=kind or hertz,
                               default=argparse.SUPPRESS, metavar=name.upper(), help=f"{text} (as ecli run --{name})")
        except argparse.ArgumentError:
            raise PackageError(f"{package.origin}: @runner gives -{escape_text(short)} to {name}, and a "
                               "global of the program has it") from None


def _positional_arguments(p: ArgumentParser, package: Package, options: list[GlobalOption]) -> None:
    """`@positional ["interval", "count"]`: arguments after the package by
    position, as libbpf-tools' `runqlat 1 5`: the runner's -i and --count, its
    -d (`["duration"]`: `offcputime 5`), or a global's option."""
    by_name = {o.name: o for o in options}
    for name in package.meta.doc.positional:
        if name == "interval":
            p.add_argument(POSITIONAL + name, nargs="?", type=seconds, default=None, metavar=name,
                           help="print the maps every this many seconds (as -i)")
        elif name == "duration":
            p.add_argument(POSITIONAL + name, nargs="?", type=seconds, default=None, metavar=name,
                           help="stop after this many seconds (as -d)")
        elif name == "count":
            p.add_argument(POSITIONAL + name, nargs="?", type=rounds, default=None, metavar=name,
                           help="stop after this many intervals (as --count)")
        elif name in by_name:
            o = by_name[name]
            p.add_argument(POSITIONAL + name, nargs="?", type=_parser_of(o), default=None,
                           metavar=_doc_text(o.metavar or name), help=f"as {o.flag}")
        else:
            raise PackageError(f"{package.origin}: @positional {escape_text(name)!r} is neither interval, count, "
                               "duration nor a global of the program")


def _take_positional(values: dict[str, Any], args: argparse.Namespace) -> None:
    """Move the positional arguments given into the runner's and the globals' values."""
    for dest in [d for d in values if d.startswith(POSITIONAL)]:
        name = dest[len(POSITIONAL):]
        value = values.pop(dest)
        if value is None:  # not given
            continue
        if name in ("interval", "count", "duration"):
            setattr(args, name, value)
        else:
            values[name] = value


UPSTREAM_VERBOSE = "upstream-verbose"  # a dest no C global can have: the values are the globals otherwise
RUNNER_PREFIX = "runner-"  # likewise, for -e and -T given after PACKAGE


def _upstream_program_flags(p: ArgumentParser, package: Package, options: list[GlobalOption]) -> None:
    """What upstream's loader adds to every program's options (bpf-loader-rs,
    meta/arg_builder.rs): --verbose (libbpf's log, as `ecli run -v`) and
    -V/--version (the package's doc version, upstream's "0.1.0" without
    one), unless a global of the program already takes the spelling."""
    taken = {f"-{o.short}" for o in options if o.short} | {o.flag for o in options} | {f"--{o.name}" for o in options}
    if "--verbose" not in taken:
        p.add_argument("--verbose", dest=UPSTREAM_VERBOSE, action="store_true", default=argparse.SUPPRESS,
                       help="show libbpf's own log (as ecli run -v)")  # only in the values when given
    for dest, (flags, text) in PER_PACKAGE_FLAGS.items():
        free = [f for f in flags if f not in taken]
        if free:
            p.add_argument(*free, dest=RUNNER_PREFIX + dest, action="store_true", default=argparse.SUPPRESS,
                           help=text + " (as before PACKAGE)")
    version = [f for f in ("-V", "--version") if f not in taken]
    if version:
        text = f"{package.meta.obj_name} {package.meta.doc.version or UPSTREAM_VERSION}"
        p.add_argument(*version, action="version", version=_argparse_text(escape_text(text)),
                       help="show the program's version and exit")


def _parser_of(o: GlobalOption) -> Any:
    def parse(text: str) -> Any:
        try:
            return o.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = o.kind
    return parse


def _metavar(o: GlobalOption) -> str:
    if o.metavar:
        return _doc_text(o.metavar).replace("%", "%%")
    if o.convert is not None:
        return o.convert.name.upper()
    return {"int": "INT", "float": "NUM", "str": "TEXT", "enum": "NAME", "ints": "INT,..."}.get(o.kind, "VALUE")


def main(argv: list[str]) -> int:
    args = runner_parser().parse_args(argv)
    if args.command == "list":
        _list_tools()
        return 0
    if args.command in ("push", "pull"):
        from .registry import main as registry_main

        return registry_main(args)
    require_stdout()  # before anything is fetched or loaded
    setup_logging(args.verbose)
    from ..format.options import global_options
    from ..source import FETCH_TIMEOUT_S, open_package

    package = open_package(args.package, sha256=args.sha256, insecure=args.insecure,
                           timeout=args.timeout or FETCH_TIMEOUT_S,
                           registry={"plain_http": args.plain_http, "ca_file": args.ca_file})
    options = global_options(package, _converters(package))
    try:
        values = vars(program_parser(package, options).parse_args(args.program_args))
        args.verbose = values.pop(UPSTREAM_VERBOSE, False) or args.verbose
        for dest in PER_PACKAGE_FLAGS:
            setattr(args, dest, values.pop(RUNNER_PREFIX + dest, False) or getattr(args, dest, False))
        for dest in RUNNER_SHORTS:
            if RUNNER_PREFIX + dest in values:  # a valued runner option given by the package's short name
                setattr(args, dest, values.pop(RUNNER_PREFIX + dest))
        _take_positional(values, args)
    except UsageError as e:
        own = {f"-{o.short}" for o in options if o.short}  # the tool's -d (biolatency's disk) is its own
        misplaced = [a for a in args.program_args if a.split("=")[0] in RUNNER_FLAGS and a.split("=")[0] not in own]
        if misplaced:
            raise UsageError(f"{misplaced[0]} is a runner option: put it before PACKAGE "
                             f"(ecli run {misplaced[0]} ... {args.package})") from None
        raise e
    if args.count and not args.interval:
        raise UsageError("--count needs an interval: give -i SECONDS (or the package's interval argument)")
    return run_package(package, values, args)


def _converters(package: Package) -> ConverterOf | None:
    """pyeunomia.converters' for_option when an option of the package
    converts: the others do not pay for importing the converters."""
    if not any(v.cmdarg.convert is not None for v in package.meta.variables):
        return None
    from ..converters import for_option

    return for_option


def _list_tools() -> None:
    """Each built-in tool and the first sentence of its description, aligned."""
    import json

    from ..format.package import doc_summary
    from ..source import builtin_packages

    rows = []
    for name, path in sorted(builtin_packages().items()):
        try:
            with open(path, "rb") as f:
                text = doc_summary(json.load(f).get("meta", {}).get("bpf_skel", {}).get("doc", {}))
        except (OSError, ValueError, AttributeError):
            text = ""
        rows.append((name, escape_text(text)))
    width = max((len(n) for n, _ in rows), default=0)
    sys.stdout.write("".join(f"{n:<{width}}  {t}".rstrip() + "\n" for n, t in rows))
    sys.stdout.flush()


def run_package(package: Package, values: dict[str, Any], args: argparse.Namespace) -> int:
    from ..format.extrameta import interpreters
    from ..output.writers import mismatch_summary, plan_writer
    from ..runner.program import Program

    run = package.meta.run  # print_header, debug_verbose
    stacks = None
    if args.folded or args.flamegraph or any(kind == "stack_trace" for _, kind in interpreters(package)):
        from .stacks import StackOutput  # most packages print no stacks

        stacks = StackOutput(package, args)  # its files open before anything loads
    stops = StopSignals()
    filters = container_filters(package, values, args)
    try:
        with Program(package, values, verbose=args.verbose or run.debug_verbose, ifname=args.ifname,
                     frequency=args.frequency, btf=args.btf, only=args.only, skip=args.skip,
                     perf_to_ring=not args.perf_array) as prog:
            out = sys.stdout.buffer
            # no table without an event buffer, nor when the package says "print_header": false
            header = not args.no_header and run.print_header is not False and bool(prog.buffer_maps())
            writer = stacks.event_writer(prog, out, args.json, args.containers) if stacks else \
                plan_writer(prog.exports, out, args.json, header, extended=getattr(args, "extended", False),
                            timestamp=getattr(args, "timestamp", False), containers=args.containers,
                            options=values, elapsed=getattr(args, "elapsed", False),
                            detailed=getattr(args, "detailed", False))
            for note in [*(prog.loaded.choices + prog.loaded.ring_notes if args.verbose else []), *prog.loaded.notes,
                         *prog.exports.notes, *_interpreter_notes(package)]:
                sys.stderr.write(f"ecli: {escape_text(note)}\n")
            # the program drops every event until this fills its cgroup_filter map: filled before
            # "attached" is said, so that what a caller does after it is filtered in
            extra: list[Any] = [start_container_filter(prog, args)] if filters else []
            n_progs = sum(prog.loaded.program_loaded(p.name) for p in prog.loaded.programs)
            sys.stderr.write(f"ecli: {escape_text(package.name)}: {n_progs} program{'s' * (n_progs != 1)} attached; "
                             "Ctrl-C to stop\n")
            sys.stderr.flush()
            samples = None
            if prog.sampled_maps():
                from ..output.sampled import SamplePrinter  # most packages sample no map

                samples = SamplePrinter(out, args.json)
            dumper = _map_dumper(prog, package, args)
            extra += [dumper] if args.interval else []
            stats = prog.run(writer, samples, duration=args.duration,
                             should_stop=lambda: stops.stop_requested() or dumper.done,
                             wakeup_fd=stops.wakeup_fd, extra=extra)
            dumps = dumper.dump() if not dumper.done else dumper.last
            for name, times in prog.rings_found_full().items():
                sys.stderr.write(f"ecli: ring buffer '{escape_text(name)}' (a perf array made a ring buffer) was "
                                 f"found full {times} time{'s' * (times != 1)}: records may have been dropped "
                                 "without a count (--perf-array counts them)\n")
            for problem in dumper.problems:
                sys.stderr.write(f"ecli: {escape_text(problem)}\n")
            if not (dumps or dumper.empty or prog.buffer_maps() or samples):
                sys.stderr.write(f"ecli: {escape_text(package.name)}: the maps and globals it fills stayed empty\n")
        for note in stacks.finish(out) if stacks else ():
            sys.stderr.write(f"ecli: {escape_text(note)}\n")
    finally:
        stops.restore()
        if stacks:
            stacks.close()
    if stats.lost:
        sys.stderr.write(f"ecli: {stats.lost} events lost (of {stats.received + stats.lost})\n")
    for line in mismatch_summary(writer):
        sys.stderr.write(f"ecli: {line}\n")
    return 0


def names(text: str) -> list[str]:
    """An argparse type: program names separated by commas (--only, --skip)."""
    out = [n.strip() for n in text.split(",") if n.strip()]
    if not out:
        raise argparse.ArgumentTypeError(f"expected program names separated by commas, got {text!r}")
    return out


def _map_dumper(prog: Program, package: Package, args: argparse.Namespace) -> MapDumper:
    """What prints the maps and globals at exit (runner/mapdump.py), and the
    one line at start for a program that has nothing to print at all."""
    from ..output.mapprint import MapPrinter
    from ..runner.mapdump import MapDumper

    dumper = MapDumper(package, prog.loaded, MapPrinter(sys.stdout.buffer, args.json), interval=args.interval,
                       all_maps=args.all_maps, count=getattr(args, "count", None))
    if args.verbose:
        for name, why in dumper.skipped:
            sys.stderr.write(f"ecli: map '{escape_text(name)}' is not printed: {why} (--all-maps prints it)\n")
    if dumper.empty and not prog.buffer_maps() and not prog.sampled_maps():
        sys.stderr.write(f"ecli: {escape_text(package.name)} has nothing to print: no event buffer, no sampled "
                         "map, no map or global it fills (bpf_printk writes to /sys/kernel/tracing/trace_pipe)\n")
    return dumper


def rounds(text: str) -> int:
    """An argparse type: a positive whole number of rounds (--count, a package's count)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of rounds, got {text!r}")
    return value


def hertz(text: str) -> int:
    """An argparse type: a positive whole number of samples a second (-F)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of Hz, got {text!r}")
    return value


def _interpreter_notes(package: Package) -> list[str]:
    """Upstream's `intepreter` (sic) of a buffer map that ecli does not
    know (it knows stack_trace): its events still print, field by field."""
    from ..format.extrameta import interpreters
    from ..format.stacks import INTERPRETER

    return [f"map '{name}' asks for upstream's '{kind}' interpreter, which ecli does not implement: its events "
            "print field by field" for name, kind in interpreters(package) if kind != INTERPRETER]


def entry() -> None:
    run_command("ecli", main)


if __name__ == "__main__":
    entry()
