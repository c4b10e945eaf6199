"""Sampled maps as people read them: bcc-style histograms (log2 or linear)
per key, key/value rows, or one JSON object per entry."""

from __future__ import annotations

import time
from typing import IO, Any

from ..format.escape import escape_bytes
from ..format.rows import json_text
from ..format.writer import SampleWriter
from .histogram import linear_histogram, log2_histogram
from .streams import write_all


class SamplePrinter(SampleWriter):
    def __init__(self, stream: IO[bytes], as_json: bool):
        self.stream = stream
        self.as_json = as_json

    def write_sample(self, map_name: str, kind: str, unit: str, entries: list[tuple[Any, Any]]) -> None:
        if not entries:
            return  # an interval with nothing in the map: no bare timestamp line (bpftrace prints nothing either)
        stamp = time.strftime("%H:%M:%S")
        if self.as_json:
            lines = [json_text({"time": stamp, "map": map_name, "key": k, "value": v}) + "\n" for k, v in entries]
            write_all(self.stream, "".join(lines).encode("ascii"))
        else:
            write_all(self.stream, _text_block(stamp, kind, unit, entries).encode("utf-8"))
        self.stream.flush()


def _text_block(stamp: str, kind: str, unit: str, entries: list[tuple[Any, Any]]) -> str:
    out = [f"{stamp}\n"]
    for key, value in entries:
        if kind in ("log2_hist", "linear_hist") and isinstance(value, dict) and "slots" in value:
            labels = _label_text(key, {k: v for k, v in value.items() if k != "slots"})
            if labels:
                out.append(labels + "\n")
            draw = log2_histogram if kind == "log2_hist" else linear_histogram
            out.append(draw(value["slots"], unit=unit) or "(no samples)\n")
        else:
            out.append(f"{_text(key)} {_text(value)}\n")
    return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return escape_bytes(value.encode("utf-8", "surrogateescape")).decode("utf-8")
    return json_text(value)


def _label_text(key: Any, rest: dict[str, Any]) -> str:
    parts = []
    if isinstance(key, dict):
        parts += [f"{k} = {_text(v)}" for k, v in key.items()]
    elif key not in (0, "", None):
        parts.append(f"key = {_text(key)}")
    parts += [f"{k} = {_text(v)}" for k, v in rest.items() if v not in (0, "", None, [])]
    return ", ".join(parts)
