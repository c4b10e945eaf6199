"""output.escape: printable, unambiguous, identity on safe text; is_safe_batch exact."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from pyeunomia.format.escape import escape_bytes, escape_text, is_safe_batch

SAFE = bytes(b for b in range(0x20, 0x7F) if b != 0x5C)
nasty_bytes = st.binary(max_size=64) | st.lists(st.sampled_from(
    [b"\\", b"\n", b"\x1b[2J", b"\xe2\x80\xae", b"\xc2\x85", b"\xff", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"a",
     b"\\x41", b"\\u0041", b"\x00", b"\x7f", b"\xc2\xa0", b'"']), max_size=12).map(b"".join)
texts = st.text(max_size=40) | st.lists(st.sampled_from(
    ["\udc80", "\udcff", "\ud800", "\x80", "\\", "\u202e", "\U0001f600", "\U000e0001", "\x00", "\n", "é", "\u2028"]),
    max_size=10).map("".join)

_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unescape_text(text: str) -> str:
    """The inverse of escape_text: \\xNN below 0x80 is that character, above it
    the undecodable byte NN (a surrogate escape)."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code in ("\\", "t", "n", "r"):
            return {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[code]
        n = int(code[1:], 16)
        return chr(n if code[0] != "x" or n < 0x80 else 0xDC00 + n)

    assert "\\" not in _ESCAPE.sub("", text), f"a stray backslash in {text!r}"
    return _ESCAPE.sub(one, text)


@given(nasty_bytes)
@example(b"\\x41")
@example(b"\xed\xa0\x80")
def test_escape_bytes_round_trips(raw: bytes) -> None:
    out = escape_bytes(raw)
    text = out.decode("utf-8")  # always valid UTF-8
    assert text.isprintable(), f"unprintable output {text!r}"
    assert not any(c < 0x20 or c == 0x7F for c in out)
    back = unescape_text(text).encode("utf-8", "surrogateescape")
    assert back == raw


@given(nasty_bytes)
def test_safe_bytes_are_kept(raw: bytes) -> None:
    safe = bytes(b for b in raw if b in SAFE)
    assert escape_bytes(safe) == safe


@given(nasty_bytes, nasty_bytes)
def test_escape_bytes_is_injective(a: bytes, b: bytes) -> None:
    assert (escape_bytes(a) == escape_bytes(b)) == (a == b)


@given(texts)
def test_escape_text_round_trips(text: str) -> None:
    out = escape_text(text)
    assert out.isprintable()
    assert unescape_text(out) == text
    out.encode("utf-8")  # never a lone surrogate in the output


lines = st.lists(st.binary(max_size=12) | st.text(alphabet='ab "\\\n\x01é', max_size=8).map(str.encode), max_size=6)


@given(lines, st.none() | st.integers(0, 4))
@example([b'"a"', b'""""'], 2)
@example([b"", b'""""'], 2)
def test_is_safe_batch_is_exact(parts: list[bytes], quotes: int | None) -> None:
    """True exactly when every line is printable ASCII without backslash or
    newline and, for JSON, holds `quotes` double quotes: per line, not in total."""
    data = b"".join(p + b"\n" for p in parts)
    expect = all(all(c in SAFE for c in p) and (quotes is None or p.count(b'"') == quotes) for p in parts)
    assert is_safe_batch(data, len(parts), quotes) == expect
