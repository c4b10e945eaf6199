"""A program's config checked against its package: the package is found,
its globals take the options, every label and value names a real field of the
event or of the map, and each metric knows how to read it.

Pure: parses the package (ELF and BTF) but never imports the libbpf binding.
Errors are ConfigErrors at the config line that is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..converters import for_option
from ..errors import EunomiaError
from ..format.btf import INT_BOOL, Btf, Kind
from ..format.escape import escape_text
from ..format.exports import BufferExport
from ..format.layout import Field, FieldKind, Layout, value_decoder
from ..format.objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF
from ..format.options import NOT_RESULTS, global_options
from ..format.package import Package
from ..source import builtin_packages, open_package
from .buckets import MAX_BUCKETS, bounds_problem, slot_bounds
from .config import MetricConfig, ProgramConfig
from .document import shown
from .labels import LabelPlan, plan_label

HASH_LIKE_MAPS = {1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash", 10: "lru_percpu_hash"}
PERCPU_MAPS = {5, 6, 10}
NUMERIC = (FieldKind.INT, FieldKind.FLOAT, FieldKind.BOOL)


@dataclass(frozen=True)
class MapSource:
    """How a map metric reads its map: key bytes to label values, one CPU's
    value bytes to a number (or a list of slot counts)."""

    map_name: str
    percpu: bool
    key_values: Callable[[bytes], tuple[Any, ...]]  # raw label values, in label order
    value: Callable[[bytes], Any]
    # a global variable (`global:`): `map_name` is its data section (.bss), whose one value
    # `entries` turns into (key, value) pairs: an array's elements by index, else one
    section_entries: Callable[[bytes], list[tuple[bytes, bytes]]] | None = None


@dataclass(frozen=True)
class MetricPlan:
    config: MetricConfig
    labels: tuple[LabelPlan, ...]
    value_field: Field | None  # events: the field with the value (None: count events)
    value_cell: str  # events: its compile_rows expression
    map: MapSource | None

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def name(self) -> str:
        return self.config.exposed_name


@dataclass(frozen=True)
class ProgramPlan:
    config: ProgramConfig
    package: Package
    values: dict[str, Any]  # the globals to set
    layout: Layout | None  # the event struct, when a metric reads events
    metrics: tuple[MetricPlan, ...]
    buffer: BufferExport | None = None  # the event buffer whose records the metrics read (its struct: layout)

    @property
    def name(self) -> str:
        return self.config.name


def plan_program(cfg: ProgramConfig) -> ProgramPlan:
    package = open_program_package(cfg)
    values = option_values(cfg, package)
    layout = None
    buffer = None
    if cfg.needs_events:
        first = next(m for m in cfg.metrics if m.map is None)
        has_buffer = any(m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY) for m in package.spec.maps)
        try:
            # the first buffer with a struct: a config names fields, not maps
            buffer = next((b for b in package.exports.buffers.values() if b.layout is not None), None) \
                if has_buffer else None
            layout = buffer.layout if buffer is not None else None
        except EunomiaError as e:
            raise first.at.error(f"cannot decode {cfg.name}'s events: {e}") from None
        if layout is None:
            raise first.at.error(f"{cfg.name} sends no events (no ring or perf buffer with an export type): "
                                 "read one of its maps with 'map:'")
    metrics = []
    for m in cfg.metrics:
        if m.map is None:
            assert layout is not None
            metrics.append(_event_metric(m, layout, cfg.name))
        else:
            metrics.append(_map_metric(m, package))
    return ProgramPlan(cfg, package, values, layout, tuple(metrics), buffer)


def open_program_package(cfg: ProgramConfig) -> Package:

    source: str | bytes
    if cfg.ebpf_data:
        where, source, origin = "ebpf_data", cfg.ebpf_data.encode(), "ebpf_data"
    elif cfg.compiled_ebpf_filename:
        where, origin = "compiled_ebpf_filename", cfg.compiled_ebpf_filename
        path = os.path.expanduser(origin)
        is_url = path.startswith(("http://", "https://"))
        source = path if is_url or os.path.isabs(path) else os.path.join(cfg.base_dir, path)
        if not is_url and not os.path.exists(source):
            raise cfg.at.error(f"no such package file {source}: check the path (relative paths start at the "
                               "config's directory)", where)
    else:
        builtin = builtin_packages()
        if cfg.name not in builtin:
            raise cfg.at.error(f"no built-in package named {shown(cfg.name)} (built-in: {', '.join(sorted(builtin))}): "
                               "set compiled_ebpf_filename or ebpf_data", "name")
        where, source, origin = "name", cfg.name, cfg.name
    try:
        return open_package(source)
    except EunomiaError as e:
        raise cfg.at.error(f"cannot open the package: {e}", where) from None


def option_values(cfg: ProgramConfig, package: Package) -> dict[str, Any]:
    """The globals the options set, checked and typed. An option may be named
    as the global, as its long flag, or without libbpf-tools' `targ_` prefix
    (`pid` for `targ_pid`). A program with only map metrics has its
    `emit_events` global (when it has one) turned off unless set."""

    options = global_options(package, for_option)  # a cgroup path, a signal name, ... as on ecli's command line
    by_name = {o.name: o for o in options}
    aliases = dict(by_name)
    for o in options:
        aliases.setdefault(o.long, o)
    for o in options:
        short = o.name.removeprefix("targ_")
        if short != o.name and short not in by_name:
            aliases.setdefault(short, o)
    values: dict[str, Any] = {}
    for key, (value, at) in cfg.options.items():
        opt = aliases.get(key)
        if opt is None:
            known = ", ".join(by_name) or "none"
            raise at.error(f"{cfg.name} has no global {shown(key)} (globals: {known})")
        if opt.name in values:
            raise at.error(f"{shown(key)} sets {opt.name}, which another option already set")
        try:
            values[opt.name] = opt.parse(value) if isinstance(value, str) and opt.kind != "str" else opt.check(value)
        except ValueError as e:
            raise at.error(f"{opt.name}: {e}") from None
    emit = by_name.get("emit_events")
    if emit is not None and emit.kind == "bool" and not cfg.needs_events and "emit_events" not in values:
        values["emit_events"] = False
    return values


def _event_metric(m: MetricConfig, layout: Layout, program: str) -> MetricPlan:
    index = {f.name: n for n, f in enumerate(layout.fields)}

    def field_of(name: str, key: str, at: Any) -> tuple[Field, int]:
        if name not in index:
            raise at.error(f"{program}'s events have no field {shown(name)} (fields: {', '.join(index)})", key)
        return layout.fields[index[name]], index[name]

    labels = []
    for label in m.labels:
        f, n = field_of(label.source, "from" if label.source != label.name else "name", label.at)
        labels.append(plan_label(label, f, n, "field", list(layout.fields)))
    value_field, value_cell = None, ""
    if m.value is not None:
        f, n = field_of(m.value, "value", m.at)
        if f.kind not in NUMERIC:
            raise m.at.error(f"field {shown(f.name)} is {f.type_name}: a metric's value must be a number", "value")
        value_field, value_cell = f, f"{{_{n}}}"
    return MetricPlan(m, tuple(labels), value_field, value_cell, None)


DATA_SECTIONS = (".data", ".bss")


def _global_metric(m: MetricConfig, package: Package) -> MetricPlan:
    """A metric read from a global variable of .data or .bss (libbpf-tools' runqlen keeps its
    histograms there): an array's elements are entries keyed by their index (label `key`), a
    struct or integer is one entry (key 0). Elements that are all zero (CPUs that never ran,
    say) are left out."""
    assert m.map is not None
    results = [g for g in package.spec.globals if g.section.startswith(DATA_SECTIONS) and g.name not in NOT_RESULTS]
    found = [g for g in results if g.name == m.map]
    if not found:
        names = ", ".join(g.name for g in results) or "none"
        raise m.at.error(f"{escape_text(package.name)} has no global {shown(m.map)} in .data or .bss "
                         f"(globals: {escape_text(names)})", "global")
    g = found[0]
    btf = package.spec.btf
    t = btf.resolve(g.type_id)
    if t.kind == Kind.ARRAY:
        count, elem_id = int(t.count), t.elem_id
    else:
        count, elem_id = 0, g.type_id
    size = btf.size_of(elem_id)
    for label in m.labels:
        if label.source != "key":
            raise label.at.error(f"a global's entries are keyed by their index: a label reads 'key', not "
                                 f"{shown(label.source)}", "from" if label.source != label.name else "name")
    key_field = Field("key", "unsigned int", FieldKind.INT, 0, 4, index=None, convert=_u32)
    labels = tuple(plan_label(label, key_field, 0, "key", [key_field]) for label in m.labels)
    start = g.offset

    def entries(section: bytes) -> list[tuple[bytes, bytes]]:
        if not count:
            return [(bytes(4), section[start:start + size])]
        out = []
        for i in range(count):
            value = section[start + i * size:start + (i + 1) * size]
            if value.count(0) != len(value):
                out.append((i.to_bytes(4, "little"), value))
        return out
    value, slots = _value_reader(m, btf, elem_id)
    if m.kind == "histogram":
        _check_slots(m, slots)
    source = MapSource(g.section, False, lambda raw: tuple(_u32(raw) for _ in labels), value, entries)
    return MetricPlan(m, labels, None, "", source)


def _u32(raw: bytes) -> int:
    return int.from_bytes(raw[:4], "little")


def _map_metric(m: MetricConfig, package: Package) -> MetricPlan:
    assert m.map is not None
    if m.from_global:
        return _global_metric(m, package)
    spec = package.spec.map(m.map)
    if spec is None:
        names = escape_text(", ".join(s.name for s in package.spec.maps if s.type in HASH_LIKE_MAPS)) or "none"
        raise m.at.error(f"{escape_text(package.name)} has no map {shown(m.map)} (hash and array maps: {names})", "map")
    if spec.type not in HASH_LIKE_MAPS:
        raise m.at.error(f"map {shown(m.map)} is a {spec.type_name} map: metrics read hash and array maps", "map")
    if not spec.key_type_id or not spec.value_type_id:
        raise m.at.error(f"map {shown(m.map)} has no BTF key and value types: declare it with __type(key, ...) and "
                         "__type(value, ...)", "map")
    btf = package.spec.btf
    key_fields, key_values = _key_reader(btf, spec.key_type_id, package.map_layout(m.map, "key"))
    by_name = {f.name: f for f in key_fields}
    labels = []
    for label in m.labels:
        f = by_name.get(label.source)
        if f is None:
            raise label.at.error(f"the key of map {shown(m.map)} has no member {shown(label.source)} (members: "
                                 f"{', '.join(by_name)})", "from" if label.source != label.name else "name")
        labels.append(plan_label(label, f, key_fields.index(f), "key member", key_fields))
    # each label's key member, and the members its decoder also reads (inet's family)
    picks = [(key_fields.index(by_name[label.source]), plan.siblings) for label, plan in zip(m.labels, labels,
                                                                                              strict=True)]

    def label_values(raw: bytes, read: Callable[[bytes], tuple[Any, ...]] = key_values) -> tuple[Any, ...]:
        every = read(raw)
        return tuple((every[p], *(every[s] for s in sibs)) if sibs else every[p] for p, sibs in picks)
    value, slots = _value_reader(m, btf, spec.value_type_id)
    if m.kind == "histogram":
        _check_slots(m, slots)
    source = MapSource(m.map, spec.type in PERCPU_MAPS, label_values, value)
    return MetricPlan(m, tuple(labels), None, "", source)


KeyValues = Callable[[bytes], tuple[Any, ...]]


def _key_reader(btf: Btf, type_id: int, layout: Layout | None) -> tuple[list[Field], KeyValues]:
    """The key's members as fields (a scalar key is one member named `key`),
    and a function giving their raw values from the key's bytes. `layout`:
    the package's layout of a struct key (Package.map_layout)."""
    t = btf.resolve(type_id)
    if layout is not None:
        unpack = layout.struct.unpack_from
        getters = [_member_getter(f) for f in layout.fields]

        def read(raw: bytes) -> tuple[Any, ...]:
            vals = unpack(raw)
            return tuple(g(raw, vals) for g in getters)
        return list(layout.fields), read
    kind = {Kind.INT: FieldKind.INT, Kind.ENUM: FieldKind.ENUM, Kind.ENUM64: FieldKind.ENUM}.get(t.kind)
    if kind is None:
        return [], lambda raw: ()
    if t.kind == Kind.INT and t.encoding & INT_BOOL:
        kind = FieldKind.BOOL
    decode = value_decoder(btf, type_id)
    f = Field("key", btf.c_name(type_id), kind, 0, btf.size_of(type_id), index=None, convert=decode)
    return [f], lambda raw: (decode(raw),)


