"""Decode throughput: records per second that opensnoop's reader formats from a
full ring buffer, table and JSON, on one core (no kernel involved: the ring's
memory is simulated with the exact record layout the BPF program writes)."""

from __future__ import annotations

import gc
import io
import struct
import sys
import time

from pyeunomia.output import opensnoop as output
from pyeunomia.source import open_package

HEADER = 8


def ring_of(layout, n: int, names: list[bytes]) -> tuple[memoryview, int]:
    stride = HEADER + ((layout.size + 7) & ~7)
    buf = bytearray(stride * n)
    fmt = struct.Struct("<IIQQiiiiiIIHBB16s256s")
    for i in range(n):
        name = names[i % len(names)]
        fmt.pack_into(buf, i * stride, layout.size, 0, 1_000_000_000 + i, 42, 1000 + i % 50, 1000 + i % 50, 0,
                      3 + i % 7, 0o2000000, 0, 1, len(name), 0, 0, b"bash", name)
    return memoryview(bytes(buf)), stride


def measure(make_writer, view: memoryview, stride: int, n: int, batch: int, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        sink = io.BytesIO()
        writer = make_writer(sink)
        start = time.perf_counter()
        for off in range(0, n, batch):
            count = min(batch, n - off)
            writer.write_run(view[off * stride:(off + count) * stride], HEADER, stride, count, 320)
            writer.end_batch()
        best = min(best, time.perf_counter() - start)
    return n / best


def rates(n: int) -> dict[str, float]:
    package = open_package("opensnoop")
    layout = package.export_layout()
    assert layout is not None
    names = [b"/etc/hostname", b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"/proc/self/status",
             b"/home/user/projects/pyeunomia/src/pyeunomia/tools/opensnoop/output.py"]
    view, stride = ring_of(layout, n, names)
    gc.freeze()
    cols = output.Columns()
    table = measure(lambda s: output.table(layout, s, cols, 0), view, stride, n, 4096, 5)
    json_rate = measure(lambda s: output.json_lines(layout, s, cols), view, stride, n, 4096, 5)
    return {"table": table, "JSON": json_rate}


def main() -> None:
    for mode, rate in rates(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000).items():
        print(f"{mode:6} {rate:,.0f} records/s")


if __name__ == "__main__":
    main()
