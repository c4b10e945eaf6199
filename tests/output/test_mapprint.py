"""Maps and globals printed at exit, checked byte for byte."""

from __future__ import annotations

import io
import json

from pyeunomia.format.mapshape import HistShape, MapDump
from pyeunomia.output.mapprint import MapPrinter


def printed(dumps: list[MapDump], as_json: bool = False, stamp: str | None = None) -> str:
    out = io.BytesIO()
    MapPrinter(out, as_json).write_dumps(dumps, stamp)
    return out.getvalue().decode()


def test_rows_like_bpftrace():
    dumps = [MapDump("sizes", False, None, [(1, 2), (11, 3), (14157, 4)], 3),
             MapDump("data", False, None, [(42, {"count": 5, "comm": "sh"})], 1),
             MapDump("by", False, None, [({"pid": 1, "cpu": 0}, 9)], 1)]
    assert printed(dumps) == ("@sizes[1]: 2\n@sizes[11]: 3\n@sizes[14157]: 4\n\n"
                              "@data[42]: count=5, comm=sh\n\n"
                              "@by[pid=1, cpu=0]: 9\n\n")


def test_globals():
    dumps = [MapDump("total", True, None, [(None, 7)], 1),
             MapDump("fd_writes", True, None, [(None, [0, 0, 3, 0, 1])], 1),
             MapDump("state", True, None, [(None, {"a": 1, "b": [1, 2]})], 1)]
    assert printed(dumps) == ("@total: 7\n\n@fd_writes[2]: 3\n@fd_writes[4]: 1\n\n"
                              "@state: a=1, b=[1,2]\n\n")


def test_histograms():
    log2 = MapDump("hists", False, HistShape(False, "slots"), [(7, {"slots": [1, 0, 2], "comm": "sh"})], 1)
    text = printed([log2]).splitlines()
    assert text[0] == "@hists[7]: comm=sh"
    assert text[1].split() == ["(unit)", ":", "count", "distribution"]
    assert text[2] == "         0 -> 1          : 1        |********************                    |"
    assert text[4] == "         4 -> 7          : 2        |****************************************|"
    linear = MapDump("lhist", True, HistShape(True, None), [(None, [0, 3])], 1)
    assert printed([linear]).splitlines()[1:] == [
        "         (unit) : count    distribution",
        "              0 : 0        |                                        |",
        "              1 : 3        |****************************************|",
        ""]
    empty = MapDump("infos", False, HistShape(False, "slots"), [(1, {"count": 2, "slots": [0, 0]}),
                                                               (2, {"slots": [0, 0]})], 2)
    assert printed([empty]) == "@infos[1]: count=2\n@infos[2]: (no samples)\n\n"


def test_a_bounded_map_says_how_many_it_left_out():
    dump = MapDump("sizes", False, None, [(1, 9), (3, 8)], 1000)
    assert printed([dump]).splitlines()[-2] == "@sizes: 998 more entries not shown (1000 in all, the 2 largest shown)"
    lines = [json.loads(line) for line in printed([dump], as_json=True).splitlines()]
    assert lines == [{"map": "sizes", "key": 1, "value": 9}, {"map": "sizes", "key": 3, "value": 8},
                     {"map": "sizes", "omitted": 998}]


def test_json_per_entry_with_the_time_of_periodic_rounds():
    dumps = [MapDump("sizes", False, None, [(1, 2)], 1), MapDump("total", True, None, [(None, 7)], 1),
             MapDump("hists", True, HistShape(False, "slots", True), [(3, {"slots": [1]})], 1)]
    lines = [json.loads(line) for line in printed(dumps, as_json=True, stamp="10:00:00").splitlines()]
    assert lines == [{"time": "10:00:00", "map": "sizes", "key": 1, "value": 2},
                     {"time": "10:00:00", "global": "total", "value": 7},
                     {"time": "10:00:00", "global": "hists", "key": 3, "value": {"slots": [1]}}]


def test_periodic_text_rounds_are_stamped_and_empty_rounds_print_nothing():
    assert printed([MapDump("n", True, None, [(None, 1)], 1)], stamp="10:00:00") == "10:00:00\n@n: 1\n\n"
    assert printed([], stamp="10:00:00") == ""
    assert printed([]) == ""


def test_names_and_strings_from_the_kernel_cannot_drive_the_terminal():
    dump = MapDump("m\x1b[2J", False, None, [("a\x1b]0;x\x07", {"comm": "\x1b[31mred"})], 1)
    text = printed([dump])
    assert "\x1b" not in text and "\x07" not in text
    assert text.startswith("@m\\x1b[2J[a\\x1b]0;x\\x07]: comm=\\x1b[31mred")
