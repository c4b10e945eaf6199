"""Doc comments on programs and maps become keys of their package entries,
as upstream's ecc writes them (tchook, tcopts, ifindex, flags, xdpopts,
sample, anything else), checked where the runner reads them."""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any, ClassVar

import pytest

from pyeunomia.compiler import progdocs
from pyeunomia.compiler.clangast import top_level_decls
from pyeunomia.compiler.docs import collect
from pyeunomia.errors import CompileError

TC_SOURCE = """\
#define SEC(name) __attribute__((section(name), used))
struct __sk_buff;
/// @tchook {"ifindex":1, "attach_point":"BPF_TC_INGRESS"}
/// @tcopts {"handle":1, "priority":1}
SEC("tc")
int tc_ingress(struct __sk_buff *ctx) { return 0; }

/// Counts egress packets
/// @tchook {"attach_point": "BPF_TC_EGRESS",
///          "ifindex": 3}
SEC("tc")
int tc_egress(struct __sk_buff *ctx) { return 0; }

/// @ifindex 1
/// @flags 0
/// @xdpopts {"old_prog_fd":0}
SEC("xdp")
int xdp_pass(void *ctx) { return 0; }

int no_comment(void *ctx) { return 0; }

/// @intepreter {"stack_trace": {}}
struct { int type; } stacks SEC(".maps");
"""


