"""Load a package into the kernel through libbpf, attach it, and take it all
down again. Everything kernel-side that a run creates is owned by one
LoadedObject, whose close() is idempotent and runs on every way out.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..errors import (
    KernelError,
    MissingPrivilegeError,
    PackageError,
    UnsupportedFeatureError,
    UsageError,
    VerifierError,
)
from ..format.escape import escape_text
from ..format.objspec import MAP_PERF_EVENT_ARRAY
from ..format.options import GlobalOption, global_options
from ..format.package import Package
from ..kernel import features, libbpf
from ..kernel.tracefs import ensure_tracefs
from . import attach as policy
from . import choice, corebtf, kernelbtf, loaderrors, perf2ring

_REFUSED_WITHOUT_HELP = ("fentry", "fexit", "fmod_ret", "lsm", "freplace")
_DETACH_THREADS = 8


class LibbpfLog:
    """Collects libbpf's messages during a load; echoes them when verbose."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.lines: list[str] = []

    def __call__(self, level: int, text: str) -> None:
        if self.verbose:
            import logging  # only when asked for: logging costs start-up time

            logging.getLogger("pyeunomia.kernel.libbpf").warning("%s", text.rstrip("\n"))
        if level <= libbpf.LOG_INFO or "PROG LOAD LOG" in text:
            self.lines.append(text)
            del self.lines[:-200]

    def text(self) -> str:
        return "".join(self.lines)


class ProgramInfo(NamedTuple):
    name: str
    section: str
    handle: int

    @property
    def fd(self) -> int:
        return libbpf.program_fd(self.handle)


class MapInfo(NamedTuple):
    name: str
    type: int
    fd: int
    key_size: int
    value_size: int
    max_entries: int


