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
"""

from __future__ import annotations

from typing import IO, Any

from ..format.escape import escape_bytes
from ..format.mapshape import DumpWriter, HistShape, MapDump
from ..format.rows import json_text
from .histogram import linear_histogram, log2_histogram
from .streams import write_all

UNIT = "(unit)"


class MapPrinter(DumpWriter):
    def __init__(self, stream: IO[bytes], as_json: bool):
        self.stream = stream
        self.as_json = as_json

    def write_dumps(self, dumps: list[MapDump], stamp: str | None) -> None:
        if not dumps:
            return  # an empty round prints nothing, not a bare time stamp
        text = "".join(map(_json_lines if self.as_json else _text_block, dumps, [stamp] * len(dumps)))
        if stamp is not None and not self.as_json:
            text = f"{stamp}\n" + text
        write_all(self.stream, text.encode("utf-8"))
        self.stream.flush()


def _json_lines(dump: MapDump, stamp: str | None) -> str:
    head: dict[str, Any] = {"time": stamp} if stamp is not None else {}
    kind = "global" if dump.is_global else "map"
    lines = []
    for key, value in dump.entries:
        entry = {**head, kind: dump.name, "value": value} if dump.is_global and key is None else \
            {**head, kind: dump.name, "key": key, "value": value}
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


def _hist_text(label: str, value: Any, hist: HistShape) -> str:
    if hist.member is not None and isinstance(value, dict):
        slots = value.get(hist.member)
        rest = {k: v for k, v in value.items() if k != hist.member}
    else:
        slots, rest = value, {}
    if not isinstance(slots, list):
        return f"{label}: {_fields(value)}\n"
    draw = linear_histogram(slots, unit=UNIT) if hist.linear else log2_histogram(slots, unit=UNIT)
    if not draw:  # no samples (hardirqs' slots stay empty unless asked for): the other members alone
        return f"{label}: {_fields(rest) if rest else '(no samples)'}\n"
    shown = {k: v for k, v in rest.items() if v not in (0, "", None, [])}
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
