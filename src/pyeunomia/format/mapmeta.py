"""`@histogram` and `@table`: how a map's doc comment asks its results to be
printed (docs/writing-tools.md, "Maps: histograms and tables"). Pure: checked
against the object's BTF by ecc (naming the comment's line) and again by the
runner for a package built elsewhere.

    /// @histogram {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, "linear": false,
    ///             "key": {"header": "disk", "decoder": "dev"}, "clear": true}
    /// @table {"key": {"header": "SYSCALL", "decoder": "syscall"}, "sort": "count", "top": 10,
    ///         "columns": {"count": {"header": "COUNT"}}, "clear": true}

A struct key names the members it shows: `"key": {"members": {"comm": {},
"pid": {"header": "PID", "decoder": ...}}}`. Decoders are named from
pyeunomia.decoders.DECODERS (by name only: whichever exist); the caller
passes the registry's names and parameters to check them against (ecc does;
the runner shows a value whose decoder it lacks as it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .btf import INT_BOOL, Btf, Kind
from .mapshape import HistShape, hist_shape

HISTOGRAM, TABLE = "histogram", "table"
HISTOGRAM_KEYS = ("unit", "unit_option", "linear", "key", "clear")
TABLE_KEYS = ("key", "sort", "top", "clear", "columns")
SCALAR = "value"  # `"sort": "value"`: a table whose value is a plain number
KnownDecoders = Mapping[str, tuple[str, ...]]  # decoder name -> the parameters it takes


class Column(NamedTuple):
    member: str | None  # None: the whole key (or value) when it is not a struct
    header: str
    decoder: Any = None  # a decoder name or {"name": ..., params}
    when: tuple[str, ...] = ()  # bool globals: shown only when one of them is set; () : always
    option: tuple[tuple[str, str | None, Any], ...] = ()  # (bool global, header, decoder) used when it is set


class MapView(NamedTuple):
    """A map's @histogram or @table, checked."""

    kind: str  # HISTOGRAM or TABLE
    key: tuple[Column, ...] = ()  # the key's label parts (histogram) or columns (table); () : the raw key
    unit: str | None = None
    unit_option: tuple[tuple[str, str], ...] = ()  # (bool global, unit when it is set)
    shape: HistShape | None = None
    sort: str | None = None
    top: int | None = None
    top_option: str | None = None  # an integer global: when above 0 this run, the rows shown (syscount -T)
    clear: bool = False
    columns: tuple[Column, ...] = ()  # a table's value columns; () : every member, as named
    key_hidden: bool = False  # every key column's `when` is unset this run: no key label or column at all


def map_view(name: str, entry: dict[str, Any], btf: Btf, key_id: int, value_id: int,
             bool_globals: set[str], decoders: KnownDecoders | None = None,
             int_globals: set[str] | None = None,
             siblings: Mapping[str, tuple[str, ...]] | None = None) -> MapView | None:
    """The view a map entry of meta.bpf_skel asks for; ValueError says what is
    wrong. `decoders`: the names and parameters to check decoders against;
    `int_globals`: the integer globals a table's "top" may name; `siblings`:
    each decoder's parameters naming sibling members (percent's "of")."""
    has_hist, has_table = HISTOGRAM in entry, TABLE in entry
    if not (has_hist or has_table):
        return None
    if has_hist and has_table:
        raise ValueError(f"map '{name}' has both @histogram and @table: keep one")
    kind = HISTOGRAM if has_hist else TABLE
    spec = entry[kind]
    if spec is True:  # a bare `@histogram`
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f"@{kind} of map '{name}' must be a JSON object")
    allowed = HISTOGRAM_KEYS if has_hist else TABLE_KEYS
    for k in spec:
        if k not in allowed:
            raise ValueError(f"@{kind} of map '{name}': unknown key {k!r} (known: {', '.join(allowed)})")
    where = f"@{kind} of map '{name}'"
    clear = spec.get("clear", False)
    if not isinstance(clear, bool):
        raise ValueError(f"{where}: 'clear' must be true or false")
    key = _key_columns(spec.get("key"), btf, key_id, f"{where}: key", decoders)
    view = _histogram(spec, where, btf, value_id, name, bool_globals) if has_hist else \
        _table(spec, where, btf, value_id, decoders, siblings or {})
    view = view._replace(key=key, clear=clear)
    for c in (*view.key, *view.columns):
        for g in c.when:
            if g.removeprefix("!") not in bool_globals:
                raise ValueError(f"{where}: 'when' {g!r} of {c.header!r} is not a bool global of the program")
        for g, _, _ in c.option:
            if g not in bool_globals:
                raise ValueError(f"{where}: option {g!r} of {c.header!r} is not a bool global of the program")
    if view.top_option is not None and int_globals is not None and view.top_option not in int_globals:
        raise ValueError(f"{where}: top {view.top_option!r} is not an integer global of the program")
    return view


