"""Random and malformed requests against a running exporter's management API
(with its token): every answer is a 4xx with a one-line JSON error, nothing
is loaded, nothing crashes, and /metrics keeps answering throughout."""

from __future__ import annotations

import json
import random
import secrets
import socket
from typing import Any

import pytest

from tests.fuzz.exporter_checks import check_start_body
from tests.fuzz.fuzz_api_bodies import seeds
from tests.fuzz.test_corpus import CORPUS as CORPUS_ROOT
from tests.property.strategies import EDGE_VALUES, paths, replaced

from ..conftest import loaded_prog_ids
from ..exporter.live import Exporter
from .helpers import temp_dir
from .test_exporter_api import program_doc

pytestmark = pytest.mark.usefixtures("kernel")

BODIES = 300
CORPUS = CORPUS_ROOT / "api_bodies"
WORDS = ["opensnoop", "name", "metrics", "counters", "gauges", "histograms", "labels", "from", "value", "map",
         "buckets", "options", "pid", "comm", "fname", "ebpf_data", "compiled_ebpf_filename", "id", "decoders"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice(EDGE_VALUES)
    if kind == 1:
        return rng.choice(WORDS)
    if kind == 2:
        return rng.randint(-(1 << 65), 1 << 65)
    if kind == 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(WORDS): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def bodies(rng: random.Random, pid: int) -> list[bytes]:
    valid = program_doc(pid)
    out = list(seeds()) + [p.read_bytes() for p in sorted(CORPUS.glob("*"))]
    while len(out) < BODIES:
        kind = rng.randrange(4)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(64)))
        elif kind == 1:
            out.append(json.dumps(random_value(rng)).encode())
        elif kind == 2:
            where = rng.choice(paths(valid)[1:])
            doc = replaced(valid, where, random_value(rng), delete=rng.random() < 0.3 and isinstance(where[-1], str))
            out.append(json.dumps(doc).encode())
        else:
            text = json.dumps(valid)
            i = rng.randrange(len(text))
            out.append((text[:i] + rng.choice(["", "{", "]", '"', "\\", "\x00", "\ud800"]) + text[i + 1:])
                       .encode("utf-8", "surrogatepass"))
    return [b for b in out if check_start_body(b) is None]  # only bodies the exporter must refuse


def raw_request(port: int, data: bytes, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        return reply


def assert_json_4xx(status: int, headers: dict[str, str], body: bytes) -> None:
    assert 400 <= status < 500, (status, body)
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert isinstance(doc["error"], str) and doc["error"] and "\n" not in doc["error"], doc


def test_random_bodies_get_4xx_json_and_metrics_keep_answering():
    tmp = temp_dir()
    token = secrets.token_hex(24)
    (tmp / "token").write_text(token)
    (tmp / "token").chmod(0o600)
    rng = random.Random(20261125)
    before = loaded_prog_ids()
    with Exporter(tmp, "programs: []\n", "--enable-api", "--api-token-file", str(tmp / "token")) as exp:
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        sent = bodies(rng, 1)
        assert len(sent) > BODIES // 2
        for n, body in enumerate(sent):
            path = "/start" if n % 3 else "/stop"
            assert_json_4xx(*exp.get(path, auth, "POST", body))
            if n % 25 == 0:
                assert exp.get("/metrics")[0] == 200
        # malformed HTTP around the body
        port = exp.port
        head = f"POST /start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        # http.server answered -1 "over 16 MiB", read 1_0 as 10 and let the first of two values win: the
        # bodies those make (10 bytes, or "{}") are bad JSON too, so the error must name the Content-Length
        not_a_number, conflicting = b"Content-Length is not a number", b"conflicting Content-Length values"
        for request, status, words in (
                (head + "\r\n", b"411", b"Content-Length"),
                (head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"411", b"Transfer-Encoding"),
                (head + "Content-Length: abc\r\n\r\n", b"400", not_a_number),
                (head + "Content-Length: -5\r\n\r\n", b"400", not_a_number),
                (head + "Content-Length: -1\r\n\r\n", b"400", not_a_number),
                (head + "Content-Length: 1_0\r\n\r\n0123456789", b"400", not_a_number),
                (head + "Content-Length: 2\r\nContent-Length: 10\r\n\r\n{}", b"400", conflicting),
                (head + f"Content-Length: {1 << 40}\r\n\r\n", b"413", b"over"),
                (head + "Content-Length: 100\r\n\r\n{}", b"400", b"")):
            reply = raw_request(port, request.encode(), half_close=True)
            assert reply.startswith(b"HTTP/1.1 " + status), (request, reply[:200])
            assert b'{"error": ' in reply and words in reply.partition(b"\r\n\r\n")[2], (request, reply[-200:])
        for method in ("PUT", "DELETE", "PATCH", "GET"):
            assert_json_4xx(*exp.get("/start", auth, method, b"{}" if method != "GET" else None))
        assert exp.get("/metrics")[0] == 200
        assert exp.running.proc.poll() is None
        assert not any("internal error" in line or "Traceback" in line for line in exp.running.stderr_lines)
    assert loaded_prog_ids() - before == set()
