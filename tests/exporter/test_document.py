"""Config documents keep the line of every value, for YAML and JSON alike."""

from __future__ import annotations

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


def test_json_gets_lines_from_composing_it_as_yaml():
    text = '{\n  "programs": [\n    {"name": "opensnoop"}\n  ]\n}\n'
    doc = parse_text(text, "c.json", as_json=True)
    assert doc.value["programs"].value[0].line == 3
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
