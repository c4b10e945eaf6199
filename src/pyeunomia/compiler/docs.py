"""Doc comments (`///`, `/** */`) as package metadata.

clang parses the comments (Doxygen syntax) and attaches them to declarations;
this module turns clang's comment tree into the keys upstream ecc writes:

    /// Process ID to trace                    -> "description": "Process ID to trace"
    /// @cmdarg {"short": "p", "long": "pid"}  -> "cmdarg": {"short": "p", "long": "pid"}
    /// @sample {"interval": 1000}             -> "sample": {"interval": 1000}
    /// @brief / @details / @version text      -> "brief" / "details" / "version": "text"

Text after an unknown @command belongs to that command up to the end of the
paragraph and is read as JSON when it parses as JSON. Unlike upstream (where
each line overwrites the previous one), lines of one key are joined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..converters import converter_of
from ..errors import CompileError, PackageError
from ..format import stacks
from ..format.package import SAMPLE_TYPES
from .clangast import Decl, Node

DESCRIPTION = "description"
STRING_KEYS = (DESCRIPTION, "brief", "details", "version")
CMDARG_KEYS: dict[str, type | tuple[type, ...]] = {"short": str, "long": str, "help": str, "metavar": str,
                                                   "convert": (str, dict)}


def _text_of(node: Node) -> list[str]:
    """The text pieces under a comment node, in order."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.get("kind") == "TextComment":
            out.append(n.get("text", ""))
        stack.extend(reversed(n.get("inner", [])))
    return out


def _joined(pieces: list[str]) -> str:
    return " ".join(p.strip() for p in pieces if p.strip())


def _value(text: str) -> Any:
    if not text:
        return True  # a bare "@flag"
    try:
        return json.loads(text)
    except ValueError:
        return text


def comment_keys(full: Node) -> dict[str, Any]:
    """The keys one FullComment gives, in the order they appear."""
    out: dict[str, Any] = {}

    def put(key: str, pieces: list[str]) -> None:
        text = _joined(pieces)
        if key in STRING_KEYS:
            if text:
                out[key] = f"{out[key]} {text}" if isinstance(out.get(key), str) else text
        else:
            out[key] = _value(text)

    for child in full.get("inner", []):
        kind = child.get("kind")
        if kind == "ParagraphComment":
            key, pieces = DESCRIPTION, list[str]()
            for part in child.get("inner", []):
                if part.get("kind") == "InlineCommandComment":
                    if key != DESCRIPTION or _joined(pieces):
                        put(key, pieces)
                    key, pieces = part.get("name", ""), list[str]()
                else:
                    pieces.extend(_text_of(part))
            if key != DESCRIPTION or _joined(pieces):
                put(key, pieces)
        elif kind in ("BlockCommandComment", "ParamCommandComment", "TParamCommandComment"):
            out[child.get("name", "")] = _joined(_text_of(child))
        elif kind in ("VerbatimLineComment", "VerbatimBlockComment"):
            # a bare `@internal` (Doxygen's \internal ... \endinternal block, which
            # swallows the rest of the comment) is a flag
            text = child.get("text", "").strip()
            out[child.get("name", "")] = text or True
    return out


def program_comment_keys(full: Node) -> dict[str, Any]:
    """The keys of the comment at the top of the file: as comment_keys, but
    only the first paragraph is the description (docs/writing-tools.md: its
    first sentence is what `ecli list` shows, it heads `--help`); the
    paragraphs after it are the details, which --help prints at its end with
    their paragraphs kept."""
    out: dict[str, Any] = {}
    rest: list[str] = []
    for child in full.get("inner", []):
        keys = comment_keys({"kind": "FullComment", "inner": [child]})
        text = keys.pop(DESCRIPTION, None)
        if text:
            if DESCRIPTION in out:
                rest.append(text)
            else:
                out[DESCRIPTION] = text
        for key, value in keys.items():
            joined = key in STRING_KEYS and isinstance(out.get(key), str) and isinstance(value, str)
            out[key] = f"{out[key]} {value}" if joined else value
    if rest:
        extra = "\n\n".join(rest)
        out["details"] = f"{out['details']}\n\n{extra}" if isinstance(out.get("details"), str) else extra
    return out


@dataclass
class SourceDocs:
    """Doc comments of one source file, by declaration name."""

    file: str
    variables: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)  # name -> (keys, line)
    program: dict[str, Any] = field(default_factory=dict)
    program_line: int = 0
    functions: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)  # BPF programs' comments
    # struct name -> member name -> (keys, "file:line"): members' comments, in the source or any header
    members: dict[str, dict[str, tuple[dict[str, Any], str]]] = field(default_factory=dict)


