"""Shared by the exporter's unit tests: configs planned against the real
built-in packages, and ring-buffer memory laid out as the kernel writes it."""

from __future__ import annotations

from typing import Any

from pyeunomia.exporter.config import parse_config
from pyeunomia.exporter.plan import ProgramPlan, plan_program
from pyeunomia.format.layout import Layout

HEADER = 8


def plan_of(text: str, file: str = "c.yaml") -> ProgramPlan:
    [program] = parse_config(text, file).programs
    return plan_program(program)


def config(metrics: str, name: str = "opensnoop", extra: str = "") -> str:
    """A one-program config; `metrics` is the YAML under `metrics:`, indented 6."""
    return f"programs:\n  - name: {name}\n{extra}    metrics:\n{metrics}"


def ring(layout: Layout, records: list[dict[str, Any]], length: int | None = None) -> tuple[memoryview, int, int]:
    """Records as a run in ring memory: (view, stride, length). Members not
    given are zero; `length` cuts each record short."""
    length = layout.size if length is None else length
    stride = HEADER + ((length + 7) & ~7)
    buf = bytearray(stride * len(records))
    defaults = {f.name: (b"" if f.code.endswith("s") else 0) for f in layout.fields if f.index is not None}
    for i, rec in enumerate(records):
        values: list[Any] = [None] * len(defaults)
        for f in layout.fields:
            if f.index is not None:
                values[f.index] = rec.get(f.name, defaults[f.name])
        packed = layout.struct.pack(*values)
        buf[i * stride : i * stride + 4] = length.to_bytes(4, "little")
        buf[i * stride + HEADER : i * stride + HEADER + length] = packed[:length]
    return memoryview(bytes(buf)), stride, length
