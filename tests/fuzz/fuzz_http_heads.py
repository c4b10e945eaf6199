"""Fuzz target: request heads as the exporter's server parses them.

    .venv/bin/python tests/fuzz/fuzz_http_heads.py -max_total_time=300

Contract: head_end finds the end of a head or says there is none yet, and
parse_head gives a Request or a BadRequest with a 4xx/5xx status and a
one-line message; anything else (IndexError, UnicodeError, ValueError from
int(), ...) is a bug that would reach the server's I/O thread.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyeunomia.exporter.httpwire import MAX_HEAD, BadRequest, Request, head_end, parse_head
from tests.fuzz.contract import check_message


def TestOneInput(data: bytes) -> None:
    end = head_end(data)
    assert end == -1 or 0 < end <= len(data), end
    if end > 0:
        assert data[:end].endswith(b"\n\n") or data[:end].endswith(b"\n\r\n")
    try:
        request = parse_head(data[:end] if end > 0 else data)
    except BadRequest as e:
        check_message(e)
        assert e.status in (400, 411, 413, 417, 431, 505), e.status
        return
    assert isinstance(request, Request)
    assert len(data) <= MAX_HEAD or end > 0
    assert request.path.startswith("/") or request.path == "*"
    assert request.content_length is None or request.content_length >= 0
    assert all(name == name.lower() for name in request.headers)


def seeds() -> list[bytes]:
    base = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:8526\r\n"
    return [base + b"\r\n", base + b"Accept-Encoding: gzip\r\n\r\n", b"POST /start HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 12\r\nAuthorization: Bearer t\r\n\r\n{}",
            base + b"Content-Length: 1_0\r\n\r\n", base + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
            base + b"Content-Length: -1\r\n\r\n", base + b"Transfer-Encoding: chunked\r\n\r\n",
            base + b" folded\r\n\r\n", b"GET http://x/ HTTP/1.0\n\n", b"\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            base + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", base + b"X: \xff\xfe\r\n\r\n",
            b"GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n", base + b"Expect: 100-continue\r\n\r\n"]


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "http_heads", seeds)
