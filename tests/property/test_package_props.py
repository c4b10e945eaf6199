"""package.Package.from_json / parse_meta / to_json over arbitrary and mutated packages."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyeunomia.errors import PackageError
from pyeunomia.format import package
from pyeunomia.format.package import Package, parse_meta
from tests.fuzz.checks import check_package_text
from tests.fuzz.contract import outcome, raises_ours

from .strategies import (
    HUGE_NUMBERS,
    UPSTREAM,
    json_values,
    mutated_objects,
    package_text,
    packed,
    padded_package,
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


@settings(max_examples=30)
@given(st.integers(0, 3000), st.integers(0, 3 << 10), st.booleans(), st.booleans())
def test_metadata_over_its_cap_is_refused_before_json_loads(meta_pad: int, object_pad: int, escape: bool,
                                                            as_bytes: bool) -> None:
    """The JSON besides the bpf_object string has a cap of its own (MAX_META, here 2 KiB), whatever the
    object's size; the object's base64 may escape its '/' as JSON allows."""
    text, besides = padded_package(meta_pad, object_pad, escape)
    with patch.object(package, "MAX_META", 2048):
        if besides > 2048:
            message = raises_ours(lambda: Package.from_json(text.encode() if as_bytes else text, "p"))
            assert message == "p: not a package: more than 2 KiB of JSON besides the bpf_object string " \
                              "(package metadata is KBs)"
        else:
            assert Package.from_json(text.encode() if as_bytes else text, "p").meta.obj_name == "client_bpf"


@given(st.sampled_from(UPSTREAM), st.data(), st.sampled_from(HUGE_NUMBERS))
def test_huge_numbers_anywhere(name: str, data: st.DataObject, number: str) -> None:
    """Numbers json.loads would refuse with a ValueError (4300 digits), or that no field takes: a whole
    number over 100 digits is refused by its length, before Python's own limit says to raise it."""
    doc = upstream_doc(name)
    where = data.draw(st.sampled_from(paths(doc)[1:]))
    text = json.dumps(replaced(doc, where, "@NUMBER@")).replace('"@NUMBER@"', number)
    check_package_text(text)
    if number.lstrip("-").isdigit() and len(number) > 100:
        message = raises_ours(lambda: Package.from_json(text, "p"))
        assert message == f"p: not a package: invalid JSON (a whole number of {len(number)} digits)"
