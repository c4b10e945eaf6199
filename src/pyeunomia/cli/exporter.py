"""eunomia-exporter: run eBPF programs and serve their events as Prometheus metrics.

    eunomia-exporter [-c CONFIG] [--listen HOST:PORT] [--check] [--web.config.file FILE]
                     [--enable-api --api-token-file FILE] [--no-drop-caps]

The config is upstream eunomia-exporter's (config.yaml by default; a .json
file is read as JSON). Metrics are served on http://127.0.0.1:8526/metrics
unless --listen says otherwise; TLS and basic auth come from a web config in
the Prometheus exporter-toolkit format. Once its programs are attached the
exporter keeps no capability (with the API on: CAP_BPF, CAP_PERFMON and
CAP_SYS_ADMIN, which loading programs needs). Container labels are then
asked of a resolver process started before the drop, which stays root with
CAP_SYS_PTRACE alone (containers/resolverd.py).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import TYPE_CHECKING

from ..errors import EunomiaError, UsageError
from ..exporter.httpserver import DEFAULT_LIMITS, IDLE_TIMEOUT_S, MAX_CONNECTIONS, REQUEST_TIMEOUT_S, Limits
from ..format.escape import escape_text
from .common import ArgumentParser, StopSignals, require_stdout, run_command, seconds, setup_logging

if TYPE_CHECKING:
    from ..containers.proxy import ResolverProxy as ContainerResolverProxy
    from ..exporter.config import ExporterConfig
    from ..exporter.plan import ProgramPlan
    from ..exporter.programs import ProgramSet
    from ..exporter.server import ExporterServer
    from ..exporter.webconfig import WebConfig
    from ..runner.kernelbtf import BtfFile

PROG = "eunomia-exporter"
DEFAULT_CONFIG = "config.yaml"
DEFAULT_LISTEN = "127.0.0.1:8526"
MIN_TOKEN = 16
# What loading and attaching programs takes once the exporter runs as an
# ordinary user: CAP_DAC_READ_SEARCH because tracefs (/sys/kernel/tracing,
# where libbpf finds tracepoint ids) is root's alone, mode 0700.
API_CAPABILITIES = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"}
DEFAULT_USER = "nobody"

EXAMPLES = """examples:
  eunomia-exporter                          # config.yaml, metrics on 127.0.0.1:8526
  eunomia-exporter -c examples/opensnoop.yaml --listen 0.0.0.0:9435
  eunomia-exporter -c config.yaml --check   # validate, load and attach, then exit
  eunomia-exporter --enable-api --api-token-file /etc/eunomia/token
  eunomia-exporter --web.config.file web.yml  # TLS and basic auth (exporter-toolkit format)