class LoadedObject:
    """A package loaded into the kernel. Use as a context manager.

    Which programs load is the attach policy's choice (runner/attach.py)
    unless `autoload` names them; `only` and `skip` are the user's program
    names (--only, --skip: runner/choice.select). `btf` is a BTF file (a path, or one read
    with kernelbtf.read_btf_file) that CO-RE relocations resolve against
    instead of the kernel's own (runner/kernelbtf.py)."""

    def __init__(self, package: Package, values: dict[str, Any] | None = None, *,
                 verbose: bool = False, attach: bool = True, ifname: str | None = None,
                 autoload: Iterable[str] | None = None, map_sizes: dict[str, int] | None = None,
                 btf: str | os.PathLike[str] | kernelbtf.BtfFile | None = None,
                 only: Iterable[str] | None = None, skip: Iterable[str] | None = None,
                 perf_ring_bytes: int | None = None):
        self.package = package
        self.choices: list[str] = []  # which twin loads on each event, and why (ecli -v)
        self.refused: dict[str, str] = {}  # programs the kernel refused whose twins loaded instead
        self._obj = 0
        self._teardown = policy.Teardown()
        self.notes: list[str] = []  # lines for the user from attaching (which interface, which event)
        self._log = LibbpfLog(verbose)
        self._btf_to_cache: str | None = None
        self.core_btf: str | None = None  # the cached minimal kernel BTF this load used
        self.btf_source = ""  # what CO-RE relocations resolved against, for messages and tests
        self._btf_kind = ""  # "kernel", "cache", "file" (--btf) or "package"
        self.options = {o.name: o for o in global_options(package, runner_owned=True)}
        self.values = {name: o.default for name, o in self.options.items()}
        for name, value in (values or {}).items():
            if name not in self.options:
                known = escape_text(", ".join(self.options)) or "none"
                raise UsageError(f"'{escape_text(name)}' is not a settable global of {escape_text(package.name)} "
                                 f"(globals: {known})")
            try:
                self.values[name] = self.options[name].check(value)
            except ValueError as e:
                raise UsageError(f"global '{name}': {e}") from None
        names = [p.name for p in package.spec.programs]
        idle = choice.idle(package, self.values) if only is None else choice.Choice([], [])
        self._idle_notes = idle.notes
        if idle.kept:
            skip = [*(skip or ()), *idle.kept]
        self._among = None if skip is None else choice.select(names, None, skip)
        if only is not None:
            autoload = choice.select(names, only, None)
        features.require_bpf_privileges()
        btf_file = btf if isinstance(btf, kernelbtf.BtfFile) or btf is None else kernelbtf.read_btf_file(btf)
        source = kernelbtf.choose(package, btf_file)
        # perf arrays loaded as ring buffers of perf_ring_bytes (runner/perf2ring.py)
        self.ring_notes: list[str] = []  # what became of them, for ecli -v
        self._rewrite = self._rewrite_perf_arrays() if perf_ring_bytes else None
        self._ring_bytes = perf_ring_bytes or 0
        libbpf.set_log_handler(self._log)
        try:
            self._open_and_load(autoload, map_sizes or {}, source)
            if attach:
                self.attach(ifname)
        except BaseException:
            self.close()
            raise

    # -- set-up ------------------------------------------------------------

    @property
    def rings_from_perf(self) -> list[str]:
        """The perf event arrays this load made ring buffers."""
        return self._rewrite.maps if self._rewrite is not None else []

    def _rewrite_perf_arrays(self) -> perf2ring.Rewrite | None:
        if not any(m.type == MAP_PERF_EVENT_ARRAY for m in self.package.spec.maps) or not features.has_ringbuf():
            return None
        try:
            done = perf2ring.rewrite(self.package.object)
        except (PackageError, struct.error, IndexError) as e:
            self.ring_notes.append(f"perf arrays kept: {e}")
            return None
        for name, why in done.refused.items():
            self.ring_notes.append(f"perf array '{name}' kept: {why}")
        if not done.maps:
            return None
        self.ring_notes.append(f"perf array {', '.join(repr(m) for m in done.maps)} loaded as a ring buffer "
                            f"({done.calls} bpf_perf_event_output calls made bpf_ringbuf_output)")
        return done

    def _open_and_load(self, autoload: Iterable[str] | None, map_sizes: dict[str, int],
                       source: kernelbtf.BtfSource) -> None:
        self.btf_source, self._btf_kind = source.label, source.kind
        if source.data is not None:  # --btf, or the package's own for a kernel without BTF: never cached
            with kernelbtf.memory_file(source.data) as path:
                self._load_with(autoload, map_sizes, path)
            return
        cached = corebtf.cache_path(self.package.object)
        core_btf = corebtf.trusted(cached) if cached is not None else None
        if core_btf is not None:
            self.btf_source, self._btf_kind = f"the cached minimal BTF {escape_text(core_btf)}", "cache"
        try:
            self._load_with(autoload, map_sizes, core_btf)
        except (MissingPrivilegeError, UnsupportedFeatureError):
            raise
        except KernelError as first:
            if core_btf is None or not _btf_at_fault(first, self._log.text()):
                raise  # the kernel judged the program as relocated, as it would be with its own BTF
            # A damaged cache file must never cost a run: once more, with the kernel's own BTF.
            corebtf.discard(core_btf)
            self._close_object()
            core_btf, self.btf_source, self._btf_kind = None, source.label, source.kind
            try:
                self._load_with(autoload, map_sizes, None)
            except KernelError as second:
                raise _both(first, second, cached or "") from None
        self.core_btf = core_btf
        if core_btf is None:
            self._btf_to_cache = cached

    def _load_with(self, autoload: Iterable[str] | None, map_sizes: dict[str, int], core_btf: str | None) -> None:
        while True:
            self._open(autoload, core_btf)
            self._resize_maps(map_sizes)
            try:
                self._load()
                return
            except MissingPrivilegeError:
                raise
            except KernelError as e:
                if self._rewrite is not None:
                    # The kernel refused the rewritten program: the perf arrays as written, then.
                    self.ring_notes.append(f"perf arrays kept: the kernel refused the ring buffer rewrite "
                                        f"({str(e).splitlines()[0]})")
                    self._rewrite = None
                    self._close_object()
                    continue
                failed = _failed_program(self._log.text())
                sections = [(p.name, p.section) for p in self.programs]
                if autoload is not None or failed in self.refused or not choice.fallback(failed, sections):
                    raise
                # The probes said yes (or could not tell) and the kernel said no: its twin loads instead.
                self.refused[failed] = str(e).splitlines()[0]
                self._close_object()

    def _open(self, autoload: Iterable[str] | None, core_btf: str | None) -> None:
        name = self.package.object_name  # what libbpf names the maps after: opening and globals agree
        data = self._rewrite.data if self._rewrite is not None else self.package.object
        self._obj = libbpf.object_open(data, name, core_btf)
        if self._rewrite is not None:
            for m in libbpf.object_maps(self._obj):
                if libbpf.map_name(m) in self._rewrite.maps:
                    libbpf.map_make_ringbuf(m, self._ring_bytes)
        self.programs = [ProgramInfo(libbpf.program_name(p), libbpf.program_section(p), p)
                         for p in libbpf.object_programs(self._obj)]
        if autoload is None:
            types = {p.name: libbpf.program_type(p.handle) for p in self.programs}
            self.choices = list(self._idle_notes)
            chosen = policy.loadable_programs(self.package.spec, types, among=self._among, refused=self.refused,
                                              notes=self.choices)
        else:
            chosen = list(autoload)
        if chosen is not None:
            wanted = set(chosen)
            for p in self.programs:
                libbpf.program_set_autoload(p.handle, p.name in wanted)
            unused = choice.unused_maps(self.package.spec, wanted)
            for m in libbpf.object_maps(self._obj):
                if libbpf.map_name(m) in unused:
                    libbpf.map_set_autocreate(m, False)  # only programs left unloaded use it
        if not policy.compat_maps_wanted(chosen, [p.name for p in self.programs]):
            for m in libbpf.object_maps(self._obj):
                if libbpf.map_name(m).endswith(policy.COMPAT_SUFFIX):
                    libbpf.map_set_autocreate(m, False)  # only the compat programs use it
        if policy.needs_tracefs([p.section for p in self.programs]):
            ensure_tracefs()
        self._write_globals(name[:8])

    def _resize_maps(self, sizes: dict[str, int]) -> None:
        """Set max_entries (a ring buffer's size in bytes) before load, and
        the sizes the package's `@resize` globals ask for."""
        resized = self._global_resizes()
        if not sizes and not resized:
            return
        found = {libbpf.map_name(m): m for m in libbpf.object_maps(self._obj)}
        for name, size in sizes.items():
            if name not in found:
                raise UsageError(f"no map named '{name}' to resize (maps: {', '.join(found)})")
            libbpf.map_set_max_entries(found[name], size)
        for name, value_size, n in resized:
            if name not in found:
                raise PackageError(f"{self.package.origin}: @resize names map '{escape_text(name)}', which the "
                                   "object does not have")
            try:
                if value_size:
                    libbpf.map_set_value_size(found[name], n * value_size)
                else:
                    libbpf.map_set_max_entries(found[name], n)
            except KernelError as e:
                raise UsageError(f"cannot size map '{escape_text(name)}' for {n}: {e}") from None

    def _global_resizes(self) -> list[tuple[str, int, int]]:
        """(map, bytes per unit or 0 for max_entries, the global's value) of
        each global marked `@resize` and set to non-zero this run
        (offcputime's --stack-storage-size, --perf-max-stack-depth)."""
        out = []
        for section in self.package.meta.raw.get("bpf_skel", {}).get("data_sections", []):
            for var in section.get("variables", []):
                spec, value = var.get("resize"), self.values.get(var.get("name", ""))
                if isinstance(spec, dict) and isinstance(spec.get("map"), str) and isinstance(value, int) \
                        and not isinstance(value, bool) and value > 0:
                    unit = spec.get("value_size")
                    out.append((spec["map"], unit if isinstance(unit, int) and unit > 0 else 0, value))
        return out

    def _write_globals(self, prefix: str) -> None:
        by_section: dict[str, list[GlobalOption]] = {}
        for o in self.options.values():
            by_section.setdefault(o.section, []).append(o)
        for m in libbpf.object_maps(self._obj):
            map_name = libbpf.map_name(m)
            if not map_name.startswith(prefix) or "." not in map_name:
                continue
            suffix = map_name[len(prefix):]
            section = next((s for s in by_section if s.startswith(suffix)), None)
            if section is None:
                continue
            image = libbpf.map_initial_value(m)
            if image is None:
                continue
            try:
                for o in by_section[section]:
                    if o.offset + o.size > len(image):
                        raise KernelError(f"global '{o.name}' lies outside map {map_name}")
                    image[o.offset : o.offset + o.size] = o.encode(self.values[o.name])
            finally:
                image.release()

    def _load(self) -> None:
        self._log.lines.clear()
        try:
            libbpf.object_load(self._obj)
        except KernelError as e:
            raise self._load_error(e) from None

    def _load_error(self, e: KernelError) -> KernelError:
        text = self._log.text()
        btf_error = self._btf_error(text, e.errno)
        if btf_error is not None:
            return btf_error
        m = re.search(r"prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", text, re.S)
        prog = m.group(1) if m else _failed_program(text)
        section = next((p.section for p in self.programs if p.name == prog), "")
        if isinstance(e, MissingPrivilegeError):
            return e
        if section.startswith(_REFUSED_WITHOUT_HELP) and e.errno in (1, 95, 524):
            kind = section.split("/")[0]
            reason = f"the kernel refused to load '{prog}' ({os.strerror(e.errno)})"
            return UnsupportedFeatureError(f"{kind} programs", reason, e.errno)
        if m and m.group(2).strip():
            return VerifierError(prog, m.group(2), e.errno)
        return loaderrors.explained(text, prog, e.errno, self.package.spec.maps)

    def _btf_error(self, text: str, errno: int) -> KernelError | None:
        """One line for a load that failed over BTF: the kernel's own is
        unusable (libbpf: "failed to find valid kernel BTF", ESRCH), or the
        file given instead cannot be parsed or does not answer a relocation."""
        if _NO_KERNEL_BTF in text or "Error loading vmlinux BTF" in text:
            problem = kernelbtf.kernel_btf_problem() or "is unusable to libbpf"
            need = sorted({p.section.split("/")[0].split(".")[0] for p in self.programs
                           if p.section.startswith(_NEED_KERNEL_BTF)})
            if self._btf_kind != "kernel":  # wanted for more than CO-RE: attach points, typed ksyms
                what = f"{', '.join(need)} programs" if need else "this object"
                return UnsupportedFeatureError(
                    f"{what} without its own BTF",
                    f"{kernelbtf.KERNEL_BTF} {problem}, and libbpf looks up "
                    f"{'their attach points' if need else 'more than CO-RE relocations'} there, not in "
                    f"{self.btf_source}: use a kernel built with CONFIG_DEBUG_INFO_BTF=y", errno)
            return UnsupportedFeatureError(
                "BTF", f"{kernelbtf.KERNEL_BTF} {problem} (libbpf: failed to find valid kernel BTF): pass this "
                       "kernel's BTF with --btf PATH, or use a kernel built with CONFIG_DEBUG_INFO_BTF=y", errno)
        parse = re.search(r"failed to parse target BTF: (-?\d+)", text)
        if parse and self._btf_kind != "kernel":
            why = os.strerror(abs(int(parse.group(1))))
            if self._btf_kind == "cache":  # the loader replaces it: nothing for the user to do
                return KernelError(f"{self.btf_source} is damaged (libbpf cannot parse it: {why})", errno)
            return KernelError(f"{self.btf_source}: libbpf cannot read it as BTF ({why}): pass a "
                               "kernel's BTF file (its /sys/kernel/btf/vmlinux, or bpftool gen min_core_btf output)",
                               errno)
        relo = re.search(r"failed to resolve CO-RE relocation ([^\n]*)", text)
        if relo and self._btf_kind != "kernel":
            return KernelError(f"{self.btf_source} does not answer a CO-RE relocation of the object "
                               f"({escape_text(relo.group(1).strip())}): pass this kernel's own BTF with --btf PATH",
                               errno)
        return None

    def run_stats(self) -> list[tuple[str, int, int]]:
        """(program, run time ns, runs) of each loaded program: counted while
        the kernel's run-time statistics are on (runner/stats.py)."""
        out = []
        for p in self.programs:
            fd = libbpf.program_fd(p.handle)
            if fd >= 0:
                ns, runs = libbpf.prog_run_stats(fd)
                out.append((p.name, ns, runs))
        return out

    def program_loaded(self, name: str) -> bool:
        return any(p.name == name and libbpf.program_fd(p.handle) >= 0 for p in self.programs)

    def attach(self, ifname: str | None = None, *, frequency: int | None = None) -> None:
        """Attach every loaded program (runner/attach.py): `ifname` for xdp
        and tc, `frequency` (Hz) for perf_event sampling."""
        binaries = policy.uprobe_binaries(self.package, self.values)
        for p in self.programs:
            if libbpf.program_fd(p.handle) < 0:
                continue  # not loaded (autoload off)
            note = policy.attach(p.name, p.section, p.handle, self._teardown, package=self.package, ifname=ifname,
                                 frequency=frequency, binaries=binaries)
            if note:
                self.notes.append(note)

    # -- use -----------------------------------------------------------------

    def maps(self) -> list[MapInfo]:
        """The maps the load created (not those only unloaded programs use)."""
        out = []
        for m in libbpf.object_maps(self._obj):
            if libbpf.map_fd(m) < 0:
                continue
            k, v, n = libbpf.map_sizes(m)
            out.append(MapInfo(libbpf.map_name(m), libbpf.map_type(m), libbpf.map_fd(m), k, v, n))
        return out

    def map(self, name: str) -> MapInfo:
        for m in self.maps():
            if m.name == name:
                return m
        raise KeyError(f"no map named '{name}'")

    @property
    def closed(self) -> bool:
        return self._obj == 0

    def close(self) -> None:
        """Detach every program and unload the object. Safe to call twice."""
        made, self._teardown = self._teardown, policy.Teardown()
        try:
            _destroy_links(made.links)
        finally:
            for fd in made.fds:
                os.close(fd)
            try:
                made.undo()
            finally:
                self._close_object()
                libbpf.set_log_handler(None)
        path, self._btf_to_cache = self._btf_to_cache, None
        if path is not None:
            corebtf.generate(self.package.object, path)

    def _close_object(self) -> None:
        obj, self._obj = self._obj, 0
        if obj:
            libbpf.object_close(obj)

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NO_KERNEL_BTF = "failed to find valid kernel BTF"
# What libbpf resolves in the kernel's own BTF whatever btf_custom_path says: attach targets.
_NEED_KERNEL_BTF = ("fentry", "fexit", "fmod_ret", "lsm", "tp_btf", "iter", "struct_ops", "freplace")
# libbpf's words for a relocation the BTF it was given did not answer, or a file it could not use.
_BTF_FAULTS = ("failed to parse target BTF", "CO-RE relocation", "target candidate search failed")


