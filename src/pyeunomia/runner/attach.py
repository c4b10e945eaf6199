"""The one attach policy, used by ecli, opensnoop and the exporter alike:
which of a package's programs this kernel can take, and how each program
is attached by its section.

- The user's --skip leaves programs out first (--only names the programs
  to load exactly, and no choice is made for the user).
- Twins, programs hooking one kernel event with different attach types
  (tp_btf and raw_tp on sched_switch, fentry and kprobe on a function), are
  alternatives: the best type this kernel takes loads, by feature probes
  (runner/choice.py, format/hooks.py); one the kernel refuses at load time
  gives way to its twin.
- A program may have a compat alternative: a program named NAME__compat is
  loaded instead of NAME when this kernel lacks a helper NAME calls and the
  alternative does not (feature probes: format/insns.py finds the helpers in
  the instructions, kernel/features.py asks the kernel). A __compat program
  with no NAME of its own is a companion (a sys_enter half, say): loaded
  exactly when some compat alternative is. Programs without alternatives
  cost no probe.
  A map named NAME__compat is created only when a compat program loads.
- Programs whose tracepoint this kernel lacks are not loaded (arm64 has no
  open(2) or creat(2); a newer kernel adds tracepoints an older lacks), as
  long as one program is left: a package none of whose programs fit fails
  to attach with the kernel's own reason instead.
- xdp and tc programs attach to `--ifname`, else to the interface the
  package names (upstream's `ifindex`, `tchook.ifindex`), else to lo
  (ifindex 1), upstream's default; a note says which. tc attaches through a
  tcx link where the kernel has tcx (6.6+), else as a netlink cls_bpf filter
  on a clsact qdisc, as upstream and libbpf's bpf_tc_* do, with the
  package's handle and priority (the kernel picks free ones for a package
  that names none, where upstream takes 1 and 1 and collides with any filter
  there); the qdisc is deleted afterwards only if this run added it. xdp
  attaches as a link with the package's mode flags.
- perf_event programs sample every CPU (one perf event each) at 49 Hz or
  `frequency`: the CPU cycles counter where there is one, else cpu-clock.
- kprobe-family sections need kprobe support, named when it is missing.
- `uprobe/BINARY:FUNC` and `uretprobe/BINARY:FUNC` probe another binary when
  a string global whose doc comment says `@binary "BINARY"` is set
  (libbpf-tools' `bashreadline -s PATH`, `gethostlatency -l LIBC`); unset,
  the SEC() name's own BINARY, which libbpf finds on PATH or in the library
  directories.
- Everything else attaches by its SEC() name through libbpf.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from ..errors import AttachError, EunomiaError, KernelError, MissingPrivilegeError, UnsupportedFeatureError, UsageError
from ..format.extrameta import (
    TC_SECTION_PREFIXES,
    UPSTREAM_IFINDEX,
    XDP_SECTION_PREFIXES,
    TcMeta,
    XdpMeta,
    tc_meta,
    xdp_meta,
)
from ..format.insns import program_helpers
from ..format.objspec import ObjectSpec, ProgramSpec
from ..format.package import Package
from ..kernel import features, libbpf
from ..kernel.tracefs import TRACEFS, ensure_tracefs
from . import choice

TRACEPOINT_PREFIXES = ("tp/", "tracepoint/")
XDP_PREFIXES = XDP_SECTION_PREFIXES
TC_PREFIXES = TC_SECTION_PREFIXES
KPROBE_PREFIXES = ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
PERF_EVENT_PREFIXES = ("perf_event",)
UPROBE_PREFIXES = ("uprobe/", "uretprobe/")


def uprobe_binaries(package: Package, values: Mapping[str, object]) -> dict[str, str]:
    """BINARY -> the path to probe instead, from the string globals marked
    `@binary "BINARY"` that the user set (a non-empty value)."""
    skel = package.meta.raw.get("bpf_skel", {})
    out: dict[str, str] = {}
    for section in skel.get("data_sections", []):
        for var in section.get("variables", []):
            binary, value = var.get("binary"), values.get(var.get("name", ""))
            if isinstance(binary, str) and isinstance(value, str) and value:
                out[binary] = value
    return out
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
COMPAT_SUFFIX = "__compat"
XDP_FLAGS_MODES, XDP_FLAGS_REPLACE = 0x2 | 0x4 | 0x8, 0x10  # SKB, DRV, HW; REPLACE
# libbpf-tools' and bcc's profile sample at 49 Hz (upstream eunomia-bpf's runner
# at 1 Hz, which needs a second per sample): off any timer's beat, 2 CPUs x 49
# events of ~2 KiB a second cost nothing to read.
DEFAULT_FREQUENCY = 49
MAX_SAMPLE_RATE = "/proc/sys/kernel/perf_event_max_sample_rate"
_ENOENT, _ENODEV, _EINVAL, _EBUSY, _EEXIST, _EOPNOTSUPP = 2, 19, 22, 16, 17, 95


def loadable_programs(spec: ObjectSpec, types: Mapping[str, int], *, among: Iterable[str] | None = None,
                      refused: Mapping[str, str] | None = None, notes: list[str] | None = None) -> list[str] | None:
    """The programs to load (see the module docstring); None: all of them.
    `types`: each program's BPF program type, as libbpf opened it; `among`:
    the programs the user left in (--skip); `refused`: programs the kernel
    refused at load time, whose twins load instead (runner/choice.py);
    `notes` receives a line per event whose twins were decided (for -v).
    Privileges are checked first: without them tracefs looks empty, and the
    error would blame the kernel."""
    features.require_bpf_privileges()
    wanted = None if among is None else set(among)
    programs = [p for p in spec.programs if wanted is None or p.name in wanted]
    twins = choice.choose_twins([(p.name, p.section) for p in programs], refused)
    if notes is not None:
        notes.extend(twins.notes)
    kept = set(twins.kept)
    programs = [p for p in programs if p.name in kept]
    chosen = _choose_alternatives(spec, programs, types)
    programs = [p for p in programs if chosen is None or p.name in chosen]
    narrowed = len(programs) < len(spec.programs)
    tracepoints = {p.name: p.section.split("/", 1)[1] for p in programs
                   if p.section.startswith(TRACEPOINT_PREFIXES) and "/" in p.section}
    if not tracepoints:
        return [p.name for p in programs] if narrowed else None
    ensure_tracefs()
    missing = {name for name, event in tracepoints.items()
               if not os.path.isdir(os.path.join(TRACEFS, "events", event))}
    if not missing or len(missing) == len(programs):
        return [p.name for p in programs] if narrowed else None
    return [p.name for p in programs if p.name not in missing]


def compat_maps_wanted(loaded: list[str] | None, all_programs: list[str]) -> bool:
    """Whether maps named NAME__compat are to be created: when some loaded
    program is a compat one (`loaded` None: every program loads)."""
    names = all_programs if loaded is None else loaded
    return any(name.endswith(COMPAT_SUFFIX) for name in names)


def _choose_alternatives(spec: ObjectSpec, programs: list[ProgramSpec], types: Mapping[str, int]) -> set[str] | None:
    """The programs kept once each NAME / NAME__compat pair is decided; None
    when the object has no compat programs."""
    by_name = {p.name: p for p in programs}
    compat = {name for name in by_name if name.endswith(COMPAT_SUFFIX)}
    if not compat:
        return None
    chosen = {name for name in by_name if name not in compat}
    for name in sorted(chosen):
        alternative = by_name.get(name + COMPAT_SUFFIX)
        if alternative is None:
            continue
        needs = program_helpers(spec, by_name[name]) - program_helpers(spec, alternative)
        prog_type = types.get(name, 0)
        if not all(features.has_helper(prog_type, helper) for helper in sorted(needs)):
            chosen.discard(name)
            chosen.add(alternative.name)
    if chosen & compat:
        chosen |= {name for name in compat if name.removesuffix(COMPAT_SUFFIX) not in by_name}
    return chosen


def needs_tracefs(sections: list[str]) -> bool:
    return any(s.startswith(TRACEPOINT_PREFIXES) for s in sections)


class Teardown:
    """What attaching made, in the order made, and how to take it down:
    libbpf links (perf event links own their perf fds), kernel link fds, and
    undo steps run in reverse (a netlink tc filter, then the clsact qdisc
    this run added)."""

    def __init__(self) -> None:
        self.links: list[int] = []
        self.fds: list[int] = []
        self.steps: list[Callable[[], None]] = []

    def undo(self) -> None:
        """Every undo step, last first; a failure stops none of the others
        and is raised when all have run."""
        steps, self.steps = self.steps, []
        failed: BaseException | None = None
        for step in reversed(steps):
            try:
                step()
            except BaseException as e:  # noqa: BLE001 - the rest must still run
                failed = failed or e
        if failed is not None:
            raise failed


def attach(name: str, section: str, handle: int, into: Teardown, *, package: Package | None = None,
           ifname: str | None = None, frequency: int | None = None,
           binaries: Mapping[str, str] | None = None) -> str | None:
    """Attach one loaded program, recording in `into` what to take down
    (also what was made before a failure). Returns a line for the user
    about a choice made for them (which interface, which event), or None.
    `binaries`: uprobe binaries replaced by the user (uprobe_binaries)."""
    if section.startswith(XDP_PREFIXES):
        return _attach_xdp(name, section, handle, xdp_meta(package, name) if package else XdpMeta(None), ifname,
                           into)
    if section.startswith(TC_PREFIXES):
        return _attach_tc(name, section, handle, tc_meta(package, name) if package else TcMeta(None, None), ifname,
                          into)
    if section.startswith(PERF_EVENT_PREFIXES):
        return _attach_perf_event(name, section, handle, frequency or DEFAULT_FREQUENCY, into)
    if section.startswith(KPROBE_PREFIXES) and not features.has_kprobes():
        raise UnsupportedFeatureError("kprobes", f"program '{name}' ({section}) needs them")
    if binaries and section.startswith(UPROBE_PREFIXES):
        kind, _, target = section.partition("/")
        binary, _, func = target.rpartition(":")
        if binary in binaries and func.isidentifier():
            path = binaries[binary]
            missing = f"no such file {path}" if "/" in path and not os.path.exists(path) else \
                f"no function {func} in {path}"
            into.links.append(_call(name, section, lambda: libbpf.program_attach_uprobe(
                handle, kind == "uretprobe", path, func), {_ENOENT: f"{missing} (ENOENT)"}))
            return None
    into.links.append(_call(name, section, lambda: libbpf.program_attach(handle)))
    return None


def _interface(kind: str, name: str, section: str, ifname: str | None, named: int | None,
               key: str) -> tuple[int, str, str | None]:
    """(ifindex, name, a note) of the interface: --ifname, else the
    package's, else lo; the note says which, unless the user named it."""
    import socket  # only for xdp and tc: socket costs every other start-up ~1 ms

    if ifname:
        try:
            return socket.if_nametoindex(ifname), ifname, None
        except OSError:
            raise AttachError(name, section, f"no network interface named '{ifname}'") from None
    ifindex = UPSTREAM_IFINDEX if named is None else named
    try:
        label = socket.if_indextoname(ifindex)
    except OSError:
        raise AttachError(name, section, f"the package's {key} is {ifindex}, which no network interface here "
                                         "has: pass --ifname IFACE") from None
    why = (f"as its package's {key} says" if named is not None
           else "upstream's default when neither the package nor --ifname names an interface")
    return ifindex, label, (f"{kind} program '{name}' attaches to {label} (ifindex {ifindex}), {why}; "
                            "--ifname IFACE picks another")


