"""Replay every saved fuzz input (tests/corpus/<target>/) and every target's
seeds through the target's own TestOneInput: the corpus is a regression suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import fuzz_btf, fuzz_elf, fuzz_options, fuzz_package

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "btf": (fuzz_btf.TestOneInput, fuzz_btf.seeds),
    "elf": (fuzz_elf.TestOneInput, fuzz_elf.seeds),
    "package": (fuzz_package.TestOneInput, fuzz_package.seeds),
    "options": (fuzz_options.TestOneInput, fuzz_options.seeds),
}
CASES = sorted((target, path) for target in TARGETS for path in (CORPUS / target).glob("*") if path.is_file())


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_corpus_input(target: str, path: Path) -> None:
    TARGETS[target][0](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds(target: str) -> None:
    run, seeds = TARGETS[target]
    for seed in seeds():
        run(seed)


def test_corpus_stays_small() -> None:
    files = [p for _t, p in CASES]
    assert len(files) <= 100, f"{len(files)} corpus files: keep the nastiest, under 100"
    assert sum(p.stat().st_size for p in files) < 1 << 20, "corpus over 1 MiB"
