"""The matrix: which kernels, and which programs each guest runs.

Adding a program is one `row(...)` line in PROGRAMS:

    row(NAME, BUILD, RUN, TRIGGER, EXPECT, unsupported={...}, defects={...})

- BUILD: how the host makes it, once, for every kernel: `example("x")` (an
  eunomia-bpf example compiled with this project's ecc; `btfgen=True` adds
  `ecc --btfgen` over a btfhub-style archive of the run's kernels, `tar=True`
  ships upstream's `<name>.tar` form instead of package.json), `own("x")` (one
  of ours in kernel_matrix/programs/), `e2e("x")` (an end-to-end test's
  program, tests/e2e/programs/x/), `copy("repo:path")` (a file shipped as
  is), or None (a built-in tool).
- RUN: the guest's command line; `{pkg}` is the built file, `{port}` a free port.
- TRIGGER: a function of actions.py, the real activity caused once the program
  says it is attached; it records what must appear (pid, path, fd...).
- EXPECT: predicates of checks.py, every one of which must be met, in any order,
  before the check's timeout; the check stops as soon as they are.
- unsupported: kernel label -> why that kernel cannot run it (a missing hook or
  helper). The program must then refuse in one line; the cell reads
  "unsupported". If it runs there after all, that is a failure of the table.
- defects: kernel label -> a known defect of the product that makes it fail
  there. The cell still reads FAILED (so a fix shows up as "ran"), with the
  defect named.

Standard library only: the guest imports this too, to know its checks.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import actions as a
from .actions import Action
from .checks import Expect, Json, event, fact, frame, hist, metric, said, trace


@dataclass(frozen=True)
class Kernel:
    """A Debian cloud kernel: the newest `meta`'s dependency in `suite`."""

    label: str
    suite: str
    meta: str = "linux-image-cloud-amd64"

    @property
    def version(self) -> tuple[int, ...]:
        return version(self.label)


def version(label: str) -> tuple[int, ...]:
    return tuple(int(p) for p in label.split("."))


KERNELS = (
    Kernel("5.10", "bullseye"),
    Kernel("6.1", "bookworm"),
    Kernel("6.12", "bookworm-backports"),
)


@dataclass(frozen=True)
class Build:
    """`ecc SOURCE [HEADER]` on the host, or a file copied as it is (`copy`).
    Paths start with `examples:` (eunomia-bpf's examples), `programs:` (ours)
    or `repo:`. `cc` is a helper binary built with the host's gcc and put at
    the given guest path."""

    kind: str  # "ecc" or "copy"
    source: str
    header: str | None = None
    cc: tuple[str, str] | None = None
    btfgen: bool = False  # ecc --btfgen over the run's kernels (kernel_matrix/btfhub.py)
    tar: bool = False  # ship <name>.tar (upstream's ecc -b form), not package.json


def example(name: str, header: bool = False, btfgen: bool = False, tar: bool = False) -> Build:
    return Build("ecc", f"examples:{name}/{name}.bpf.c", f"examples:{name}/{name}.h" if header else None,
                 btfgen=btfgen or tar, tar=tar)


def own(name: str, cc: tuple[str, str] | None = None) -> Build:
    return Build("ecc", f"programs:{name}.bpf.c", f"programs:{name}.h", cc)


def e2e(name: str) -> Build:
    """One of the end-to-end tests' programs (tests/e2e/programs/NAME/): the same source, every kernel."""
    return Build("ecc", f"repo:tests/e2e/programs/{name}/{name}.bpf.c", f"repo:tests/e2e/programs/{name}/{name}.h")


def copy(path: str) -> Build:
    return Build("copy", path)


def test_program(name: str) -> Build:
    """One of the end-to-end tests' programs (tests/e2e/programs/NAME/)."""
    return Build("ecc", f"repo:tests/e2e/programs/{name}/{name}.bpf.c", f"repo:tests/e2e/programs/{name}/{name}.h")


