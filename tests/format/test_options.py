"""pyeunomia.format.options: globals as typed options, from real and built packages."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.format.options import GlobalOption, global_options
from pyeunomia.format.package import Package, parse_meta
from tests.btfbuilder import ENC_BOOL, ENC_SIGNED, LINKAGE_STATIC, STB_GLOBAL, STB_LOCAL, BtfBuilder, bpf_object

UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"
FLT_MAX = 3.4028234663852886e38


def upstream(name: str) -> Package:
    return Package.from_json((UPSTREAM / f"{name}.json").read_text(), f"{name}.json")


# -- a package with one global per interesting type ---------------------------------------------

INT_TYPES = {  # name: (size, signed)
    "s8": (1, True), "u8": (1, False), "s16": (2, True), "u16": (2, False),
    "s32": (4, True), "u32": (4, False), "s64": (8, True), "u64": (8, False),
}


def make_package(endian: str = "<", meta_vars: list[dict[str, Any]] | None = None,
                 initial: dict[str, bytes] | None = None) -> Package:
    """Globals in .rodata (every option kind and some non-options), .data and .bss."""
    b = BtfBuilder(endian)
    ints = {n: b.int(n, size, ENC_SIGNED if signed else 0) for n, (size, signed) in INT_TYPES.items()}
    char = b.int("char", 1, ENC_SIGNED)
    bool_ = b.int("_Bool", 1, ENC_BOOL)
    float_ = b.float("float", 4)
    double = b.float("double", 8)
    mode = b.enum("mode", [("OFF", 0), ("ON", 1), ("AUTO", -1)], signed=True)
    level = b.enum("level", [("LOW", 1), ("HIGH", 200)], size=1)
    s128 = b.int("__int128", 16, ENC_SIGNED)
    point = b.struct("point", 8, [("x", ints["s32"], 0), ("y", ints["s32"], 32)])
    rodata: list[tuple[str, int, int]] = []  # name, type, size

    def cv(t: int) -> int:
        return b.const(b.volatile(t))

    for n in INT_TYPES:
        rodata.append((f"g_{n}", cv(ints[n]), INT_TYPES[n][0]))
    rodata += [
        ("g_bool", cv(bool_), 1), ("g_float", cv(float_), 4), ("g_double", cv(double), 8),
        ("g_name", cv(b.array(char, 8)), 8), ("g_mode", cv(mode), 4), ("g_level", cv(level), 1),
        ("g_ptr", b.ptr(char), 8), ("g_point", point, 8), ("g_ints", b.array(ints["u32"], 2), 8),
        ("g_wide", s128, 16), ("g_one", b.array(char, 1), 1), ("g_ld", b.float("long double", 16), 16),
        ("g_grid", b.array(b.array(char, 2), 2), 4), ("__eunomia_dummy_x_ptr", b.ptr(point), 8),
    ]
    layout = []
    off = 0
    for name, t, size in rodata:
        align = min(size, 8)
        off = (off + align - 1) // align * align
        layout.append((name, b.var(name, t), off, size))
        off += size
    hidden = b.var("hidden", ints["s32"], LINKAGE_STATIC)
    data_var = b.var("d_count", ints["s32"])
    bss_var = b.var("b_flag", bool_)
    b.datasec(".rodata", [(v, 0, size) for _, v, _, size in layout] + [(hidden, 0, 4)])
    b.datasec(".data", [(data_var, 0, 4)])
    b.datasec(".bss", [(bss_var, 0, 1)])
    content = bytearray(off + 4)
    for name, _, o, size in layout:
        if initial and name in initial:
            content[o : o + size] = initial[name]
    symbols = [(name, ".rodata", o, size, STB_GLOBAL) for name, _, o, size in layout]
    symbols += [("hidden", ".rodata", off, 4, STB_LOCAL), ("d_count", ".data", 0, 4, STB_GLOBAL),
                ("b_flag", ".bss", 0, 1, STB_GLOBAL)]
    obj = bpf_object(b.build(), endian=endian, bss_size=4, symbols=symbols,
                     data={".rodata": bytes(content), ".data": struct.pack(endian + "i", -3)})
    raw = {"bpf_skel": {"obj_name": "opts", "data_sections": [{"name": ".rodata", "variables": meta_vars or []}]}}
    return Package(obj, parse_meta(raw, "opts"), "opts")


def options(**kw: Any) -> dict[str, GlobalOption]:
    return {o.name: o for o in global_options(make_package(**kw))}


# -- which globals become options -----------------------------------------------------------------


def test_upstream_bootstrap_option():
    opts = global_options(upstream("bootstrap"))
    assert opts == [GlobalOption(
        name="min_duration_ns", kind="int", type_name="unsigned long long", section=".rodata", offset=0, size=8,
        signed=False, endian="<", initial=0, default=0, help="set unsigned long long min_duration_ns",
        long="min_duration_ns", short=None, enum_values=())]
    assert opts[0].flag == "--min_duration_ns"


def test_upstream_runqlat_options():
    opts = global_options(upstream("runqlat"))
    assert [(o.name, o.kind, o.type_name, o.offset, o.size, o.signed, o.initial, o.default) for o in opts] == [
        ("filter_cg", "bool", "bool", 0, 1, False, False, False),
        ("targ_per_process", "bool", "bool", 1, 1, False, False, False),
        ("targ_per_thread", "bool", "bool", 2, 1, False, False, False),
        ("targ_per_pidns", "bool", "bool", 3, 1, False, False, False),
        ("targ_ms", "bool", "bool", 4, 1, False, False, False),
        ("targ_tgid", "int", "pid_t", 8, 4, True, 0, 0),
    ]
    assert opts[5].int_range() == (-(1 << 31), (1 << 31) - 1)


def test_only_scalars_enums_char_and_int_arrays_are_options():
    names = [o.name for o in global_options(make_package())]
    assert names == ["g_s8", "g_u8", "g_s16", "g_u16", "g_s32", "g_u32", "g_s64", "g_u64", "g_bool", "g_float",
                     "g_double", "g_name", "g_mode", "g_level", "g_ints", "d_count", "b_flag"]
    # not options: pointers, structs, 128-bit ints, char[1], long double,
    # char[2][2], __eunomia_dummy_*, and the static `hidden`


def test_an_int_array_takes_a_comma_list_the_rest_zero():
    o = options(initial={"g_ints": struct.pack("<II", 7, 0)})["g_ints"]  # __u32 g_ints[2]
    assert (o.kind, o.elements, o.size, o.int_range()) == ("ints", 2, 8, (0, (1 << 32) - 1))
    assert o.initial == o.default == (7, 0) and o.show(o.default) == "7" and o.show((0, 0)) == "(none)"
    assert o.parse("80") == (80, 0) and o.parse(" 80, 0x1bb ") == (80, 443) and o.parse("") == (0, 0)
    assert o.encode(o.parse("80,443")) == struct.pack("<II", 80, 443)
    assert o.decode(struct.pack("<II", 1, 2)) == (1, 2) and o.check([5]) == (5, 0) and o.check(9) == (9, 0)
    with pytest.raises(ValueError, match=r"^3 values, and it holds at most 2$"):
        o.parse("1,2,3")
    with pytest.raises(ValueError, match="is out of range: expected up to 2 integers from 0 to 4294967295, sep"):
        o.parse("1,-1")
    for bad in ("1,,2", "http", "1.5", ","):
        with pytest.raises(ValueError, match="expected up to 2 integers"):
            o.parse(bad)
    with pytest.raises(ValueError, match="expected up to 2 integers"):
        o.check([True])


def test_sections_in_rodata_data_bss_order():
    opts = options()
    assert [(opts[n].section, opts[n].initial) for n in ("d_count", "b_flag")] == [(".data", -3), (".bss", False)]


def test_kinds_and_metadata_of_each_option():
    opts = options()
    assert [(o.kind, o.type_name, o.size, o.signed) for o in opts.values()] == [
        ("int", "s8", 1, True), ("int", "u8", 1, False), ("int", "s16", 2, True), ("int", "u16", 2, False),
        ("int", "s32", 4, True), ("int", "u32", 4, False), ("int", "s64", 8, True), ("int", "u64", 8, False),
        ("bool", "_Bool", 1, False), ("float", "float", 4, True), ("float", "double", 8, True),
        ("str", "char[8]", 8, False), ("enum", "enum mode", 4, True), ("enum", "enum level", 1, False),
        ("ints", "u32[2]", 8, False), ("int", "s32", 4, True), ("bool", "_Bool", 1, False),
    ]
    assert opts["g_mode"].enum_values == (("OFF", 0), ("ON", 1), ("AUTO", -1))


def test_initial_values_come_from_the_object():
    opts = options(initial={"g_s16": b"\xfe\xff", "g_u64": b"\xff" * 8, "g_bool": b"\x01",
                            "g_float": struct.pack("<f", 0.1), "g_double": struct.pack("<d", -2.5),
                            "g_name": b"ab\0zzzzz", "g_mode": struct.pack("<i", -1), "g_level": b"\x07"})
    assert all(o.default == o.initial for o in opts.values())  # no metadata: the object's values
    assert {n: o.initial for n, o in opts.items()} == {
        "g_s8": 0, "g_u8": 0, "g_s16": -2, "g_u16": 0, "g_s32": 0, "g_u32": 0, "g_s64": 0,
        "g_u64": (1 << 64) - 1, "g_bool": True, "g_float": 0.10000000149011612, "g_double": -2.5,
        "g_name": "ab", "g_mode": "AUTO", "g_level": 7, "g_ints": (0, 0), "d_count": -3, "b_flag": False}


# -- integers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(INT_TYPES))
def test_integer_limits(name):
    size, signed = INT_TYPES[name]
    opt = options()[f"g_{name}"]
    lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
    assert opt.int_range() == (lo, hi)
    assert opt.accepts() == f"an integer from {lo} to {hi}"
    assert opt.parse(str(lo)) == lo
    assert opt.parse(str(hi)) == hi
    assert opt.parse(hex(hi)) == hi
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ValueError) as err:
            opt.parse(str(bad))
        assert str(err.value) == f"{bad} is out of range: expected an integer from {lo} to {hi}"
        with pytest.raises(ValueError):
            opt.check(bad)
        with pytest.raises(ValueError):
            opt.encode(bad)
    assert opt.encode(lo) == lo.to_bytes(size, "little", signed=signed)
    assert opt.encode(hi) == hi.to_bytes(size, "little", signed=signed)
    assert opt.decode(opt.encode(lo)) == lo
    assert opt.decode(opt.encode(hi)) == hi


def test_integer_encoding_bytes():
    opts = options()
    assert opts["g_s16"].encode(-2) == b"\xfe\xff"
    assert opts["g_u32"].encode(0x01020304) == b"\x04\x03\x02\x01"
    assert opts["g_s64"].encode(-1) == b"\xff" * 8
    assert opts["g_s8"].decode(b"\x80") == -128
    assert opts["g_u8"].decode(b"\x80") == 128


def test_big_endian_encoding():
    opts = options(endian=">", initial={"g_u32": b"\x00\x00\x01\x00", "g_double": struct.pack(">d", 1.5)})
    assert opts["g_u32"].endian == ">"
    assert opts["g_u32"].initial == 256
    assert opts["g_double"].initial == 1.5
    assert opts["g_u32"].encode(0x01020304) == b"\x01\x02\x03\x04"
    assert opts["g_s16"].encode(-2) == b"\xff\xfe"
    assert opts["g_float"].encode(1.0) == b"\x3f\x80\x00\x00"
    assert opts["g_mode"].encode("AUTO") == b"\xff\xff\xff\xff"
    assert opts["g_bool"].encode(True) == b"\x01"


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), (" 42\n", 42), ("0x1F", 31), ("0o17", 15), ("0b101", 5), ("1_000", 1000), ("+7", 7), ("-0x10", -16),
    ("0", 0),
])
def test_integer_spellings(text, value):
    assert options()["g_s32"].parse(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "1e3", "010", "0x", "--1", "one", "5 5"])
def test_integer_parse_errors(text):
    with pytest.raises(ValueError) as err:
        options()["g_u8"].parse(text)
    assert str(err.value) == f"expected an integer from 0 to 255, got {text!r}"


@pytest.mark.parametrize("value", [True, False, "5", 5.0, None, [1]])
def test_integer_check_refuses_other_types(value):
    with pytest.raises(ValueError) as err:
        options()["g_u8"].check(value)
    assert str(err.value) == f"expected an integer from 0 to 255, got {value!r}"


# -- bool -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), (" true ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("OFF", False),
])
def test_bool_spellings(text, value):
    assert options()["g_bool"].parse(text) is value


@pytest.mark.parametrize("text", ["", "2", "y", "n", "maybe", "truee", "-1"])
def test_bool_parse_errors(text):
    with pytest.raises(ValueError) as err:
        options()["g_bool"].parse(text)
    assert str(err.value) == f"expected true or false, got {text!r}"


def test_bool_check_encode_decode_show():
    opt = options()["g_bool"]
    assert opt.accepts() == "true or false"
    assert opt.check(1) is True
    assert opt.check(0) is False
    for bad in (2, -1, "true", 1.0, None):
        with pytest.raises(ValueError, match=r"^expected true or false, got "):
            opt.check(bad)
    assert opt.encode(True) == b"\x01"
    assert opt.encode(False) == b"\x00"
    assert opt.decode(b"\x02") is True
    assert opt.decode(b"\x00") is False
    assert (opt.show(True), opt.show(False)) == ("true", "false")


# -- floats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("1.5", 1.5), ("-2e-3", -0.002), ("7", 7.0), (" 0.25 ", 0.25),
                                             ("inf", math.inf), ("-Infinity", -math.inf)])
def test_float_spellings(text, value):
    assert options()["g_double"].parse(text) == value


def test_float_nan():
    assert math.isnan(options()["g_float"].parse("nan"))


@pytest.mark.parametrize("text", ["", "abc", "1,5", "0x10"])
def test_float_parse_errors(text):
    with pytest.raises(ValueError) as err:
        options()["g_double"].parse(text)
    assert str(err.value) == f"expected a number, got {text!r}"


def test_float32_range():
    opt = options()["g_float"]
    assert opt.accepts() == "a number from -3.4028234663852886e+38 to 3.4028234663852886e+38"
    assert opt.parse(repr(FLT_MAX)) == FLT_MAX
    assert opt.parse("-3.4028234663852886e+38") == -FLT_MAX
    # how C and numpy print FLT_MAX: a float32 rounds it to FLT_MAX
    assert opt.encode(opt.parse("3.4028235e+38")) == b"\xff\xff\x7f\x7f"
    for text in ("3.5e38", "1e39", "-1e39"):
        with pytest.raises(ValueError) as err:
            opt.parse(text)
        assert str(err.value) == (f"{float(text)!r} is out of range: expected a number from "
                                  "-3.4028234663852886e+38 to 3.4028234663852886e+38")
    assert opt.encode(math.inf) == b"\x00\x00\x80\x7f"


def test_double_range():
    opt = options()["g_double"]
    assert opt.accepts() == "a number"
    assert opt.parse("1e308") == 1e308
    assert opt.encode(1e308) == struct.pack("<d", 1e308)


def test_float_check_encode_decode():
    opt = options()["g_float"]
    assert opt.check(3) == 3.0
    assert isinstance(opt.check(3), float)
    for bad in (True, "1.0", None):
        with pytest.raises(ValueError) as err:
            opt.check(bad)
        assert str(err.value) == ("expected a number from -3.4028234663852886e+38 to 3.4028234663852886e+38, "
                                  f"got {bad!r}")
    assert opt.encode(0.1) == b"\xcd\xcc\xcc\x3d"
    assert opt.decode(b"\xcd\xcc\xcc\x3d") == 0.10000000149011612
    assert options()["g_double"].encode(0.1) == struct.pack("<d", 0.1)
    assert opt.show(0.5) == "0.5"


# -- strings -----------------------------------------------------------------------------------------


def test_char_array_holds_at_most_n_minus_1_bytes():
    opt = options()["g_name"]
    assert opt.accepts() == "a string of at most 7 bytes"
    assert opt.parse("1234567") == "1234567"
    assert opt.encode("1234567") == b"1234567\0"
    assert opt.encode("") == bytes(8)
    assert opt.encode("ab") == b"ab\0\0\0\0\0\0"
    with pytest.raises(ValueError) as err:
        opt.parse("12345678")
    assert str(err.value) == "expected a string of at most 7 bytes without NUL, got 8 bytes"
    with pytest.raises(ValueError) as err:
        opt.parse("h\u00e9llo!!")  # 7 characters, 8 bytes
    assert str(err.value) == "expected a string of at most 7 bytes without NUL, got 8 bytes"
    assert opt.parse("h\u00e9llo") == "h\u00e9llo"


def test_char_array_refuses_nul_and_keeps_spaces():
    opt = options()["g_name"]
    with pytest.raises(ValueError) as err:
        opt.parse("a\0b")
    assert str(err.value) == "expected a string of at most 7 bytes without NUL, got 3 bytes"
    assert opt.parse("  x  ") == "  x  "
    with pytest.raises(ValueError) as err:
        opt.check(5)
    assert str(err.value) == "expected a string of at most 7 bytes, got 5"


def test_char_array_decode_and_undecodable_bytes():
    opt = options()["g_name"]
    assert opt.decode(b"abc\0def\0") == "abc"
    text = opt.decode(b"\xff\xfeok\0\0\0\0")
    assert text == "\udcff\udcfeok"
    assert opt.encode(text) == b"\xff\xfeok\0\0\0\0"
    assert opt.show("x'y") == "\"x'y\""


# -- enums ------------------------------------------------------------------------------------------


def test_enum_by_name_or_number():
    opt = options()["g_mode"]
    assert opt.accepts() == "one of OFF, ON, AUTO or an integer"
    assert opt.parse("ON") == 1
    assert opt.parse("AUTO") == -1
    assert opt.parse("7") == 7
    assert opt.parse("-0x2") == -2
    assert opt.check("OFF") == 0
    assert opt.encode("AUTO") == b"\xff\xff\xff\xff"
    assert opt.encode(2) == b"\x02\0\0\0"
    assert opt.decode(b"\x01\0\0\0") == "ON"
    assert opt.decode(b"\x05\0\0\0") == 5
    with pytest.raises(ValueError) as err:
        opt.parse("on")
    assert str(err.value) == "expected one of OFF, ON, AUTO or an integer, got 'on'"
    with pytest.raises(ValueError) as err:
        opt.check("MAYBE")
    assert str(err.value) == "expected one of OFF, ON, AUTO or an integer, got 'MAYBE'"
    with pytest.raises(ValueError) as err:
        opt.parse(str(1 << 31))
    assert str(err.value) == "2147483648 is out of range: expected one of OFF, ON, AUTO or an integer"


def test_unsigned_one_byte_enum():
    opt = options()["g_level"]
    assert (opt.signed, opt.size) == (False, 1)
    assert opt.parse("HIGH") == 200
    assert opt.encode("HIGH") == b"\xc8"
    with pytest.raises(ValueError):
        opt.parse("-1")
    with pytest.raises(ValueError):
        opt.parse("256")


# -- defaults from the package metadata --------------------------------------------------------------------


def test_cmdarg_default_overrides_the_initial_value():
    opts = options(initial={"g_u32": struct.pack("<I", 5)}, meta_vars=[
        {"name": "g_u32", "type": "unsigned int", "description": "how many",
         "cmdarg": {"default": 9, "long": "count", "short": "c", "help": "count them"}}])
    opt = opts["g_u32"]
    assert (opt.initial, opt.default) == (5, 9)
    assert (opt.long, opt.short, opt.help, opt.flag) == ("count", "c", "count them", "--count")


def test_value_is_a_default_when_cmdarg_has_none():
    opts = options(meta_vars=[
        {"name": "g_bool", "type": "bool", "value": True, "description": "switch it on"},
        {"name": "g_name", "type": "char[8]", "value": "eth0"},
        {"name": "g_double", "type": "double", "cmdarg": {"default": 2}, "value": 3.5},
        {"name": "g_mode", "type": "enum mode", "cmdarg": {"default": "ON"}},
    ])
    assert (opts["g_bool"].initial, opts["g_bool"].default, opts["g_bool"].help) == (False, True, "switch it on")
    assert opts["g_name"].default == "eth0"
    assert opts["g_double"].default == 2.0  # cmdarg.default wins over value
    assert (opts["g_mode"].initial, opts["g_mode"].default) == ("OFF", 1)


def test_unusable_metadata_defaults_fall_back():
    opts = options(initial={"g_u8": b"\x03"}, meta_vars=[
        {"name": "g_u8", "type": "unsigned char", "cmdarg": {"default": 300}, "value": "x"},
        {"name": "g_name", "type": "char[8]", "value": "much too long"},
        {"name": "g_s8", "type": "signed char", "cmdarg": {"default": "abc"}, "value": -5},
    ])
    assert opts["g_u8"].default == 3
    assert opts["g_name"].default == ""
    assert opts["g_s8"].default == -5


def test_help_and_long_defaults():
    opts = options(meta_vars=[{"name": "g_s8", "type": "signed char", "cmdarg": {"help": ""},
                               "description": "the description"}])
    assert opts["g_s8"].help == "the description"
    assert opts["g_s16"].help == "set s16 g_s16"
    assert (opts["g_s16"].long, opts["g_s16"].short) == ("g_s16", None)


def test_show():
    opts = options()
    assert opts["g_s32"].show(-4) == "-4"
    assert opts["g_mode"].show("ON") == "ON"
    assert opts["g_name"].show("a b") == "'a b'"


TOOLS = Path(__file__).resolve().parents[2] / "src" / "pyeunomia" / "tools"


@pytest.mark.parametrize("tool", ["execsnoop", "opensnoop"])
def test_the_wakeup_promise_is_never_an_option(tool: str):
    """reader_polls_until_ns is written by the reader while the program runs
    (runner/promise.py): no command line, config or load value may set it,
    not even the runner's own load-time globals."""
    package = Package.from_json((TOOLS / tool / "package.json").read_text(), f"{tool}.json")
    assert package.spec.data_var("reader_polls_until_ns") is not None
    for runner_owned in (False, True):
        names = {o.name for o in global_options(package, runner_owned=runner_owned)}
        assert "reader_polls_until_ns" not in names and "wakeup_interval_ns" in names
