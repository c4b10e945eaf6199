"""The results a program keeps in maps and globals, printed at exit (and
every -i seconds) as bpftrace prints its maps: what to print, read from the
kernel and decoded; how it looks is output's business (output/mapprint.py).

What is printed:
  - every hash or array map (per-CPU and LRU ones too) that the program
    fills with results, by what its code does (format/mapuse.py): not event
    buffers, not maps already sampled (`sample` metadata), not the `lost`
    counter, not internal maps, not state kept between events, not a map
    whose doc comment says `@internal` (state the code analysis cannot tell
    from results: filelife's scratch space);
  - every global of .data/.bss whose bytes differ from what the load wrote
    (a counter, an array of counters, a histogram).
An array map's entries that are all zero were never filled and are left out.
A map's `@histogram` or `@table` (format/mapmeta.py) says how it reads: a
histogram's unit, a table sorted by a member and cut at `top` rows, and
`clear`: the entries a periodic round printed are deleted (an array's
zeroed), so each round shows its own interval, as libbpf-tools do.
A map holding more than `limit` entries shows the `limit` largest (by
value, a histogram's count, a struct's first number) and counts the rest.

Reading costs one batch lookup per 4096 entries (one bpf() call per entry
where the kernel lacks batches, 5.6 and older for hashes) and one lookup per
data section; nothing runs per event.
"""

from __future__ import annotations

import heapq
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import KernelError, PackageError
from ..format.btf import Kind
from ..format.layout import value_decoder
from ..format.mapmeta import HISTOGRAM, SCALAR, TABLE, MapView, bool_globals, map_view, map_views, shown
from ..format.mapshape import DumpWriter, HistShape, MapDump, hist_shape, int_code, sort_key, sum_per_cpu, weight
from ..format.mapuse import map_role, map_uses
from ..format.objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF, GlobalVar, names_section
from ..format.options import NOT_RESULTS
from ..format.package import DUMMY_PREFIX, Package
from ..kernel import libbpf
from .loader import LoadedObject, MapInfo
from .lostmap import is_lost_counter
from .maps import BATCH_CHUNK, PERCPU_MAP_TYPES, percpu_value_size, read_entries

# hash, array, percpu hash, percpu array, lru hash, lru percpu hash
READABLE_MAP_TYPES = {1, 2, 5, 6, 9, 10}
ARRAY_TYPES = {2, 6}
DATA_SECTIONS = (".data", ".bss")
DEFAULT_LIMIT = 1000  # entries per map: a screenful of rows, a few hundred histograms


class _MapTarget(NamedTuple):
    info: MapInfo
    key: Callable[[bytes], Any]
    value: Callable[[bytes], Any]
    hist: HistShape | None
    code: str | None  # a scalar integer value's struct format: ranked without decoding
    view: MapView | None = None
    unit: str | None = None


class _SectionTarget(NamedTuple):
    info: MapInfo
    start: bytes  # what the load wrote
    globals: list[tuple[GlobalVar, Callable[[bytes], Any], HistShape | None, MapView | None, str | None]]


