"""From a compiled object plus its doc comments to the package's meta object,
in upstream's field names and (sorted) key order."""

from __future__ import annotations

import json
from typing import Any, Literal

from ..decoders.columns import check_column, value_kind
from ..errors import CompileError
from ..format.btf import INT_BOOL, INT_SIGNED, Btf, BTFError, Kind
from ..format.layout import struct_layout
from ..format.mapmeta import bool_globals
from ..format.objspec import GlobalVar, ObjectSpec
from ..format.package import build_meta
from . import progdocs
from .docs import SourceDocs, check_cmdarg, check_program_doc

# The type names upstream's ecli turns a "value" (or a command-line string)
# into bytes for; any other name makes it refuse the package on every run.
UPSTREAM_VALUE_TYPES = {"bool", "pid_t", "int", "short", "long", "long long", "unsigned int", "unsigned short",
                        "unsigned long long"}


def initial_value(btf: Btf, g: GlobalVar, type_name: str) -> Any:
    """The variable's initial value as upstream's loader takes it ("value"),
    or None when it is zero or upstream could not use it.

    Upstream's ecli starts data sections from zeros, not from the object's
    bytes, so a non-zero initial value must be in the metadata to survive
    there. Our runner starts from the object's bytes and does not need it.
    Floats are left out on purpose: upstream writes them byte-swapped.
    """
    raw = g.initial
    if not any(raw):
        return None
    t = btf.resolve(g.type_id)
    order: Literal["little", "big"] = "little" if btf.endian == "<" else "big"
    if type_name in UPSTREAM_VALUE_TYPES and t.kind == Kind.INT and len(raw) in (1, 2, 4, 8):
        if t.encoding & INT_BOOL:
            return True  # non-zero, checked above
        return int.from_bytes(raw, order, signed=bool(t.encoding & INT_SIGNED))
    if type_name.startswith("char[") and t.kind == Kind.ARRAY:
        text, nul, rest = raw.partition(b"\0")
        if any(rest) or not nul:
            return None  # bytes after the string, or no terminator: not a C string
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def order_exports(btf: Btf, names: list[str]) -> list[str]:
    """Header structs in declaration order, except that a struct used inside
    another exported struct goes after it: the runner decodes events by the
    first export type, and an event struct contains its parts, not the reverse."""
    inside: set[str] = set()
    for name in names:
        t = btf.find(name, Kind.STRUCT)
        for m in t.members if t else []:
            r = btf.resolve(m.type_id)
            while r.kind == Kind.ARRAY:
                r = btf.resolve(r.elem_id)
            if r.kind == Kind.STRUCT and r.name in names and r.name != name:
                inside.add(r.name)
    return [n for n in names if n not in inside] + [n for n in names if n in inside]


def _integer(btf: Any, type_id: int) -> bool:
    t = btf.resolve(type_id)
    return (t.kind == Kind.INT and not t.encoding & INT_BOOL) or t.kind in (Kind.ENUM, Kind.ENUM64)


def _check_resize(value: Any, spec: ObjectSpec, integer: bool, where: str) -> None:
    """`@resize {"map": "stackmap"}` on an integer global: the map's
    max_entries is the global's value this run (0: as compiled);
    `"value_size": 8` makes it the map's value size instead, in units of 8
    bytes (offcputime's --perf-max-stack-depth: frames of a u64)."""
    if not isinstance(value, dict) or not isinstance(value.get("map"), str) or \
            any(k not in ("map", "value_size") for k in value):
        raise CompileError(f'{where}: @resize needs a JSON object such as {{"map": "stackmap"}} '
                           '(and "value_size": BYTES_PER_UNIT to size the values instead)')
    if spec.map(value["map"]) is None:
        raise CompileError(f"{where}: @resize names map {value['map']!r}, which the program does not have")
    unit = value.get("value_size")
    if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int) or unit <= 0):
        raise CompileError(f"{where}: @resize 'value_size' must be a positive number of bytes per unit")
    if not integer:
        raise CompileError(f"{where}: @resize needs an integer global")


def sorted_keys(value: Any) -> Any:
    """Dicts with their keys in sorted order, all the way down: upstream's
    files are written that way (serde_json's default map)."""
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(v) for v in value]
    return value


