"""Maps and globals printed as bpftrace prints its maps at exit:

    @sizes[1]: 2
    @sizes[11]: 3
    @data[4242]: count=5, bytes=120, comm=python3
    @fd_writes[5]: 4
    @hists[pid=4242, comm=python3]:
         (unit)              : count    distribution
             0 -> 1          : 2        |********************                    |

one line per entry (key fields, then value fields), histograms drawn, an
empty line after each map; or, with -j, one JSON object per entry:
{"map": "sizes", "key": 1, "value": 2} ({"global": NAME, "value": ...} for a
global, with "time" in periodic rounds, {"map": NAME, "omitted": N} when a
bounded map left entries out).

A map with `@histogram` or `@table` (format/mapmeta.py) prints as libbpf-tools
print theirs: a histogram per key headed `disk = sda` with its unit; a table
of key and value columns, largest first, and, cut at `top`, how many rows
there were. In JSON each entry gains "key_text" (the decoded key) and a
table's decoded value members `NAME_text`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from ..decoders import DECODERS
from ..decoders.registry import sibling_params
from ..format.escape import escape_bytes
from ..format.mapmeta import TABLE, Column, MapView, decoder_spec
from ..format.mapshape import DumpWriter, HistShape, MapDump
from ..format.rows import json_text
from .histogram import linear_histogram, log2_histogram
from .streams import write_all

UNIT = "(unit)"


class MapPrinter(DumpWriter):
    def __init__(self, stream: IO[bytes], as_json: bool):
        self.stream = stream
        self.as_json = as_json
        self._decoders: dict[int, _Labels] = {}  # per view, made once (decoders cache per value)

    def _labels(self, view: MapView) -> _Labels:
        found = self._decoders.get(id(view))
        if found is None:
            found = self._decoders[id(view)] = _Labels(view)
        return found

    def write_dumps(self, dumps: list[MapDump], stamp: str | None) -> None:
        if not dumps:
            return  # an empty round prints nothing, not a bare time stamp
        text = "".join(self._one(d, stamp) for d in dumps)
        if stamp is not None and not self.as_json:
            text = f"{stamp}\n" + text
        write_all(self.stream, text.encode("utf-8"))
        self.stream.flush()


    def _one(self, dump: MapDump, stamp: str | None) -> str:
        if dump.view is None:
            return _json_lines(dump, stamp) if self.as_json else _text_block(dump, stamp)
        labels = self._labels(dump.view)
        if self.as_json:
            return _json_lines(dump, stamp, labels)
        return _table_text(dump, labels) if dump.view.kind == TABLE else _hist_block(dump, labels)


class _Labels:
    """A view's decoders, ready: key columns and a table's value columns."""

    def __init__(self, view: MapView):
        self.view = view
        self.key = [(c, make_decoder(c.decoder) if c.decoder else None) for c in view.key]
        self.columns = [(c, make_decoder(c.decoder) if c.decoder else None) for c in view.columns]
        # a value column's decoder reading sibling members too (percent's "of"): member -> their names
        self.siblings = {c.member: _siblings(c.decoder) for c in view.columns if c.decoder and c.member}

    def key_cells(self, key: Any) -> list[tuple[str, str]]:
        """(header, text) of each key column."""
        out = []
        for c, decode in self.key:
            raw = key.get(c.member) if c.member is not None and isinstance(key, dict) else key
            out.append((c.header, _cell(decode(raw) if decode else raw)))
        return out

    def key_text(self, key: Any) -> str:
        """`sda` for a plain key, `pid = 12, comm = bash` for a struct's members."""
        cells = self.key_cells(key)
        if len(self.key) == 1 and self.key[0][0].member is None:
            return cells[0][1]
        return ", ".join(f"{h} = {t}" for h, t in cells)

    def value_cells(self, value: Any) -> list[tuple[str, str, bool]]:
        """(header, text, is a number) of each value column: the view's, else every member."""
        chosen: list[tuple[Column, Any]] = self.columns or (
            [(Column(k, k.upper()), None) for k in value] if isinstance(value, dict) else
            [(Column(None, "VALUE"), None)])
        out = []
        for c, decode in chosen:
            raw = self._raw(c, value)
            shown = decode(raw) if decode else raw
            out.append((c.header, _cell(shown), isinstance(shown, int | float) and not isinstance(shown, bool)))
        return out

    def decoded_values(self, value: Any) -> dict[str, Any]:
        """A table's decoded value members, for JSON: {NAME_text: text}."""
        out = {}
        for c, decode in self.columns:
            if decode is not None:
                out[f"{c.member or 'value'}_text"] = decode(self._raw(c, value))
        return out

    def _raw(self, c: Column, value: Any) -> Any:
        """A value column's member, or with its decoder's siblings the tuple (member, siblings...)."""
        if c.member is None or not isinstance(value, dict):
            return value
        siblings = self.siblings.get(c.member)
        return (value.get(c.member), *(value.get(s) for s in siblings)) if siblings else value.get(c.member)


