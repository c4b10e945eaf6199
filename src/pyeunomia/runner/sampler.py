"""Sampled maps: read a map every interval and print what it holds, as a
histogram (log2 or linear) or as key/value rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

from ..format.btf import Btf
from ..format.escape import escape_bytes
from ..format.layout import value_decoder
from ..format.package import SampleMeta
from ..format.rows import json_text
from ..output.histogram import linear_histogram, log2_histogram
from .loader import MapInfo
from .maps import PERCPU_MAP_TYPES, clear_entries, percpu_value_size, read_entries


class MapSampler:
    def __init__(self, info: MapInfo, sample: SampleMeta, btf: Btf, key_type_id: int, value_type_id: int,
                 stream: IO[bytes], as_json: bool, callback: Callable[[dict[str, Any]], None] | None = None):
        self.info = info
        self.sample = sample
        self.stream = stream
        self.as_json = as_json
        self.callback = callback
        self.interval = sample.interval_ms / 1000.0
        self.next_due = time.monotonic() + self.interval
        self._key = value_decoder(btf, key_type_id) if key_type_id else bytes.hex
        self._value = value_decoder(btf, value_type_id) if value_type_id else bytes.hex
        self._percpu = info.type in PERCPU_MAP_TYPES

    def sample_now(self) -> None:
        self.next_due = time.monotonic() + self.interval
        m = self.info
        entries = read_entries(m.fd, m.type, m.key_size, m.value_size, m.max_entries)
        decoded = sorted(((self._key(k), self._decode_value(v)) for k, v in entries), key=lambda kv: str(kv[0]))
        if self.sample.clear_map:
            clear_entries(m.fd, [k for k, _ in entries])
        if self.callback is not None:
            for key, value in decoded:
                self.callback({"map": m.name, "key": key, "value": value})
            return
        stamp = time.strftime("%H:%M:%S")
        if self.as_json:
            lines = [json_text({"time": stamp, "map": m.name, "key": k, "value": v}) + "\n" for k, v in decoded]
            self.stream.write("".join(lines).encode("ascii"))
        else:
            self.stream.write(self._text(stamp, decoded).encode("utf-8"))
        self.stream.flush()

    def _decode_value(self, raw: bytes) -> Any:
        if not self._percpu:
            return self._value(raw)
        stride = percpu_value_size(self.info.value_size)
        per_cpu = [self._value(raw[i:i + stride]) for i in range(0, len(raw), stride)]
        return _sum_values(per_cpu)

    def _text(self, stamp: str, decoded: list[tuple[Any, Any]]) -> str:
        out = [f"{stamp}\n"]
        kind = self.sample.type
        for key, value in decoded:
            if kind in ("log2_hist", "linear_hist") and isinstance(value, dict) and "slots" in value:
                labels = _label_text(key, {k: v for k, v in value.items() if k != "slots"})
                if labels:
                    out.append(labels + "\n")
                draw = log2_histogram if kind == "log2_hist" else linear_histogram
                out.append(draw(value["slots"], unit=self.sample.unit) or "(no samples)\n")
            else:
                out.append(f"{_text(key)} {_text(value)}\n")
        return "".join(out)


def _sum_values(values: list[Any]) -> Any:
    """Per-CPU values added up: numbers, lists slot by slot, dicts member by member."""
    first = values[0]
    if isinstance(first, bool) or not isinstance(first, int | float | list | dict):
        return values
    if isinstance(first, int | float):
        return sum(values)
    if isinstance(first, list):
        return [_sum_values([v[i] for v in values]) for i in range(len(first))]
    return {k: (_sum_values([v[k] for v in values]) if isinstance(first[k], int | float | list) else first[k])
            for k in first}


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
