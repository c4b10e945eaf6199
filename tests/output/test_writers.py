"""pyeunomia.output.writers: writers fed runs of records as ring buffers deliver them."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pytest

from pyeunomia.format.btf import Btf
from pyeunomia.format.exports import BufferExport, ExportPlan, RecordCheck, record_check
from pyeunomia.format.layout import Layout, struct_layout
from pyeunomia.format.writer import CallbackWriter, EventWriter
from pyeunomia.output import writers as events
from pyeunomia.output.writers import HexWriter, JsonWriter, TableWriter
from tests.btfbuilder import ENC_BOOL, ENC_SIGNED, BtfBuilder

HEADER = 8


class FakeTime:
    """Stands in for the `time` module inside events: a fixed clock."""

    def __init__(self, now: float = 1_700_000_000.25):
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:  # --elapsed: 1.5 s after the writer began, the second time it is read
        self.ticks = getattr(self, "ticks", -1) + 1
        return 100.0 + 1.5 * self.ticks

    def localtime(self, seconds: float) -> Any:
        return seconds

    def strftime(self, fmt: str, t: Any) -> str:
        assert fmt == "%H:%M:%S"
        return f"{int(t) // 3600 % 24:02d}:{int(t) // 60 % 60:02d}:{int(t) % 60:02d}"


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    fake = FakeTime()
    monkeypatch.setattr(events, "time", fake)
    return fake


class Stream(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def exec_layout() -> Layout:
    """struct event { s32 pid; u32 uid; char comm[12]; bool exiting; u8 cpu; enum kind k; }: 28 bytes."""
    b = BtfBuilder()
    s32 = b.int("int", 4, ENC_SIGNED)
    u32 = b.int("unsigned int", 4)
    u8 = b.int("unsigned char", 1)
    char = b.int("char", 1, ENC_SIGNED)
    bool_ = b.int("_Bool", 1, ENC_BOOL)
    kind = b.enum("kind", [("EXEC", 0), ("EXIT", 1)])
    ev = b.struct("event", 28, [("pid", s32, 0), ("uid", u32, 32), ("comm", b.array(char, 12), 64),
                                ("exiting", bool_, 160), ("cpu", u8, 168), ("k", kind, 192)])
    return struct_layout(Btf.parse(b.build()), ev)


def bits_layout() -> Layout:
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    s32 = b.int("int", 4, ENC_SIGNED)
    ev = b.struct("bits", 4, [("lo", u32, 0, 4), ("hi", s32, 4, 4), ("rest", u32, 8, 24)])
    return struct_layout(Btf.parse(b.build()), ev)


def record(pid: int, uid: int, comm: bytes, exiting: int, cpu: int, k: int) -> bytes:
    return struct.pack("<iI12s?BxxI", pid, uid, comm, exiting, cpu, k)


def ring(records: list[bytes], length: int | None = None) -> tuple[memoryview, int, int]:
    """Records as a BPF ring buffer holds them: an 8-byte header (length, page
    offset), then the record padded to a multiple of 8. Returns (view, stride, length)."""
    size = length if length is not None else len(records[0])
    stride = HEADER + (size + 7) // 8 * 8
    buf = bytearray()
    for r in records:
        assert len(r) == size
        buf += struct.pack("<II", size, 0x1234) + r + b"\xee" * (stride - HEADER - size)
    return memoryview(bytes(buf)), stride, size


RECORDS = [record(1, 0, b"systemd", 0, 0, 0), record(4242, 1000, b"bash", 1, 7, 1),
           record(-1, 4294967295, b"x" * 12, 0, 255, 5)]


# -- the table writer ----------------------------------------------------------------------------


def test_table_writer_header_and_rows(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream)
    view, stride, length = ring(RECORDS)
    assert (stride, length) == (8 + 32, 28)
    writer.write_run(view, HEADER, stride, 3, length)
    assert stream.getvalue() == b""  # nothing before the batch ends
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "time     pid     uid     comm        exiting cpu  k",
        "22:13:20 1       0       systemd     false   0    EXEC",
        "22:13:20 4242    1000    bash        true    7    EXIT",
        "22:13:20 -1      4294967295 xxxxxxxxxxxx false   255  5",
    ]
    assert stream.flushes == 1
    writer.end_batch()
    assert stream.flushes == 1  # nothing pending: no write, no flush


def test_table_writer_without_header(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream, header=False)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.close()
    assert stream.getvalue() == b"22:13:20 1       0       systemd     false   0    EXEC\n"


def test_table_writer_escapes_unsafe_names(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream, header=False)
    unsafe = [record(1, 0, b"ok", 0, 0, 0), record(2, 0, b"\x1b[2Jevil\nx", 0, 0, 0),
              record(3, 0, b"a\\b\xff\xfe", 0, 0, 0), record(4, 0, "\u00e9t\u00e9\u202e".encode(), 0, 0, 0)]
    view, stride, length = ring(unsafe)
    writer.write_run(view, HEADER, stride, 4, length)
    writer.end_batch()
    assert stream.getvalue().split(b"\n") == [
        b"22:13:20 1       0       ok          false   0    EXEC",
        b"22:13:20 2       0       \\x1b[2Jevil\\nx false   0    EXEC",
        b"22:13:20 3       0       a\\\\b\\xff\\xfe false   0    EXEC",
        "22:13:20 4       0       \u00e9t\u00e9\\u202e false   0    EXEC".encode(),
        b"",
    ]


def test_table_writer_runs_accumulate_until_the_batch_ends(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream, header=False)
    for r in RECORDS[:2]:
        view, stride, length = ring([r])
        writer.write_run(view, HEADER, stride, 1, length)
    clock.now += 1
    view, stride, length = ring(RECORDS[2:])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    lines = stream.getvalue().decode().splitlines()
    assert [line[:8] for line in lines] == ["22:13:20", "22:13:20", "22:13:21"]
    assert stream.flushes == 1


def test_short_records_are_zero_padded(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream, header=False)
    short = [r[:10] for r in RECORDS[:2]]  # pid, uid and two bytes of comm
    view, stride, length = ring(short)
    assert (stride, length) == (8 + 16, 10)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "22:13:20 1       0       sy          false   0    EXEC",
        "22:13:20 4242    1000    ba          false   0    EXEC",
    ]


def test_longer_records_ignore_the_extra_bytes(clock):
    stream = Stream()
    writer = TableWriter(exec_layout(), stream, header=False)
    view, stride, length = ring([RECORDS[1] + b"\xff" * 8])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue() == b"22:13:20 4242    1000    bash        true    7    EXIT\n"


def test_table_writer_with_raw_members(clock):
    stream = Stream()
    writer = TableWriter(bits_layout(), stream)
    view, stride, length = ring([bytes([0x9A, 0x01, 0x00, 0x00]), bytes([0x7F, 0xFF, 0xFF, 0xFF])])
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "time     lo      hi      rest",
        "22:13:20 10      -7      1",
        "22:13:20 15      7       16777215",
    ]


# -- the JSON writer --------------------------------------------------------------------------------


def test_json_writer_lines(clock):
    stream = Stream()
    writer = JsonWriter(exec_layout(), stream)
    view, stride, length = ring(RECORDS)
    writer.write_run(view, HEADER, stride, 3, length)
    writer.end_batch()
    lines = stream.getvalue().decode("ascii").splitlines()
    assert lines == [
        '{"pid":1,"uid":0,"comm":"systemd","exiting":false,"cpu":0,"k":"EXEC"}',
        '{"pid":4242,"uid":1000,"comm":"bash","exiting":true,"cpu":7,"k":"EXIT"}',
        '{"pid":-1,"uid":4294967295,"comm":"xxxxxxxxxxxx","exiting":false,"cpu":255,"k":5}',
    ]
    assert [json.loads(line)["pid"] for line in lines] == [1, 4242, -1]
    assert stream.flushes == 1


def test_json_writer_stays_valid_ascii_for_unsafe_names(clock):
    stream = Stream()
    writer = JsonWriter(exec_layout(), stream)
    unsafe = [record(2, 0, b"\x1b[2Jevil\nx", 0, 0, 0), record(3, 0, b'a\\b"\xff\xfe', 0, 0, 0),
              record(4, 0, "\u00e9\u202e\U0001f600".encode(), 0, 0, 0)]
    view, stride, length = ring(unsafe)
    writer.write_run(view, HEADER, stride, 3, length)
    writer.end_batch()
    data = stream.getvalue()
    assert data.isascii()
    lines = data.decode("ascii").splitlines()
    assert [json.loads(line)["comm"] for line in lines] == [
        "\x1b[2Jevil\nx", 'a\\b"\\xff\\xfe', "\u00e9\u202e\U0001f600"]
    assert lines[1] == '{"pid":3,"uid":0,"comm":"a\\\\b\\"\\\\xff\\\\xfe","exiting":false,"cpu":0,"k":"EXEC"}'


def test_json_writer_with_raw_members(clock):
    stream = Stream()
    writer = JsonWriter(bits_layout(), stream)
    view, stride, length = ring([bytes([0x9A, 0x01, 0x00, 0x00])])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue() == b'{"lo":10,"hi":-7,"rest":1}\n'


def test_json_writer_short_records(clock):
    stream = Stream()
    writer = JsonWriter(exec_layout(), stream)
    view, stride, length = ring([RECORDS[1][:5]])
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert json.loads(stream.getvalue()) == {"pid": 4242, "uid": 232, "comm": "", "exiting": False, "cpu": 0,
                                             "k": "EXEC"}


def test_json_writer_reports_lost_records(clock):
    lost = io.StringIO()
    writer = JsonWriter(exec_layout(), Stream(), lost_stream=lost)
    writer.report_lost(12, "ring buffer rb")
    assert json.loads(lost.getvalue()) == {"lost": 12, "where": "ring buffer rb", "time": 1_700_000_000.25}
    assert lost.getvalue().endswith("}\n")


# -- the other writers ----------------------------------------------------------------------------------


def test_hex_writer(clock):
    stream = Stream()
    writer = HexWriter(stream)
    view, stride, length = ring([b"\x01\x02\x03", b"\xff\x00\x10"])
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue() == b"22:13:20 size=3 010203\n22:13:20 size=3 ff0010\n"
    stream = Stream()
    writer = HexWriter(stream, as_json=True)
    writer.write_run(view, HEADER, stride, 2, length)
    writer.end_batch()
    assert stream.getvalue() == b'{"size":3,"data":"010203"}\n{"size":3,"data":"ff0010"}\n'


def test_callback_writer_decodes_each_record():
    got: list[Any] = []
    writer = CallbackWriter(exec_layout(), got.append)
    view, stride, length = ring(RECORDS[:2])
    writer.write_run(view, HEADER, stride, 2, length)
    assert got == [
        {"pid": 1, "uid": 0, "comm": "systemd", "exiting": False, "cpu": 0, "k": "EXEC"},
        {"pid": 4242, "uid": 1000, "comm": "bash", "exiting": True, "cpu": 7, "k": "EXIT"},
    ]
    got.clear()
    view, stride, length = ring([RECORDS[1][:6]])
    writer.write_run(view, HEADER, stride, 1, length)
    assert got == [{"pid": 4242, "uid": 1000, "comm": "", "exiting": False, "cpu": 0, "k": "EXEC"}]


def test_callback_writer_without_a_layout_hands_over_bytes():
    got: list[Any] = []
    writer = CallbackWriter(None, got.append)
    view, stride, length = ring([b"abc", b"xyz"])
    writer.write_run(view, HEADER, stride, 2, length)
    assert got == [{"size": 3, "data": b"abc"}, {"size": 3, "data": b"xyz"}]


def test_event_writer_interface():
    writer = EventWriter()
    with pytest.raises(NotImplementedError):
        writer.write_run(memoryview(b""), 0, 0, 0, 0)
    writer.end_batch()
    writer.report_lost(1, "x")
    writer.close()


# -- record sizes checked against the struct (format/exports.py) -----------------------------------


def exec_check(perf: bool = False, variable: bool = False) -> RecordCheck:
    return record_check("events", exec_layout(), perf, variable=lambda: variable)


@pytest.mark.parametrize("as_json", [False, True])
def test_records_that_do_not_fit_print_in_hex_with_one_line_and_a_count(clock, as_json):
    stream, notes = Stream(), io.StringIO()
    writer = events.event_writer(exec_layout(), stream, as_json, header=False, check=exec_check(), notes=notes)
    wide = [RECORDS[1] + b"\x01\x02\x03\x04", RECORDS[0] + b"\xff" * 4]  # 32 bytes, not the struct's 28
    for _ in range(2):  # two runs: still one line on stderr
        view, stride, length = ring(wide)
        writer.write_run(view, HEADER, stride, 2, length)
    view, stride, length = ring(RECORDS[:1])
    writer.write_run(view, HEADER, stride, 1, length)  # a fitting record still decodes
    writer.end_batch()
    out = stream.getvalue().decode().splitlines()
    hexes = [wide[0].hex(), wide[1].hex()] * 2
    if as_json:
        assert [json.loads(line) for line in out[:4]] == [{"map": "events", "size": 32, "data": h} for h in hexes]
        assert json.loads(out[4])["pid"] == 1
    else:
        assert out[:4] == [f"22:13:20 size=32 {h}" for h in hexes]
        assert out[4].split()[:2] == ["22:13:20", "1"]
    assert notes.getvalue() == ("ecli: map 'events': a 32-byte record is not struct event (28 bytes): printed in hex, "
                                "never decoded as it; name the struct it carries with '/// @export STRUCT' above the "
                                "map and rebuild\n")
    assert writer.mismatched == 4
    assert events.mismatch_summary(writer) == [
        "map 'events': 4 records did not fit struct event (28 bytes) and were printed in hex"]


def test_short_records_fit_only_where_the_program_writes_a_computed_size(clock):
    short = [r[:20] for r in RECORDS[:2]]  # down to comm, the array ending the struct... almost: exiting follows
    for variable in (False, True):
        stream, notes = Stream(), io.StringIO()
        writer = TableWriter(exec_layout(), stream, header=False, check=exec_check(variable=variable), notes=notes)
        view, stride, length = ring(short)
        writer.write_run(view, HEADER, stride, 2, length)
        writer.end_batch()
        # exec_layout ends in an enum, not an array: a short record never fits
        assert stream.getvalue().decode().split()[1] == "size=20"
        assert writer.mismatched == 2


def pair_layout() -> Layout:
    """struct pair { int a; unsigned int b; }: 8 bytes, which a perf sample pads to 12."""
    b = BtfBuilder()
    pair = b.struct("pair", 8, [("a", b.int("int", 4, ENC_SIGNED), 0), ("b", b.int("unsigned int", 4), 32)])
    return struct_layout(Btf.parse(b.build()), pair)


def test_perf_samples_fit_with_their_padding(clock):
    stream, notes = Stream(), io.StringIO()
    check = record_check("p", pair_layout(), True)
    assert (check.size, check.exact) == (8, 12)
    writer = TableWriter(pair_layout(), stream, header=False, check=check, notes=notes)
    padded = [struct.pack("<iI", -5, 7) + bytes(4), struct.pack("<iI", 6, 8) + bytes(4)]
    view, stride, length = ring(padded)
    writer.write_run(view, HEADER, stride, 2, length)
    sixteen = [struct.pack("<iIQ", 1, 2, 3) + bytes(4)]  # a 16-byte output: 20 in the sample
    view, stride, length = ring(sixteen)
    writer.write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "22:13:20 -5      7", "22:13:20 6       8", f"22:13:20 size=20 {sixteen[0].hex()}"]
    assert writer.mismatched == 1 and "a 20-byte record is not struct pair (8 bytes, 12 in a perf sample)" in \
        notes.getvalue()


def test_several_buffers_print_with_their_map_name(clock):
    stream, notes = Stream(), io.StringIO()
    plan = ExportPlan({"exec": BufferExport("exec", exec_layout(), exec_check()),
                       "bits": BufferExport("bits", bits_layout(), record_check("bits", bits_layout(), False))}, [])
    writer = events.plan_writer(plan, stream, False, header=True, notes=notes)
    view, stride, length = ring(RECORDS[:1])
    writer.for_map("exec").write_run(view, HEADER, stride, 1, length)
    view, stride, length = ring([bytes([0x9A, 0x01, 0x00, 0x00])])
    writer.for_map("bits").write_run(view, HEADER, stride, 1, length)
    writer.end_batch()
    assert stream.getvalue().decode().splitlines() == [
        "exec time     pid     uid     comm        exiting cpu  k",
        "bits time     lo      hi      rest",
        "exec 22:13:20 1       0       systemd     false   0    EXEC",
        "bits 22:13:20 10      -7      1",
    ]
    assert notes.getvalue() == ""


def test_the_python_api_hands_misfits_over_undecoded():
    got: list[dict[str, Any]] = []
    writer = CallbackWriter(exec_layout(), got.append, exec_check())
    view, stride, length = ring([RECORDS[0] + b"\0" * 4])
    writer.write_run(view, HEADER, stride, 1, length)
    view, stride, length = ring(RECORDS[1:2])
    writer.write_run(view, HEADER, stride, 1, length)
    assert got[0] == {"map": "events", "size": 32, "data": RECORDS[0] + b"\0" * 4}
    assert got[1]["pid"] == 4242 and writer.mismatched == 1
class ShortWrites(io.RawIOBase):
    """A raw stream that, like stdout's FileIO under PYTHONUNBUFFERED=1 when
    a signal interrupts a write to a full pipe, takes only part of each write."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.data = bytearray()
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.calls += 1
        taken = bytes(b[: self.most])
        self.data += taken
        return len(taken)


