"""Struct members' doc comments (`/// @column`): found by clang on FieldDecls
(of the header's structs too), written as export_types[].members[].column,
and checked with the line of the comment."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from pyeunomia.compiler.clangast import top_level_decls
from pyeunomia.compiler.docs import SourceDocs, collect
from pyeunomia.compiler.meta import member_columns
from pyeunomia.errors import CompileError
from pyeunomia.format.btf import Btf
from tests.btfbuilder import ENC_SIGNED, BtfBuilder

HEADER = """struct event {
	/// @column {"header": "PCOMM", "width": 16}
	char comm[16];
	/// The pid
	/// @column {"header": "PID"}
	unsigned int pid;
	unsigned long long other; /* an ordinary comment */
	union {
		/// @column {"decoder": "errno"}
		int err;
		long raw;
	};
};
"""


def test_member_comments_through_real_clang(tool, tmp_path):
    clang = tool("clang")
    (tmp_path / "p.h").write_text(HEADER)
    src = tmp_path / "p.c"
    src.write_text('#include "p.h"\nstruct event *e;\n')
    ast = subprocess.run([clang, "-fsyntax-only", "-Xclang", "-ast-dump=json", str(src)],
                         capture_output=True, check=True).stdout
    decls = top_level_decls(json.loads(ast))
    docs = collect(decls, lambda f: f == str(src), None, "p.c")  # the struct is in the header: found all the same
    header = str(tmp_path / "p.h")
    assert docs.members == {"event": {
        "comm": ({"column": {"header": "PCOMM", "width": 16}}, f"{header}:2"),
        "pid": ({"description": "The pid", "column": {"header": "PID"}}, f"{header}:4"),
        "err": ({"column": {"decoder": "errno"}}, f"{header}:9"),  # in an anonymous union: the struct's own
    }}


def spec_and_meta() -> tuple[Any, dict[str, Any]]:
    b = BtfBuilder()
    char = b.int("char", 1, ENC_SIGNED)
    u32 = b.int("unsigned int", 4)
    u16 = b.int("unsigned short", 2)
    b.struct("event", 24, [("comm", b.array(char, 16), 0), ("pid", u32, 128), ("af", u16, 160)])
    spec = SimpleNamespace(btf=Btf.parse(b.build()))
    meta = {"export_types": [{"name": "event", "members": [{"name": "comm"}, {"name": "pid"}, {"name": "af"}]}]}
    return spec, meta


def docs_with(**members: dict[str, Any]) -> SourceDocs:
    docs = SourceDocs("p.bpf.c")
    docs.members["event"] = {name: (keys, f"p.h:{n + 3}") for n, (name, keys) in enumerate(members.items())}
    return docs


def test_columns_are_written_next_to_upstreams_keys():
    spec, meta = spec_and_meta()
    member_columns(meta, spec, docs_with(comm={"column": {"header": "COMM"}}, pid={"description": "x"},
                                         af={"column": True}))
    assert meta["export_types"][0]["members"] == [{"name": "comm", "column": {"header": "COMM"}}, {"name": "pid"},
                                                  {"name": "af", "column": {}}]


@pytest.mark.parametrize(("column", "message"), [
    ({"decoder": "nope"}, "p.h:3: member 'pid': unknown decoder 'nope'"),
    ({"decoder": {"name": "duration", "unit": "h"}}, "p.h:3: member 'pid': unit: expected one of ns, us, ms, s"),
    ({"decoder": {"name": "port", "net": True}}, "p.h:3: member 'pid': decoder port has no parameter 'net'"),
    ({"decoder": {"name": "inet", "family": "family"}}, "p.h:3: member 'pid': decoder inet: 'family' is not "
                                                        "another member"),
    ({"width": "wide"}, "p.h:3: member 'pid': @column 'width' must be a whole number"),
    ("PID", "p.h:3: member 'pid': @column needs a JSON object"),
])
def test_bad_columns_name_the_line(column, message):
    spec, meta = spec_and_meta()
    with pytest.raises(CompileError) as e:
        member_columns(meta, spec, docs_with(pid={"column": column}))
    assert str(e.value).startswith(message)


def test_a_decoder_that_cannot_take_the_members_values():
    spec, meta = spec_and_meta()
    with pytest.raises(CompileError, match=r"p\.h:3: member 'comm': decoder signal takes int values, and comm "
                                           r"holds str values"):
        member_columns(meta, spec, docs_with(comm={"column": {"decoder": "signal"}}))
    spec, meta = spec_and_meta()
    member_columns(meta, spec, docs_with(pid={"column": {"decoder": {"name": "inet", "family": "af"}}}))
    assert meta["export_types"][0]["members"][1]["column"] == {"decoder": {"name": "inet", "family": "af"}}