def shown(view: MapView, values: Mapping[str, Any]) -> MapView:
    """The view as this run shows it: key parts and columns whose `when`
    names no set global left out (runqlat's `pid = ...` label without -P);
    when that leaves no key part, `key_hidden`."""
    def on(c: Column) -> bool:
        return not c.when or any(is_set(g, values) for g in c.when)

    def chosen(c: Column) -> Column:  # "option": the first set global's header and decoder (syscount -m)
        for g, header, decoder in c.option:
            if values.get(g):
                return c._replace(header=header or c.header, decoder=decoder or c.decoder)
        return c
    key = tuple(chosen(c) for c in view.key if on(c))
    top = values.get(view.top_option) if view.top_option else None
    return view._replace(key=key, columns=tuple(chosen(c) for c in view.columns if on(c)),
                         key_hidden=bool(view.key) and not key,
                         top=top if isinstance(top, int) and not isinstance(top, bool) and top > 0 else view.top)


def _histogram(spec: dict[str, Any], where: str, btf: Btf, value_id: int, name: str,
               bool_globals: set[str]) -> MapView:
    unit = spec.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise ValueError(f"{where}: 'unit' must be a string such as \"usecs\"")
    options = spec.get("unit_option", {})
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise ValueError(f'{where}: \'unit_option\' must map a bool global to a unit, such as {{"targ_ms": "msecs"}}')
    for g in options:
        if g not in bool_globals:
            raise ValueError(f"{where}: unit_option {g!r} is not a bool global of the program")
    linear = spec.get("linear")
    if linear is not None and not isinstance(linear, bool):
        raise ValueError(f"{where}: 'linear' must be true or false")
    shape = hist_shape(btf, value_id, name, btf.resolve(value_id).name if value_id else "") or \
        _any_counts(btf, value_id)
    if shape is None:
        raise ValueError(f"{where}: its value is neither an array of counts nor a struct holding one")
    if linear is not None:
        shape = shape._replace(linear=linear)
    return MapView(HISTOGRAM, unit=unit, unit_option=tuple(options.items()), shape=shape)


def _any_counts(btf: Btf, value_id: int) -> HistShape | None:
    """A value @histogram calls one though its names do not say so: an integer
    array, or a struct with exactly one integer array member."""
    if not value_id:
        return None
    t = btf.resolve(value_id)
    if _int_array(btf, value_id):
        return HistShape(False, None)
    if t.kind == Kind.STRUCT:
        arrays = [m.name for m in t.members if _int_array(btf, m.type_id)]
        if len(arrays) == 1:
            return HistShape(False, arrays[0])
    return None


