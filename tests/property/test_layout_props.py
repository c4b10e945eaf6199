"""layout.struct_layout and Layout.decode over event structs, with random records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyeunomia.format.btf import Btf
from pyeunomia.format.layout import struct_layout
from tests.fuzz.checks import check_layout, check_writers

from .strategies import EventStruct, event_structs

NASTY_BYTES = st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0x0A, 0x0D, 0x1B, 0x22, 0x5C, 0x25, 0x7F,
                                                             0x80, 0xC2, 0xE2, 0xFF]))


def records(size: int, count: int) -> st.SearchStrategy[list[bytes]]:
    one = st.lists(NASTY_BYTES, min_size=size, max_size=size).map(bytes)
    return st.lists(one, min_size=count, max_size=count)


@given(event_structs())
def test_layout_decodes_and_writes(event: EventStruct) -> None:
    layout = struct_layout(Btf.parse(event.btf), event.type_id)
    assert layout.size == event.size
    check_layout(layout)


@settings(max_examples=80)
@given(event_structs(), st.integers(1, 4), st.data())
def test_random_records(event: EventStruct, count: int, data: st.DataObject) -> None:
    """JSON lines parse, table lines hold no control byte, fast equals careful,
    for any record bytes (kernel text is attacker-controlled)."""
    layout = struct_layout(Btf.parse(event.btf), event.type_id)
    check_writers(layout, data.draw(records(layout.size, count)))


@given(event_structs(), st.data())
def test_short_records_are_zero_padded(event: EventStruct, data: st.DataObject) -> None:
    layout = struct_layout(Btf.parse(event.btf), event.type_id)
    short = data.draw(st.integers(0, max(0, layout.size - 1)))
    check_writers(layout, data.draw(records(short, 2)))