"""


def parser() -> ArgumentParser:
    from .. import __version__

    p = ArgumentParser(prog=PROG, description="Run eBPF programs and export their events as Prometheus metrics.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-V", "--version", action="version", version=f"pyeunomia {__version__}")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="CONFIG",
                   help=f"the config file, YAML or .json (default: {DEFAULT_CONFIG})")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"where to serve /metrics (default: {DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--check", action="store_true",
                   help="validate the config, load and attach every program, detach, and exit 0 or 1")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                   help="TLS and basic auth, in the Prometheus exporter-toolkit web config format")
    p.add_argument("--drop-caps", action=argparse.BooleanOptionalAction, default=True,
                   help="once the programs are attached, become --user and drop every capability (with "
                        f"--enable-api all but {', '.join(sorted(API_CAPABILITIES))}); container labels are then "
                        "asked of a resolver process that stays root with CAP_SYS_PTRACE alone; default: on")
    p.add_argument("--user", default=DEFAULT_USER, metavar="USER[:GROUP]",
                   help=f"the user (name or uid) and group the exporter becomes once its programs are attached, "
                        f"when started as root (default: {DEFAULT_USER}, with its own group)")
    p.add_argument("--enable-api", action="store_true",
                   help="serve the management API (/list, /start, /stop): it loads kernel programs as root")
    p.add_argument("--api-token-file", metavar="FILE",
                   help="the bearer token every API call must send (a file only root can read)")
    p.add_argument("--max-connections", type=_count, default=MAX_CONNECTIONS, metavar="N",
                   help=f"open connections at most; at the limit the longest-waiting one without a complete "
                        f"request is closed (default: {MAX_CONNECTIONS}, and never above what the open-file "
                        "limit allows)")
    p.add_argument("--request-timeout", type=seconds, default=REQUEST_TIMEOUT_S, metavar="SECONDS",
                   help=f"time a client has to send a whole request, head and body (default: {REQUEST_TIMEOUT_S:g})")
    p.add_argument("--idle-timeout", type=seconds, default=IDLE_TIMEOUT_S, metavar="SECONDS",
                   help=f"an idle keep-alive connection is closed after this (default: {IDLE_TIMEOUT_S:g})")
    p.add_argument("--btf", metavar="PATH",
                   help="the kernel BTF that every program's CO-RE relocations resolve against instead of "
                        "/sys/kernel/btf/vmlinux (for kernels without BTF), read once at start-up")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests and libbpf's own messages")
    return p


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000000, got {text!r}")
    return value


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPV6]:PORT or :PORT (every interface) as (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"--listen: expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"--listen: write an IPv6 address in brackets, e.g. [::1]:8526, got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise UsageError(f"--listen: expected a port from 0 to 65535, got {port_text!r}")
    return host or "0.0.0.0", port  # noqa: S104 - ':PORT' asks for every interface


def read_token(path: str) -> bytes:
    """The API token: the file must be the exporter's user's and no one
    else's, or whoever could write it could load programs as root. So it is
    no link (a user who owns the directory could point a link at a root-owned
    file of known content, such as /sys/kernel/slab/*/ctor), it has one name,
    and every directory above it is root's or the exporter user's alone."""
    from stat import S_ISREG

    from ..files import safe_directories

    shown = escape_text(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)  # a FIFO must not wait
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UsageError(f"--api-token-file: {shown} is a symbolic link: name the file itself") from None
        raise UsageError(f"--api-token-file: cannot read {shown}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        data = os.read(fd, 4096) if S_ISREG(st.st_mode) else b""
    finally:
        os.close(fd)
    if not S_ISREG(st.st_mode):
        raise UsageError(f"--api-token-file: {shown} is not a regular file: put the token in one")
    euid = os.geteuid()
    if st.st_uid != euid:
        raise UsageError(f"--api-token-file: {shown} belongs to uid {st.st_uid}, not to the exporter's user "
                         f"(uid {euid}): chown {euid} {shown}")
    if st.st_mode & 0o077:
        raise UsageError(f"--api-token-file: {shown} can be read or written by other users: chmod 600 {shown}")
    if st.st_nlink != 1:
        raise UsageError(f"--api-token-file: {shown} has {st.st_nlink} names (hard links): keep the token in a file "
                         "of its own")
    directory = os.path.dirname(os.path.realpath(path))
    if not safe_directories(directory):
        raise UsageError(f"--api-token-file: {escape_text(directory)} (or a directory above it) can be changed by "
                         "users other than root and the exporter's: keep the token in a directory only they control")
    token = data.strip()
    if len(token) < MIN_TOKEN or any(b <= 0x20 or b > 0x7E for b in token):
        raise UsageError(f"--api-token-file: {shown} must hold one token of {MIN_TOKEN} or more printable "
                         "characters, e.g. from 'openssl rand -hex 32'")
    return token


def resolve_user(text: str) -> tuple[int, int]:
    """USER[:GROUP], each a name or a number, as (uid, gid); without GROUP
    the user's own group."""
    import grp
    import pwd

    user, _, group = text.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    except (KeyError, OverflowError):
        if not user.isdigit():
            raise UsageError(f"--user: no user named {user!r}: pass an existing user or a uid") from None
        uid = gid = int(user)  # a uid without a passwd entry: its own number as the group
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise UsageError(f"--user: no group named {group!r}: pass an existing group or a gid") from None
    if not (0 <= uid < 0xFFFFFFFF and 0 <= gid < 0xFFFFFFFF):
        raise UsageError(f"--user: {text!r} is out of range")
    return uid, gid


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    user = resolve_user(args.user) if args.drop_caps else None
    if args.enable_api and not args.api_token_file:
        raise UsageError("--enable-api needs --api-token-file FILE: every API call must send that token")
    if args.api_token_file and not args.enable_api:
        raise UsageError("--api-token-file is only for the API: add --enable-api")
    setup_logging(args.verbose)
    listen = parse_listen(args.listen)
    token = read_token(args.api_token_file) if args.enable_api else None
    btf = None
    if args.btf is not None:
        from ..runner.kernelbtf import read_btf_file

        btf = read_btf_file(args.btf)  # now: it is read once, before the privileges go
    from ..exporter.config import load_config
    from ..exporter.plan import plan_all

    web = None
    if args.web_config_file is not None:
        from ..exporter.webconfig import load_web_config

        web = load_web_config(args.web_config_file)
    config = load_config(args.config)
    plans = plan_all(config.programs)
    if plans or args.enable_api:
        from ..kernel.features import require_bpf_privileges

        require_bpf_privileges()  # before anything else fails, or warns, for the want of them
    if args.check:
        require_stdout()  # its report goes there; serving needs no stdout
        return check(config, plans, args.verbose, btf)
    limits = Limits(args.max_connections, args.request_timeout, args.idle_timeout)
    return serve(plans, listen, token, args.verbose, web, user, limits, btf, config)


def uses_containers(config: ExporterConfig | None) -> bool:
    """Whether a label of the config takes a container decoder (which reads
    the container runtimes' root-only metadata)."""
    import dataclasses

    from ..decoders.container import FIELDS
    from ..exporter.config import DecoderConfig

    def names(node: object) -> list[str]:
        if isinstance(node, DecoderConfig):
            return [node.name]
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            return [n for f in dataclasses.fields(node) for n in names(getattr(node, f.name))]
        if isinstance(node, (list, tuple)):
            return [n for item in node for n in names(item)]
        return []

    return any(n in FIELDS for n in names(config))


def check(config: ExporterConfig, plans: list[ProgramPlan], verbose: bool, btf: BtfFile | None = None) -> int:
    """Load and attach every program as serving would (maps of map metrics
    found), then take it all down again."""
    from ..exporter.instance import ProgramInstance

    for plan in plans:
        instance = ProgramInstance(0, plan, verbose, btf=btf)
        try:
            n = instance.attached
        finally:
            instance.stop()
        print(f"{escape_text(plan.name)}: {n} BPF program{'s' * (n != 1)} loaded and attached; "
              f"{len(plan.metrics)} metric{'s' * (len(plan.metrics) != 1)}")
    print(f"{escape_text(config.file)}: OK")
    return 0


def serve(plans: list[ProgramPlan], listen: tuple[str, int], token: bytes | None, verbose: bool,
          web: WebConfig | None = None, user: tuple[int, int] | None = (65534, 65534),
          limits: Limits = DEFAULT_LIMITS, btf: BtfFile | None = None, config: ExporterConfig | None = None) -> int:
    """Serve until a stop signal. `user`: who to become once the programs
    are attached (None: keep every privilege, --no-drop-caps). `config`: its
    const_labels and total_suffix also hold for programs the API starts."""
    import select
    import threading

    from ..exporter.priority import ScrapeGate
    from ..exporter.programs import ProgramSet
    from ..runner.loop import drain_fd

    _tune_malloc()
    stops = StopSignals()
    server: ExporterServer | None = None
    thread: threading.Thread | None = None
    stats_fd = None
    programs = None
    resolver = None
    try:
        if user is not None and os.geteuid() == 0 and user[0] != 0 and (uses_containers(config) or token is not None):
            resolver = _start_resolver(user[0])  # starts while the programs load; nobody cannot start it later
        stats_fd = _enable_run_stats()
        programs = ProgramSet(verbose, run_stats=stats_fd is not None, gate=ScrapeGate(), btf=btf)
        server = _bind(listen, programs, token, verbose, web, limits, config)
        for plan in plans:
            if stops.stop_requested():
                return 0
            programs.start(plan, run=False)  # threads start once the capabilities are dropped
        if resolver is not None:
            _resolver_ready(resolver)
        privileges = _drop_privileges(token is not None, user, programs.any_program_fd()) if user is not None \
            else "all kept (--no-drop-caps)"
        if resolver is not None:
            privileges += "; container resolver: none (its warning above)" if resolver.dead else \
                f"; container resolver: pid {resolver.pid}, uid 0, {_capability_names(resolver.capabilities)}"
        programs.run_all()
        _freeze_heap()
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        names = escape_text(", ".join(i.name for i in programs.instances())) or "none"
        api = "; API on (bearer token)" if token is not None else ""
        auth = "; basic auth" if web is not None and web.auth is not None else ""
        sys.stderr.write(f"{PROG}: listening on {server.url}/metrics (programs: {names}){api}{auth}; "
                         f"privileges: {privileges}; Ctrl-C to stop\n")
        sys.stderr.flush()
        while not stops.stop_requested():
            ready, _, _ = select.select([stops.wakeup_fd], [], [], 1.0)
            if ready:
                drain_fd(stops.wakeup_fd)
    finally:
        if server is not None:
            if thread is not None:
                server.shutdown()
            server.server_close()
        if programs is not None:
            programs.stop_all()
        if resolver is not None:
            from ..containers.resolver import use_for_lookups

            use_for_lookups(None)
            resolver.close()
        if stats_fd is not None:
            os.close(stats_fd)
        stops.restore()
    return 0


def _start_resolver(uid: int) -> ContainerResolverProxy:
    """The container resolver process (containers/resolverd.py): root with
    CAP_SYS_PTRACE alone, so that the exporter, as nobody, can still label
    containers. Container decoders ask it from now on."""
    from ..containers.proxy import start_resolver
    from ..containers.resolver import use_for_lookups

    def log(line: str) -> None:
        sys.stderr.write(f"{PROG}: {line}\n")
        sys.stderr.flush()

    proxy = start_resolver(log, becoming=uid)
    use_for_lookups(proxy)
    return proxy


def _resolver_ready(resolver: ContainerResolverProxy) -> None:
    from ..kernel.caps import CAPABILITIES

    resolver.wait_ready()
    if not resolver.dead and not resolver.capabilities >> CAPABILITIES["CAP_SYS_PTRACE"] & 1:
        sys.stderr.write(f"{PROG}: warning: the container resolver has no CAP_SYS_PTRACE (the exporter was started "
                         "without it): it cannot reach the runtimes' shims and conmon, so it names Docker "
                         "containers at most\n")


def _capability_names(mask: int) -> str:
    from ..kernel.caps import CAPABILITIES

    names = [name for name, bit in CAPABILITIES.items() if mask >> bit & 1]
    return f"capabilities {', '.join(names)}" if names else "no capabilities"


def _bind(listen: tuple[str, int], programs: ProgramSet, token: bytes | None, verbose: bool,
          web: WebConfig | None = None, limits: Limits = DEFAULT_LIMITS,
          config: ExporterConfig | None = None) -> ExporterServer:
    from prometheus_client import CollectorRegistry
    from prometheus_client.process_collector import ProcessCollector

    from ..exporter.collector import ConstLabelled, ExporterCollector
    from ..exporter.server import Exporter, ExporterServer
    from ..source import is_loopback

    const = config.const_labels if config is not None else ()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(programs, const))
    registry.register(ConstLabelled(ProcessCollector(registry=None), const))

    def start_program(body: bytes) -> int:
        return _start_from_request(programs, body, config)

    def log(line: str) -> None:
        sys.stderr.write(f"{PROG}: {line}\n")

    exporter = Exporter(programs, registry, token, start_program, log if verbose else None)
    host, port = listen
    try:
        server = ExporterServer((host, port), exporter, web.tls if web else None, web.auth if web else None, limits)
    except OSError as e:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise EunomiaError(f"cannot listen on {shown}: {e.strerror or e}: stop what uses it, or pass "
                           "--listen HOST:PORT") from None
    if token is not None and not is_loopback(host) and not (web is not None and web.tls is not None):
        sys.stderr.write(f"{PROG}: warning: the API token crosses the network in clear text on {host}: put TLS "
                         "in front or listen on 127.0.0.1\n")
    return server


def _start_from_request(programs: ProgramSet, body: bytes, config: ExporterConfig | None = None) -> int:
    from ..exporter.config import program_from_request
    from ..exporter.constlabels import check_const_labels
    from ..exporter.plan import plan_program

    program = program_from_request(body, os.getcwd(), config.total_suffix if config is not None else True)
    if config is not None:
        check_const_labels([program], config.const_labels)
    return programs.start(plan_program(program))


def _enable_run_stats() -> int | None:
    """Keep the kernel's BPF run-time statistics on while the exporter runs."""
    from ..runner.stats import enable_run_stats

    try:
        return enable_run_stats()
    except EunomiaError as e:
        sys.stderr.write(f"{PROG}: warning: no BPF run-time statistics ({e})\n")
        return None


def _drop_privileges(api: bool, user: tuple[int, int], held_fd: int | None) -> str:
    """Become `user` (when root) and keep only what is still needed once the
    programs are attached: nothing (maps, rings and run statistics are read
    through the fds already held), CAP_BPF where the kernel checks it on
    every bpf() call (probed on `held_fd`, a loaded program's), or with the
    API what loading more programs takes. Linux keeps capabilities per
    thread, so this runs before any thread is started (the probe's own
    thread has ended by then)."""
    import threading

    from ..kernel import process

    keep = set(API_CAPABILITIES) if api else set()
    if not api and held_fd is not None and process.bpf_calls_need_capability(held_fd):
        keep.add("CAP_BPF")  # reading maps and run statistics needs it on this kernel
    if threading.active_count() != 1:
        raise EunomiaError("internal error: privileges must be dropped before any thread starts")
    change = user if os.geteuid() == 0 and user[0] != 0 else None
    process.drop_privileges(keep, change)
    who = f"uid {os.getuid()}, gid {os.getgid()}"
    return f"{who}, capabilities {', '.join(sorted(keep))}" if keep else f"{who}, no capabilities"


def _tune_malloc() -> None:
    """One malloc arena, and scrape bodies (a megabyte at 10,000 series)
    mapped on their own: measured under the soak, 3.4 MiB less RSS than an
    arena per request thread, each keeping the bodies it freed."""
    from ..kernel import process

    process.tune_malloc(arenas=1, mmap_threshold=256 << 10)


def _freeze_heap() -> None:
    """Move everything start-up made (modules, the plans, the loaded
    programs) out of the collector's sight: a full collection then walks
    only what came later, not the whole heap (20 ms at every third scrape)."""
    import gc

    gc.collect()
    gc.freeze()


def entry() -> None:
    run_command(PROG, main)


if __name__ == "__main__":
    entry()
