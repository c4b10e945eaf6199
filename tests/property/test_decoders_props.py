"""decoders: open(2) flags to text and back, errno names."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pyeunomia.decoders.errno import errno_name
from pyeunomia.decoders.open_flags import open_flags_text, parse_open_flag
from tests.fuzz.contract import check_message


@given(st.integers(0, (1 << 32) - 1))
@example(0o3)
def test_flags_text_reads_back(flags: int) -> None:
    text = open_flags_text(flags)
    assert text.isprintable() and text
    total = 0
    for part in text.split("|"):
        total |= parse_open_flag(part)
    assert total == flags


@given(st.text(max_size=16))
@example("0")
@example("0x")
@example("08")
def test_parse_any_flag_text(text: str) -> None:
    try:
        value = parse_open_flag(text)
    except ValueError as e:
        assert "use one of" in check_message(e)
    else:
        assert isinstance(value, int)


@given(st.integers())
def test_errno_name_of_any_number(n: int) -> None:
    name = errno_name(n)
    assert name and name.isprintable()