def _int_array(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    if t.kind != Kind.ARRAY or t.count < 1:
        return False
    elem = btf.resolve(t.elem_id)
    return elem.kind == Kind.INT and elem.name not in ("char", "signed char") and not elem.encoding & INT_BOOL


def _table(spec: dict[str, Any], where: str, btf: Btf, value_id: int, decoders: KnownDecoders | None,
           siblings: Mapping[str, tuple[str, ...]]) -> MapView:
    members = _members(btf, value_id)
    sort = spec.get("sort")
    if sort is not None:
        if not isinstance(sort, str):
            raise ValueError(f"{where}: 'sort' must be a member name of the value")
        if (members is None and sort != SCALAR) or (members is not None and sort not in members):
            known = ", ".join(members) if members is not None else SCALAR
            raise ValueError(f"{where}: sort {sort!r} is not a member of the value (known: {known})")
    top = spec.get("top")
    top_option = top if isinstance(top, str) else None  # an integer global's name: its value this run
    if top_option is not None:
        top = None
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top <= 0):
        raise ValueError(f"{where}: 'top' must be a positive whole number of rows, or an integer global's name")
    columns_spec = spec.get("columns", {})
    if not isinstance(columns_spec, dict):
        raise ValueError(f"{where}: 'columns' must map value members to {{\"header\": ..., \"decoder\": ...}}")
    columns = []
    for member, col in columns_spec.items():
        if (members is None and member != SCALAR) or (members is not None and member not in members):
            raise ValueError(f"{where}: column {member!r} is not a member of the value")
        columns.append(_column(None if members is None else member, col, f"{where}: column {member!r}", decoders))
    for c in columns:  # a decoder reading sibling members (percent's "of") names members of the value
        for g in _sibling_names(c.decoder, siblings) + [n for o in c.option for n in _sibling_names(o[2], siblings)]:
            if members is None or g not in members or g == c.member:
                raise ValueError(f"{where}: column {c.member!r}: {g!r} is not another member of the value")
    if members is not None:  # in struct order, as the key's members
        columns.sort(key=lambda c: members.index(c.member or ""))
    return MapView(TABLE, sort=sort, top=top, top_option=top_option, columns=tuple(columns))


def _members(btf: Btf, type_id: int) -> list[str] | None:
    """A struct's member names; None for anything else."""
    if not type_id:
        return None
    t = btf.resolve(type_id)
    return [m.name for m in t.members] if t.kind == Kind.STRUCT else None


def _key_columns(spec: Any, btf: Btf, key_id: int, where: str, decoders: KnownDecoders | None) -> tuple[Column, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, dict):
        raise ValueError(f'{where} must be an object such as {{"header": "disk", "decoder": "dev"}}')
    members = _members(btf, key_id)
    if "members" in spec:
        chosen = spec["members"]
        if members is None:
            raise ValueError(f"{where}: 'members' needs a struct key")
        if not isinstance(chosen, dict) or not chosen:
            raise ValueError(f'{where}: \'members\' must be an object such as {{"pid": {{"header": "PID"}}}}')
        extra = [k for k in spec if k != "members"]
        if extra:
            raise ValueError(f"{where}: {extra[0]!r} goes inside each member when 'members' is given")
        for m in chosen:
            if m not in members:
                raise ValueError(f"{where}: {m!r} is not a member of the key (known: {', '.join(members)})")
        # in struct order: a package's JSON keeps no order of its own (ecc writes keys sorted)
        return tuple(_column(m, chosen[m], f"{where} member {m!r}", decoders) for m in members if m in chosen)
    return (_column(None, spec, where, decoders),)


def _column(member: str | None, spec: Any, where: str, decoders: KnownDecoders | None) -> Column:
    if not isinstance(spec, dict):
        raise ValueError(f'{where} must be an object such as {{"header": "PID", "decoder": "errno"}}')
    for k in spec:
        if k not in ("header", "decoder", "when", "option"):
            raise ValueError(f"{where}: unknown key {k!r} (known: header, decoder, when, option)")
    header = spec.get("header", member or "key")
    if not isinstance(header, str):
        raise ValueError(f"{where}: 'header' must be a string")
    decoder = spec.get("decoder")
    if decoder is not None:
        check_decoder(decoder, where, decoders)
    return Column(member, header, decoder, when_names(spec.get("when"), where),
                  _column_options(spec.get("option", {}), where, decoders))


