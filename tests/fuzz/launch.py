"""Run a fuzz target under atheris (libFuzzer for Python).

    .venv/bin/pip install atheris        # not a test dependency
    .venv/bin/python tests/fuzz/fuzz_btf.py -max_total_time=300 /tmp/btf-corpus

Without corpus directories the target's seeds are written to a temporary one.
Crashes are written to the current directory (libFuzzer's -artifact_prefix);
minimise one with -minimize_crash=1 and keep it in tests/corpus/<target>/.
Memory (-rss_limit_mb) and time per input (-timeout) are limited by default.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

DEFAULTS = ["-rss_limit_mb=3072", "-timeout=20", "-max_len=200000"]


def main(test_one_input: Callable[[bytes], None], target: str, seeds: Callable[[], list[bytes]]) -> None:
    try:
        atheris = importlib.import_module("atheris")  # optional: not a test dependency
    except ImportError:
        sys.exit("atheris is not installed: .venv/bin/pip install atheris")
    args = sys.argv[1:]
    flags = [a for a in args if a.startswith("-")]
    dirs = [a for a in args if not a.startswith("-")]
    corpus = Path(__file__).resolve().parents[1] / "corpus" / target
    seed_dir = Path(tempfile.mkdtemp(prefix=f"pyeu-seeds-{target}-"))
    for i, seed in enumerate(seeds()):
        (seed_dir / f"seed{i}").write_bytes(seed)
    if not dirs:
        dirs = [tempfile.mkdtemp(prefix=f"pyeu-fuzz-{target}-")]
    dirs += [str(seed_dir)] + ([str(corpus)] if corpus.is_dir() else [])
    known = {f.split("=")[0] for f in flags}
    flags += [d for d in DEFAULTS if d.split("=")[0] not in known]
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *flags, *dirs], test_one_input)
    atheris.Fuzz()
