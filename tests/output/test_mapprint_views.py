"""Maps with @histogram or @table printed (output/mapprint.py): per-key
headers decoded, units, tables aligned, sorted as the dump gave them and
ending with what was cut; JSON with key_text, unit and NAME_text."""

from __future__ import annotations

import io
import json

from pyeunomia.format.mapmeta import HISTOGRAM, TABLE, Column, MapView, shown
from pyeunomia.format.mapshape import HistShape, MapDump
from pyeunomia.output.mapprint import MapPrinter, make_decoder


def printed(dump: MapDump, as_json: bool = False) -> str:
    out = io.BytesIO()
    MapPrinter(out, as_json).write_dumps([dump], None)
    return out.getvalue().decode()


HIST = MapView(HISTOGRAM, key=(Column("pid", "pid"), Column("comm", "comm")), unit="usecs",
               shape=HistShape(False, "slots"))
HIST_DUMP = MapDump("hists", False, HIST.shape, [({"pid": 12, "comm": "bash"}, {"slots": [0, 3, 1]})], 1,
                    HIST, "msecs")
TABLE_VIEW = MapView(TABLE, key=(Column(None, "ERR", "errno"),), sort="count", top=2,
                     columns=(Column("count", "COUNT"), Column("ret", "LAST", "errno")))
TABLE_DUMP = MapDump("errs", False, None, [(9, {"count": 120, "ret": -9}), (2, {"count": 7, "ret": -2})], 5,
                     TABLE_VIEW)


def test_a_per_key_histogram_is_headed_by_its_key_and_unit():
    assert printed(HIST_DUMP) == (
        "\npid = 12, comm = bash:\n"
        "     msecs               : count    distribution\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 3        |****************************************|\n"
        "         4 -> 7          : 1        |*************                           |\n\n")


def test_a_table_is_aligned_decoded_and_says_what_was_cut():
    assert printed(TABLE_DUMP) == ("ERR    COUNT LAST\n"
                                   "EBADF    120 EBADF\n"
                                   "ENOENT     7 ENOENT\n"
                                   "(the top 2 of 5 rows)\n\n")


def test_json_adds_the_decoded_text():
    lines = [json.loads(line) for line in printed(TABLE_DUMP, as_json=True).splitlines()]
    assert lines == [{"map": "errs", "key": 9, "value": {"count": 120, "ret": -9}, "key_text": "EBADF",
                      "ret_text": "EBADF"},
                     {"map": "errs", "key": 2, "value": {"count": 7, "ret": -2}, "key_text": "ENOENT",
                      "ret_text": "ENOENT"},
                     {"map": "errs", "omitted": 3}]
    (hist,) = [json.loads(line) for line in printed(HIST_DUMP, as_json=True).splitlines()]
    assert hist["key_text"] == "pid = 12, comm = bash" and hist["unit"] == "msecs"


def test_a_table_without_columns_shows_every_member():
    view = MapView(TABLE)
    dump = MapDump("t", False, None, [(3, {"count": 1, "bytes": 20})], 1, view)
    assert printed(dump) == "KEY COUNT BYTES\n3       1    20\n\n"


def test_a_decoder_this_pyeunomia_lacks_shows_the_value_as_it_is():
    assert make_decoder("no-such-decoder")(42) == 42
    assert make_decoder({"name": "static_map", "map": {"1": "one"}})(1) == "one"


def test_when_leaves_out_the_key_and_columns_of_options_not_given():
    view = HIST._replace(key=(Column("pid", "pid", when=("targ_per_process",)), Column("comm", "comm", when=("x",))))
    assert shown(view, {}).key_hidden and shown(view, {}).key == ()
    hidden = HIST_DUMP._replace(view=shown(view, {"targ_per_process": False}))
    assert printed(hidden) == (
        "\n     msecs               : count    distribution\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 3        |****************************************|\n"
        "         4 -> 7          : 1        |*************                           |\n\n")
    (line,) = [json.loads(x) for x in printed(hidden, as_json=True).splitlines()]
    assert "key_text" not in line and line["key"] == {"pid": 12, "comm": "bash"}  # raw key kept in -j
    one = shown(view, {"x": True, "targ_per_process": False})
    assert not one.key_hidden and printed(HIST_DUMP._replace(view=one)).startswith("\ncomm = bash:\n")
    table = TABLE_VIEW._replace(columns=(Column("count", "COUNT"), Column("ret", "LAST", "errno", ("a", "b"))))
    assert printed(TABLE_DUMP._replace(view=shown(table, {}))).startswith("ERR    COUNT\nEBADF    120\n")
    assert printed(TABLE_DUMP._replace(view=shown(table, {"b": True}))).startswith("ERR    COUNT LAST\n")
    unless = TABLE_VIEW._replace(columns=(Column("count", "COUNT"), Column("ret", "LAST", "errno", ("!only",))))
    assert printed(TABLE_DUMP._replace(view=shown(unless, {"only": True}))).startswith("ERR    COUNT\n")
    assert printed(TABLE_DUMP._replace(view=shown(unless, {}))).startswith("ERR    COUNT LAST\n")
    keyless = shown(table._replace(key=(Column(None, "ERR", "errno", ("a",)),)), {"b": True})
    assert printed(TABLE_DUMP._replace(view=keyless)).startswith("COUNT LAST\n  120 EBADF\n")
