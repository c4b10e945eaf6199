"""Which struct each event buffer carries, and which record sizes fit it. Pure.

A package says it in one of two ways (upstream's bpf-loader-rs meta module):

- `"enable_multiple_export_types": true`: each map's own `"export_config"`,
  one of `"no_export"` (the default: the buffer is not read), `"default"`
  (sampled maps: the map's value type), `{"btf_type_id": N}` (a struct of
  the object's BTF), or `{"custom_members": [{"name", "offset",
  "btf_type_id"}]}` (a record described member by member). `export_types`
  is then ignored, as upstream does.
- otherwise `"export_types"`: upstream decodes every buffer with the first.
  Headers often declare a helper struct first (bcc's opensnoop, tcplife,
  mountsnoop), so here a buffer takes the export type whose size equals
  what the program writes into it (format/bufsizes.py), when exactly one
  does and the first does not; the choice is said in a note.

Every record is then checked against its struct by size (RecordCheck), once
per run of same-sized records.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import PackageError
from .btf import BTFError, Kind
from .escape import escape_text
from .layout import FieldKind, Layout, LayoutCache, members_layout, struct_layout
from .objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF

if TYPE_CHECKING:
    from .bufsizes import BufferWrites
    from .objspec import ObjectSpec
    from .package import Package

NO_EXPORT, DEFAULT = "no_export", "default"


def perf_raw_size(size: int) -> int:
    """The size a perf sample's raw data reports for a `size`-byte output: the
    kernel pads the u32 size and the data to a multiple of 8 bytes."""
    return (size + 4 + 7) // 8 * 8 - 4


class RecordCheck(NamedTuple):
    """The record lengths a buffer's struct accepts.

    `exact`: the length of a whole record (a perf sample's is padded, see
    perf_raw_size). A shorter one is accepted only down to `shortest`, and
    only if `variable()` says the program writes this map with a size that
    is not a constant: when the struct ends in an array, such programs send
    only the part they filled (libbpf-tools' execsnoop sends EVENT_SIZE(e)),
    which decodes zero-padded. `variable` reads the instructions
    (format/bufsizes.py) on the first short record only, never at start-up.
    `longer`: an upstream `custom_members` view reads a prefix of a larger
    record, so longer records fit it too."""

    map: str
    struct: str
    size: int
    exact: int
    shortest: int
    longer: bool = False
    variable: Callable[[], bool] = lambda: True

    def accepts(self, length: int) -> bool:
        if length == self.exact or (self.longer and length > self.size):
            return True
        return self.shortest <= length <= self.size and self.variable()

    def describe(self, length: int) -> str:
        """The one line said when a run of records does not fit."""
        what = f"{self.size} bytes" if self.exact == self.size else \
            f"{self.size} bytes, {self.exact} in a perf sample"
        return (f"map '{escape_text(self.map)}': a {length}-byte record is not struct "
                f"{escape_text(self.struct)} ({what}): printed in hex, never decoded as it; "
                "name the struct it carries with '/// @export STRUCT' above the map and rebuild")


def record_check(map_name: str, layout: Layout, perf: bool, longer: bool = False,
                 variable: Callable[[], bool] = lambda: True) -> RecordCheck:
    last = max(layout.fields, key=lambda f: (f.offset, f.size), default=None)
    shortest = last.offset if last is not None and last.kind in (FieldKind.CHARS, FieldKind.ARRAY) else layout.size
    exact = perf_raw_size(layout.size) if perf else layout.size
    return RecordCheck(map_name, layout.name, layout.size, exact, max(shortest, 1) if layout.size else 0, longer,
                       variable)


def _variable(writes: Callable[[], dict[str, BufferWrites]], name: str) -> bool:
    """Does a program write map `name` with a size that is not a constant?"""
    return name not in writes() or writes()[name].unknown > 0


class BufferExport(NamedTuple):
    """An event buffer the runner reads: its layout (None: records print in
    hex) and the sizes that layout accepts."""

    map: str
    layout: Layout | None
    check: RecordCheck | None
    columns: dict[str, Any] | None = None  # member -> @column spec (decoders/columns.py); None: every member shows


class ExportPlan(NamedTuple):
    buffers: dict[str, BufferExport]  # map name -> how to decode it; a buffer not here is not read
    notes: list[str]  # said once on stderr: choices the package did not spell out

    def layouts(self) -> set[str | None]:
        return {b.layout.name if b.layout else None for b in self.buffers.values()}


def is_multiple(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("enable_multiple_export_types") is True


def _map_entries(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    skel = raw.get("bpf_skel")
    maps = skel.get("maps") if isinstance(skel, dict) else None
    return {m["name"]: m for m in maps or [] if isinstance(m, dict) and isinstance(m.get("name"), str)}


def _config_layout(pkg: Package, name: str, config: Any, layouts: LayoutCache) -> tuple[Layout, bool]:
    """(layout, longer records fit) of one map's export_config."""
    where = f"{pkg.origin}: map '{escape_text(name)}': export_config"
    btf = pkg.spec.btf
    if isinstance(config, dict) and len(config) == 1 and "btf_type_id" in config:
        type_id = config["btf_type_id"]
        if not isinstance(type_id, int) or isinstance(type_id, bool) or not 0 < type_id < len(btf):
            raise PackageError(f"{where}: btf_type_id {type_id!r} is not a type of the object's BTF")
        if btf.resolve(type_id).kind not in (Kind.STRUCT, Kind.UNION):
            raise PackageError(f"{where}: btf_type_id {type_id} is not a struct: give the struct's id")
        try:
            return struct_layout(btf, type_id, layouts), False
        except BTFError as e:
            raise PackageError(f"{where}: {e}") from None
    if isinstance(config, dict) and len(config) == 1 and isinstance(config.get("custom_members"), list):
        members = []
        for i, m in enumerate(config["custom_members"]):
            ok = isinstance(m, dict) and isinstance(m.get("name"), str) and all(
                isinstance(m.get(k), int) and not isinstance(m.get(k), bool) and m[k] >= 0
                for k in ("offset", "btf_type_id"))
            if not ok:
                raise PackageError(f"{where}: custom_members[{i}] needs a name, an offset and a btf_type_id")
            members.append((m["name"], m["offset"], m["btf_type_id"]))
        try:
            return members_layout(btf, f"{name} (custom members)", members), True
        except BTFError as e:
            raise PackageError(f"{where}: {e}") from None
    raise PackageError(f"{where}: expected \"no_export\", \"default\", {{\"btf_type_id\": N}} or "
                       f"{{\"custom_members\": [...]}}, not {escape_text(str(config))[:80]}")


def export_plan(pkg: Package, layout_cache: LayoutCache | None = None) -> ExportPlan:
    """How each ring buffer and perf event array of `pkg` is decoded.
    Raises PackageError for an export config that cannot be used."""
    layout_cache = layout_cache if layout_cache is not None else LayoutCache()
    spec = pkg.spec
    buffers = [m for m in spec.maps if m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY)]
    writes = cache(lambda: _buffer_writes(spec))  # read when first needed: 4 ms for opensnoop's object
    out: dict[str, BufferExport] = {}
    notes: list[str] = []
    if is_multiple(pkg.meta.raw):
        entries = _map_entries(pkg.meta.raw)
        for m in buffers:
            config = entries.get(m.name, {}).get("export_config", NO_EXPORT)
            if config == NO_EXPORT:
                continue  # upstream reads only the buffers the package exports
            if config == DEFAULT:
                raise PackageError(f"{pkg.origin}: map '{escape_text(m.name)}': export_config \"default\" is for "
                                   "sampled maps: give the buffer's struct as {\"btf_type_id\": N}")
            layout, longer = _config_layout(pkg, m.name, config, layout_cache)
            check = record_check(m.name, layout, m.type != MAP_RINGBUF, longer, partial(_variable, writes, m.name))
            out[m.name] = BufferExport(m.name, layout, check, _columns(pkg, layout))
        return ExportPlan(out, notes)
    exports = pkg.meta.export_types
    if not exports:
        return ExportPlan({m.name: BufferExport(m.name, None, None) for m in buffers}, notes)
    layouts = [pkg.export_layout(t, layout_cache) for t in exports]
    sizes = {lay.size for lay in layouts if lay is not None}
    for m in buffers:
        perf = m.type != MAP_RINGBUF
        chosen = layouts[0]
        # only where the export types differ in size can the instructions tell them apart
        size = writes()[m.name].size if len(sizes) > 1 and m.name in writes() else None
        if size is not None and chosen is not None and chosen.size != size:
            fits = [lay for lay in layouts if lay is not None and lay.size == size]
            if len(fits) == 1:
                chosen = fits[0]
                notes.append(f"map '{m.name}' is decoded as struct {chosen.name}: the program writes {size}-byte "
                             f"records into it, the size of that struct (the package lists struct "
                             f"{layouts[0].name if layouts[0] else '?'} first)")
        out[m.name] = BufferExport(m.name, chosen, record_check(m.name, chosen, perf, False, partial(
            _variable, writes, m.name)) if chosen else None, _columns(pkg, chosen))
    return ExportPlan(out, notes)


def _columns(pkg: Package, layout: Layout | None) -> dict[str, Any] | None:
    """The @column specs of the export type naming `layout`'s struct
    (decoders/columns.py checks them against it when a writer is made)."""
    if layout is None:
        return None
    return next((dict(t.columns) for t in pkg.meta.export_types if t.name == layout.name and t.columns), None)


def _buffer_writes(spec: ObjectSpec) -> dict[str, BufferWrites]:
    """The sizes the program writes per buffer: imported here, as most runs
    never need it (records fit their struct)."""
    from .bufsizes import buffer_writes

    return buffer_writes(spec.elf)