class MapDumper:
    """The maps and globals of a loaded package worth printing; `dump()`
    reads them and hands one round to `writer`. As a sampler of the poll loop
    (next_due, sample_now) it prints every `interval` seconds."""

    def __init__(self, package: Package, loaded: LoadedObject, writer: DumpWriter, *,
                 interval: float | None = None, all_maps: bool = False, limit: int = DEFAULT_LIMIT,
                 count: int | None = None):
        self.writer = writer
        self.interval = interval
        self.count = count  # periodic rounds before `done`
        self.rounds = 0
        self.last: list[MapDump] = []  # the last round's dumps
        self.next_due = time.monotonic() + interval if interval else float("inf")
        self.limit = max(1, limit)
        self.skipped: list[tuple[str, str]] = []  # (map, why not printed), for -v
        self.problems: list[str] = []  # maps the last round could not read, one line each
        self.maps: list[_MapTarget] = []
        self.sections: list[_SectionTarget] = []
        spec = package.spec
        btf = spec.btf
        sampled = {m.name for m in package.meta.maps if m.sample}
        internal = {e["name"] for e in package.meta.raw.get("bpf_skel", {}).get("maps", [])
                    if isinstance(e, dict) and e.get("internal") is True and isinstance(e.get("name"), str)}
        infos = loaded.maps()
        has_buffer = any(m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY) for m in infos)
        events = {t.name for t in package.meta.export_types} if has_buffer else set()
        uses = map_uses(spec)
        views = map_views(package)
        for info in infos:
            if "." in info.name or info.fd < 0:
                continue  # internal (.rodata, .kconfig, .data, .bss: globals are read below), or never created
            if info.type not in READABLE_MAP_TYPES or info.name in sampled or is_lost_counter(info):
                continue
            mspec = spec.map(info.name)
            key_id, value_id = (mspec.key_type_id, mspec.value_type_id) if mspec else (0, 0)
            role = map_role(info.name, uses.get(info.name), bool(value_id) and btf.resolve(value_id).name in events)
            view = views.get(info.name)
            if info.name in internal and not all_maps:
                self.skipped.append((info.name, "its doc comment says @internal"))
                continue
            if view is not None:
                view = shown(view, loaded.values)  # `when`: key parts and columns of options not given
            if not (role.results or all_maps or view):
                self.skipped.append((info.name, role.why))
                continue
            hist = hist_shape(btf, value_id, info.name, btf.resolve(value_id).name if value_id else "")
            if view is not None:
                hist = view.shape
            self.maps.append(_MapTarget(info, value_decoder(btf, key_id) if key_id else bytes.hex,
                                        value_decoder(btf, value_id) if value_id else bytes.hex, hist,
                                        int_code(btf, value_id), view, _unit(view, loaded.values)))
        self.sections = _section_targets(package, loaded, infos)

    @property
    def empty(self) -> bool:
        """Nothing that could ever print: no map, no writable global."""
        return not self.maps and not self.sections

    @property
    def done(self) -> bool:
        """The rounds --count asked for are printed."""
        return self.count is not None and self.rounds >= self.count

    def sample_now(self) -> None:
        """A periodic round (the poll loop calls this when next_due passes)."""
        if self.interval:
            self.next_due = time.monotonic() + self.interval
        self.last = self.read(clear=True)
        self.rounds += 1
        self.writer.write_dumps(self.last, time.strftime("%H:%M:%S"))

    def dump(self) -> list[MapDump]:
        """The final round, at exit: stamped only when rounds were periodic."""
        dumps = self.read()
        self.writer.write_dumps(dumps, time.strftime("%H:%M:%S") if self.interval else None)
        return dumps

    def read(self, clear: bool = False) -> list[MapDump]:
        """One round: a map the kernel will not read is a line in `problems`,
        not the end of the round (the others, at exit, are the run's results).
        `clear`: maps whose view says so lose the entries read."""
        self.problems = []
        out = []
        for t in self.maps:
            try:
                dump = self._read_map(t, clear and t.view is not None and t.view.clear)
            except KernelError as e:
                self.problems.append(f"map '{t.info.name}' could not be read: {e}")
                continue
            if dump.total:
                out.append(dump)
        for s in self.sections:
            try:
                out += _read_section(s)
            except KernelError as e:
                self.problems.append(f"map '{s.info.name}' could not be read: {e}")
        return out

    def _read_map(self, t: _MapTarget, clear: bool = False) -> MapDump:
        m = t.info
        size = m.value_size
        if m.type in PERCPU_MAP_TYPES:
            size = percpu_value_size(m.value_size) * libbpf.num_possible_cpus()
        keys, values, n = _read_all(m, size)
        chosen: list[int] | range = range(n)
        if m.type in ARRAY_TYPES:
            zero = bytes(size)
            chosen = [i for i in chosen if values[i * size:(i + 1) * size] != zero]  # never filled
        total = len(chosen)
        if total > self.limit:
            chosen = self._largest(t, values, size, chosen)
        decode = self._value_decoder(t)
        entries = [(t.key(keys[i * m.key_size:(i + 1) * m.key_size]), decode(values[i * size:(i + 1) * size]))
                   for i in chosen]
        if clear:
            _clear(m, keys, values, size, chosen if total <= self.limit else range(n))
        if t.view is not None and t.view.kind == TABLE and t.view.sort:
            entries = _ranked(entries, t.view.sort)
        else:
            entries.sort(key=lambda kv: sort_key(kv[0]))
        if t.view is not None and t.view.top:
            entries = entries[:t.view.top]
        return MapDump(m.name, False, t.hist, entries, total, t.view, t.unit)

    def _value_decoder(self, t: _MapTarget) -> Callable[[bytes], Any]:
        if t.info.type not in PERCPU_MAP_TYPES:
            return t.value
        stride = percpu_value_size(t.info.value_size)

        def per_cpu(v: bytes) -> Any:  # one value per CPU, added up
            return sum_per_cpu([t.value(v[i:i + stride]) for i in range(0, len(v), stride)])
        return per_cpu

    def _largest(self, t: _MapTarget, values: bytes, size: int, chosen: list[int] | range) -> list[int]:
        """The `limit` entries of largest weight (format/mapshape.py). A
        scalar integer value is ranked from the raw bytes: a million u64
        values in 0.1 s, against 3 s decoded one by one."""
        if t.code is not None:
            width = struct.calcsize(t.code)
            flat = [v for (v,) in struct.iter_unpack(t.code, values)] if size == width else None
            if flat is None:  # per-CPU: one value every 8 bytes, CPUs side by side
                cpus = size // percpu_value_size(t.info.value_size)
                padded = t.code + f"{percpu_value_size(width) - width}x" if width < 8 else t.code
                cells = [v for (v,) in struct.iter_unpack(padded, values)]
                flat = [sum(cells[i:i + cpus]) for i in range(0, len(cells), cpus)]
            return heapq.nlargest(self.limit, chosen, key=flat.__getitem__)
        decode = self._value_decoder(t)
        return heapq.nlargest(self.limit, chosen,
                              key=lambda i: weight(decode(values[i * size:(i + 1) * size]), t.hist))