def _attach_xdp(name: str, section: str, handle: int, meta: XdpMeta, ifname: str | None,
                into: Teardown) -> str | None:
    """A link, as bpf_program__attach_xdp makes, with the mode flags; a link
    never replaces an attached program (UPDATE_IF_NOEXIST is implied)."""
    if meta.old_prog_fd or meta.flags & XDP_FLAGS_REPLACE:
        raise AttachError(name, section, "the package asks to replace a program by file descriptor (xdpopts."
                                         "old_prog_fd, XDP_FLAGS_REPLACE), which a package cannot know: leave both 0")
    ifindex, label, note = _interface("xdp", name, section, ifname, meta.ifindex, "ifindex")
    fd = libbpf.program_fd(handle)
    into.fds.append(_call(name, section, lambda: libbpf.xdp_link_create(fd, ifindex, meta.flags & XDP_FLAGS_MODES), {
        _EBUSY: f"another XDP program is attached to {label}: detach it first (ip link set dev {label} xdp off)",
        _EOPNOTSUPP: f"{label} cannot run XDP in the mode the package's flags ({meta.flags:#x}) ask for "
                     "(EOPNOTSUPP): use another interface, or flags 0"}))
    return note


def _attach_tc(name: str, section: str, handle: int, meta: TcMeta, ifname: str | None,
               into: Teardown) -> str | None:
    point = meta.attach_point or ("egress" if "egress" in section else "ingress")
    if point == "custom":
        raise AttachError(name, section, "tchook attach_point BPF_TC_CUSTOM needs a parent qdisc, which the "
                                         "package cannot name: use BPF_TC_INGRESS or BPF_TC_EGRESS")
    ifindex, label, note = _interface("tc", name, section, ifname, meta.ifindex, "tchook.ifindex")
    fd = libbpf.program_fd(handle)
    if features.has_tcx():
        kind = BPF_TCX_EGRESS if point == "egress" else BPF_TCX_INGRESS
        into.fds.append(_call(name, section, lambda: libbpf.link_create(fd, ifindex, kind)))
        return note
    where = libbpf.BPF_TC_EGRESS if point == "egress" else libbpf.BPF_TC_INGRESS
    if _call(name, section, lambda: int(libbpf.tc_hook_create(ifindex)), {
            _ENOENT: "this kernel has no clsact qdisc (ENOENT): load it (modprobe sch_ingress)"}):
        into.steps.append(lambda: _gone_is_fine(lambda: libbpf.tc_hook_destroy(ifindex)))
    try:
        filter_handle, priority, prog_id = libbpf.tc_attach(ifindex, where, fd, meta.handle or 0, meta.priority or 0)
    except MissingPrivilegeError:
        raise
    except KernelError as e:
        taken = (f"a tc filter with handle {meta.handle} and priority {meta.priority} is already on {label} {point}: "
                 f"remove it (tc filter del dev {label} {point} handle {meta.handle} prio {meta.priority} bpf), "
                 "or give the package other tcopts")
        no_cls_bpf = "this kernel has no bpf classifier (ENOENT): load it (modprobe cls_bpf)"
        raise _attach_error(name, section, e, {_EEXIST: taken, _ENOENT: no_cls_bpf}) from None
    into.steps.append(lambda: _gone_is_fine(lambda: _tc_detach_own(ifindex, where, filter_handle, priority, prog_id)))
    return note