def _failed_program(log: str) -> str:
    """The program libbpf names as the one whose load failed, or ''."""
    m = re.search(r"prog '([^']+)': (?:BPF program load failed|failed to load)", log)
    return m.group(1) if m else ""


def _btf_at_fault(e: KernelError, log: str) -> bool:
    """Whether a load with the cached minimal BTF may have failed because of
    that file: libbpf could not parse it, or a relocation found nothing in
    it. A verifier's verdict on a program relocated as the whole kernel BTF
    would relocate it is not the file's fault: a retry would only repeat
    it (or, with the kernel's BTF unusable, replace it with an error about
    that), so the first error is reported as it is."""
    return any(words in log or words in str(e) for words in _BTF_FAULTS)


def _both(first: KernelError, second: KernelError, cached: str) -> KernelError:
    """A retry without the cached file that failed as well: both errors on
    the first line, the first one first (it is what the run met; the second
    is what the kernel's own BTF gives), then a verifier's log tail, if any,
    as the second's type."""
    head = str(first).splitlines()[0]
    if "cached minimal BTF" not in head:
        head = f"with the cached minimal BTF {escape_text(cached)}: {head}"
    text = f"{head}; then with the kernel's own BTF: {second}"
    if isinstance(second, VerifierError):
        out: KernelError = VerifierError(second.program, second.log, second.errno)
        out.args = (text,)
        return out
    return KernelError(text, second.errno)


def _destroy_links(links: list[int]) -> None:
    """Detaching a tracepoint waits for an RCU grace period in the kernel
    (~70 ms each here). The calls release the GIL, so detaching each link in
    a thread of its own (a few at a time) waits for those periods together."""
    import threading

    for start in range(0, len(links), _DETACH_THREADS):
        group = links[start : start + _DETACH_THREADS]
        threads: list[threading.Thread] = []
        for link in group[1:]:
            t = threading.Thread(target=libbpf.link_destroy, args=(link,), name="detach")
            try:
                t.start()
            except RuntimeError:  # no thread to be had: detach the rest here
                break
            threads.append(t)
        for link in [group[0], *group[1 + len(threads):]]:
            libbpf.link_destroy(link)
        for t in threads:
            t.join()
