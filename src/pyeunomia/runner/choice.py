"""Which of a package's programs to load: the user's --only/--skip, then
one program per kernel event among twins (format/hooks.py says which
programs hook the same event and which attach type is best).

Twins, as libbpf-tools writes them (a tp_btf and a raw_tp program on
sched_switch; fentry and kprobe on one function), are alternatives for
kernels that differ: loading both handles every event twice, and a kernel
that refuses one type would fail the whole run. So for each event hooked
by programs of more than one attach type, the best type this kernel takes
loads and the others do not. "Takes" is asked of the kernel, never read
from its version: fentry, fexit and tp_btf by loading and attaching a
two-instruction program at that very target (kernel/features.can_trace),
kprobes by their PMU or tracefs files, raw tracepoints by a probe load,
tracepoints by their tracefs directory. A probe with no answer (a module's
function, absent from vmlinux BTF) counts as yes; if the kernel then
refuses that program at load time, the loader asks `fallback` for its
twin and loads again (runner/loader.py).

Programs of the same attach type on one event are not twins (runqlat has
two tp_btf programs on two events, opensnoop a program and its __compat
alternative on one, which runner/attach.py decides by helper probes): they
load or not together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from ..errors import UsageError
from ..format import extrameta
from ..format.escape import escape_text
from ..format.hooks import Attach, Hook, attach_of
from ..format.insns import program_maps
from ..format.mapmeta import is_set
from ..format.objspec import ObjectSpec
from ..format.package import Package
from ..kernel import features
from ..kernel.tracefs import TRACEFS, ensure_tracefs

Probe = Callable[[Attach], "bool | None"]


class Choice(NamedTuple):
    """The programs kept, and a line per event decided (for -v)."""

    kept: list[str]
    notes: list[str]


def idle(package: Package, values: Mapping[str, object]) -> Choice:
    """Programs whose `/// @when` globals are all unset this run (format/
    extrameta.py): not loaded, so their hooks cost nothing; a note each for -v."""
    kept, notes = [], []
    for name, names in extrameta.program_when(package).items():
        if not any(is_set(n, values) for n in names):
            kept.append(name)
            notes.append(f"{name}: not loaded ({' or '.join(names)} not set)")
    return Choice(kept, notes)


def select(names: Iterable[str], only: Iterable[str] | None, skip: Iterable[str] | None) -> list[str]:
    """The user's choice: `only` these, or all but `skip`; an unknown name
    is a usage error listing the programs."""
    names = list(names)
    known = set(names)
    for flag, given in (("--only", only), ("--skip", skip)):
        for name in given or ():
            if name not in known:
                raise UsageError(f"{flag}: no program named '{escape_text(name)}' in this package "
                                 f"(programs: {escape_text(', '.join(names))})")
    if only is not None:
        wanted = set(only)
        kept = [n for n in names if n in wanted]
    else:
        dropped = set(skip or ())
        kept = [n for n in names if n not in dropped]
    if not kept:
        raise UsageError(f"{'--only' if only is not None else '--skip'} leaves no program to load "
                         f"(programs: {escape_text(', '.join(names))})")
    return kept


def choose_twins(programs: Iterable[tuple[str, str]], refused: Mapping[str, str] | None = None,
                 probe: Probe | None = None) -> Choice:
    """Of (name, section) pairs, the names to load: every program, except
    that on an event hooked by several attach types only the best one the
    kernel takes loads. `refused`: programs the kernel refused at load
    time (name -> why), never chosen again."""
    refused = refused or {}
    probe = probe or kernel_takes
    programs = list(programs)
    groups: dict[Hook, dict[int, list[tuple[str, Attach]]]] = {}
    for name, section in programs:
        attach = attach_of(section)
        if attach is not None:
            groups.setdefault(attach.hook, {}).setdefault(attach.rank, []).append((name, attach))
    dropped: set[str] = set()
    notes = []
    for hook, by_rank in groups.items():
        if len(by_rank) < 2:
            continue
        ranks = sorted(by_rank)
        why_not: dict[int, str] = {}  # rank -> why the kernel does not take it
        chosen = None
        for rank in ranks:
            members = by_rank[rank]
            refusal = next((refused[n] for n, _ in members if n in refused), None)
            if refusal is None and probe(members[0][1]) is False:
                refusal = _no(members[0][1])
            if refusal is None:
                chosen = rank
                break
            why_not[rank] = refusal
        if chosen is None:  # none fits: the best untried one fails with the kernel's own reason
            chosen = next((r for r in ranks if not any(n in refused for n, _ in by_rank[r])), ranks[0])
        keep = by_rank[chosen]
        dropped |= {n for r in ranks if r != chosen for n, _ in by_rank[r]}
        parts = [f"{hook}: loads {_label(keep)}"]
        parts += [f"not {_label(by_rank[r])}: {why}" for r, why in why_not.items() if r != chosen]
        skipped = [_label(by_rank[r]) for r in ranks if r != chosen and r not in why_not]
        if skipped:
            parts.append(f"skips {', '.join(skipped)}")
        line = "; ".join(parts)
        notes.append(line)
    return Choice([n for n, _ in programs if n not in dropped], notes)


def fallback(failed: str, programs: Iterable[tuple[str, str]]) -> bool:
    """Whether `failed`, refused by the kernel at load time, has a twin of
    another attach type to load instead."""
    programs = list(programs)
    mine = attach_of(dict(programs).get(failed, ""))
    if mine is None:
        return False
    return any((a := attach_of(section)) is not None and a.hook == mine.hook and a.rank != mine.rank
               for name, section in programs if name != failed)


def unused_maps(spec: ObjectSpec, loaded: set[str]) -> set[str]:
    """Maps (.maps) that programs refer to, but none of the `loaded` ones:
    not created, as libbpf-tools' front-ends leave out the maps of the
    twins they do not load."""
    if all(p.name in loaded for p in spec.programs):
        return set()  # nothing left out: no instructions to read
    used = {p.name: program_maps(spec, p) for p in spec.programs}
    wanted = set().union(*(maps for name, maps in used.items() if name in loaded))
    return set().union(*used.values()) - wanted


def _label(members: list[tuple[str, Attach]]) -> str:
    """'a', 'b' (kind)"""
    return ", ".join(f"'{escape_text(n)}'" for n, _ in members) + f" ({members[0][1].kind})"


def _no(attach: Attach) -> str:
    if attach.kind in ("fentry", "fexit", "tp_btf"):
        return f"this kernel does not load or attach {attach.kind} programs at {escape_text(attach.target)}"
    if attach.kind in ("kprobe", "kretprobe", "ksyscall", "kretsyscall"):
        return "this kernel has no kprobes"
    if attach.kind == "raw_tp":
        return "this kernel has no raw tracepoints"
    return f"this kernel has no tracepoint {escape_text(attach.target)}"


def kernel_takes(attach: Attach) -> bool | None:
    """The feature probe for one attach kind and target (see the module
    docstring); each is asked once per process."""
    kind = attach.kind
    if kind in ("fentry", "fexit", "tp_btf"):
        return features.can_trace(kind, attach.target)
    if kind in ("kprobe", "kretprobe", "ksyscall", "kretsyscall"):
        return features.has_kprobes()
    if kind == "raw_tp":
        return features.has_raw_tracepoints()
    ensure_tracefs()
    return _tracepoint_exists(attach.target)


def _tracepoint_exists(event: str) -> bool:
    """A tracepoint's tracefs directory, in any category."""
    events = os.path.join(TRACEFS, "events")
    try:
        categories = os.listdir(events)
    except OSError:
        return False
    return any(os.path.isdir(os.path.join(events, c, event)) for c in categories)
