"""Fuzz target: the bodies of the management API's POST /start and POST /stop.

    .venv/bin/python tests/fuzz/fuzz_api_bodies.py -max_total_time=300

/start: a program config as JSON, parsed and planned against the real
built-in packages (nothing is loaded); /stop: {"id": N}. Contract
(exporter_checks): a value, or one error line (answered as a 400).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.exporter_checks import check_start_body, check_stop_body


def TestOneInput(data: bytes) -> None:
    check_start_body(data)
    check_stop_body(data)


def seeds() -> list[bytes]:
    program = {"name": "opensnoop", "options": {"pid": 1, "failed": True},
               "metrics": {"counters": [{"name": "api_opens", "labels": [{"name": "comm"},
                                                                          {"name": "filename", "from": "fname"}]}]}}
    return [json.dumps(program).encode(), b'{"id": 0}', b'{"id": true}', b'{"id": 1e3}', b'{"id": -1}',
            b'{"id": 99999999999999999999999}', b"\xff\xfe", b"[" * 5000, b'{"name": "opensnoop", "metrics": 1}',
            json.dumps({**program, "ebpf_data": "{}"}).encode(), b'{"name": "x", "metrics": {}, "name": "y"}',
            # the bounds: over MAX_REQUEST_BODY, over the value count, numbers Python refuses to build
            json.dumps({**program, "ebpf_data": "x" * (4 << 20)}).encode(), b"[" + b"[]," * 100_000 + b"0]",
            json.dumps({**program, "options": {"pid": "@"}}).replace('"@"', "9" * 5000).encode()]


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "api_bodies", seeds)
