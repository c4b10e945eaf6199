"""Replay every saved fuzz input (tests/corpus/<target>/) and every target's
seeds through the target's own TestOneInput: the corpus is a regression suite
for the runner's parsers and the exporter's config, web config and API bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import (
    fuzz_api_bodies,
    fuzz_btf,
    fuzz_elf,
    fuzz_exporter_config,
    fuzz_http_heads,
    fuzz_options,
    fuzz_package,
)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "btf": (fuzz_btf.TestOneInput, fuzz_btf.seeds),
    "elf": (fuzz_elf.TestOneInput, fuzz_elf.seeds),
    "package": (fuzz_package.TestOneInput, fuzz_package.seeds),
    "options": (fuzz_options.TestOneInput, fuzz_options.seeds),
    "exporter_config": (fuzz_exporter_config.TestOneInput, fuzz_exporter_config.seeds),
    "api_bodies": (fuzz_api_bodies.TestOneInput, fuzz_api_bodies.seeds),
    "http_heads": (fuzz_http_heads.TestOneInput, fuzz_http_heads.seeds),
}
EXPORTER_TARGETS = ("exporter_config", "api_bodies", "http_heads")
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
    files = [p for t, p in CASES if t not in EXPORTER_TARGETS]
    assert len(files) <= 100, f"{len(files)} corpus files: keep the nastiest, under 100"
    assert sum(p.stat().st_size for p in files) < 1 << 20, "corpus over 1 MiB"


def test_exporter_corpus_is_there_and_small() -> None:
    cases = [(t, p) for t, p in CASES if t in EXPORTER_TARGETS]
    for target in EXPORTER_TARGETS:
        assert any(t == target for t, _p in cases), f"no saved inputs for {target}"
    assert len(cases) <= 40 and sum(p.stat().st_size for _t, p in cases) < 256 << 10