def collect(decls: list[Decl], in_source: Any, file_doc: Node | None, file_label: str) -> SourceDocs:
    """Doc comments on the source file's top-level variables and functions.

    A map's comment sits above `struct { ... } name SEC(".maps")`, so clang
    attaches it to the anonymous struct that starts where the variable does;
    it is taken for the variable. The program's description comes from the
    comment at the top of the file, overridden key by key by the one above
    `LICENSE`.
    """
    docs = SourceDocs(file_label)
    if file_doc is not None:
        docs.program.update(program_comment_keys(file_doc))
    previous: Decl | None = None
    for d in decls:
        if d.kind == "RecordDecl" and d.name and d.complete and d.fields and d.name not in docs.members:
            docs.members[d.name] = {f.name: (comment_keys(f.comment), f"{d.file}:{f.line}") for f in d.fields}
        if not in_source(d.file):
            previous = d
            continue
        if d.kind == "FunctionDecl" and d.name and d.comment is not None:
            keys = comment_keys(d.comment)  # a program's: tchook, ifindex, ... (compiler/progdocs.py)
            if keys:
                old, _ = docs.functions.get(d.name, ({}, 0))
                docs.functions[d.name] = ({**old, **keys}, d.line)
        if d.kind == "VarDecl" and d.name:
            comment = d.comment
            if comment is None and previous is not None and previous.kind == "RecordDecl" \
                    and not previous.name and previous.begin == d.begin and previous.file == d.file:
                comment = previous.comment
            if comment is not None:
                keys = comment_keys(comment)
                if d.name == "LICENSE":
                    docs.program.update(keys)
                    docs.program_line = d.line
                elif keys:
                    old, _ = docs.variables.get(d.name, ({}, 0))
                    docs.variables[d.name] = ({**old, **keys}, d.line)
        previous = d
    return docs


def check_cmdarg(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CompileError(f'{where}: @cmdarg needs a JSON object such as {{"short": "p", "long": "pid"}}')
    for key, kind in CMDARG_KEYS.items():
        if key in value and not isinstance(value[key], kind):
            what = "a string" if kind is str else "a name or an object"
            raise CompileError(f"{where}: @cmdarg '{key}' must be {what}")
    short = value.get("short")
    if short is not None and len(short) != 1:
        raise CompileError(f"{where}: @cmdarg 'short' must be a single character, not {short!r}")
    if "convert" in value:
        try:
            converter_of(value["convert"])
        except ValueError as e:
            raise CompileError(f"{where}: @cmdarg convert: {e}") from None
    long = value.get("long")
    if long is not None and (not long or long.startswith("-") or any(c.isspace() for c in long)):
        raise CompileError(f"{where}: @cmdarg 'long' must be an option name without dashes or spaces")
    return value


def check_sample(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CompileError(f'{where}: @sample needs a JSON object such as {{"interval": 1000, "type": "log2_hist"}}')
    interval = value.get("interval")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
        raise CompileError(f"{where}: @sample needs \"interval\", a positive number of milliseconds")
    kind = value.get("type", "default_kv")
    if kind not in SAMPLE_TYPES:
        raise CompileError(f"{where}: @sample type {kind!r} is not one of {', '.join(SAMPLE_TYPES)}")
    return value


def check_interpreter(value: Any, where: str) -> Any:
    """`/// @intepreter {"stack_trace": {...}}` (sic, upstream's spelling) on a buffer map."""
    try:
        return stacks.check_interpreter(value, where)
    except PackageError as e:
        raise CompileError(str(e)) from None


POSITIONAL_RUNNER = ("interval", "count", "duration")  # ecli run's -i SECONDS, --count N and -d SECONDS


def check_positional(value: Any, where: str, globals_: set[str]) -> list[str]:
    """`@positional ["interval", "count"]`: each name is the runner's interval
    or count, or a global's name (an option given by position)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise CompileError(f'{where}: @positional needs a JSON list of names such as ["interval", "count"]')
    for name in value:
        if name not in POSITIONAL_RUNNER and name not in globals_:
            raise CompileError(f"{where}: @positional {name!r} is neither {' nor '.join(POSITIONAL_RUNNER)} "
                               "nor a const volatile global of the program")
        if value.count(name) > 1:
            raise CompileError(f"{where}: @positional names {name!r} twice")
    return value


# ecli run's options a package may give a short name of its own (cli/ecli.py RUNNER_SHORTS)
RUNNER_OPTIONS = ("extended", "timestamp", "elapsed", "detailed", "duration", "interval", "frequency", "folded",
                  "delimited")
RESERVED_SHORTS = ("h", "e", "T", "v", "V")  # the runner's after PACKAGE, and help


def check_runner_options(value: Any, where: str) -> dict[str, str]:
    """`@runner {"elapsed": "t"}`: runner options also spelled, after
    the package, with the peer tool's short name (execsnoop's -t)."""
    if not isinstance(value, dict) or not value:
        raise CompileError(f'{where}: @runner needs a JSON object such as {{"elapsed": "t"}}')
    for name, short in value.items():
        if name not in RUNNER_OPTIONS:
            raise CompileError(f"{where}: @runner {name!r} is not one of {', '.join(RUNNER_OPTIONS)}")
        if not isinstance(short, str) or len(short) != 1 or not short.isalnum() or short in RESERVED_SHORTS:
            raise CompileError(f"{where}: @runner {name!r} needs one letter or digit, other than "
                               f"{', '.join(RESERVED_SHORTS)}, not {short!r}")
    if len(set(value.values())) != len(value):
        raise CompileError(f"{where}: @runner gives one short name twice")
    return value


def check_program_doc(keys: dict[str, Any], where: str, globals_: set[str] | None = None) -> dict[str, Any]:
    """The program's doc keys; the runner reads the known ones as strings."""
    out = dict(keys)
    if "positional" in out:
        out["positional"] = check_positional(out["positional"], where, globals_ or set())
    if "runner" in out:
        out["runner"] = check_runner_options(out["runner"], where)
    for key in STRING_KEYS:
        if key in out and not isinstance(out[key], str):
            out[key] = json.dumps(out[key]) if not isinstance(out[key], bool) else ""
        if out.get(key) == "":
            del out[key]
    return out