def _member_getter(f: Field) -> Callable[[bytes, tuple[Any, ...]], Any]:
    """A key member's raw value from the key's bytes and their unpacked tuple."""
    index, convert = f.index, f.convert
    if index is not None:
        def unpacked(raw: bytes, vals: tuple[Any, ...]) -> Any:
            return vals[index]
        return unpacked

    def from_raw(raw: bytes, vals: tuple[Any, ...]) -> Any:
        return convert(raw) if convert else None
    return from_raw


def _check_slots(m: MetricConfig, slots: int) -> None:
    """A map histogram's bounds come from its slot count: each exported one
    (times the multiplier) must be a finite number above the one before."""
    if slots > MAX_BUCKETS:
        raise m.at.error(f"the histogram of map {shown(m.map)} has {slots} slots: at most {MAX_BUCKETS} can be "
                         "buckets", "map")
    multiplier = m.buckets.multiplier if m.buckets is not None else 1.0
    problem = bounds_problem(slot_bounds(slots, m.buckets), multiplier)
    if problem is not None and m.buckets is not None:
        text, too_large = problem
        raise m.buckets.at.error(f"{text} (map {shown(m.map)} has {slots} log2 slots): use a "
                                 f"{'smaller multiplier' if too_large else 'multiplier nearer 1'}", "multiplier")


