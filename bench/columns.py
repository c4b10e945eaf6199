"""Table writer throughput with and without @column decoders, on one core, no
kernel: a simulated ring of the colmeta test program's event struct
(tests/e2e/programs/colmeta), 200k records in batches of 256, best of 5.

    .venv/bin/python bench/columns.py [PACKAGE.json]

Rows: the plain table (every member, rows.compile_table_rows: the writer as
on main), the @column table (10 columns, 7 decoded: static_map, signal,
errno, inet with a family sibling, port, exit_status, duration), -e (+uid),
and -j with NAME_text keys. Values repeat as real events do (a few pids,
errnos, addresses); each decoded cell is then one dict lookup.

Measured 2026-12-02 on the shared 2-core host (load 4-5, so +-40%): plain
table 90-215k events/s (main's writer, unchanged: 160-193k on main itself),
@column table 470-720k, -e -T 410-810k (the @column table skips the u8[16]
member's list conversion the plain table pays for), JSON 115-213k, JSON with
NAME_text 85-150k. On a struct the fast JSON rows take (char[8], s32; the
tests' small_layout), 200k events: table 2.06M/s, @column with errno 2.20M/s,
JSON 1.80M/s, JSON + err_text 2.15M/s: a decoded column costs no measurable time.
"""

from __future__ import annotations

import gc
import io
import struct
import sys
import time
from pathlib import Path
from typing import Any

from pyeunomia.output.writers import ColumnTableWriter, JsonWriter, TableWriter
from pyeunomia.source import open_package

HEADER = 8
ROOT = Path(__file__).resolve().parents[1]


def ring(size: int, n: int) -> tuple[memoryview, int]:
    stride = HEADER + ((size + 7) & ~7)
    buf = bytearray(stride * n)
    rec = struct.Struct("<II16sii16sHHiQI")
    for i in range(n):
        kind = 1 + i % 3
        addr = bytes([127, 0, 0, 1 + i % 4]) if kind == 2 else bytes(16)
        struct.pack_into("<II", buf, i * stride, size, 0)
        rec.pack_into(buf, i * stride + HEADER, kind, 1000 + i % 50, b"python3", 9 + i % 3 * 6 if kind == 1 else 0,
                      (111 if i % 5 else 0) if kind == 2 else 0, addr, 2 if kind == 2 else 0,
                      0x5000 + (i % 8 << 8), (i % 4) << 8 if kind == 3 else 0, 1000 * (i % 1000), 0)
    return memoryview(bytes(buf)), stride


def measure(make: Any, view: memoryview, stride: int, n: int, size: int, batch: int = 256, reps: int = 5) -> float:
    best = float("inf")
    for _ in range(reps):
        writer = make(io.BytesIO())
        gc.collect()
        start = time.perf_counter()
        for off in range(0, n, batch):
            count = min(batch, n - off)
            writer.write_run(view[off * stride:(off + count) * stride], HEADER, stride, count, size)
            writer.end_batch()
        best = min(best, time.perf_counter() - start)
    return n / best


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else None
    if path is None:
        print("usage: bench/columns.py PACKAGE.json (ecc tests/e2e/programs/colmeta/colmeta.bpf.c ...)")
        return 2
    pkg = open_package(path)
    export = pkg.exports.buffers["events"]
    layout, columns = export.layout, export.columns
    assert layout is not None and columns
    n = 200_000
    view, stride = ring(layout.size, n)
    rows = [
        ("table, every member (main's writer)", lambda s: TableWriter(layout, s)),
        ("table, @column with 7 decoders", lambda s: ColumnTableWriter(layout, s, columns)),
        ("table, @column -e -T", lambda s: ColumnTableWriter(layout, s, columns, extended=True, timestamp=True)),
        ("json, every member (main's writer)", lambda s: JsonWriter(layout, s)),
        ("json, members + NAME_text", lambda s: JsonWriter(layout, s, columns=columns)),
    ]
    for name, make in rows:
        rate = measure(make, view, stride, n, layout.size)
        print(f"{name:40} {rate:>12,.0f} events/s  {1e9 / rate:8.0f} ns/event")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
