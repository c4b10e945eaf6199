"""pyeunomia.output.stacks and output.flamegraph: stack trace events as
upstream prints them, as JSON, folded, and drawn."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

from pyeunomia.format.stacks import Frame, SampleReader, StackTraceSpec
from pyeunomia.output.flamegraph import colour, render_svg
from pyeunomia.output.stacks import FoldedProfile, StackWriter
from tests.format.test_stacks import profile_layout, upstream_record

# bpf-loader-rs export_event/tests/buffer_value_tests.rs, STACKTRACE_EXPECTED_OUTPUT (with_symbols false):
# the handler's string, which upstream's ecli prints with println! (one more newline)
UPSTREAM_TEXT = ("COMM: test-comm (pid=4660) @ CPU 22136\nKernel:\n  0 [<0000000000010000>]\n  1 [<0000000000010001>]\n"
                 "Userspace:\n" + "".join(f"  {i} [<{0x10000 | i:016x}>]\n" for i in range(16)))


class FakeSymbolizer:
    """Names every address `k<hex>` or `u<pid>_<hex>` and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._cache: dict[object, tuple[Frame, ...]] = {}

    def kernel(self, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        self.calls += 1
        return self._cache.setdefault(("k", addresses), tuple(Frame(a, f"k{a:x}", 4, "") for a in addresses))

    def user(self, pid: int, addresses: tuple[int, ...], comm: bytes | None = None) -> tuple[Frame, ...]:
        self.calls += 1
        return self._cache.setdefault((pid, addresses),
                                      tuple(Frame(a, f"u{pid}_{a:x}", 0, "/bin/x") for a in addresses))


def write(records: list[bytes], *, symbols: bool = True, as_json: bool = False,
          profile: FoldedProfile | None = None) -> str:
    out = io.BytesIO()
    writer = StackWriter(SampleReader(StackTraceSpec("events", {}, symbols), profile_layout()), FakeSymbolizer(),
                         out, as_json, profile)
    ring = b"".join(bytes(8) + r for r in records)
    writer.write_run(memoryview(ring), 8, 8 + 2080, len(records), 2080)
    writer.end_batch()
    return out.getvalue().decode()


def test_without_symbols_the_text_is_upstreams():
    assert write([upstream_record()], symbols=False) == UPSTREAM_TEXT + "\n"


def test_with_symbols():
    text = write([upstream_record(kstack_sz=8, ustack_sz=16)])
    assert text == ("COMM: test-comm (pid=4660) @ CPU 22136\nKernel:\n  0 [<0000000000010000>] k10000+0x4\n"
                    "Userspace:\n  0 [<0000000000010000>] u4660_10000+0x0 (/bin/x)\n"
                    "  1 [<0000000000010001>] u4660_10001+0x0 (/bin/x)\n\n")


def test_missing_stacks_say_so_and_empty_samples_are_skipped():
    text = write([upstream_record(kstack_sz=-14, ustack_sz=8), upstream_record(kstack_sz=0, ustack_sz=-14)])
    assert text == ("COMM: test-comm (pid=4660) @ CPU 22136\nNo Kernel Stack\nUserspace:\n"
                    "  0 [<0000000000010000>] u4660_10000+0x0 (/bin/x)\n\n")


def test_a_short_record_is_zero_padded():
    out = io.BytesIO()
    writer = StackWriter(SampleReader(StackTraceSpec("events", {}, False), profile_layout()), FakeSymbolizer(), out)
    record = upstream_record(kstack_sz=8, ustack_sz=0)[:40]  # up to kstack[0]
    writer.write_run(memoryview(record), 0, 40, 1, 40)
    writer.end_batch()
    assert out.getvalue() == b"COMM: test-comm (pid=4660) @ CPU 22136\nKernel:\n  0 [<0000000000010000>]\n" \
                             b"No Userspace Stack\n\n"


def test_json():
    line = json.loads(write([upstream_record(kstack_sz=8, ustack_sz=8)], as_json=True))
    del line["time"]
    assert line == {"comm": "test-comm", "pid": 4660, "cpu_id": 22136,
                    "kstack": [{"address": 0x10000, "symbol": "k10000", "offset": 4}],
                    "ustack": [{"address": 0x10000, "symbol": "u4660_10000", "offset": 0, "module": "/bin/x"}]}


def test_json_carries_the_members_the_mapping_does_not_name():
    """offcputime's off-CPU time or a thread id: raw, as any event's JSON; text stays upstream's."""
    layout = profile_layout(names=("tid", "cpu_id", "comm", "kstack_sz", "ustack_sz", "kstack", "ustack"))
    out = io.BytesIO()
    writer = StackWriter(SampleReader(StackTraceSpec("events", {}, True), layout), FakeSymbolizer(), out, True)
    record = upstream_record(kstack_sz=8, ustack_sz=0)
    writer.write_run(memoryview(bytes(8) + record), 8, 8 + 2080, 1, 2080)
    writer.end_batch()
    line = json.loads(out.getvalue())
    assert (line["pid"], line["tid"], line["cpu_id"]) == (None, 4660, 22136)
    assert list(line) == ["time", "comm", "pid", "cpu_id", "tid", "kstack", "ustack"]


def test_folded_stacks_sum_the_weight_member():
    """field_map's weight (offcputime's off-CPU us): each sample counts for its value, not 1."""
    layout = profile_layout(names=("pid", "n", "comm", "kstack_sz", "ustack_sz", "kstack", "ustack"))
    profile = FoldedProfile()
    writer = StackWriter(SampleReader(StackTraceSpec("events", {"weight": "n"}, True), layout), FakeSymbolizer(),
                         None, False, profile)
    ring = b"".join(bytes(8) + upstream_record(kstack_sz=8, ustack_sz=8) for _ in range(2))
    writer.write_run(memoryview(ring), 8, 8 + 2080, 2, 2080)
    assert profile.lines() == [f"test-comm;u4660_10000;k10000_[k] {2 * 0x5678}\n"]


def test_hostile_comm_is_escaped():
    record = bytearray(upstream_record(8, 8))
    record[8:24] = b"\x1b[2Jevil\n;x\0\0\0\0\0"
    text = write([bytes(record)])
    assert "\x1b" not in text and text.startswith("COMM: \\x1b[2Jevil\\n;x (pid=4660)")
    profile = FoldedProfile()
    write([bytes(record)], profile=profile)
    (line,) = profile.lines()
    assert line.count(";") == 2 and "\n" not in line[:-1] and "\x1b" not in line


def test_folded_counts_each_distinct_stack():
    profile = FoldedProfile()
    records = [upstream_record(16, 8)] * 3 + [upstream_record(8, 16)] * 2 + [upstream_record(-1, 8)]
    write(records, profile=profile)
    assert profile.lines() == [  # root first: the user stack reversed, then the kernel's
        "test-comm;u4660_10000 1\n",
        "test-comm;u4660_10000;k10001_[k];k10000_[k] 3\n",
        "test-comm;u4660_10001;u4660_10000;k10000_[k] 2\n",
    ]
    assert sum(profile.counts.values()) == 6


def test_folded_output_only():
    """`--folded -`: no stream, only counts."""
    profile = FoldedProfile()
    writer = StackWriter(SampleReader(StackTraceSpec("events", {}, True), profile_layout()), FakeSymbolizer(), None,
                         profile=profile)
    writer.write_run(memoryview(upstream_record(8, 8)), 0, 2080, 1, 2080)
    writer.end_batch()
    assert writer.samples == 1 and profile.lines() == ["test-comm;u4660_10000;k10000_[k] 1\n"]


def test_repeated_stacks_are_symbolized_by_the_cache():
    """The writer asks once per stack per sample; the symbolizer's cache
    hands back the same tuple, so folding names a repeated stack once."""
    profile = FoldedProfile()
    write([upstream_record(16, 16)] * 50, profile=profile)
    assert len(profile._names) == 1 and profile.counts.total() == 50


COUNTS = {("busy", "main", "spin"): 30, ("busy", "main", "read", "vfs_read_[k]"): 10, ("ecli", "poll"): 10}


def svg_frames(svg: str) -> dict[str, tuple[float, float, str]]:
    """name -> (x, width, fill) of each frame, from its tooltip."""
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    out = {}
    for g in root.iterfind("s:g", ns):
        title = g.find("s:title", ns).text or ""
        rect = g.find("s:rect", ns).attrib
        out[title] = (float(rect["x"]), float(rect["width"]), rect["fill"])
    return out


def test_flame_graph_widths_are_shares_of_the_samples():
    svg = render_svg(COUNTS, "t")
    frames = svg_frames(svg)
    assert set(frames) == {"all (50 samples, 100.00%)", "busy (40 samples, 80.00%)", "main (40 samples, 80.00%)",
                           "spin (30 samples, 60.00%)", "read (10 samples, 20.00%)",
                           "vfs_read_[k] (10 samples, 20.00%)", "ecli (10 samples, 20.00%)",
                           "poll (10 samples, 20.00%)"}
    full = frames["all (50 samples, 100.00%)"][1]
    assert abs(frames["spin (30 samples, 60.00%)"][1] - full * 0.6) < 0.2
    assert abs(frames["read (10 samples, 20.00%)"][1] - full * 0.2) < 0.2
    # siblings in name order, side by side: read starts at main's x, spin right after it
    main_x = frames["main (40 samples, 80.00%)"][0]
    assert frames["read (10 samples, 20.00%)"][0] == main_x
    assert abs(frames["spin (30 samples, 60.00%)"][0] - (main_x + full * 0.2)) < 0.2
    assert "<script" not in svg


def test_flame_graph_is_deterministic_and_colours_by_name():
    assert render_svg(COUNTS, "t") == render_svg(dict(reversed(list(COUNTS.items()))), "t")
    frames = svg_frames(render_svg(COUNTS, "t"))
    assert frames["vfs_read_[k] (10 samples, 20.00%)"][2] == colour("vfs_read_[k]", 4)
    r, g, b = map(int, re.findall(r"\d+", colour("vfs_read_[k]", 4)))
    assert r >= 205 and 130 <= g <= 200 and b <= 20  # kernel: orange
    assert colour("spin", 3) == colour("spin", 3) != colour("spim", 3)


def test_flame_graph_escapes_names_and_drops_tiny_frames():
    counts = {("a<b>&\"c\"", "x"): 1, ("z",): 100_000}
    svg = render_svg(counts, "<title>")
    frames = svg_frames(svg)
    assert "z (100000 samples, 100.00%)" in frames
    assert not any(name.startswith("x ") for name in frames)  # 0.01 px wide: left out
    assert "&lt;title&gt;" in svg


def test_flame_graph_of_nothing():
    svg = render_svg({}, "t")
    ET.fromstring(svg)
    assert "no samples" in svg
