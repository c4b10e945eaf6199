"""elf.ElfFile over arbitrary, built and mutated objects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyeunomia.format.elf import ElfFile
from tests.btfbuilder import SHT_NOBITS, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_OBJECT, ElfBuilder
from tests.fuzz.contract import outcome

from .strategies import mutated_objects


def exercise(data: bytes) -> ElfFile | None:
    elf = outcome(lambda: ElfFile(data))
    if elf is None:
        return None
    for s in elf.sections:
        outcome(lambda s=s: elf.section_bytes(s))  # type: ignore[misc]
        assert elf.section(s.name) is not None
    outcome(elf.symbols)
    return elf


@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    exercise(data)


@given(st.sampled_from([b"\x7fELF\x02\x01", b"\x7fELF\x02\x02"]), st.binary(min_size=58, max_size=600))
def test_elf_magic_then_anything(head: bytes, rest: bytes) -> None:
    exercise(head + rest)


@settings(max_examples=100)
@given(mutated_objects())
def test_mutated_upstream(obj: bytes) -> None:
    exercise(obj)


section_names = st.text(alphabet=st.characters(exclude_characters="\0", exclude_categories=["Cs"]), max_size=12)


@given(st.sampled_from("<>"), st.lists(st.tuples(section_names, st.binary(max_size=40), st.booleans()), max_size=6),
       st.lists(st.tuples(section_names, st.integers(0, (1 << 64) - 1), st.booleans()), max_size=6))
def test_sections_and_symbols_read_back(endian: str, sections: list[tuple[str, bytes, bool]],
                                         symbols: list[tuple[str, int, bool]]) -> None:
    """What ElfBuilder writes, ElfFile reads: names, bytes, NOBITS sizes, symbols."""
    b = ElfBuilder(endian)
    for name, data, nobits in sections:
        if nobits:
            b.section(name, type=SHT_NOBITS, size=len(data))
        else:
            b.section(name, data)
    for name, value, func in symbols:
        b.symbol(name, 1 if sections else 0, value, 8, STB_GLOBAL if func else STB_LOCAL,
                 STT_FUNC if func else STT_OBJECT)
    elf = ElfFile(b.build())
    for (name, data, nobits), s in zip(sections, elf.sections[1:], strict=False):
        assert s.name == name
        assert elf.section_bytes(s) == (bytes(len(data)) if nobits else data)
    got = [(s.name, s.value) for s in elf.symbols()[1:]]
    assert got == [(name, value) for name, value, _f in symbols]
