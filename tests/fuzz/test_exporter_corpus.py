"""Replay the exporter's saved fuzz inputs (tests/corpus/exporter_config/ and
tests/corpus/api_bodies/) and its targets' seeds: a regression suite for the
config, web config and API body parsers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import fuzz_api_bodies, fuzz_exporter_config

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "exporter_config": (fuzz_exporter_config.TestOneInput, fuzz_exporter_config.seeds),
    "api_bodies": (fuzz_api_bodies.TestOneInput, fuzz_api_bodies.seeds),
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


def test_corpus_is_there_and_small() -> None:
    for target in TARGETS:
        assert any(t == target for t, _p in CASES), f"no saved inputs for {target}"
    assert len(CASES) <= 40 and sum(p.stat().st_size for _t, p in CASES) < 256 << 10