def package_meta(spec: ObjectSpec, obj_name: str, exports: list[str], docs: SourceDocs) -> dict[str, Any]:
    btf = spec.btf
    extra: dict[str, dict[str, Any]] = {}
    for g in spec.globals:
        keys: dict[str, Any] = {"type": btf.plain_c_name(g.type_id)}
        value = initial_value(btf, g, keys["type"])
        if value is not None:
            keys["value"] = value
        found = docs.variables.get(g.name)
        if found is not None:
            comment, line = found
            if "cmdarg" in comment:
                check_cmdarg(comment["cmdarg"], f"{docs.file}:{line}")
                if "convert" in comment["cmdarg"] and not _integer(btf, g.type_id):
                    raise CompileError(f"{docs.file}:{line}: @cmdarg convert gives a number, and '{g.name}' is "
                                       f"{keys['type']}: declare it as an integer (__u32, __u64, int, ...)")
            if "resize" in comment:
                _check_resize(comment["resize"], spec, _integer(btf, g.type_id), f"{docs.file}:{line}")
            keys.update(comment)
        extra[g.name] = keys
    if docs.program:
        program = check_program_doc(docs.program, f"{docs.file}:{docs.program_line}",
                                    {g.name for g in spec.globals})
        if program:
            extra[""] = program
    meta = build_meta(spec, obj_name, order_exports(btf, exports), extra)
    progdocs.apply(meta["bpf_skel"], spec, docs)  # programs' and maps' comments: tchook, sample, ...
    member_columns(meta, spec, docs)
    _in_section_order(spec, meta["bpf_skel"])
    for entry in meta["bpf_skel"]["maps"]:
        # Not an upstream key (its loader ignores unknown ones): the kind of
        # map, for readers of the package. Data sections become array maps.
        map_spec = spec.map(entry["name"])
        entry["type"] = map_spec.type_name if map_spec else "array"
    return dict(sorted_keys(meta))


def member_columns(meta: dict[str, Any], spec: ObjectSpec, docs: SourceDocs) -> None:
    """Each export type member's `/// @column {...}` as its "column" key
    (decoders/columns.py), checked here: an unknown decoder, a bad parameter or
    a sibling member the struct lacks is a CompileError naming the line."""
    for export in meta.get("export_types", []):
        found = docs.members.get(export["name"])
        if not found:
            continue
        names = [m["name"] for m in export["members"]]
        t = spec.btf.find(export["name"], Kind.STRUCT)
        kinds = {}
        if t is not None:
            try:
                kinds = {f.name: k for f in struct_layout(spec.btf, t.id).fields if (k := value_kind(f))}
            except BTFError:
                kinds = {}
        for member in export["members"]:
            keys, where = found.get(member["name"], ({}, ""))
            if "column" not in keys:
                continue
            try:
                member["column"] = check_column(keys["column"], names, member["name"], kinds)
                when = member["column"].get("when") if isinstance(member["column"], dict) else None
                for g in [when] if isinstance(when, str) else when or []:
                    if g.removeprefix("!") not in bool_globals(spec.btf, spec.globals):
                        raise ValueError(f"@column 'when' {g!r} is not a bool global of the program")
                option = member["column"].get("option", {}) if isinstance(member["column"], dict) else {}
                for g in option:
                    if g.removeprefix("!") not in bool_globals(spec.btf, spec.globals):
                        raise ValueError(f"@column 'option' {g!r} is not a bool global of the program")
            except ValueError as e:
                raise CompileError(f"{where}: member '{member['name']}': {e}") from None
        listed = set(names)
        for name, (keys, where) in found.items():
            if "column" in keys and name not in listed:
                raise CompileError(f"{where}: @column on '{name}', a member struct {export['name']} does not "
                                   "export (a member of a nested struct cannot be a column)")


def _in_section_order(spec: ObjectSpec, skel: dict[str, Any]) -> None:
    """Data sections (and their maps) in the object's section order, as
    upstream's skeleton lists them (.rodata before .data before .bss)."""
    index = {s.name: s.index for s in spec.elf.sections}
    skel["data_sections"].sort(key=lambda d: index.get(d["name"], 1 << 30))
    rank = {"." + d["name"].lstrip("."): i for i, d in enumerate(skel["data_sections"])}
    plain = [m for m in skel["maps"] if not m.get("mmaped")]
    mmaped = sorted((m for m in skel["maps"] if m.get("mmaped")), key=lambda m: rank.get("." + m["ident"], 1 << 30))
    skel["maps"] = plain + mmaped


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
