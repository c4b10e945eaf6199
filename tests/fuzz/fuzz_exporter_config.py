"""Fuzz target: the exporter's config (YAML or JSON) and web config, planned
against the real built-in packages.

    .venv/bin/python tests/fuzz/fuzz_exporter_config.py -max_total_time=300

The first byte picks how the rest is read: the config as YAML, as JSON, or a
web config. Contract (exporter_checks): a config or one ConfigError line
naming the file (and line and key when known); nothing else.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.exporter_checks import check_config_text, check_web_config_text

ROOT = Path(__file__).resolve().parents[2]


def TestOneInput(data: bytes) -> None:
    mode = data[0] % 3 if data else 0
    text = data[1:].decode("utf-8", "surrogateescape").encode("utf-8", "replace").decode("utf-8")
    if mode == 2:
        check_web_config_text(text)
    else:
        check_config_text(text, as_json=mode == 1)


def seeds() -> list[bytes]:
    examples = [(ROOT / "examples" / name).read_bytes() for name in ("opensnoop.yaml", "opensnoop-kernel.yaml")]
    out = [b"\0" + e for e in examples]
    out += [b"\1" + b'{"programs": [{"name": "opensnoop", "metrics": {"counters": [{"name": "c", "labels": '
            b'[{"name": "comm"}], "max_series": 3}], "histograms": [{"name": "h", "value": "mode", '
            b'"buckets": {"type": "linear", "start": 0, "width": 1e308, "count": 3}}]}}]}']
    out += [b"\2tls_server_config:\n  cert_file: a\n  key_file: b\nbasic_auth_users:\n  u: $2y$10$" + b"a" * 53]
    out += [b"\0a: &a [*a]\n", b"\0" + b"[" * 200, b"\1" + b"[" * 70 + b"]" * 70, b"\0programs: [{name: x}]",
            b"\0programs:\n  - name: opensnoop\n    metrics: {gauges: [{name: g, value: ts, expire_after: 1e999}]}\n"]
    # the bounds: over the value count (JSON counted before json.loads; YAML aliases as they expand),
    # numbers Python refuses to build or print, a value one of its constructors raises ValueError for
    bomb = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    out += [b"\1[" + b"0," * 200_000 + b"0]", b"\0" + "\n".join(bomb).encode() + b"\n"]
    out += [b"\0programs:\n  - name: opensnoop\n    options: {pid: " + number
            + b"}\n    metrics: {counters: [{name: c}]}\n"
            for number in (b"9" * 5000, b"0x" + b"f" * 3600, b"1" + b":0" * 3000, b"2024-13-45")]
    return out


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "exporter_config", seeds)
