"""Event columns: which members of an event struct the table shows, how
(header, width, alignment) and through which decoder (docs/writing-tools.md,
"Events: columns"). `ecc` writes a member's `/// @column {...}` comment into
the package as `export_types[].members[].column`; upstream's loader
(bpf-loader-rs) ignores the key. Kept here, next to the decoders it names:
ecc (compiler/meta.py: CompileError at the comment's line) and the writers
(output/colrows.py, output/writers.py: PackageError for a package written by
hand) both check columns with it. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..format.layout import Field, FieldKind, Layout
from ..format.mapmeta import is_set
from .container import FIELDS as CONTAINER_FIELDS
from .registry import DecoderType, Provisional, sibling_params


def _table() -> Mapping[str, DecoderType]:
    from . import DECODERS  # the package's table (its __init__ does not import this module)

    return DECODERS

KEYS: dict[str, type | tuple[type, ...]] = {"header": str, "width": int, "left": bool, "extended": bool,
                                            "decoder": (str, dict), "when": (str, list), "option": dict}
WHAT = {"header": "a string", "width": "a whole number", "left": "true or false", "extended": "true or false",
        "when": "a bool global's name or a list of them",
        "option": 'an object of bool globals ("!NAME": when not set) to {"header", "width", "decoder"}'}
OPTION_KEYS = ("header", "width", "decoder")
MAX_WIDTH = 256


class Column(NamedTuple):
    """One table column: the member at `position` of the layout."""

    member: str
    position: int
    header: str
    width: int
    left: bool
    extended: bool
    decoder: str | None
    params: Mapping[str, Any]
    siblings: tuple[int, ...]  # positions of the members the decoder also reads (inet's family)
    key: str = ""  # its JSON key; default NAME_text


def decoder_of(spec: Any) -> tuple[str, dict[str, Any]]:
    """(name, params) of a column's `decoder`: a name or {"name": ..., params}."""
    if isinstance(spec, str):
        return spec, {}
    params = dict(spec)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise ValueError('decoder: an object needs "name", e.g. {"name": "inet", "family": "af"}')
    return name, params


def check_column(value: Any, members: list[str], member: str, kinds: Mapping[str, str] | None = None
                 ) -> dict[str, Any]:
    """The column of `member` (one of `members`, the struct's member names) as
    written in the package; ValueError names the problem. A bare `@column`
    (true) is {}. `kinds`: member name -> value kind ("int", "str", "bytes"),
    when known, to refuse a decoder that cannot take the member's values."""
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise ValueError('@column needs a JSON object such as {"header": "PID", "width": 7}')
    for key, v in value.items():
        kind = KEYS.get(key)
        if kind is None:
            raise ValueError(f"@column has no key {key!r} (keys: {', '.join(KEYS)})")
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            what = WHAT.get(key, "a name or an object")
            raise ValueError(f"@column '{key}' must be {what}")
    when = value.get("when")
    if isinstance(when, list) and (not when or not all(isinstance(n, str) and n for n in when)):
        raise ValueError(f"@column 'when' must be {WHAT['when']}")
    width = value.get("width")
    if width is not None and not 0 < width <= MAX_WIDTH:
        raise ValueError(f"@column 'width' must be from 1 to {MAX_WIDTH}")
    for g, o in value.get("option", {}).items():  # the header, width, decoder a set (or unset: "!") global gives
        if not g.removeprefix("!") or not isinstance(o, dict) or not o or any(k not in OPTION_KEYS for k in o):
            raise ValueError(f"@column 'option' must be {WHAT['option']}")
        check_column({k: v for k, v in o.items() if v is not None}, members, member, kinds)
    if "decoder" in value:
        name, params = decoder_of(value["decoder"])
        dtype = _table().get(name)
        if dtype is None:
            raise ValueError(f"unknown decoder {name!r}: use one of {', '.join(sorted(_table()))}")
        for key in params:
            if key not in dtype.params:
                raise ValueError(f"decoder {name} has no parameter {key!r} (parameters: "
                                 f"{', '.join(dtype.params) or 'none'})")
        dtype.make(params)  # ValueError names a bad parameter
        for sibling in sibling_params(dtype, params):
            if sibling not in members or sibling == member:
                raise ValueError(f"decoder {name}: {sibling!r} is not another member of the struct "
                                 f"(members: {', '.join(members)})")
        held = (kinds or {}).get(member)
        if held is not None and held not in dtype.accepts:
            raise ValueError(f"decoder {name} takes {' or '.join(dtype.accepts)} values, and {member} holds "
                             f"{held} values")
    return value


def value_kind(f: Field) -> str | None:
    """What a member gives a decoder: "int", "str" (a char array, cut at its
    NUL), "bytes" (another array's raw bytes); None: nothing a decoder takes."""
    if f.kind in (FieldKind.INT, FieldKind.BOOL, FieldKind.ENUM) and f.size in (1, 2, 4, 8):
        return "int"
    if f.kind == FieldKind.CHARS:
        return "str"
    if f.kind == FieldKind.ARRAY and f.index is not None:
        return "bytes"
    return None


def natural_width(f: Field) -> int:
    if f.kind == FieldKind.INT:
        return {1: 3, 2: 5, 4: 6, 8: 10}.get(f.size, 10)
    if f.kind == FieldKind.CHARS:
        return min(f.size - 1, 16)
    return 0