def test_comments_on_functions_and_maps_through_real_clang(tool, tmp_path):
    """What clang attaches to the functions (under SEC() attributes) and to a
    map's struct, exactly as upstream's tc and xdp examples write them."""
    src = tmp_path / "p.bpf.c"
    src.write_text(TC_SOURCE)
    ast = subprocess.run([tool("clang"), "-fsyntax-only", "-Xclang", "-ast-dump=json", str(src)],
                         capture_output=True, check=True).stdout
    docs = collect(top_level_decls(json.loads(ast)), lambda f: f == str(src), None, "p.bpf.c")
    assert docs.functions == {
        "tc_ingress": ({"tchook": {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"},
                        "tcopts": {"handle": 1, "priority": 1}}, 6),
        "tc_egress": ({"description": "Counts egress packets",
                       "tchook": {"attach_point": "BPF_TC_EGRESS", "ifindex": 3}}, 12),
        "xdp_pass": ({"ifindex": 1, "flags": 0, "xdpopts": {"old_prog_fd": 0}}, 18),
    }
    assert docs.variables == {"stacks": ({"intepreter": {"stack_trace": {}}}, 23)}


def skel() -> dict[str, Any]:
    return {"progs": [{"attach": "tc", "link": True, "name": "tc_one"},
                      {"attach": "xdp", "link": True, "name": "xdp_one"}],
            "maps": [{"ident": "events", "name": "events"}, {"ident": "rodata", "mmaped": True, "name": "p.rodata"}]}


class Spec:
    """Just the programs' sections, as ObjectSpec gives them."""

    class Prog:
        def __init__(self, name: str, section: str):
            self.name, self.section = name, section

    programs: ClassVar[list[Prog]] = [Prog("tc_one", "tc"), Prog("xdp_one", "xdp")]


def docs(functions: dict[str, dict[str, Any]], variables: dict[str, dict[str, Any]] | None = None) -> Any:
    from pyeunomia.compiler.docs import SourceDocs

    return SourceDocs("p.bpf.c", {k: (v, 9) for k, v in (variables or {}).items()},
                      functions={k: (v, 7) for k, v in functions.items()})


def test_keys_go_into_the_entries_unchanged():
    s = skel()
    progdocs.apply(s, Spec(), docs(  # type: ignore[arg-type]
        {"tc_one": {"tchook": {"attach_point": "BPF_TC_EGRESS"}, "tcopts": {"handle": 2, "priority": 3},
                    "description": "one"},
         "xdp_one": {"ifindex": 2, "flags": 2, "xdpopts": {"old_prog_fd": 0}, "custom": [1, 2]}},
        {"events": {"description": "the ring", "intepreter": "default_struct"}}))
    assert s["progs"] == [
        {"attach": "tc", "link": True, "name": "tc_one", "tchook": {"attach_point": "BPF_TC_EGRESS"},
         "tcopts": {"handle": 2, "priority": 3}, "description": "one"},
        {"attach": "xdp", "link": True, "name": "xdp_one", "ifindex": 2, "flags": 2, "xdpopts": {"old_prog_fd": 0},
         "custom": [1, 2]}]
    assert s["maps"][0] == {"ident": "events", "name": "events", "description": "the ring",
                            "intepreter": "default_struct"}
    assert s["maps"][1] == {"ident": "rodata", "mmaped": True, "name": "p.rodata"}


@pytest.mark.parametrize(("keys", "says"), [
    ({"tchook": {"attach_point": "BPF_TC_SIDEWAYS"}},
     "p.bpf.c:7: tc_one.tchook: 'attach_point' must be one of BPF_TC_INGRESS, BPF_TC_EGRESS, BPF_TC_CUSTOM: "
     "fix the doc comment"),
    ({"tchook": "ingress"}, "p.bpf.c:7: tc_one: 'tchook' must be an object: fix the doc comment"),
    ({"tcopts": {"priority": 70000}}, "p.bpf.c:7: tc_one.tcopts: 'priority' must be an integer from 0 to 65535"),
    ({"tchook": {"ifindex": 0}}, "p.bpf.c:7: tc_one.tchook: 'ifindex' must be an integer from 1 to 2147483647"),
    ({"ifindex": "lo"}, "p.bpf.c:7: tc_one: 'ifindex' must be an integer from 1 to 2147483647"),
    ({"flags": 0x100}, "p.bpf.c:7: tc_one: 'flags' has bits no XDP_FLAGS_* names (0x100)"),
    ({"xdpopts": {"old_prog_fd": -1}}, "p.bpf.c:7: tc_one.xdpopts: 'old_prog_fd' must be an integer from 0"),
    ({"name": "other"}, "p.bpf.c:7: @name would change the program 'tc_one''s own 'name' in the package: "
                        "remove it from the doc comment"),
    ({"attach": "kprobe/x"}, "@attach would change the program 'tc_one''s own 'attach'"),
])
def test_bad_program_keys_name_the_line(keys: dict[str, Any], says: str):
    with pytest.raises(CompileError) as e:
        progdocs.apply(skel(), Spec(), docs({"tc_one": keys}))  # type: ignore[arg-type]
    assert says in str(e.value)


@pytest.mark.parametrize(("keys", "says"), [
    ({"sample": {"interval": 0}}, "p.bpf.c:9: @sample needs \"interval\""),
    ({"internal": 3}, "p.bpf.c:9: @internal takes no value (or true/false): it marks map 'events' as state"),
    ({"ident": "x"}, "p.bpf.c:9: @ident would change the map 'events''s own 'ident'"),
])
def test_bad_map_keys_name_the_line(keys: dict[str, Any], says: str):
    with pytest.raises(CompileError) as e:
        progdocs.apply(skel(), Spec(), docs({}, {"events": keys}))  # type: ignore[arg-type]
    assert says in str(e.value)


def test_a_key_for_another_program_type_is_kept_with_a_warning(caplog):
    s = skel()
    with caplog.at_level(logging.WARNING, "pyeunomia.ecc"):
        progdocs.apply(s, Spec(), docs({"xdp_one": {"tchook": {"ifindex": 1}},  # type: ignore[arg-type]
                                        "tc_one": {"flags": 2}}))
    assert s["progs"][1]["tchook"] == {"ifindex": 1} and s["progs"][0]["flags"] == 2
    assert sorted(r.getMessage() for r in caplog.records) == [
        'p.bpf.c:7: warning: @flags is read for xdp programs only, and \'tc_one\' is SEC("tc"): it is kept but '
        "does nothing",
        'p.bpf.c:7: warning: @tchook is read for tc programs only, and \'xdp_one\' is SEC("xdp"): it is kept but '
        "does nothing"]
