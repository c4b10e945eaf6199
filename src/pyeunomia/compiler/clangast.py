"""Read what ecc needs from clang's own front end: the top-level declarations
of a JSON AST dump (`-Xclang -ast-dump=json`), the doc comments clang attached
to them, and the comment-only region at the top of a file (from clang's raw
lexer, `-dump-raw-tokens`).

Pure: these functions take clang's output and never run clang themselves.

The JSON dumper writes a location's "file" (and "line") only when it differs
from the previous location it wrote, anywhere in the document. So the file of
a declaration is known only by walking every location in document order, as
`_LocationTracker` does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

Node = dict[str, Any]


@dataclass(frozen=True)
class Decl:
    """One top-level declaration of the translation unit."""

    kind: str  # VarDecl, RecordDecl, FunctionDecl, TypedefDecl, ...
    name: str
    file: str  # as clang spelled it
    line: int
    begin: int  # byte offset where the declaration starts (its range's begin)
    tag: str = ""  # RecordDecl: "struct" or "union"
    complete: bool = False  # RecordDecl: a definition, not just "struct x;"
    comment: Node | None = None  # the FullComment clang attached, if any
    fields: tuple[FieldDoc, ...] = ()  # RecordDecl: its members' doc comments (anonymous members' spliced in)


@dataclass(frozen=True)
class FieldDoc:
    """A struct member's doc comment (`/// @column ...` above it) and the line
    the comment starts on (where ecc's errors about it point)."""

    name: str
    line: int
    comment: Node


class _LocationTracker:
    def __init__(self) -> None:
        self.file = ""
        self.line = 0

    def bare(self, loc: Node) -> None:
        if "file" in loc:
            self.file = loc["file"]
        if "line" in loc:
            self.line = loc["line"]

    def location(self, loc: Node) -> int | None:
        """Take in a "loc" (bare, or spelling + expansion for a macro); the
        offset where it expands, None if clang gave no valid location."""
        if "offset" in loc:
            self.bare(loc)
            return int(loc["offset"])
        offset = None
        for part in ("spellingLoc", "expansionLoc"):
            inner = loc.get(part)
            if isinstance(inner, dict) and "offset" in inner:
                self.bare(inner)
                offset = int(inner["offset"])
        return offset

    def walk(self, value: Any) -> None:
        """Every location inside `value`, in the order clang wrote them."""
        stack = [iter((value,))]
        while stack:
            item = next(stack[-1], _END)
            if item is _END:
                stack.pop()
                continue
            if isinstance(item, dict):
                if "offset" in item:
                    self.bare(item)  # its "includedFrom" is not a location
                else:
                    stack.append(iter(item.values()))
            elif isinstance(item, list):
                stack.append(iter(item))


_END = object()


def top_level_decls(ast: Node) -> list[Decl]:
    """The translation unit's top-level declarations, with their files."""
    if ast.get("kind") != "TranslationUnitDecl":
        raise ValueError("not a clang JSON AST of a translation unit")
    tracker = _LocationTracker()
    out = []
    for node in ast.get("inner", []):
        file, line, begin = "", 0, -1
        fields: list[FieldDoc] = []
        for key, value in node.items():
            if key == "loc" and isinstance(value, dict):
                if tracker.location(value) is not None:
                    file, line = tracker.file, tracker.line
            elif key == "range" and isinstance(value, dict):
                start = value.get("begin")
                if isinstance(start, dict):
                    offset = tracker.location(start)
                    begin = -1 if offset is None else offset
                tracker.walk(value.get("end"))
            elif key == "inner" and node.get("kind") == "RecordDecl" and isinstance(value, list):
                _record_fields(value, tracker, fields)
            else:
                tracker.walk(value)
        if node.get("isImplicit") or not file:
            continue
        comment = next((c for c in node.get("inner", []) if c.get("kind") == "FullComment"), None)
        out.append(Decl(node.get("kind", ""), node.get("name", ""), file, line, begin,
                        node.get("tagUsed", ""), bool(node.get("completeDefinition")), comment, tuple(fields)))
    return out


def _record_fields(inner: list[Any], tracker: _LocationTracker, out: list[FieldDoc]) -> None:
    """The commented FieldDecls of a record's `inner`, walked in document
    order (for their lines); an anonymous struct or union member's fields
    count as the record's own, as C (and format/layout.py) sees them."""
    for child in inner:
        if not isinstance(child, dict):
            tracker.walk(child)
            continue
        line = comment_line = 0
        for key, value in child.items():
            if key == "loc" and isinstance(value, dict):
                if tracker.location(value) is not None:
                    line = tracker.line
            elif key == "inner" and child.get("kind") == "RecordDecl" and not child.get("name") \
                    and isinstance(value, list):
                _record_fields(value, tracker, out)
            elif key == "inner" and isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and part.get("kind") == "FullComment":
                        comment_line = _comment_line(part, tracker)
                    else:
                        tracker.walk(part)
            else:
                tracker.walk(value)
        if child.get("kind") == "FieldDecl" and child.get("name"):
            comment = next((c for c in child.get("inner", []) if c.get("kind") == "FullComment"), None)
            if comment is not None:
                out.append(FieldDoc(child["name"], comment_line or line, comment))


def _comment_line(comment: Node, tracker: _LocationTracker) -> int:
    """The line a doc comment starts on (its "loc"), walking it in order."""
    line = 0
    for key, value in comment.items():
        if key == "loc" and isinstance(value, dict):
            if tracker.location(value) is not None:
                line = tracker.line
        else:
            tracker.walk(value)
    return line


class SameFile:
    """Is a path clang printed the same file as ours? Compared by inode, as
    clang may spell one file several ways (relative, through -I, via ..)."""

    def __init__(self, path: str | os.PathLike[str]):
        st = os.stat(path)
        self._id = (st.st_dev, st.st_ino)
        self._seen: dict[str, bool] = {}

    def __call__(self, printed: str) -> bool:
        known = self._seen.get(printed)
        if known is None:
            try:
                st = os.stat(printed)
                known = (st.st_dev, st.st_ino) == self._id
            except OSError:
                known = False
            self._seen[printed] = known
        return known


def leading_comment_end(raw_tokens: str, path: str, source: bytes) -> int:
    """The byte offset of the first token that is not a comment, from clang's
    `-dump-raw-tokens` output for `path` (whose bytes are `source`); the text
    before it holds only comments and whitespace."""
    # Each token's record ends with its location; a comment token may span
    # several lines, so records are cut at these location markers.
    marker = re.compile(r"Loc=<" + re.escape(path) + r":(\d+):(\d+)>\n")
    starts = [0]
    pos = 0
    while True:
        end = source.find(b"\n", pos)
        if end < 0:
            break
        starts.append(end + 1)
        pos = end + 1
    record_start = 0
    for m in marker.finditer(raw_tokens):
        kind = raw_tokens[record_start : m.start()].split(" ", 1)[0].strip()
        record_start = m.end()
        if kind in ("comment", "unknown"):  # "unknown" is whitespace here
            continue
        line, col = int(m.group(1)), int(m.group(2))
        if line - 1 >= len(starts):
            break
        return starts[line - 1] + col - 1
    return len(source)
