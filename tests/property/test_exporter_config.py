"""The exporter's parsers on arbitrary documents: configs (YAML and JSON,
random ones and the examples with one value replaced or removed), web
configs, and API bodies. Each gives a value or a ConfigError naming the file
(and line and key), never another exception; parsed configs are planned
against the real built-in packages with the same contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

import yaml
from hypothesis import given
from hypothesis import strategies as st

from pyeunomia.errors import ConfigError
from pyeunomia.exporter import config, document
from pyeunomia.exporter.config import parse_config
from tests.fuzz.contract import check_message
from tests.fuzz.exporter_checks import (
    BASE_DIR,
    check_config_text,
    check_start_body,
    check_stop_body,
    check_web_config_text,
)

from .strategies import (
    EDGE_VALUES,
    HUGE_NUMBERS,
    YAML_ONLY_VALUES,
    alias_documents,
    count_values,
    json_values,
    paths,
    replaced,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [yaml.safe_load((ROOT / "examples" / n).read_text()) for n in ("opensnoop.yaml", "opensnoop-kernel.yaml")]
KEYS = ["programs", "name", "metrics", "counters", "histograms", "gauges", "labels", "from", "decoders", "value",
        "buckets", "type", "min", "max", "start", "width", "count", "bounds", "multiplier", "map", "max_series",
        "expire_after", "options", "ebpf_data", "compiled_ebpf_filename", "description", "help", "pid", "comm",
        "fname", "ret", "mode", "opens", "err", "errno", "result", "static_map", "cgroup", "open_flags", "exp2",
        "linear", "explicit", "tls_server_config", "basic_auth_users", "cert_file", "key_file", "min_version"]
SCALARS = st.one_of(st.sampled_from(EDGE_VALUES), st.sampled_from(KEYS), st.integers(-3, 70),
                    st.sampled_from(["5m", "1e999", "0s", "-1s", "TLS13", "opensnoop", "eunomia_exporter_x", "a b"]))
documents = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
                         max_leaves=20)


def as_text(doc: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(doc)  # NaN and Infinity as JSON's extensions: the parser must refuse or take them
    return yaml.safe_dump(doc, allow_unicode=True)


@given(st.one_of(documents, st.fixed_dictionaries({"programs": st.lists(documents, max_size=2)})), st.booleans())
def test_any_document(doc: Any, as_json: bool) -> None:
    check_config_text(as_text(doc, as_json), as_json)


@given(st.data(), st.sampled_from(EXAMPLES), st.booleans(), st.booleans())
def test_examples_with_one_value_replaced_or_removed(data: st.DataObject, example: Any, as_json: bool,
                                                     delete: bool) -> None:
    where = data.draw(st.sampled_from(paths(example)[1:]))
    value = data.draw(st.one_of(st.sampled_from(EDGE_VALUES), json_values, documents))
    doc = replaced(example, where, value, delete=delete and isinstance(where[-1], str))
    check_config_text(as_text(doc, as_json), as_json)


@given(st.text(max_size=200), st.booleans())
def test_any_text(text: str, as_json: bool) -> None:
    check_config_text(text, as_json)


@given(st.sampled_from([yaml.safe_dump(e) for e in EXAMPLES]), st.data())
def test_examples_cut_or_spliced(text: str, data: st.DataObject) -> None:
    """Broken YAML: a cut, an inserted character, a wrong indent."""
    i = data.draw(st.integers(0, len(text)))
    piece = data.draw(st.sampled_from(["", " ", "\t", ":", "- ", "{", "[", "&a ", "*a", "!!python/none", "\n  ",
                                       "\x00", "#", "'", '"', "<<: ", "&b ", "*b", "? ", "!!int ", "!!float ",
                                       "!!bool ", "!!timestamp ", "!!binary "]))
    check_config_text(text[:i] + piece + text[i + data.draw(st.integers(0, 3)):], as_json=False)


@given(st.one_of(documents, st.fixed_dictionaries({"tls_server_config": documents, "basic_auth_users": documents})))
def test_web_config_any_document(doc: Any) -> None:
    check_web_config_text(yaml.safe_dump(doc))


@given(st.one_of(documents.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64),
                 st.sampled_from([json.dumps(e["programs"][0]).encode() for e in EXAMPLES])))
def test_api_bodies(body: bytes) -> None:
    check_start_body(body)
    check_stop_body(body)


def test_errors_locate_the_value() -> None:
    """The contract's positive side: a known error names file, line and key."""
    text = yaml.safe_dump(EXAMPLES[0], sort_keys=False).replace("name: pid", "name: __pid")
    try:
        parse_config(text, "c.yaml")
    except ConfigError as e:
        assert (e.file, e.key) == ("c.yaml", "programs[0].metrics.counters[0].labels[0].name")
        assert e.line == text.splitlines().index("      - name: __pid") + 1
    else:
        raise AssertionError("a label named __pid was accepted")


