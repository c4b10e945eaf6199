"""Reading clang's JSON AST and raw-token dumps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pyeunomia.compiler.clangast import SameFile, leading_comment_end, top_level_decls


def loc(offset: int, **extra: object) -> dict[str, object]:
    return {"offset": offset, "col": 1, "tokLen": 1, **extra}


def test_files_follow_clangs_elision_rules():
    """clang writes "file" only when it changes, anywhere in the document."""
    ast = {"kind": "TranslationUnitDecl", "inner": [
        {"id": "1", "kind": "TypedefDecl", "loc": {}, "isImplicit": True, "name": "__int128_t"},
        {"id": "2", "kind": "RecordDecl", "loc": loc(10, file="/h/event.h", line=3,
                                                     includedFrom={"file": "main.c"}),
         "range": {"begin": loc(10), "end": loc(40, line=5)}, "name": "event", "tagUsed": "struct",
         "completeDefinition": True},
        {"id": "3", "kind": "VarDecl", "loc": loc(90, file="main.c", line=9),
         "range": {"begin": loc(80), "end": {"spellingLoc": loc(5, file="/h/macros.h", line=1),
                                            "expansionLoc": loc(99, file="main.c", line=9)}},
         "name": "knob", "inner": [{"kind": "IntegerLiteral", "range": {"begin": loc(98), "end": loc(98)}}]},
        # no "file": still main.c, because the last location written was main.c's expansion
        {"id": "4", "kind": "FunctionDecl", "loc": loc(120, line=12), "range": {"begin": loc(110), "end": loc(200)},
         "name": "handler", "inner": [{"kind": "CallExpr", "range": {
             "begin": {"spellingLoc": loc(7, file="/h/macros.h", line=2),
                       "expansionLoc": loc(150, file="main.c", line=13)},
             "end": loc(30, file="/h/macros.h", line=3)}}]},
        # no "file": the last one written was inside handler's body, in macros.h
        {"id": "5", "kind": "VarDecl", "loc": loc(60, line=4), "range": {"begin": loc(60), "end": loc(61)},
         "name": "from_macro_header"},
    ]}
    decls = top_level_decls(ast)
    assert [(d.name, d.file, d.line) for d in decls] == [
        ("event", "/h/event.h", 3), ("knob", "main.c", 9), ("handler", "main.c", 12),
        ("from_macro_header", "/h/macros.h", 4)]
    assert decls[0].kind == "RecordDecl" and decls[0].complete and decls[0].tag == "struct"
    assert decls[1].begin == 80


def test_macro_location_uses_the_expansion():
    ast = {"kind": "TranslationUnitDecl", "inner": [
        {"kind": "FunctionDecl", "loc": {"spellingLoc": loc(3, file="<scratch space>", line=1),
                                         "expansionLoc": loc(70, file="prog.c", line=8)},
         "range": {"begin": {"spellingLoc": loc(1, file="/usr/include/bpf/bpf_tracing.h", line=400),
                             "expansionLoc": loc(66, file="prog.c", line=8)}, "end": loc(90)},
         "name": "BPF_PROG_handler"}]}
    (decl,) = top_level_decls(ast)
    assert (decl.file, decl.line, decl.begin) == ("prog.c", 8, 66)


def test_not_a_translation_unit():
    with pytest.raises(ValueError):
        top_level_decls({"kind": "VarDecl"})


def test_leading_comment_end_from_raw_tokens():
    source = b"// SPDX\n/* it's 'quoted'\tLoc=<x:1:1> */\n/// doc\n#include <x.h>\nint y;\n"
    raw = ("comment '// SPDX'\t [StartOfLine]\tLoc=<p.c:1:1>\nunknown '\n'\t\tLoc=<p.c:1:8>\n"
           "comment '/* it's 'quoted'\tLoc=<x:1:1> */'\t [StartOfLine]\tLoc=<p.c:2:1>\n"
           "unknown '\n'\t\tLoc=<p.c:2:39>\n"
           "comment '/// doc'\t [StartOfLine]\tLoc=<p.c:3:1>\nunknown '\n'\t\tLoc=<p.c:3:8>\n"
           "hash '#'\t [StartOfLine]\tLoc=<p.c:4:1>\nraw_identifier 'include'\t\tLoc=<p.c:4:2>\n")
    end = leading_comment_end(raw, "p.c", source)
    assert source[end:].startswith(b"#include")
    assert leading_comment_end("", "p.c", b"/* only */") == len(b"/* only */")


def test_same_file_matches_other_spellings(tmp_path):
    (tmp_path / "sub").mkdir()
    header = tmp_path / "event.h"
    header.write_text("struct event { int x; };\n")
    same = SameFile(header)
    assert same(str(header))
    assert same(str(tmp_path / "sub" / ".." / "event.h"))
    assert not same(str(tmp_path / "sub"))
    assert not same("/no/such/file.h")


def test_with_real_clang(tool, tmp_path):
    clang = tool("clang")
    (tmp_path / "event.h").write_text("struct event { int pid; };\nstruct fwd_only;\n")
    src = tmp_path / "prog.c"
    src.write_text('#include "event.h"\n#define DECLARE(name) int name\n/// the knob\nDECLARE(knob);\n'
                   "/// @sample {\"interval\": 5}\nstruct { int a; } amap;\n/// plain\nint plain;\n")
    out = subprocess.run([clang, "-fsyntax-only", "-Xclang", "-ast-dump=json", str(src)],
                         capture_output=True, check=True).stdout
    decls = [d for d in top_level_decls(json.loads(out)) if Path(d.file).name in ("prog.c", "event.h")]
    assert [(Path(d.file).name, d.kind, d.name) for d in decls] == [
        ("event.h", "RecordDecl", "event"), ("event.h", "RecordDecl", "fwd_only"),
        ("prog.c", "VarDecl", "knob"), ("prog.c", "RecordDecl", ""), ("prog.c", "VarDecl", "amap"),
        ("prog.c", "VarDecl", "plain")]
    assert decls[0].complete and not decls[1].complete
    assert decls[2].line == 4
    assert decls[2].comment is None  # clang attaches no comment to a declaration a macro expands to
    assert decls[3].comment is not None and decls[3].begin == decls[4].begin  # a map's comment: on its struct
    assert decls[5].comment is not None