@dataclass(frozen=True)
class Program:
    name: str
    build: Build | None
    run: tuple[str, ...]
    trigger: Action
    expect: tuple[Expect, ...]
    unsupported: Mapping[str, str] = field(default_factory=dict)
    defects: Mapping[str, str] = field(default_factory=dict)
    ready: str = "attached"  # what the program writes to stderr once it is attached
    timeout: float = 45.0  # start, attach, trigger and every expected event, under TCG
    modules: tuple[str, ...] = ()  # kernel modules the guest loads at boot for it (from the kernel's package)

    @property
    def package_file(self) -> str:
        """Where the built file sits in the guest ('' for built-in tools)."""
        if self.build is None:
            return ""
        leaf = "package.json" if self.build.kind == "ecc" else self.build.source.rsplit("/", 1)[-1]
        if self.build.tar:
            leaf = self.build.source.rsplit("/", 1)[-1].removesuffix(".c").removesuffix(".bpf") + ".tar"
        return f"/kmx/pkg/{self.slug}/{leaf}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "_", self.name)


def row(name: str, build: Build | None, run: str, trigger: Action, expect: Sequence[Expect], *,
        unsupported: Mapping[str, str] | None = None, defects: Mapping[str, str] | None = None,
        ready: str = "attached", timeout: float = 45.0, modules: str = "") -> Program:
    return Program(name, build, tuple(shlex.split(run)), trigger, tuple(expect), dict(unsupported or {}),
                   dict(defects or {}), ready, timeout, tuple(modules.split()))


def before(label: str, reason: str) -> dict[str, str]:
    """Every kernel of the matrix older than `label`, for the same reason."""
    return {k.label: reason for k in KERNELS if k.version < version(label)}


def only(labels: str, reason: str) -> dict[str, str]:
    return {label: reason for label in labels.split()}


def every(reason: str) -> dict[str, str]:
    return {k.label: reason for k in KERNELS}


_HERE = os.path.dirname(os.path.abspath(__file__))
STACKS_CC = ("programs:stacks-target.c", a.STACKS_TARGET)
STACK_FRAMES: list[Expect] = [event(pid="{pid}", comm="{comm}"), frame("ustack", "kmx_user_spin", first=True),
                frame("ustack", "kmx_kernel_reads", first=True), frame("kstack", "vfs_read")]
GUEST_BTF = "/kmx/btf/vmlinux"  # the guest's own kernel BTF, extracted on the host (kernel_matrix/btfhub.py)
_HIDE = {  # shell commands that hide the kernel's BTF in the command's own mount namespace
    "empty": "mount -t tmpfs none /sys/kernel/btf && : > /sys/kernel/btf/vmlinux",  # there, but unusable
    "gone": "mount -t tmpfs none /sys/kernel/btf",  # missing, as on a kernel built without BTF
}


# A web config with basic auth (user kmx, password kmx; the scraper in guest.py sends them), written by the
# command's shell: an htpasswd-style $2y$ hash, cost 4, checked by the guest's bcrypt (Debian's python3-bcrypt).
WEB_CONFIG = ("printf \"%s\\n\" basic_auth_users: "
              "\"  kmx: \\$2y\\$04\\$wAWxPECs7P38JvRGr4MgB.671joe.5UJmztvLKT7kgCi5UZAmNS5G\" > /tmp/kmx-web.yml")


def without_btf(command: str, how: str = "empty") -> str:
    """`command` run where /sys/kernel/btf/vmlinux is an empty file (or
    missing): a mount namespace of its own, so the rest of the guest keeps it."""
    return f"unshare -m sh -c '{_HIDE[how]} && exec \"$@\"' sh {command}"


# Known product defects (one line each: what the product does wrong, and why it bites there).

# Why some kernels cannot run a program at all.
NO_MODULE_BTF = "fentry on md_flush_request (md is a module) needs module BTF, which Linux 5.11 brought"
NO_BTF = "the kernel's BTF is hidden and the package carries none: CO-RE has nothing to relocate against"
FENTRY_NEEDS_BTF = ("fentry and fexit find their attach points in the kernel's own BTF, which is hidden: the "
                    "package's minimal BTF serves CO-RE relocations only")

UNIQUE_OPEN = event(pid="{pid}", fname="{path}", ret="{fd}")
# tests/e2e/programs/twins: unlinkat(2)'s entry hooked by fentry, ksyscall and a tracepoint, its return by fexit,
# kretsyscall and a tracepoint, sched_switch by tp_btf, raw_tp and a tracepoint; each event says which twin
# reported it (via: 0 fentry/fexit, 1 kprobe/kretprobe, 2 tracepoint)
TWINS = Build("ecc", "repo:tests/e2e/programs/twins/twins.bpf.c", "repo:tests/e2e/programs/twins/twins.h")
TWINS_READY = "attached; Ctrl-C"  # not "attached" alone, which libbpf's -v log could say first
EXEC_EXIT = (event(pid="{pid}", comm="{comm}", filename="{path}", exit_event=0),
             event(pid="{pid}", comm="{comm}", exit_code="{exit_code}", exit_event=1))