@given(st.integers(1, 3000), st.sampled_from(["[", "{a: ", '{"a": ']), st.booleans())
def test_deep_nesting(depth: int, opener: str, as_json: bool) -> None:
    """Nesting deeper than the parsers' recursion once raised RecursionError."""
    closer = "]" if opener == "[" else "}"
    check_config_text(opener * depth + "1" + closer * depth, as_json)
    check_start_body((opener * depth + "1" + closer * depth).encode())


# -- the bounds: values counted before (JSON) or as (YAML) they are built, numbers, body size -------

def structural_count(text: str) -> int:
    return 1 + text.count(",") + text.count("[") + text.count("{")


@given(st.one_of(documents, json_values), st.integers(1, 60), st.booleans())
def test_no_document_over_the_value_count_is_built(doc: Any, limit: int, as_json: bool) -> None:
    """Over the count: refused (JSON before json.loads, by its ',', '[' and '{'); under it: built, with
    no more values than the count allows."""
    text = as_text(doc, as_json)
    with patch.object(document, "MAX_NODES", limit):
        try:
            node = document.parse_text(text, "f", as_json)
        except ConfigError as e:
            if as_json and structural_count(text) > limit:
                assert "more than" in str(e)
            return
    assert count_values(node.plain) <= limit
    assert structural_count(text) <= limit if as_json else count_values(doc) <= limit


@given(alias_documents(), st.integers(1, 400))
def test_yaml_counts_every_value_an_alias_or_merge_copies(built: tuple[str, int, int], limit: int) -> None:
    text, total, in_tree = built
    with patch.object(document, "MAX_NODES", limit):
        try:
            node = document.parse_text(text, "f", as_json=False)
        except ConfigError as e:  # at the line where the count ran out, not after building it all
            assert total > limit and "more than" in str(e) and e.line is not None, str(e)
            return
    assert total <= limit and count_values(node.plain) == in_tree


@given(st.sampled_from(EXAMPLES), st.data(), st.sampled_from(HUGE_NUMBERS + YAML_ONLY_VALUES), st.booleans())
def test_numbers_python_refuses_anywhere(example: Any, data: st.DataObject, number: str, as_json: bool) -> None:
    """5000 digits (int() raises ValueError), 3600 hex digits (repr() does), base 60, a 13th month:
    a ConfigError wherever they are, never an internal error."""
    where = data.draw(st.sampled_from(paths(example)[1:]))
    text = as_text(replaced(example, where, "@NUMBER@"), as_json)
    text = text.replace('"@NUMBER@"' if as_json else "'@NUMBER@'", number)
    assert number in text
    check_config_text(text, as_json)
    if as_json and where[:2] == ("programs", 0):
        check_start_body(json.dumps(replaced(example, where, "@NUMBER@")["programs"][0]).replace(
            '"@NUMBER@"', number).encode())


@given(st.sampled_from([json.dumps(e["programs"][0]) for e in EXAMPLES]), st.integers(-50, 50))
def test_api_bodies_over_their_cap_are_refused_unparsed(body: str, over: int) -> None:
    cap = len(body) + 100
    padded = (body[:-1] + ', "x": "' + "y" * (100 - 9 + over) + '"}').encode()
    assert len(padded) == cap + over
    with patch.object(config, "MAX_REQUEST_BODY", cap):
        try:
            config.program_from_request(padded, BASE_DIR)
        except ConfigError as e:
            check_message(e)
            assert str(e).startswith(f"<request>: the body is over {cap} bytes: ") == (over > 0), str(e)
            return
    assert over <= 0
