"""Sampled maps: read a map every interval, decode what it holds (per-CPU
values added up) and hand the entries to a SampleWriter; how they are shown
(histograms, key/value rows, JSON) is output's business."""

from __future__ import annotations

import time
from typing import Any

from ..format.btf import Btf
from ..format.layout import value_decoder
from ..format.mapshape import sort_key, sum_per_cpu
from ..format.package import SampleMeta
from ..format.writer import SampleWriter
from .loader import MapInfo
from .maps import PERCPU_MAP_TYPES, clear_entries, percpu_value_size, read_entries


class MapSampler:
    def __init__(self, info: MapInfo, sample: SampleMeta, btf: Btf, key_type_id: int, value_type_id: int,
                 writer: SampleWriter):
        self.info = info
        self.sample = sample
        self.writer = writer
        self.interval = sample.interval_ms / 1000.0
        self.next_due = time.monotonic() + self.interval
        self._key = value_decoder(btf, key_type_id) if key_type_id else bytes.hex
        self._value = value_decoder(btf, value_type_id) if value_type_id else bytes.hex
        self._percpu = info.type in PERCPU_MAP_TYPES

    def sample_now(self) -> None:
        self.next_due = time.monotonic() + self.interval
        m = self.info
        entries = read_entries(m.fd, m.type, m.key_size, m.value_size, m.max_entries)
        decoded = sorted(((self._key(k), self._decode_value(v)) for k, v in entries), key=lambda kv: sort_key(kv[0]))
        if self.sample.clear_map:
            clear_entries(m.fd, [k for k, _ in entries])
        self.writer.write_sample(m.name, self.sample.type, self.sample.unit, decoded)

    def _decode_value(self, raw: bytes) -> Any:
        if not self._percpu:
            return self._value(raw)
        stride = percpu_value_size(self.info.value_size)
        per_cpu = [self._value(raw[i:i + stride]) for i in range(0, len(raw), stride)]
        return sum_per_cpu(per_cpu)