def _column_options(spec: Any, where: str, decoders: KnownDecoders | None) -> tuple[tuple[str, str | None, Any], ...]:
    """`"option": {"targ_ms": {"header": "TIME (ms)", "decoder": {...}}}`: the
    header and decoder a column takes when that bool global is set."""
    if not isinstance(spec, dict):
        raise ValueError(f'{where}: \'option\' must map a bool global to {{"header": ..., "decoder": ...}}')
    out = []
    for g, o in spec.items():
        if not isinstance(o, dict) or not o or any(k not in ("header", "decoder") for k in o) \
                or not isinstance(o.get("header", ""), str):
            raise ValueError(f"{where}: option {g!r} must be an object of a 'header' string and/or a 'decoder'")
        if o.get("decoder") is not None:
            check_decoder(o["decoder"], f"{where}: option {g!r}", decoders)
        out.append((g, o.get("header"), o.get("decoder")))
    return tuple(out)


def is_set(name: str, values: Mapping[str, Any]) -> bool:
    """A `when` name this run: "g" is set when global g is, "!g" when g is not."""
    return not values.get(name[1:]) if name.startswith("!") else bool(values.get(name))


def when_names(spec: Any, where: str) -> tuple[str, ...]:
    """`"when": "targ_per_disk"` or a list of such names (any of them set shows
    it); "!targ_count": shown when targ_count is not set."""
    if spec is None:
        return ()
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where}: 'when' must name a bool global, or be a list of them")
    return tuple(names)


def decoder_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """A decoder given as a name or {"name": ..., params}: (name, params); ValueError if neither."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    raise ValueError('a decoder is a name or {"name": ..., params}')


def check_decoder(spec: Any, where: str, decoders: KnownDecoders | None) -> None:
    """A decoder of the right form; named in `decoders`, with only the parameters it knows."""
    try:
        name, params = decoder_spec(spec)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if decoders is None:
        return
    if name not in decoders:
        raise ValueError(f"{where}: unknown decoder {name!r} (known: {', '.join(sorted(decoders))})")
    for p in params:
        if p not in decoders[name]:
            raise ValueError(f"{where}: decoder {name!r} takes no parameter {p!r}")


def map_views(package: Any) -> dict[str, MapView]:
    """Every map of a package with a @histogram or @table, by name;
    PackageError naming the map when one is wrong."""
    from ..errors import PackageError

    spec = package.spec
    btf = spec.btf
    entries = package.meta.raw.get("bpf_skel", {}).get("maps", [])
    if not any(isinstance(e, dict) and (HISTOGRAM in e or TABLE in e) for e in entries):
        return {}
    bools = bool_globals(btf, spec.globals)
    numbers = int_globals(btf, spec.globals)
    out = {}
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        m = spec.map(e["name"])
        try:
            view = map_view(e["name"], e, btf, m.key_type_id if m else 0, m.value_type_id if m else 0, bools,
                            int_globals=numbers)
        except ValueError as err:
            raise PackageError(f"{package.origin}: {err}") from None
        if view is not None:
            out[e["name"]] = view
    return out


def bool_globals(btf: Btf, globals_: Any) -> set[str]:
    out = set()
    for g in globals_:
        t = btf.resolve(g.type_id)
        if t.kind == Kind.INT and t.encoding & INT_BOOL:
            out.add(g.name)
    return out


def int_globals(btf: Btf, globals_: Any) -> set[str]:
    """The integer (not bool) globals: what a table's "top" may name."""
    out = set()
    for g in globals_:
        t = btf.resolve(g.type_id)
        if t.kind == Kind.INT and not t.encoding & INT_BOOL:
            out.add(g.name)
    return out


def _sibling_names(spec: Any, siblings: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The sibling members a decoder spec names (percent's "of")."""
    if spec is None:
        return []
    name, params = decoder_spec(spec)
    return [params[p] for p in siblings.get(name, ()) if isinstance(params.get(p), str)]
