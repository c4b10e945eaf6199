"""runner.options: parse/check/encode/decode on every option kind, and
global_options plus ecli's parser on built packages."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyeunomia.format.options import GlobalOption, global_options
from pyeunomia.format.package import Package
from tests.fuzz.checks import argv_for, check_command_line, check_option
from tests.fuzz.contract import outcome, raises_ours
from tests.fuzz.fuzz_options import TestOneInput

from .strategies import bpf_objects


def option(kind: str, size: int, signed: bool = False, endian: str = "<",
           enum_values: tuple[tuple[str, int], ...] = ()) -> GlobalOption:
    initial: Any = {"int": 0, "enum": 0, "bool": False, "float": 0.0, "str": ""}[kind]
    return GlobalOption("v", kind, "t", ".rodata", 0, size, signed, endian, initial, initial, "help", "v",
                        enum_values=enum_values)


INT_OPTIONS = [option("int", size, signed, e) for size in (1, 2, 4, 8) for signed in (False, True) for e in "<>"]
ALL_OPTIONS = [
    *INT_OPTIONS, option("bool", 1), option("bool", 4, endian=">"), option("float", 4), option("float", 8, endian=">"),
    option("str", 16), option("str", 2), option("enum", 4, True, enum_values=(("A", 1), ("B", -1), ("a\nb", 2))),
    option("enum", 1, enum_values=(("ON", 1), ("OFF", 0))), option("enum", 8, True, enum_values=()),
]
options = st.sampled_from(ALL_OPTIONS)
any_values = st.one_of(st.integers(), st.integers(-300, 300), st.floats(), st.booleans(), st.text(max_size=20),
                       st.none(), st.binary(max_size=4), st.lists(st.integers(), max_size=2))


@given(options, st.text(max_size=24))
def test_parse_any_text(o: GlobalOption, text: str) -> None:
    check_option(o, texts=[text])


@given(options, any_values)
def test_check_any_value(o: GlobalOption, value: Any) -> None:
    check_option(o, values=[value])


@given(st.sampled_from(INT_OPTIONS), st.data())
def test_ints_round_trip_in_every_spelling(o: GlobalOption, data: st.DataObject) -> None:
    lo, hi = o.int_range()
    v = data.draw(st.integers(lo, hi))
    assert o.decode(o.encode(v)) == v
    for text in (str(v), hex(v), oct(v), bin(v), f" {v} "):
        assert o.parse(text) == v
    for bad in (lo - 1, hi + 1):
        check_option(o, values=[bad], texts=[str(bad)])


@given(st.sampled_from([o for o in ALL_OPTIONS if o.kind == "float"]), st.floats())
def test_floats_round_trip(o: GlobalOption, v: float) -> None:
    check_option(o, values=[v], texts=[repr(v)])
    if o.size == 8:
        assert o.decode(o.encode(v)) == v or v != v


@given(st.sampled_from([o for o in ALL_OPTIONS if o.kind == "str"]),
       st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20))
def test_strings_round_trip(o: GlobalOption, text: str) -> None:
    raw = text.encode()
    if len(raw) < o.size and "\0" not in text:
        assert o.decode(o.encode(text)) == text
    check_option(o, texts=[text], values=[text])


@given(options, st.binary(min_size=16, max_size=16))
def test_decode_any_bytes(o: GlobalOption, raw: bytes) -> None:
    check_option(o, raw=raw)


@settings(max_examples=80)
@given(bpf_objects(), st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["1", "x", "-1", "", "ON", "1e9"])),
                                max_size=3))
def test_options_of_built_objects(obj: bytes, picks: list[tuple[int, str]]) -> None:
    pkg = outcome(lambda: Package.from_object(obj, "prop", "prop.o"))
    if pkg is None:
        return
    found = outcome(lambda: global_options(pkg))
    if found is None:
        return
    for o in found:
        check_option(o)
    check_command_line(pkg, found, argv_for(found, picks))


@settings(max_examples=150)
@given(st.binary(max_size=120))
def test_fuzz_target(data: bytes) -> None:
    TestOneInput(data)


def test_float_limits() -> None:
    o = option("float", 4)
    assert o.parse("3.4028234663852886e38") == 3.4028234663852886e38
    assert struct.pack("<f", o.parse("1e-50")) == struct.pack("<f", 0.0)
    check_option(o, texts=["3.5e38", "-3.5e38"])


CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def test_char_array_filled_without_nul_keeps_its_value() -> None:
    """char name[4] = "abcd" is valid C: the default must encode back unchanged
    (it was a ValueError in the loader, and argparse re-parses str defaults)."""
    pkg = Package.from_object((CORPUS / "elf" / "char-array-full-without-nul").read_bytes(), "x", "x.o")
    (o,) = global_options(pkg)
    assert o.default == "abcd" and o.encode(o.default) == b"abcd"
    assert o.parse("abcd") == "abcd"
    with pytest.raises(ValueError, match="at most 3 bytes"):
        o.parse("abce")
    assert check_command_line(pkg, [o], []) == {"name": "abcd"}


def test_options_sharing_a_flag_are_refused() -> None:
    pkg = Package.from_object((CORPUS / "elf" / "options-with-one-flag").read_bytes(), "x", "x.o")
    message = raises_ours(lambda: global_options(pkg))
    assert "both use the option" in message


def test_lone_surrogate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected a string of at most 15 bytes"):
        option("str", 16).check("\ud800")


def test_repeated_enum_names_decode_to_what_parses_back() -> None:
    o = option("enum", 4, True, enum_values=(("", 253), ("", 74), ("B", 1)))
    assert o.decode(o.encode(253)) == 253
    assert o.decode(o.encode(74)) == ""
    assert o.decode(o.encode(1)) == "B"


def test_enum_names_are_escaped_in_messages() -> None:
    o = option("enum", 4, True, enum_values=(("a\nb", 1),))
    assert o.accepts() == "one of a\\nb or an integer"
