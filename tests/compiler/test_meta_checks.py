"""ecc checks the catalogue's metadata (docs/writing-tools.md) when it builds:
@cmdarg convert, @positional, @histogram and @table. A mistake fails the
build in one line naming the comment's line; good metadata lands in the
package where ecli reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compiler.ecc_programs import compiler  # noqa: F401 - a fixture
from tests.e2e.helpers import run, temp_dir

pytestmark = pytest.mark.usefixtures("compiler")

HEADER = "#ifndef P_H\n#define P_H\nstruct hist { unsigned int slots[26]; };\n" \
         "struct stat_t { unsigned long long count; unsigned long long bytes; };\n#endif\n"


def source(program_doc: str = "", global_doc: str = "", global_decl: str = "const volatile unsigned int targ = 0;",
           map_doc: str = "", value: str = "struct hist") -> str:
    return f"""// SPDX-License-Identifier: GPL-2.0
/// A program to check metadata with.
{program_doc}
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "p.h"

/// A global
{global_doc}
{global_decl}
const volatile bool targ_ms = false;

{map_doc}
struct {{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, {value});
}} results SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{{
	__u32 k = targ + targ_ms;
	bpf_map_lookup_elem(&results, &k);
	return 0;
}}

char LICENSE[] SEC("license") = "GPL";
"""


def ecc(text: str) -> tuple[int, str, Path]:
    d = temp_dir()
    (d / "p.bpf.c").write_text(text)
    (d / "p.h").write_text(HEADER)
    done = run("ecc", str(d / "p.bpf.c"), str(d / "p.h"), "-o", str(d / "out"))
    return done.returncode, done.stderr, d / "out" / "package.json"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("kw", "decl", "says"), [
    ({"global_doc": '/// @cmdarg {"long": "x", "convert": "nope"}'}, "const volatile unsigned int targ",
     "@cmdarg convert: unknown converter 'nope': use one of cgroup, duration, bytes"),
    ({"global_doc": '/// @cmdarg {"long": "x", "convert": {"name": "duration", "unit": "days"}}'},
     "const volatile unsigned int targ", "@cmdarg convert: converter 'duration': unit must be one of ns, us, ms, s"),
    ({"global_doc": '/// @cmdarg {"long": "x", "convert": "signal"}',
      "global_decl": 'const volatile char targ_s[8] = "";\nconst volatile unsigned int targ = 0;'},
     "const volatile char targ_s", "@cmdarg convert gives a number, and 'targ_s' is char[8]: declare it as an integer"),
    ({"map_doc": '/// @histogram {"key": {"members": {"pid": {}}}}'}, "} results SEC",
     "@histogram of map 'results': key: 'members' needs a struct key"),
    ({"map_doc": '/// @histogram {"unit_option": {"targ": "msecs"}}'}, "} results SEC",
     "@histogram of map 'results': unit_option 'targ' is not a bool global of the program"),
    ({"map_doc": '/// @table {"sort": "total"}', "value": "struct stat_t"}, "} results SEC",
     "@table of map 'results': sort 'total' is not a member of the value (known: count, bytes)"),
    ({"map_doc": '/// @table {"key": {"header": "K", "decoder": "nosuch"}}', "value": "struct stat_t"},
     "} results SEC", "@table of map 'results': key: unknown decoder 'nosuch'"),
    ({"map_doc": '/// @table {"top": "nosuch"}', "value": "struct stat_t"}, "} results SEC",
     "@table of map 'results': top 'nosuch' is not an integer global of the program"),
    ({"map_doc": '/// @table {"columns": {"count": {"decoder": {"name": "percent", "of": "total"}}}}',
      "value": "struct stat_t"}, "} results SEC",
     "@table of map 'results': column 'count': 'total' is not another member of the value"),
    ({"map_doc": '/// @table {"columns": {"count": {"option": {"nosuch": {"header": "N"}}}}}',
      "value": "struct stat_t"}, "} results SEC",
     "@table of map 'results': option 'nosuch' of 'count' is not a bool global"),
])
def test_mistakes_fail_the_build_naming_the_line(kw: dict[str, str], decl: str, says: str):
    text = source(**kw)
    status, err, _ = ecc(text)
    assert status != 0
    assert f"p.bpf.c:{line_of(text, decl)}: {says}" in err, err


def test_a_positional_name_must_be_the_runners_or_a_global():
    text = source(program_doc='/// @positional ["interval", "rounds"]')
    status, err, _ = ecc(text)
    assert status != 0
    assert "@positional 'rounds' is neither interval nor count nor duration nor a const volatile global" in err


@pytest.mark.parametrize(("doc", "says"), [
    ('/// @resize {"map": "nosuch"}', "@resize names map 'nosuch', which the program does not have"),
    ('/// @resize {"map": "results", "value_size": 0}', "@resize 'value_size' must be a positive number"),
    ('/// @resize "results"', '@resize needs a JSON object such as {"map": "stackmap"}'),
])
def test_a_resize_names_a_map_of_the_program(doc: str, says: str):
    status, err, _ = ecc(source(global_doc=doc))
    assert status != 0 and says in err, err


@pytest.mark.parametrize(("doc", "says"), [
    ('/// @runner {"elapsed": "T"}', "@runner 'elapsed' needs one letter or digit, other than h, e, T, v, V"),
    ('/// @runner {"verbose": "q"}', "@runner 'verbose' is not one of extended, timestamp, elapsed, detailed"),
    ('/// @runner {"elapsed": "t", "duration": "t"}', "@runner gives one short name twice"),
])
def test_runner_short_names_are_checked(doc: str, says: str):
    status, err, _ = ecc(source(program_doc=doc))
    assert status != 0 and says in err, err


def test_good_metadata_lands_in_the_package():
    text = source(program_doc='/// @positional ["interval", "count", "targ"]',
                  global_doc='/// @cmdarg {"short": "s", "long": "sig", "metavar": "SIG", "convert": "signal"}',
                  map_doc='/// @histogram {"unit": "usecs", "unit_option": {"targ_ms": "msecs"}, '
                          '"key": {"header": "k", "decoder": "errno"}, "clear": true}')
    status, err, path = ecc(text)
    assert status == 0, err
    skel = json.loads(path.read_text())["meta"]["bpf_skel"]
    assert skel["doc"]["positional"] == ["interval", "count", "targ"]
    assert skel["doc"]["description"] == "A program to check metadata with."
    targ = next(v for s in skel["data_sections"] for v in s["variables"] if v["name"] == "targ")
    assert targ["cmdarg"] == {"convert": "signal", "long": "sig", "metavar": "SIG", "short": "s"}
    results = next(m for m in skel["maps"] if m["name"] == "results")
    assert results["histogram"] == {"clear": True, "key": {"decoder": "errno", "header": "k"}, "unit": "usecs",
                                    "unit_option": {"targ_ms": "msecs"}}