def _tc_detach_own(ifindex: int, where: int, handle: int, priority: int, prog_id: int) -> None:
    """Remove the filter this run added, and only it: if its (handle,
    priority) now runs another program, that one is someone else's."""
    if libbpf.tc_query(ifindex, where, handle, priority) == prog_id:
        libbpf.tc_detach(ifindex, where, handle, priority)


def _gone_is_fine(step: Callable[[], None]) -> None:
    """Taking down what is gone already (the interface, its qdisc) is done."""
    try:
        step()
    except KernelError as e:
        if e.errno not in (_ENOENT, _ENODEV, _EINVAL):
            raise


def _attach_perf_event(name: str, section: str, handle: int, frequency: int, into: Teardown) -> str:
    """One sampling perf event per CPU, as libbpf-tools' profile opens them
    (offline CPUs, ENODEV, skipped); each link owns its event's fd."""
    hardware = features.has_cpu_cycles_sampling()
    cpus = 0
    for cpu in range(libbpf.num_possible_cpus()):
        try:
            pfd = libbpf.perf_event_open_sampling(hardware, frequency, cpu)
        except MissingPrivilegeError:
            raise
        except KernelError as e:
            if e.errno == _ENODEV:
                continue
            raise _perf_error(name, section, frequency, e) from None
        try:
            into.links.append(libbpf.program_attach_perf_event(handle, pfd))
        except BaseException as e:
            os.close(pfd)
            if isinstance(e, KernelError) and not isinstance(e, MissingPrivilegeError):
                raise _attach_error(name, section, e) from None
            raise
        cpus += 1
    if not cpus:
        raise AttachError(name, section, "no online CPU to sample")
    event = "CPU cycles" if hardware else "the software cpu-clock (no hardware cycle counter here)"
    return f"perf_event program '{name}' samples {event} at {frequency} Hz on {cpus} CPU{'s' * (cpus != 1)}"


def _perf_error(name: str, section: str, frequency: int, e: KernelError) -> EunomiaError:
    if e.errno == _EINVAL:
        try:
            with open(MAX_SAMPLE_RATE) as f:
                limit = int(f.read())
        except (OSError, ValueError):
            limit = 0
        if 0 < limit < frequency:
            return UsageError(f"sampling at {frequency} Hz is above this kernel's limit "
                              f"(kernel.perf_event_max_sample_rate = {limit}): choose at most {limit}")
    return _attach_error(name, section, e)


def _call(name: str, section: str, call: Callable[[], int], reasons: dict[int, str] | None = None) -> int:
    try:
        return int(call())
    except MissingPrivilegeError:
        raise
    except KernelError as e:
        raise _attach_error(name, section, e, reasons) from None


def _attach_error(name: str, section: str, e: KernelError, reasons: dict[int, str] | None = None) -> AttachError:
    reason = {
        _ENOENT: "the attach target does not exist on this kernel (ENOENT)",
        _EOPNOTSUPP: "libbpf cannot attach this section by itself (EOPNOTSUPP)",
        **(reasons or {}),
    }.get(e.errno, str(e))
    return AttachError(name, section, reason, e.errno)
