"""Maps and globals as results: how their decoded entries sort, add up across
CPUs and rank, and which of them are histograms. Pure.

Histograms are recognised as libbpf-tools writes them, from BTF and names
(nothing else in the object says how a tool's front-end prints an array):

    struct hist { __u32 slots[26]; char comm[16]; }   a member named `slots`
    __u32 hist[26];                                   an integer array named *hist* or *slots*
    struct hist hists[NR_SOFTIRQS];                   an array of the first: one per index

They are log2 (slot i counts [2^i, 2^(i+1))) unless a name involved (the
map's or global's, the struct's, the member's) says `linear` or `lhist`:
then slot i counts the value i (runqlen's queue lengths).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .btf import INT_BOOL, INT_SIGNED, Btf, Kind

if TYPE_CHECKING:
    from .mapmeta import MapView

SLOTS = "slots"
LINEAR_HINTS = ("linear", "lhist")
HIST_HINTS = ("hist", SLOTS)


class HistShape(NamedTuple):
    linear: bool
    member: str | None  # the slots member of a struct value; None: the value is the array
    indexed: bool = False  # an array of such structs, one histogram per index (softirqs' `hists[NR]`)


class MapDump(NamedTuple):
    """One map's (or global's) entries at one moment, decoded and sorted by key.

    `total` counts every entry the map held: more than len(entries) when the
    dump was bounded (the entries kept are then the largest by value).
    A global has one entry, keyed None."""

    name: str
    is_global: bool
    hist: HistShape | None
    entries: list[tuple[Any, Any]]
    total: int
    view: MapView | None = None  # the map's @histogram or @table (format/mapmeta.py)
    unit: str | None = None  # a histogram's unit this run (its unit_option applied)


class DumpWriter:
    """What receives the dumps of one round (at exit, or every -i seconds)."""

    def write_dumps(self, dumps: list[MapDump], stamp: str | None) -> None:
        """`stamp`: the time of a periodic round (HH:MM:SS), None at exit without -i."""
        raise NotImplementedError


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key that orders decoded values as people read them: numbers as
    numbers (1, 11, 15, 14157, not 1, 11, 14157, 15), before strings; dicts
    and lists member by member."""
    if isinstance(value, bool | int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, bytes):
        return (1, value.decode("latin-1"))
    if isinstance(value, dict):
        return (2, tuple(sort_key(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return (2, tuple(sort_key(v) for v in value))
    return (3, repr(value))


def sum_per_cpu(values: list[Any]) -> Any:
    """Per-CPU values added up: numbers, lists slot by slot, dicts member by
    member (a string member, such as a comm, is the first CPU's)."""
    first = values[0]
    if isinstance(first, bool) or not isinstance(first, int | float | list | dict):
        return values
    if isinstance(first, int | float):
        return sum(values)
    if isinstance(first, list):
        return [sum_per_cpu([v[i] for v in values]) for i in range(len(first))]
    return {k: (sum_per_cpu([v[k] for v in values]) if isinstance(first[k], int | float | list) else first[k])
            for k in first}


def weight(value: Any, hist: HistShape | None) -> float:
    """How large an entry is, for keeping the largest when a dump is bounded:
    the number, a histogram's count, a struct's first number."""
    if hist is not None:
        slots = value.get(hist.member) if hist.member and isinstance(value, dict) else value
        return float(sum(slots)) if isinstance(slots, list) and all(isinstance(n, int) for n in slots) else 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        for v in value.values():
            if isinstance(v, int | float) and not isinstance(v, bool):
                return float(v)
    return 0.0


def int_code(btf: Btf, type_id: int) -> str | None:
    """The struct-module format of a scalar integer type (with its byte
    order), for ranking a large map's values without decoding each one."""
    if not type_id:
        return None
    t = btf.resolve(type_id)
    if t.kind != Kind.INT or t.size not in (1, 2, 4, 8) or t.encoding & INT_BOOL:
        return None
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[t.size]
    return btf.endian + (code if t.encoding & INT_SIGNED else code.upper())


def hist_shape(btf: Btf, type_id: int, *names: str) -> HistShape | None:
    """The histogram a value of this BTF type holds, if it is one; `names`:
    the map's or global's name and any other name that hints (see the module doc)."""
    if not type_id:
        return None
    t = btf.resolve(type_id)
    hints = [n.lower() for n in names if n]
    if t.kind == Kind.STRUCT:
        for m in t.members:
            if m.name == SLOTS and _int_array(btf, m.type_id):
                return HistShape(_linear([*hints, t.name.lower(), m.name]), m.name)
        for m in t.members:
            if (m.name.lower().endswith(SLOTS) or any(h in m.name.lower() for h in LINEAR_HINTS)) \
                    and _int_array(btf, m.type_id):
                return HistShape(_linear([*hints, t.name.lower(), m.name.lower()]), m.name)
        return None
    if t.kind == Kind.ARRAY and btf.resolve(t.elem_id).kind == Kind.STRUCT:
        inner = hist_shape(btf, t.elem_id, *names)
        return inner._replace(indexed=True) if inner is not None and inner.member else None
    if _int_array(btf, type_id) and any(h in n for n in hints for h in (*HIST_HINTS, *LINEAR_HINTS)):
        return HistShape(_linear(hints), None)
    return None


def _linear(names: list[str]) -> bool:
    return any(h in n for n in names for h in LINEAR_HINTS)


def _int_array(btf: Btf, type_id: int) -> bool:
    t = btf.resolve(type_id)
    if t.kind != Kind.ARRAY or t.count < 2:
        return False
    elem = btf.resolve(t.elem_id)
    return elem.kind == Kind.INT and elem.size in (1, 2, 4, 8) and elem.name not in ("char", "signed char")