def _read_all(m: MapInfo, value_size: int) -> tuple[bytes, bytes, int]:
    """(keys, values, count) packed end to end: in batches where the kernel
    has them (5.6 and newer for hashes, 5.10 for per-CPU arrays)."""
    batch = libbpf.map_lookup_all(m.fd, m.key_size, value_size, max(1, min(m.max_entries, BATCH_CHUNK)))
    if batch is not None:
        return batch
    entries = read_entries(m.fd, m.type, m.key_size, m.value_size, m.max_entries)
    return b"".join(k for k, _ in entries), b"".join(v for _, v in entries), len(entries)


def _section_targets(package: Package, loaded: LoadedObject, infos: list[MapInfo]) -> list[_SectionTarget]:
    """The .data and .bss sections holding globals, with the bytes the load
    wrote into each (the object's, with the options' values)."""
    spec = package.spec
    btf = spec.btf
    by_section: dict[str, list[GlobalVar]] = {}
    for g in spec.globals:
        if g.section.startswith(DATA_SECTIONS) and not g.name.startswith(DUMMY_PREFIX) and g.name not in NOT_RESULTS:
            by_section.setdefault(g.section, []).append(g)
    out = []
    for section, found in sorted(by_section.items()):
        info = next((m for m in infos if "." in m.name and names_section(m.name, section)), None)
        if info is None or info.type not in ARRAY_TYPES:
            continue
        elf_section = spec.elf.section(section)
        start = bytearray(spec.elf.section_bytes(elf_section) if elf_section else b"")
        start = start.ljust(info.value_size, b"\0")[: info.value_size]
        for g in found:
            option = loaded.options.get(g.name)
            if option is not None and option.section == section:
                start[g.offset:g.offset + g.size] = option.encode(loaded.values[g.name])
        out.append(_SectionTarget(info, bytes(start), [
            (g, value_decoder(btf, g.type_id), *_global_view(package, g, loaded.values)) for g in found
            if g.offset + g.size <= info.value_size]))
    return out


