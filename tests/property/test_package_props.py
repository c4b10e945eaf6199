"""package.Package.from_json / parse_meta / to_json over arbitrary and mutated packages."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyeunomia.errors import PackageError
from pyeunomia.package import Package, parse_meta
from tests.fuzz.checks import check_package_text
from tests.fuzz.contract import outcome, raises_ours

from .strategies import (
    UPSTREAM,
    json_values,
    mutated_objects,
    package_text,
    packed,
    paths,
    replaced,
    replacements,
    upstream_doc,
    upstream_object,
    upstream_text,
)


@given(st.binary(max_size=300))
@example(b"[" * 100_000)
@example(b'{"bpf_object": "", "meta": {}}')
@example(b"\xff\xfe{\x00")
@example('{"a": "\ud800"}'.encode("utf-8", "surrogatepass"))
def test_any_bytes(data: bytes) -> None:
    check_package_text(data)


@given(json_values)
def test_any_json_document(doc: Any) -> None:
    check_package_text(json.dumps(doc))


@given(json_values)
def test_any_meta(meta: Any) -> None:
    outcome(lambda: parse_meta(meta, "x.json"))
    check_package_text(json.dumps({"bpf_object": packed(upstream_object("bootstrap")), "meta": meta}))


@settings(max_examples=100)
@given(st.sampled_from(UPSTREAM), st.data(), replacements, st.booleans())
def test_one_meta_value_replaced(name: str, data: st.DataObject, value: Any, delete: bool) -> None:
    """Every place in the upstream metadata, set to an edge value or removed."""
    doc = upstream_doc(name)
    places = [p for p in paths(doc["meta"]) if p]
    path = data.draw(st.sampled_from(places))
    doc["meta"] = replaced(doc["meta"], path, value, delete)
    check_package_text(json.dumps(doc))


@given(st.sampled_from(UPSTREAM), st.sampled_from(["bpf_object", "bpf_object_size", "meta"]), replacements,
       st.booleans())
def test_top_level_value_replaced(name: str, key: str, value: Any, delete: bool) -> None:
    doc = upstream_doc(name)
    if delete:
        del doc[key]
    else:
        doc[key] = value
    check_package_text(json.dumps(doc))


@settings(max_examples=40)
@given(st.sampled_from(UPSTREAM), st.data())
def test_mutated_text(name: str, data: st.DataObject) -> None:
    """Characters of the JSON text changed, deleted or the text cut short."""
    text = bytearray(upstream_text(name).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        how = data.draw(st.sampled_from(["set", "delete", "cut"]))
        if how == "set":
            text[at] = data.draw(st.sampled_from(b'{}[]",:\\0123456789eE-+ nulltruefalse\xff'))
        elif how == "delete":
            del text[at]
        else:
            del text[at:]
        if not text:
            break
    check_package_text(bytes(text))


@settings(max_examples=40)
@given(st.sampled_from(UPSTREAM), mutated_objects())
def test_mutated_object_in_a_package(name: str, obj: bytes) -> None:
    check_package_text(package_text(obj, upstream_doc(name)["meta"]).encode())


@given(st.sampled_from(UPSTREAM))
def test_upstream_round_trip(name: str) -> None:
    pkg = Package.from_json(upstream_text(name), f"{name}.json")
    again = Package.from_json(pkg.to_json(), "again.json")
    assert again.object == pkg.object and again.meta == pkg.meta and again.to_json() == pkg.to_json()


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none(),
                 st.just(2 ** 200)))
def test_object_size_claims(size: Any) -> None:
    obj = upstream_object("bootstrap")
    text = package_text(obj, upstream_doc("bootstrap")["meta"], size=size)
    pkg = outcome(lambda: Package.from_json(text, "x.json"))
    assert (pkg is not None) == (size is None or (type(size) is int and size == len(obj)))


def test_object_size_with_too_many_digits() -> None:
    text = package_text(upstream_object("bootstrap"), upstream_doc("bootstrap")["meta"], size=1)
    text = text.replace('"bpf_object_size": 1', '"bpf_object_size": ' + "9" * 5000)
    raises_ours(lambda: Package.from_json(text, "x.json"), (PackageError,))