def _value_reader(m: MetricConfig, btf: Btf, type_id: int) -> tuple[Callable[[bytes], Any], int]:
    """One CPU's value bytes to the number (or slot list) the metric reads,
    and for a histogram how many slots the list has."""
    t = btf.resolve(type_id)
    want_slots = m.kind == "histogram"
    decode = value_decoder(btf, type_id)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        members = {mem.name: mem.type_id for mem in t.members if mem.name}
        fits = [name for name, tid in members.items() if _fits(btf, tid, want_slots)]
        if m.value is not None:
            if m.value not in members:
                raise m.at.error(f"the value of map {shown(m.map)} has no member {shown(m.value)} (members: "
                                 f"{', '.join(members)})", "value")
            if m.value not in fits:
                raise m.at.error(f"member {shown(m.value)} is {btf.c_name(members[m.value])}: " + _wanted(want_slots),
                                 "value")
            member = m.value
        elif want_slots and "slots" in fits:
            member = "slots"
        elif len(fits) == 1:
            member = fits[0]
        else:
            raise m.at.error(f"the value of map {shown(m.map)} has {len(fits)} members that fit: name one with 'value'",
                             "map")
        return (lambda raw: decode(raw)[member]), _count(btf, members[member]) if want_slots else 0
    if m.value is not None:
        raise m.at.error(f"the value of map {shown(m.map)} is {btf.c_name(type_id)}, not a struct: leave out 'value'",
                         "value")
    if not _fits(btf, type_id, want_slots):
        raise m.at.error(f"the value of map {shown(m.map)} is {btf.c_name(type_id)}: " + _wanted(want_slots), "map")
    return decode, _count(btf, type_id) if want_slots else 0


def _count(btf: Btf, type_id: int) -> int:
    return int(btf.resolve(type_id).count)


def _wanted(slots: bool) -> str:
    return ("a histogram reads an array of integer slot counts (log2 buckets)" if slots
            else "a counter or gauge reads an integer")


def _fits(btf: Btf, type_id: int, slots: bool) -> bool:
    t = btf.resolve(type_id)
    if slots:
        return t.kind == Kind.ARRAY and t.count > 0 and _int_type(btf, t.elem_id)
    return _int_type(btf, type_id)


def _int_type(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    return t.kind == Kind.INT and not t.encoding & INT_BOOL and t.name != "char"


def plan_all(programs: tuple[ProgramConfig, ...]) -> list[ProgramPlan]:
    """Plans for every program; the first error stops."""
    return [plan_program(p) for p in programs]
