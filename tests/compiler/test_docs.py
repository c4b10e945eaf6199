"""Doc comments: clang's comment tree to metadata keys, and where they apply."""

from __future__ import annotations

import json
import subprocess

import pytest

from pyeunomia.compiler.clangast import Decl, top_level_decls
from pyeunomia.compiler.docs import check_cmdarg, check_program_doc, check_sample, collect, comment_keys
from pyeunomia.errors import CompileError


def text(t: str) -> dict[str, object]:
    return {"kind": "TextComment", "text": t}


def inline(name: str) -> dict[str, object]:
    return {"kind": "InlineCommandComment", "name": name}


def para(*parts: dict[str, object]) -> dict[str, object]:
    return {"kind": "ParagraphComment", "inner": list(parts)}


def full(*children: dict[str, object]) -> dict[str, object]:
    return {"kind": "FullComment", "inner": list(children)}


def test_plain_lines_are_one_description():
    assert comment_keys(full(para(text(" Process ID"), text(" to trace ")))) == {"description": "Process ID to trace"}


def test_command_takes_the_rest_of_its_paragraph_as_json():
    keys = comment_keys(full(para(text(" pid to trace"), text(" "), inline("cmdarg"),
                                  text(' {"short": "p",'), text('  "long": "pid"}'))))
    assert keys == {"description": "pid to trace", "cmdarg": {"short": "p", "long": "pid"}}


def test_unknown_command_without_json_is_text_and_bare_command_is_true():
    keys = comment_keys(full(para(inline("unit"), text(" nanoseconds")), para(inline("hidden"))))
    assert keys == {"unit": "nanoseconds", "hidden": True}


def test_block_commands_and_paragraphs():
    keys = comment_keys(full(
        para(text(" First paragraph.")),
        para(text(" Second one.")),
        {"kind": "BlockCommandComment", "name": "brief", "inner": [para(text(" short"), text(" text "))]},
        {"kind": "BlockCommandComment", "name": "version", "inner": [para(text(" 1.0"))]},
    ))
    assert keys == {"description": "First paragraph. Second one.", "brief": "short text", "version": "1.0"}


def test_description_stays_a_string_even_if_it_looks_like_json():
    assert comment_keys(full(para(text(" 1000")))) == {"description": "1000"}


def decl(kind: str, name: str, begin: int, comment: dict[str, object] | None, file: str = "p.c") -> Decl:
    return Decl(kind, name, file, begin // 10 + 1, begin, comment=comment)


def test_collect_takes_map_comments_from_their_struct_and_program_doc_from_license():
    sample = full(para(inline("sample"), text(' {"interval": 1000}')))
    decls = [
        decl("VarDecl", "in_header", 0, full(para(text(" not ours"))), file="x.h"),
        decl("VarDecl", "knob", 10, full(para(text(" a knob")))),
        decl("RecordDecl", "", 20, sample),
        decl("VarDecl", "hists", 20, None),
        decl("RecordDecl", "", 40, full(para(text(" elsewhere")))),
        decl("VarDecl", "not_its_struct", 50, None),
        decl("VarDecl", "LICENSE", 60, full(para(text(" What it does.")))),
    ]
    top = full(para(text(" From the top.")),
               {"kind": "BlockCommandComment", "name": "brief", "inner": [para(text(" top brief"))]})
    docs = collect(decls, lambda f: f == "p.c", top, "p.c")
    assert docs.variables == {"knob": ({"description": "a knob"}, 2), "hists": ({"sample": {"interval": 1000}}, 3)}
    assert docs.program == {"description": "What it does.", "brief": "top brief"}
    assert docs.program_line == 7


@pytest.mark.parametrize(("value", "message"), [
    ("pid", "needs a JSON object"),
    ({"short": "pid"}, "single character"),
    ({"short": 1}, "'short' must be a string"),
    ({"long": "--pid"}, "without dashes"),
    ({"help": 5}, "'help' must be a string"),
])
def test_bad_cmdarg_names_the_place(value, message):
    with pytest.raises(CompileError, match=message) as e:
        check_cmdarg(value, "p.c:7")
    assert str(e.value).startswith("p.c:7: @cmdarg")


@pytest.mark.parametrize(("value", "message"), [
    ([1000], "needs a JSON object"),
    ({"type": "log2_hist"}, "interval"),
    ({"interval": 0}, "interval"),
    ({"interval": 10, "type": "pie"}, "not one of"),
])
def test_bad_sample_names_the_place(value, message):
    with pytest.raises(CompileError, match=message):
        check_sample(value, "p.c:9")


def test_good_cmdarg_and_sample_pass():
    assert check_cmdarg({"short": "p", "long": "pid", "default": 0, "help": "x"}, "w") == {
        "short": "p", "long": "pid", "default": 0, "help": "x"}
    assert check_sample({"interval": 5, "type": "log2_hist"}, "w") == {"interval": 5, "type": "log2_hist"}


def test_program_doc_strings():
    assert check_program_doc({"description": "x", "version": "", "flag": True}, "w") == {
        "description": "x", "flag": True}


def test_comments_through_real_clang(tool, tmp_path):
    clang = tool("clang")
    src = tmp_path / "p.c"
    src.write_text(
        "/// target pid\n/// @cmdarg {\"default\": 0, \"short\": \"p\",\n///   \"long\": \"pid\"}\n"
        "const volatile int targ_pid = 0;\n"
        "// an ordinary comment is not documentation\nconst volatile int quiet = 0;\n"
        "/** Block style\n * @brief short\n * @details longer text\n */\nchar LICENSE[] = \"GPL\";\n")
    ast = subprocess.run([clang, "-fsyntax-only", "-Xclang", "-ast-dump=json", str(src)],
                         capture_output=True, check=True).stdout
    docs = collect(top_level_decls(json.loads(ast)), lambda f: f == str(src), None, "p.c")
    assert docs.variables == {"targ_pid": ({"description": "target pid",
                                            "cmdarg": {"default": 0, "short": "p", "long": "pid"}}, 4)}
    assert docs.program == {"description": "Block style", "brief": "short", "details": "longer text"}


def test_the_programs_description_is_its_first_paragraph_and_the_rest_are_details():
    from pyeunomia.compiler.docs import program_comment_keys

    keys = program_comment_keys(full(
        para(text(" Trace kills."), text(" Who sent what."), inline("positional"), text(' ["interval"]')),
        para(text(" How it works.")),
        {"kind": "BlockCommandComment", "name": "version", "inner": [para(text(" 1.0"))]},
        para(text(" Why.")),
    ))
    assert keys == {"description": "Trace kills. Who sent what.", "positional": ["interval"], "version": "1.0",
                    "details": "How it works.\n\nWhy."}
    keys = program_comment_keys(full(
        para(text(" One.")), para(text(" Two.")),
        {"kind": "BlockCommandComment", "name": "details", "inner": [para(text(" Given."))]}))
    assert keys == {"description": "One.", "details": "Given.\n\nTwo."}