def _siblings(spec: Any) -> list[str]:
    name, params = decoder_spec(spec)
    found = DECODERS.get(name)
    return sibling_params(found, params) if found is not None else []


def make_decoder(spec: Any) -> Callable[[Any], Any]:
    """A view's decoder as a function value -> text, cached per value. One
    this pyeunomia lacks (a package built with a newer one) shows the value
    as it is."""
    name, params = decoder_spec(spec)
    found = DECODERS.get(name)
    if found is None:
        return lambda value: value
    decode = found.make(params)
    cache: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list)
            return decode(value)
        text = cache[value] = decode(value)
        return text
    return cached


def _cell(value: Any) -> str:
    return _fields(value)


def _hist_block(dump: MapDump, labels: _Labels) -> str:
    assert dump.hist is not None
    out = []
    name = "@" + _safe(dump.name)
    for key, value in dump.entries:
        if labels.view.key_hidden:  # one histogram, no label (runqlat without -P)
            label = ""
        elif labels.key:
            label = ", ".join(f"{h} = {t}" for h, t in labels.key_cells(key))
        else:
            label = f"{name}[{_fields(key)}]" if key is not None else name
        out.append("\n" + _hist_text(label, value, dump.hist, dump.unit or UNIT))
    return "".join(out) + "\n"


def _table_text(dump: MapDump, labels: _Labels) -> str:
    rows = []
    for key, value in dump.entries:
        keys = labels.key_cells(key) if labels.key or labels.view.key_hidden else [("KEY", _fields(key))]
        rows.append([(h, t, False) for h, t in keys] + labels.value_cells(value))
    if not rows:
        return ""
    headers = [h for h, _, _ in rows[0]]
    widths = [max(len(h), *(len(r[i][1]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [all(r[i][2] for r in rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = zip(cells, widths, numeric, strict=True)
        return " ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in parts).rstrip()
    out = [line(headers)] + [line([t for _, t, _ in r]) for r in rows]
    if dump.total > len(dump.entries):
        out.append(f"(the top {len(dump.entries)} of {dump.total} rows)")
    return "\n".join(out) + "\n\n"


def _json_lines(dump: MapDump, stamp: str | None, labels: _Labels | None = None) -> str:
    head: dict[str, Any] = {"time": stamp} if stamp is not None else {}
    kind = "global" if dump.is_global else "map"
    lines = []
    for key, value in dump.entries:
        entry = {**head, kind: dump.name, "value": value} if dump.is_global and key is None else \
            {**head, kind: dump.name, "key": key, "value": value}
        if labels is not None:
            if labels.key:
                entry["key_text"] = labels.key_text(key)
            if dump.unit:
                entry["unit"] = dump.unit
            entry.update(labels.decoded_values(value))
        lines.append(json_text(entry) + "\n")
    if dump.total > len(dump.entries):
        lines.append(json_text({**head, kind: dump.name, "omitted": dump.total - len(dump.entries)}) + "\n")
    return "".join(lines)


def _text_block(dump: MapDump, _stamp: str | None) -> str:
    out = []
    name = "@" + _safe(dump.name)
    for key, value in dump.entries:
        label = name if dump.is_global and key is None else f"{name}[{_fields(key)}]"
        if dump.hist is not None:
            out.append(_hist_text(label, value, dump.hist))
        elif dump.is_global and isinstance(value, list) and all(isinstance(v, int | float) for v in value):
            # a global array of counters: its filled elements, by index
            out += [f"{name}[{i}]: {_text(v)}\n" for i, v in enumerate(value) if v]
        else:
            out.append(f"{label}: {_fields(value)}\n")
    if dump.total > len(dump.entries):
        out.append(f"{name}: {dump.total - len(dump.entries)} more entries not shown "
                   f"({dump.total} in all, the {len(dump.entries)} largest shown)\n")
    return "".join(out) + "\n"


def _hist_text(label: str, value: Any, hist: HistShape, unit: str = UNIT) -> str:
    if hist.member is not None and isinstance(value, dict):
        slots = value.get(hist.member)
        rest = {k: v for k, v in value.items() if k != hist.member}
    else:
        slots, rest = value, {}
    if not isinstance(slots, list):
        return f"{label}: {_fields(value)}\n"
    draw = linear_histogram(slots, unit=unit) if hist.linear else log2_histogram(slots, unit=unit)
    if not draw:  # no samples (hardirqs' slots stay empty unless asked for): the other members alone
        return f"{label}: {_fields(rest) if rest else '(no samples)'}\n"
    shown = {k: v for k, v in rest.items() if v not in (0, "", None, [])}
    if not label:
        return (f"{_fields(shown)}\n" if shown else "") + draw
    return (f"{label}: {_fields(shown)}\n" if shown else f"{label}:\n") + draw


def _fields(value: Any) -> str:
    """A key or value: a struct as name=value pairs, anything else as itself."""
    if isinstance(value, dict):
        return ", ".join(f"{_safe(str(k))}={_text(v)}" for k, v in value.items())
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, bytes):
        return value.hex()
    return json_text(value)


def _safe(text: str) -> str:
    return escape_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8")
