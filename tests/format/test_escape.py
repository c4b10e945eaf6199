"""pyeunomia.format.escape: kernel bytes made safe to print, and unambiguous."""

from __future__ import annotations

import random
import re

import pytest

from pyeunomia.format.escape import UNSAFE_BYTES, escape_bytes, escape_text, is_safe_batch


def unescape(escaped: bytes) -> bytes:
    """The inverse the module's docstring promises is possible."""
    out = bytearray()
    text = escaped.decode("utf-8")
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        kind = text[i + 1]
        if kind in "\\ntr":
            out += {"\\": b"\\", "n": b"\n", "t": b"\t", "r": b"\r"}[kind]
            i += 2
        elif kind == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif kind == "u":
            out += chr(int(text[i + 2 : i + 6], 16)).encode("utf-8")
            i += 6
        elif kind == "U":
            out += chr(int(text[i + 2 : i + 10], 16)).encode("utf-8")
            i += 10
        else:
            raise AssertionError(f"unknown escape in {escaped!r}")
    return bytes(out)


@pytest.mark.parametrize(("raw", "escaped"), [
    (b"", b""),
    (b"bash", b"bash"),
    (b"/usr/bin/python3 -c 'x'", b"/usr/bin/python3 -c 'x'"),
    (b"\x1b[2J\x1b[31mred", b"\\x1b[2J\\x1b[31mred"),            # ESC sequences
    (b"evil\nforged line", b"evil\\nforged line"),                 # a newline forges a line
    (b"a\tb\rc", b"a\\tb\\rc"),
    (b"back\\slash", b"back\\\\slash"),                           # a backslash is doubled
    (b"\\x41", b"\\\\x41"),                                        # so this is not an escape
    (b"\x00\x01\x7f", b"\\x00\\x01\\x7f"),
    (b"\xff\xfe", b"\\xff\\xfe"),                                  # invalid UTF-8
    (b"ok\xc3", b"ok\\xc3"),                                       # a truncated sequence
    (b"\xed\xa0\x80", b"\\xed\\xa0\\x80"),                        # an encoded surrogate is invalid
    ("caf\u00e9 \u4e2d\u6587 \U0001f600".encode(), "caf\u00e9 \u4e2d\u6587 \U0001f600".encode()),
    ("a\u202eb".encode(), b"a\\u202eb"),                           # right-to-left override
    ("\u200b".encode(), b"\\u200b"),                               # zero-width space
    ("\u2028".encode(), b"\\u2028"),                               # line separator
    ("\U000e0001".encode(), b"\\U000e0001"),                       # a tag character
])
def test_escape_bytes(raw, escaped):
    assert escape_bytes(raw) == escaped
    assert unescape(escaped) == raw


@pytest.mark.parametrize(("raw", "escaped"), [
    ("\u0085".encode(), b"\\u0085"),     # NEL, a C1 control: not the invalid byte \x85
    ("\u0080".encode(), b"\\u0080"),
    ("\u009b".encode(), b"\\u009b"),     # CSI, the 8-bit ESC [
    ("\u00a0".encode(), b"\\u00a0"),     # no-break space
    ("\u00ad".encode(), b"\\u00ad"),     # soft hyphen
])
def test_latin1_code_points_are_not_confused_with_invalid_bytes(raw, escaped):
    assert escape_bytes(raw) == escaped
    assert escape_bytes(raw) != escape_bytes(raw[1:])  # the lone second byte is invalid UTF-8
    assert unescape(escaped) == raw


def test_escape_text_takes_surrogate_escaped_strings():
    assert escape_text("a\udcffb") == "a\\xffb"
    assert escape_text("line\n") == "line\\n"
    assert escape_text("\x80") == "\\u0080"
    assert escape_text("plain") == "plain"


def test_safe_bytes_come_back_unchanged():
    raw = bytes(range(0x20, 0x7F)).replace(b"\\", b"")
    assert escape_bytes(raw) is raw
    assert UNSAFE_BYTES.search(raw) is None
    assert UNSAFE_BYTES.search(b"\\") is not None


def test_every_single_byte():
    for n in range(256):
        out = escape_bytes(bytes([n]))
        if 0x20 <= n < 0x7F and n != 0x5C:
            assert out == bytes([n])
        elif n in (0x09, 0x0A, 0x0D, 0x5C):
            assert out == {0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r", 0x5C: b"\\\\"}[n]
        else:
            assert out == b"\\x%02x" % n


def test_random_bytes_escape_to_printable_text_and_back():
    rng = random.Random(5)
    alphabet = [*range(256), *b"\xc2\xc3\xe2\x80\xae\xf0\x9f\x98"]
    for _ in range(5000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        out = escape_bytes(raw)
        text = out.decode("utf-8")
        assert text.isprintable()
        assert not re.search(rb"[\x00-\x1f\x7f]", out)
        assert unescape(out) == raw


def test_every_two_byte_sequence_round_trips():
    for lead in range(0xC2, 0xE0):
        for cont in range(0x80, 0xC0):
            raw = bytes([lead, cont])
            assert unescape(escape_bytes(raw)) == raw


@pytest.mark.parametrize(("data", "lines", "safe"), [
    (b"", 0, True),
    (b"12:00:00 1 bash\n12:00:00 2 sh\n", 2, True),
    (b"12:00:00 1 bash\n12:00:00 2 sh\n", 1, False),        # a forged line
    (b"a\nb\n", 3, False),
    (b"12:00:00 1 ba\\sh\n", 1, False),                      # a backslash needs the careful path
    (b"12:00:00 1 \x1b[2J\n", 1, False),
    ("caf\u00e9\n".encode(), 1, False),                       # non-ASCII needs a look
    (b"tab\there\n", 1, False),
    (b"no newline", 0, True),
])
def test_is_safe_batch(data, lines, safe):
    assert is_safe_batch(data, lines) is safe


def test_json_batch_check_counts_quotes_not_just_bytes():
    good = b'{"a":"x","b":1}\n' * 3
    assert is_safe_batch(good, 3, quotes=6)
    # a line with two quotes fewer (a number where a string was) and two
    # unsafe bytes more leaves as many bytes after the cut: still refused
    bad = good[:-16] + b'{"a":5,"b":\x1b\x07}\n'
    assert bad.count(b"\n") == 3
    assert not is_safe_batch(bad, 3, quotes=6)
    assert not is_safe_batch(good.replace(b'"x"', b'"x\\"'), 3, quotes=6)  # a backslash


def test_table_batch_check_refuses_a_forged_line():
    assert is_safe_batch(b"a b\nc d\n", 2)
    assert not is_safe_batch(b"a b\nc\nd\n", 2)  # a newline from a name
    assert not is_safe_batch(b"a \\ b\nc d\n", 2)  # a backslash needs escaping too
    assert not is_safe_batch(b"a \x1b[2J\nc d\n", 2)
