"""The HTTP layer: pages, content negotiation, and the API's guard rails.
Starting programs in the kernel is covered end to end in tests/e2e; here the
set of programs records what it was asked to start."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pyeunomia.cli.exporter import _start_from_request
from pyeunomia.exporter.collector import ExporterCollector
from pyeunomia.exporter.plan import ProgramPlan
from pyeunomia.exporter.programs import ProgramSet
from pyeunomia.exporter.server import Exporter, ExporterServer
from pyeunomia.source import builtin_packages

TOKEN = b"0123456789abcdef-test-token"


class RecordingSet(ProgramSet):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[ProgramPlan] = []

    def start(self, plan: ProgramPlan) -> int:
        self.started.append(plan)
        return 41 + len(self.started)


@pytest.fixture
def server(request) -> Iterator[tuple[ExporterServer, RecordingSet]]:
    programs = RecordingSet()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(programs))
    token = None if getattr(request, "param", "on") == "off" else TOKEN
    srv = ExporterServer(("127.0.0.1", 0), Exporter(programs, registry, token,
                                                    lambda body: _start_from_request(programs, body)))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv, programs
    srv.shutdown()
    srv.server_close()


def call(srv: ExporterServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def auth(token: bytes = TOKEN) -> dict[str, str]:
    return {"Authorization": "Bearer " + token.decode()}


def test_landing_page_links_metrics(server):
    srv, _ = server
    status, headers, body = call(srv, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<a href="/metrics">' in body and b"no programs running" in body


def test_metrics_text_openmetrics_and_gzip(server):
    srv, _ = server
    status, headers, body = call(srv, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE eunomia_exporter_events_received_total counter" in body
    status, headers, body = call(srv, "GET", "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "Accept-Encoding": "gzip"})
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body).endswith(b"# EOF\n")


@pytest.mark.parametrize("server", ["off"], indirect=True)
def test_the_api_is_off_by_default(server):
    srv, programs = server
    for method, path in (("GET", "/list"), ("POST", "/start"), ("POST", "/stop")):
        status, headers, body = call(srv, method, path, b"{}", auth())
        assert status == 404 and headers["content-type"] == "application/json"
        assert "--enable-api" in json.loads(body)["error"]
    assert programs.started == []


def test_every_api_call_needs_the_token(server):
    srv, programs = server
    for headers in ({}, auth(b"wrong-token-0123456789"), {"Authorization": "Basic " + TOKEN.decode()},
                    {"Authorization": "Bearer"}):
        status, resp_headers, body = call(srv, "GET", "/list", headers=headers)
        assert status == 401 and "bearer" in resp_headers["www-authenticate"].lower()
        assert "token" in json.loads(body)["error"]
        status, _, _ = call(srv, "POST", "/start", b"{}", headers)
        assert status == 401
    assert programs.started == []
    assert call(srv, "GET", "/list", headers=auth())[0:3:2] == (200, b"[]\n")


def test_start_parses_a_program_config(server):
    srv, programs = server
    package = Path(builtin_packages()["opensnoop"]).read_text()
    doc = {"name": "opensnoop", "ebpf_data": package,
           "metrics": {"counters": [{"name": "opens", "labels": [{"name": "comm"}]}]}}
    status, headers, body = call(srv, "POST", "/start", json.dumps(doc).encode(), auth())
    assert (status, json.loads(body)) == (200, {"id": 42})
    assert headers["content-type"] == "application/json"
    assert programs.started[0].package.name == "opensnoop"


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{not json", 400, "invalid JSON"),
    (b"[]", 400, "expected a program as a mapping"),
    (b'{"name": "opensnoop"}', 400, "missing 'metrics'"),
    (b'{"name": "opensnoop", "metrics": {"counters": [{"name": "a", "labels": [{"name": "nope"}]}]}}', 400,
     "no field 'nope'"),
    (b'{"name": "nosuch", "metrics": {"counters": [{"name": "a"}]}}', 400, "no built-in package"),
    (b"\xff\xfe", 400, "not UTF-8"),
])
def test_bad_start_requests_get_4xx_json(server, body, status, words):
    srv, programs = server
    got, headers, data = call(srv, "POST", "/start", body, auth())
    assert got == status and headers["content-type"] == "application/json"
    assert words in json.loads(data)["error"]
    assert programs.started == []
    assert call(srv, "GET", "/metrics")[0] == 200  # still serving


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"id": 3}', 404, "no running program has id 3"),
    (b'{"id": "3"}', 400, 'expected {"id": N}'),
    (b"{}", 400, 'expected {"id": N}'),
    (b"nope", 400, "invalid JSON"),
])
def test_bad_stop_requests(server, body, status, words):
    srv, _ = server
    got, _, data = call(srv, "POST", "/stop", body, auth())
    assert got == status and words in json.loads(data)["error"]


def test_wrong_methods_paths_and_bodies(server):
    srv, _ = server
    status, headers, body = call(srv, "GET", "/start", headers=auth())
    assert status == 405 and headers["allow"] == "POST" and "takes POST" in json.loads(body)["error"]
    assert call(srv, "PUT", "/metrics")[0] == 405
    assert call(srv, "DELETE", "/stop", headers=auth())[0] == 405
    status, _, body = call(srv, "GET", "/nope")
    assert status == 404 and "no page /nope" in json.loads(body)["error"]
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.putrequest("POST", "/start")
    conn.putheader("Authorization", "Bearer " + TOKEN.decode())
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 411 and "Content-Length" in json.loads(resp.read())["error"]
    conn.close()
    status, _, body = call(srv, "POST", "/start", b"x", {**auth(), "Content-Length": str(64 << 20)})
    assert status == 413


def test_keep_alive_connection_serves_several_requests(server):
    srv, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    for _ in range(3):
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read()
    conn.request("POST", "/stop", body=b'{"id": 99}', headers=auth())
    assert conn.getresponse().status == 404
    conn.close()


def test_openmetrics_with_allow_utf8_is_byte_identical_for_our_names():
    """metrics_encoder asks the OpenMetrics encoder for allow-utf-8 escaping
    because it is faster; for legacy names it must give the same bytes."""
    from functools import partial

    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
    from prometheus_client.exposition import choose_encoder

    from pyeunomia.exporter.server import metrics_encoder

    class Names:
        def describe(self) -> list:
            return []

        def collect(self):
            c = CounterMetricFamily("eunomia_file_open_counter", 'help "with" \\ quotes', labels=["comm", "le_x"])
            c.add_metric(["ba\"sh\n", "x\\y"], 3)
            yield c
            h = HistogramMetricFamily("open_mode", "modes", labels=["comm"])
            h.add_metric(["a"], [("1.0", 1), ("+Inf", 2)], 5.0)
            yield h

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Names())
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    library, library_type = choose_encoder(accept)
    ours, our_type = metrics_encoder(accept)
    # allow-utf-8 is asked for where the library has name escaping (0.21 on; Debian 12's 0.16 has none)
    from prometheus_client.openmetrics import exposition as om

    assert our_type == library_type and isinstance(ours, partial) == hasattr(om, "ALLOWUTF8")
    assert ours(registry) == library(registry)
    assert metrics_encoder("text/plain")[0](registry) == choose_encoder("text/plain")[0](registry)
