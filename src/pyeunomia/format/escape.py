"""Make kernel-supplied bytes safe to print.

A file name or comm can hold any byte but NUL. On a terminal, ESC sequences
can rewrite the screen, and a newline forges a line. Text output shows
printable ASCII and printable UTF-8 as they are and writes everything else as
an escape: \\n, \\t, \\xNN (a control byte or invalid UTF-8), \\u202e (an
invisible or control code point). A backslash is doubled, so the escaped form
is unambiguous.
"""

from __future__ import annotations

import re

# Anything but printable ASCII other than backslash: the bytes that make a
# string need the careful path. Used on whole batches at once.
UNSAFE_BYTES = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\"}


def escape_bytes(raw: bytes) -> bytes:
    """`raw` as safe, printable UTF-8 text."""
    if not UNSAFE_BYTES.search(raw):
        return raw
    return escape_text(raw.decode("utf-8", "surrogateescape")).encode("utf-8")


def escape_text(text: str) -> str:
    """`text` with every non-printable character escaped; surrogate-escaped
    bytes (from undecodable input) become \\xNN."""
    out = []
    for ch in text:
        o = ord(ch)
        if o in _NAMED:
            out.append(_NAMED[o])
        elif 0xDC80 <= o <= 0xDCFF:  # a byte that was not valid UTF-8
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x80:  # \xNN is a byte; U+0080..U+00FF must not look like invalid UTF-8
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "".join(out)


# Printable ASCII but backslash; without newline and, for JSON, double quote.
# bytes.translate(None, SAFE) deletes them and leaves what needs a look.
_PRINTABLE = bytes(b for b in range(0x20, 0x7F) if b != 0x5C)
_TABLE_SAFE = _PRINTABLE
_JSON_SAFE = bytes(b for b in _PRINTABLE if b != 0x22)


def is_safe_batch(data: bytes, lines: int, quotes: int | None = None) -> bool:
    """True when `data`, made of `lines` newline-terminated lines, holds only
    printable ASCII without backslashes, and no newline but the line ends:
    one C-speed pass over the batch instead of one check per field. With
    `quotes`, each line must also hold exactly that many double quotes (JSON:
    no string value brought a quote of its own)."""
    if quotes is None:
        return len(data.translate(None, _TABLE_SAFE)) == lines  # the line ends, nothing else
    rest = data.translate(None, _JSON_SAFE)  # line ends, quotes, and anything unsafe
    # per line, not in total: a line with two quotes too many must not pass
    # because another has two too few (an enum value without a name)
    return rest == (b'"' * quotes + b"\n") * lines