PROGRAMS: tuple[Program, ...] = (
    # opensnoop, the product's own tool, and the same package through the generic runner and the exporter
    # (before 5.17 the loader picks opensnoop's __compat programs: no bpf_loop, task_pt_regs or task_btf)
    row("opensnoop", None, "opensnoop -j", a.open_file, [UNIQUE_OPEN]),
    row("opensnoop-F", None, "opensnoop -j -F", a.open_relative,
        [event(pid="{pid}", fname="{fullpath}", ret="{fd}")]),
    row("opensnoop-openat2", None, "opensnoop -j -e", a.open_openat2,
        [event(pid="{pid}", fname="{path}", ret="{fd}", syscall="openat2")],
        unsupported=before("5.6", "openat2 arrived in Linux 5.6")),
    row("ecli-opensnoop", None, "ecli run -j opensnoop", a.open_file, [UNIQUE_OPEN]),
    row("eunomia-exporter", copy("repo:examples/opensnoop.yaml"), "eunomia-exporter -c {pkg} --listen 127.0.0.1:{port}",
        a.open_file, [metric("eunomia_file_open_counter_total", pid="{pid}", filename="{path}")],
        ready="listening on"),
    row("eunomia-exporter-basic-auth", copy("repo:examples/opensnoop.yaml"),
        f"sh -c '{WEB_CONFIG} && exec \"$@\"' sh eunomia-exporter -c {{pkg}} --listen 127.0.0.1:{{port}} "
        "--web.config.file /tmp/kmx-web.yml", a.open_file,
        [said("(programs: opensnoop); basic auth;"), metric("eunomia_file_open_counter_total", pid="{pid}",
                                                           filename="{path}")], ready="listening on"),
    # packages built by upstream's own compiler
    row("bootstrap.json", copy("repo:tests/fixtures/upstream/bootstrap.json"), "ecli run -j {pkg}", a.exec_false,
        EXEC_EXIT),
    row("runqlat.json", copy("repo:tests/fixtures/upstream/runqlat.json"), "ecli run -j {pkg} --targ_per_process",
        a.sleepy_child, [hist("{pid}")]),
    # ... and with upstream's attach metadata: no --ifname, the interface (lo), tc handle and priority from the package
    row("tc.json", copy("repo:tests/fixtures/upstream/tc.json"), "ecli run {pkg}", a.udp_lo,
        [trace("Got IP packet: tot_len: {ip_len}, ttl: 64", any_task=True)], modules="sch_ingress cls_bpf"),
    row("xdp.json", copy("repo:tests/fixtures/upstream/xdp.json"), "ecli run {pkg}", a.udp_lo,
        [trace("xdp test: packet size is {frame_len}", any_task=True)]),
    # ... with a struct per ring buffer ("enable_multiple_export_types", each map's "export_config")
    row("multiple_export_ringbuf.json", copy("repo:tests/fixtures/upstream/multiple_export_ringbuf.json"),
        "ecli run -j {pkg}", a.exec_false,
        [event(pid="{pid}", comm="{comm}", filename="{path}"), event(pid="{pid}", comm="{comm}",
                                                                     exit_code="{exit_code}")]),
    # ... the same object with "custom_members": exec events' members renamed by offset (comm -> "comm?", fname)
    row("multiple_custom_members.json", copy("repo:tests/fixtures/upstream/multiple_custom_members.json"),
        "ecli run -j {pkg}", a.exec_false, [Json({"pid": "{pid}", "comm?": "{comm}", "fname": "{path}"})]),
    # export types chosen per buffer by ecc: a helper struct first in the header, two rings with their own
    # structs (one named by /// @export, one told by size), and a deliberate mismatch: hex, never decoded
    # (and a perf sample's padding, which differs by nothing between kernels, accepted)
    row("exports/helperfirst", test_program("helperfirst"), "ecli run -j {pkg}", a.open_file, [UNIQUE_OPEN]),
    row("exports/tworings", test_program("tworings"), "ecli run -j {pkg}", a.open_file,
        [event(pid="{pid}", fname="{path}", dfd=-100), event(pid="{pid}", fd="{fd}")]),
    row("exports/misfit", test_program("misfit"), "ecli run -j {pkg}", a.open_file,
        [event(map="wrong", size=24), event(pid="{pid}", fd="{fd}")]),
    # eunomia-bpf's examples, compiled here with ecc
    row("ex/bootstrap", example("bootstrap", header=True), "ecli run -j {pkg}", a.exec_false, EXEC_EXIT),
    row("ex/minimal", example("minimal"), "ecli run {pkg}", a.write_null, [trace("BPF triggered from PID {pid}.")]),
    row("ex/opensnoop", example("opensnoop", header=True), "ecli run -j {pkg}", a.open_file, [UNIQUE_OPEN]),
    # ... its perf array loaded as a ring buffer (runner/perf2ring.py), and kept as written with --perf-array
    row("ex/opensnoop-ring", example("opensnoop", header=True), "ecli run -j -v {pkg}", a.open_file,
        [UNIQUE_OPEN, said("perf array 'events' loaded as a ring buffer (2 bpf_perf_event_output calls")],
        ready=TWINS_READY),
    row("ex/opensnoop--perf-array", example("opensnoop", header=True), "ecli run -j --perf-array {pkg}",
        a.open_file, [UNIQUE_OPEN]),
    row("ex/runqlat", example("runqlat", header=True), "ecli run -j {pkg} --targ_per_process", a.sleepy_child,
        [hist("{pid}")]),
    row("ex/sigsnoop", example("sigsnoop", header=True), "ecli run -j {pkg}", a.kill_missing,
        [event(pid="{pid}", tpid="{tpid}", sig="{sig}", ret="{ret}")]),
    row("ex/tcpstates", example("tcpstates", header=True), "ecli run -j {pkg}", a.tcp_connect,
        [event(pid="{pid}", dport="{port}", oldstate=7, newstate=2), event(dport="{port}", oldstate=2, newstate=1)]),
    row("ex/bashreadline", example("bashreadline", header=True), "ecli run -j {pkg}", a.bash_command,
        [event(pid="{pid}", str="{command}")]),
    row("ex/kprobe-link", example("kprobe-link"), "ecli run {pkg}", a.unlink_file,
        [trace("KPROBE ENTRY pid = {pid}, filename = {path}"), trace("KPROBE EXIT: pid = {pid}, ret = 0")]),
    row("ex/fentry-link", example("fentry-link"), "ecli run {pkg}", a.unlink_file,
        [trace("fentry: pid = {pid}, filename = {path}"), trace("fexit: pid = {pid}, filename = {path}, ret = 0")]),
    row("ex/lsm-connect", example("lsm-connect"), "ecli run {pkg}", a.connect_blocked,
        [trace("lsm: blocking 16843009"), fact("connect_errno", "EPERM")]),
    # Upstream's copy reads at most one byte of the disk name (BPF_CORE_READ_STR_INTO(event.disk, ...) where bcc
    # has &event.disk), so its disk is always "": the exact event is the flushing pid and comm, and disk "".
    row("ex/mdflush", example("mdflush", header=True), "ecli run -j {pkg}", a.md_flush,
        [event(pid="{pid}", comm="{comm}", disk="")], unsupported=before("5.11", NO_MODULE_BTF),
        modules="loop md_mod raid1"),
    # as their READMEs show: no --ifname, the interface and attach point from the doc comments ecc wrote
    row("ex/xdp", example("xdp"), "ecli run {pkg}", a.udp_lo,
        [trace("packet size is {frame_len}", any_task=True)]),
    row("ex/tc", example("tc"), "ecli run {pkg}", a.udp_lo,
        [trace("Got IP packet: tot_len: {ip_len}, ttl: 64", any_task=True)], modules="sch_ingress cls_bpf"),
    row("ex/profile", example("profile", header=True), "ecli run -j {pkg}", a.busy_child,
        [event(pid="{pid}", comm="{comm}")]),
    # symbolized stacks: the target is built with -O2 (no frame pointers), so only the innermost user frame
    # (where the sample hit) is checked; the kernel's stacks unwind by its own unwinder (ORC)
    row("stacks/profile", Build("ecc", "examples:profile/profile.bpf.c", "examples:profile/profile.h",
                                cc=STACKS_CC), "ecli run -j {pkg}", a.stacks_busy, STACK_FRAMES),
    row("stacks/stackid", own("stackid", cc=STACKS_CC), "ecli run -j {pkg}", a.stacks_busy, STACK_FRAMES),
    # attach types this project's host cannot test, with exact events
    row("ksyscall", own("ksyscall"), "ecli run -j {pkg}", a.kill_missing,
        [event(pid="{pid}", exit=0, tpid="{tpid}", sig="{sig}"), event(pid="{pid}", exit=1, ret="{ret}")]),
    row("uprobe", own("uprobe", cc=("programs:uprobe-target.c", a.UPROBE_TARGET)), "ecli run -j {pkg}", a.uprobe_call,
        [event(pid="{pid}", exit=0, a="{a}", b="{b}"), event(pid="{pid}", exit=1, ret="{sum}")]),
    row("fexit", own("fexit"), "ecli run -j {pkg}", a.unlink_missing,
        [event(pid="{pid}", name="{path}", ret="{ret}")]),
    # twins: the automatic choice among alternatives, for real (fentry where the kernel takes it, else kprobe)
    row("twins", TWINS, "ecli run -j -v {pkg}", a.unlinkat_file,
        [event(pid="{pid}", name="{path}", via=0), event(pid="{pid}", exit=1, ret=0, via=0),
         said("entry to syscall unlinkat: loads 'unlink_fentry' (fentry)"),
         said("return from syscall unlinkat: loads 'unlink_fexit' (fexit)"),
         said("tracepoint sched_switch: loads 'switch_tp_btf' (tp_btf)")], ready=TWINS_READY),
    row("twins--skip", TWINS, "ecli run -j -v --skip unlink_fentry,unlink_fexit {pkg}", a.unlinkat_file,
        [event(pid="{pid}", name="{path}", via=1), event(pid="{pid}", exit=1, ret=0, via=1),
         said("entry to syscall unlinkat: loads 'unlink_kprobe' (ksyscall)"),
         said("return from syscall unlinkat: loads 'unlink_kretprobe' (kretsyscall)")], ready=TWINS_READY),
    # fentry and kprobe on a module's function: fentry where the kernel has module BTF; before 5.11 the kernel
    # refuses it at load time and the kprobe twin loads instead (the loader's fall back, for real)
    row("mdflush-twins", own("mdflush-twins"), "ecli run -j -v {pkg}", a.md_flush_twins,
        [event(pid="{pid}", comm="{comm}", via="{via}"), said("entry to md_flush_request(): loads {twin}")],
        ready=TWINS_READY, modules="loop md_mod raid1"),
    # current libbpf (make toolchain's headers 1.4 and bpftool 7.5), run by the guests' libbpf 1.1: kfuncs from
    # vmlinux.h behind bpf_ksym_exists() (bpf_task_from_pid: 6.2+; absent, the object loads all the same),
    # weak and typeless __ksym; BPF_UPROBE/BPF_URETPROBE on libc by library name
    row("e2e/kfuncs", e2e("kfuncs"), "ecli run -j {pkg}", a.exec_kfuncs,
        [event(pid="{pid}", filename="{path}", has_task_from_pid="{has_kfunc}", kfunc_tgid="{kfunc_tgid}",
               has_missing_kfunc=0, has_missing_var=0, do_exit_addr="{do_exit}")]),
    row("e2e/uprobes", e2e("uprobes"), "ecli run -j {pkg}", a.libc_strtol,
        [event(pid="{pid}", exit=0, text="{text}", base="{base}"), event(pid="{pid}", exit=1, ret="{ret}")]),
    # results kept only in maps and globals (libbpf-tools' style), printed every -i round: batch lookups, .bss
    row("maptally", Build("ecc", "repo:tests/e2e/programs/maptally/maptally.bpf.c",
                          "repo:tests/e2e/programs/maptally/maptally.h"),
        "ecli run -j -i 0.5 {pkg} --target_pid {harness_pid}", a.write_sizes,
        [*(event(map="sizes", key=size, value=times) for size, times in a.MAPTALLY_WRITES),
         Json({"map": "hists", "key.pid": "{pid}"}), Json({"global": "fd_writes"})]),
    # Kernels without BTF: each command runs where the kernel's BTF is hidden
    row("nobtf/bootstrap", example("bootstrap", header=True), without_btf("ecli run -j {pkg}"), a.exec_false,
        EXEC_EXIT, unsupported=every(NO_BTF)),
    row("nobtf/btfgen", example("bootstrap", header=True, btfgen=True), without_btf("ecli run -j {pkg}"),
        a.exec_false, EXEC_EXIT),
    row("nobtf/btfgen-gone", example("bootstrap", header=True, btfgen=True), without_btf("ecli run -j {pkg}", "gone"),
        a.exec_false, EXEC_EXIT),
    row("nobtf/btfgen.tar", example("bootstrap", header=True, tar=True), without_btf("ecli run -j {pkg}"),
        a.exec_false, EXEC_EXIT),
    row("nobtf/ecli--btf", example("bootstrap", header=True), without_btf(f"ecli run -j --btf {GUEST_BTF} {{pkg}}"),
        a.exec_false, EXEC_EXIT),
    row("nobtf/opensnoop--btf", None, without_btf(f"opensnoop -j --btf {GUEST_BTF}"), a.open_file, [UNIQUE_OPEN]),
    row("nobtf/exporter--btf", copy("repo:examples/opensnoop.yaml"),
        without_btf(f"eunomia-exporter -c {{pkg}} --listen 127.0.0.1:{{port}} --btf {GUEST_BTF}"), a.open_file,
        [metric("eunomia_file_open_counter_total", pid="{pid}", filename="{path}")], ready="listening on"),
    row("nobtf/fentry-btfgen", example("fentry-link", btfgen=True), without_btf("ecli run {pkg}"), a.unlink_file,
        [trace("fentry: pid = {pid}, filename = {path}")], unsupported=every(FENTRY_NEEDS_BTF)),
    # no kernel BTF: no fentry or tp_btf, so the kprobe and raw_tp twins load (CO-RE against --btf)
    row("nobtf/twins--btf", TWINS, without_btf(f"ecli run -j -v --btf {GUEST_BTF} {{pkg}}"), a.unlinkat_file,
        [event(pid="{pid}", name="{path}", via=1), event(pid="{pid}", exit=1, ret=0, via=1),
         said("entry to syscall unlinkat: loads 'unlink_kprobe' (ksyscall)"),
         said("tracepoint sched_switch: loads 'switch_raw_tp' (raw_tp)")], ready=TWINS_READY),
)


