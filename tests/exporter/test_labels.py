"""Label values are clean text."""

from __future__ import annotations

from pyeunomia.exporter.labels import clean_text, label_text


def test_printable_text_is_kept_as_is_quotes_too():
    assert clean_text("bash") == "bash"
    assert clean_text('a "quoted" name') == 'a "quoted" name'


def test_a_backslash_is_doubled_so_no_escape_looks_like_a_name():
    assert clean_text("a \\ name") == "a \\\\ name"
    escaped, literal = label_text(b"coll\x1bX\0"), label_text(b"coll\\x1bX\0")
    assert (escaped, literal) == ("coll\\x1bX", "coll\\\\x1bX")
    assert escaped != literal
    assert label_text("coll\x1bX") != label_text("coll\\x1bX")


def test_control_characters_and_bad_bytes_are_escaped():
    assert clean_text("a\nb\tc\x1b[2J") == "a\\nb\\tc\\x1b[2J"
    assert label_text(b"caf\xc3\xa9\xff\0junk") == "café\\xff"


def test_other_values():
    assert [label_text(True), label_text(False), label_text(-2), label_text(1.5)] == ["true", "false", "-2", "1.5"]
