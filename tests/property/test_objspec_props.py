"""objspec.ObjectSpec (and Package.from_object on top) over built and mutated objects."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings

from pyeunomia.format.elf import ElfFile
from pyeunomia.format.objspec import ObjectSpec
from tests.fuzz.checks import check_object_bytes
from tests.fuzz.contract import raises_ours

from .strategies import bpf_objects, mutated_objects


@settings(max_examples=100)
@given(bpf_objects())
def test_built_objects(obj: bytes) -> None:
    check_object_bytes(obj)


@settings(max_examples=40)
@given(mutated_objects())
def test_mutated_upstream(obj: bytes) -> None:
    check_object_bytes(obj)


CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "elf"


def test_overlapping_globals_are_refused() -> None:
    spec = ObjectSpec((CORPUS / "overlapping-globals").read_bytes())
    assert raises_ours(lambda: spec.globals) == "globals 'big' and 'big' overlap in section .data"


def test_names_in_one_long_run_are_refused() -> None:
    data = (CORPUS / "symbol-names-into-one-long-run").read_bytes()
    assert "overlap in their string table" in raises_ours(lambda: ElfFile(data).symbols())