def _catalogue() -> tuple[Program, ...]:
    """The catalogue's tools (src/pyeunomia/tools/), one module per group:
    kernel_matrix/tools_GROUP.py holds `ROWS` and the triggers they use.
    Found by name, so a new group touches no shared line."""
    import importlib
    import pkgutil

    rows: list[Program] = []
    for module in sorted(m.name for m in pkgutil.iter_modules([_HERE])):
        if module.startswith("tools_"):
            rows.extend(importlib.import_module(f"{__package__}.{module}").ROWS)
    return tuple(rows)


PROGRAMS += _catalogue()


def by_name() -> dict[str, Program]:
    return {p.name: p for p in PROGRAMS}


def validate(programs: Sequence[Program] = PROGRAMS, kernels: Sequence[Kernel] = KERNELS) -> list[str]:
    """Mistakes in the table, as sentences (empty when it is sound)."""
    problems = []
    labels = {k.label for k in kernels}
    seen: set[str] = set()
    for p in programs:
        if p.name in seen:
            problems.append(f"{p.name}: listed twice")
        seen.add(p.name)
        for what, marks in (("unsupported", p.unsupported), ("defects", p.defects)):
            for label in marks:
                if label not in labels:
                    problems.append(f"{p.name}: {what} names kernel {label}, which is not in the matrix")
        both = set(p.unsupported) & set(p.defects)
        if both:
            problems.append(f"{p.name}: both unsupported and a defect on {', '.join(sorted(both))}")
        if not p.expect:
            problems.append(f"{p.name}: expects nothing")
        if "{pkg}" in " ".join(p.run) and p.build is None:
            problems.append(f"{p.name}: runs {{pkg}} but builds nothing")
    return problems
