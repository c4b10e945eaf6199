"""Config documents keep the line of every value, for YAML and JSON alike."""

from __future__ import annotations

import re

import pytest

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.document import parse_text


def test_yaml_values_know_their_lines_and_paths():
    doc = parse_text("a:\n  - x: 1\n    y: two\n  - x: 3\n", "c.yaml", as_json=False)
    second = doc.value["a"].value[1]
    assert second.line == 4 and second.path == "a[1]"
    assert second.value["x"].value == 3 and second.value["x"].path == "a[1].x"
    assert doc.value["a"].value[0].value["y"].line == 3
    assert doc.plain == {"a": [{"x": 1, "y": "two"}, {"x": 3}]}
    # merges and aliases: copied where they are used, with that place's paths and the anchor's lines
    text = "base: &b {x: 1, y: [2]}\nmore: &m {z: 3}\nuse:\n  <<: [*b, *m]\n  w: 4\nagain: *b\n"
    doc = parse_text(text, "c.yaml", as_json=False)
    assert doc.plain["use"] == {"z": 3, "x": 1, "y": [2], "w": 4}
    assert doc.value["use"].value["y"].value[0].path == "use.y[0]"
    assert doc.value["again"].value["x"].path == "again.x" and doc.value["again"].value["x"].line == 1
    with pytest.raises(ConfigError, match="key given twice") as e:
        parse_text("base: &b {x: 1}\nuse:\n  <<: *b\n  x: 2\n", "c.yaml", as_json=False)
    assert (e.value.line, e.value.key) == (4, "use.x")
    for text, key in (("a:\n  - b:\n      x: 1\n      x: 2\n", "a[0].b.x"), ("a: {b: [{c: *nope}]}\n", "a.b[0]"),
                      ("a:\n  b:\n    <<: 1\n", "a.b.<<")):
        with pytest.raises(ConfigError) as e:
            parse_text(text, "c.yaml", as_json=False)
        assert e.value.key == key, str(e.value)


def test_json_values_have_key_paths_not_lines():
    """JSON is parsed once, by json.loads: its errors name the key, not the line."""
    text = '{\n  "programs": [\n    {"name": "opensnoop"}\n  ]\n}\n'
    doc = parse_text(text, "c.json", as_json=True)
    name = doc.value["programs"].value[0].value["name"]
    assert (name.line, name.path) == (None, "programs[0].name")
    assert str(name.error("bad")) == "c.json: programs[0].name: bad"
    assert doc.plain == {"programs": [{"name": "opensnoop"}]}


def test_json_that_yaml_reads_differently_has_no_lines_but_right_values():
    text = '{"a": "tab\\there", "b": 1e3}'  # YAML 1.1 reads 1e3 as a string
    doc = parse_text(text, "c.json", as_json=True)
    assert doc.plain == {"a": "tab\there", "b": 1000.0}


@pytest.mark.parametrize(("text", "as_json", "line", "words"), [
    ("a: [1, 2\nb: 3\n", False, 2, "invalid YAML"),
    ('{"a": 1,,}', True, 1, "invalid JSON"),
    ("a: 1\na: 2\n", False, 2, "key given twice"),
    ("? [1, 2]\n: x\n", False, 1, "must be text"),
])
def test_syntax_errors_name_file_and_line(text, as_json, line, words):
    with pytest.raises(ConfigError, match=words) as e:
        parse_text(text, "conf", as_json)
    assert e.value.file == "conf" and e.value.line == line
    assert str(e.value).startswith(f"conf:{line}")


def test_alias_bombs_are_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 7)]
    with pytest.raises(ConfigError, match="more than"):
        parse_text("\n".join(lines) + "\n", "bomb.yaml", as_json=False)


def test_empty_document_is_none():
    assert parse_text("", "c.yaml", as_json=False).value is None


# -- bounds: every value counted before (JSON) or as (YAML) it is built --------------------------

def test_json_values_are_counted_before_json_loads():
    """200,001 numbers: refused by counting commas, not after building them
    (this once fell back to an unchecked tree when YAML found too many)."""
    with pytest.raises(ConfigError) as e:
        parse_text("[" + "0," * 200_000 + "0]", "c.json", as_json=True)
    assert str(e.value) == "c.json: more than 200000 values (counting each ',', '[' and '{'): simplify the config"


def test_yaml_values_are_counted_as_they_are_built():
    """The error comes where the 200,001st value is, not after composing all."""
    text = "a:\n" + "- x\n" * 200_001 + "b: 1\n"
    with pytest.raises(ConfigError) as e:
        parse_text(text, "c.yaml", as_json=False)
    assert str(e.value) == "c.yaml:200000: more than 200000 values (aliases expanding?): simplify the config"


@pytest.mark.parametrize(("text", "as_json", "where"), [
    ('{"options": {"x": ' + "9" * 5000 + "}}", True, "c: options.x"),
    ('{"a": [1, -' + "9" * 40 + "]}", True, "c: a[1]"),
    ("options:\n  x: " + "9" * 5000 + "\n", False, "c:2"),
    ("x: 0x" + "f" * 33 + "\n", False, "c:1"),
    ("x: 1" + ":0" * 100 + "\n", False, "c:1"),  # base 60: quadratic to build
    ("x: -" + "9" * 300 + "\n", False, "c:1"),
])
def test_huge_whole_numbers_are_config_errors(text, as_json, where):
    """Python refuses to read over 4300 digits (a ValueError: 'internal error' once); no
    setting takes over 128 bits."""
    with pytest.raises(ConfigError) as e:
        parse_text(text, "c", as_json)
    assert str(e.value).startswith(f"{where}: ") and "no setting takes one wider than 128 bits" in str(e.value)
    widest = "-340282366920938463463374607431768211455" if as_json else "0xffffffffffffffffffffffffffffffff"
    assert abs(parse_text(f'{{"a": {widest}}}', "c", as_json).plain["a"]) == (1 << 128) - 1  # 128 bits pass


@pytest.mark.parametrize(("text", "line", "words"), [
    ("a: 2024-13-45\n", 1, "invalid value: month must be in 1..12"),  # a ValueError out of PyYAML once
    ("a: !!int x\n", 1, "invalid value: invalid literal for int()"),
    ("a: !!int ''\n", 1, "invalid value: '' is no int"),  # IndexError, KeyError, AttributeError out of PyYAML
    ("a: !!bool maybe\n", 1, "invalid value: 'maybe' is no bool"),
    ("a: !!timestamp x\n", 1, "invalid value: 'x' is no timestamp"),
    ("a: &m {x: 1}\n*m : 2\n", 2, "a key must be text, not a list or mapping"),
    ("a: &a {<<: *a}\n", 1, "alias *a inside its own anchor"),  # once read as {}
    ("&k a: 1\n*k : 2\n", 2, "key given twice"),  # once reported at line 1
])
def test_yaml_values_python_refuses_are_config_errors(text, line, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as e:
        parse_text(text, "c.yaml", as_json=False)
    assert e.value.line == line