@pytest.mark.parametrize("writer_of", [lambda s: JsonWriter(exec_layout(), s), lambda s: TableWriter(exec_layout(), s)])
def test_a_batch_is_written_whole_to_a_stream_taking_part_of_each_write(clock, writer_of):
    whole, short = Stream(), ShortWrites(7)
    for stream in (whole, short):
        writer = writer_of(stream)
        view, stride, length = ring(RECORDS)
        writer.write_run(view, HEADER, stride, 3, length)
        writer.end_batch()
        writer.end_batch()  # nothing pending: nothing written twice
    assert bytes(short.data) == whole.getvalue() and len(whole.getvalue()) > 7 * 3
    assert short.calls == -(-len(whole.getvalue()) // 7)


def test_write_all_waits_for_a_full_non_blocking_pipe():
    import os
    import threading

    from pyeunomia.output.streams import write_all

    r, w = os.pipe()
    os.set_blocking(w, False)
    data = bytes(range(256)) * 4096  # 1 MiB: 16 pipes' worth
    got = bytearray()

    def reader() -> None:
        while chunk := os.read(r, 65536):
            got.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    with open(w, "wb", buffering=0) as raw:  # a raw FileIO: write() gives None when the pipe is full
        write_all(raw, data)
    thread.join(10)
    os.close(r)
    assert bytes(got) == data