def plan_columns(layout: Layout, specs: Mapping[str, Any], extended: bool = False,
                 options: Mapping[str, Any] | None = None, containers: bool = False) -> list[Column]:
    """The columns the table shows, in struct order: members with a column
    spec, extended ones only with `extended`, one with `when` only when
    `options` (the globals' values this run; None: every column, as -j)
    sets one of the bool globals it names, then with `containers` the
    container columns of the struct's cgroup id (container_columns).
    ValueError for a spec that does not fit the layout."""
    if containers:
        if not specs:  # a struct without @column: every member, then the containers'
            specs = {f.name: True for f in layout.fields if f.name}
        return _plan_columns(layout, specs, extended, options) + container_columns(layout, specs)
    return _plan_columns(layout, specs, extended, options)


# --containers: (header, JSON key, decoder, width) of the columns added after a tool's own
CONTAINER_COLUMNS = (("RUNTIME", "container_runtime", "container_runtime", 10),
                     ("CONTAINER", "container", "container", 16),
                     ("POD", "pod", "pod", 16),
                     ("NAMESPACE", "k8s_namespace", "k8s_namespace", 12))
CGROUP_MEMBERS = ("cgroup_id", "cgroup", "cgroupid", "cgid")
CGROUP_DECODERS = {"cgroup", *CONTAINER_FIELDS}  # the container decoders' own table: a new field needs no edit here


def cgroup_member(layout: Layout, specs: Mapping[str, Any]) -> int:
    """The position of the member holding the event's cgroup v2 id: the one
    whose @column has a cgroup or container decoder, else the integer member
    named cgroup_id (or cgroup, cgroupid, cgid). ValueError without one."""
    for n, f in enumerate(layout.fields):
        spec = specs.get(f.name) if f.name else None
        if isinstance(spec, dict) and "decoder" in spec and decoder_of(spec["decoder"])[0] in CGROUP_DECODERS:
            return n
    for name in CGROUP_MEMBERS:
        for n, f in enumerate(layout.fields):
            if f.name == name and value_kind(f) == "int" and f.size == 8:
                return n
    raise ValueError("--containers: no cgroup id member (a __u64 named cgroup_id, from "
                     "bpf_get_current_cgroup_id(), or a member whose @column has the cgroup decoder)")


def container_columns(layout: Layout, specs: Mapping[str, Any]) -> list[Column]:
    """The --containers columns: runtime, container name, pod and Kubernetes
    namespace of the event's cgroup id (decoders/container.py); '-' for the host."""
    n = cgroup_member(layout, specs)
    member = layout.fields[n].name
    names = {f.name for f in layout.fields}  # a member named `pod` keeps its key: ours becomes pod_text
    return [Column(member, n, header, width, True, False, decoder, {"host": "-"}, (),
                   key + "_text" if key in names else key)
            for header, key, decoder, width in CONTAINER_COLUMNS]


def _plan_columns(layout: Layout, specs: Mapping[str, Any], extended: bool,
                  options: Mapping[str, Any] | None) -> list[Column]:
    position = {f.name: n for n, f in enumerate(layout.fields) if f.name}
    kinds = {f.name: k for f in layout.fields if (k := value_kind(f)) is not None}
    out = []
    for name in specs:
        if name not in position:
            raise ValueError(f"a column names member {name!r}, which struct {layout.name} does not have")
    for n, f in enumerate(layout.fields):
        if f.name not in specs:
            continue
        spec = check_column(specs[f.name], list(position), f.name, kinds)
        if spec.get("extended") and not extended:
            continue
        when = spec.get("when")
        if when is not None and options is not None and \
                not any(is_set(g, options) for g in ([when] if isinstance(when, str) else when)):
            continue
        if options is not None:  # `option`: the first entry whose global is set (or "!": not set) this run
            chosen: dict[str, Any] = next((o for g, o in spec.get("option", {}).items() if is_set(g, options)), {})
            spec = {**spec, **chosen}
            if spec.get("decoder", "") is None:  # "decoder": null, the raw value
                del spec["decoder"]
        header = spec.get("header", f.name)
        decoder, params = decoder_of(spec["decoder"]) if "decoder" in spec else (None, {})
        siblings = tuple(position[s] for s in sibling_params(_table()[decoder], params)) if decoder else ()
        left = spec.get("left", f.kind == FieldKind.CHARS or (decoder is not None and value_kind(f) != "int"))
        width = spec.get("width", max(len(header), 0 if decoder else natural_width(f)))
        out.append(Column(f.name, n, header, width, left, bool(spec.get("extended")), decoder, params, siblings))
    return out


MEMO_LIMIT = 4096  # distinct values (or value tuples) remembered per column before the memo starts afresh


def memo_decoder(decode: Callable[[Any], Any], to_text: Callable[[Any], Any], memo: dict[Any, Any],
                 pre: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """The slow path of a decoded cell: the generated row code looks a value up
    in `memo` itself (one dict.get per cell) and calls this only for a value
    it has not seen; the text is stored, the memo emptied when it is full."""

    def miss(key: Any) -> Any:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        try:
            value = decode(pre(key) if pre is not None else key)
        except Exception:  # noqa: BLE001 - a decoder's failure shows the value, never stops the run
            value = key
        if isinstance(value, Provisional):  # asked again on the value's next event
            return to_text(str(value))
        text = memo[key] = to_text(value)
        return text
    return miss