def _global_view(package: Package, g: GlobalVar, values: dict[str, Any]
                 ) -> tuple[HistShape | None, MapView | None, str | None]:
    """A global's histogram shape, and its `@histogram` comment's view and unit
    (runqlen's `struct lhist hist`: its unit, linear; an array of them keyed by
    index, `cpu = 0`). A lone global's histogram prints without a label."""
    btf = package.spec.btf
    shape = hist_shape(btf, g.type_id, g.name)
    entry = next((v for s in package.meta.raw.get("bpf_skel", {}).get("data_sections", []) if isinstance(s, dict)
                  for v in s.get("variables", []) if isinstance(v, dict) and v.get("name") == g.name), None)
    if entry is None or HISTOGRAM not in entry:
        return shape, None, None
    t = btf.resolve(g.type_id)
    indexed = t.kind == Kind.ARRAY and btf.resolve(t.elem_id).kind == Kind.STRUCT
    try:
        view = map_view(g.name, entry, btf, 0, t.elem_id if indexed else g.type_id,
                        bool_globals(btf, package.spec.globals))
    except ValueError as e:
        raise PackageError(f"{package.origin}: {e}") from None
    if view is None or view.shape is None:
        return shape, None, None
    shape = view.shape._replace(indexed=indexed)
    view = shown(view, values)
    if not indexed and not view.key:
        view = view._replace(key_hidden=True)
    return shape, view, _unit(view, values)


def _read_section(s: _SectionTarget) -> list[MapDump]:
    now = libbpf.map_lookup(s.info.fd, bytes(4), s.info.value_size)
    if now is None:
        return []
    out = []
    for g, decode, hist, view, unit in s.globals:
        part = now[g.offset:g.offset + g.size]
        if part == s.start[g.offset:g.offset + g.size]:
            continue
        value = decode(part)
        if hist is not None and hist.indexed and isinstance(value, list):
            entries = [(i, v) for i, v in enumerate(value) if weight(v, hist)]  # the histograms filled
            out.append(MapDump(g.name, True, hist, entries, len(entries), view, unit))
        else:
            out.append(MapDump(g.name, True, hist, [(None, value)], 1, view, unit))
    return out


def _unit(view: MapView | None, values: dict[str, Any]) -> str | None:
    """A histogram's unit this run: the first unit_option whose bool global is set, else its unit."""
    if view is None:
        return None
    return next((unit for g, unit in view.unit_option if values.get(g)), view.unit)


def _ranked(entries: list[tuple[Any, Any]], member: str) -> list[tuple[Any, Any]]:
    """A table's rows, largest `member` first (ties by key)."""
    def size(kv: tuple[Any, Any]) -> float:
        v = kv[1] if member == SCALAR or not isinstance(kv[1], dict) else kv[1].get(member)
        return float(v) if isinstance(v, int | float) else 0.0
    entries.sort(key=lambda kv: sort_key(kv[0]))
    entries.sort(key=size, reverse=True)
    return entries


def _clear(m: MapInfo, keys: bytes, values: bytes, size: int, chosen: list[int] | range) -> None:
    """Delete the entries a round read (an array's are zeroed: they cannot be
    deleted); one bpf() call each. An entry that went away meanwhile is fine."""
    zero = bytes(size)
    for i in chosen:
        key = keys[i * m.key_size:(i + 1) * m.key_size]
        try:
            if m.type in ARRAY_TYPES:
                libbpf.map_update(m.fd, key, zero)
            else:
                libbpf.map_delete(m.fd, key)
        except KernelError:
            continue
