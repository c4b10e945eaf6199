"""The exporter's HTTP server.

    GET  /          a small HTML page: the running programs, a link to /metrics
    GET  /metrics   Prometheus text format, or OpenMetrics when the scraper asks
    GET  /list      [{"id": 0, "name": "opensnoop"}]             \\
    POST /start     a program config (JSON) -> {"id": n}          } API: off unless
    POST /stop      {"id": n} -> {}                               /  --enable-api

The API loads kernel programs as root, so it is off by default and, when on,
every call needs `Authorization: Bearer <token>`. A bad request gets a 4xx
answer with {"error": "..."}; nothing a client sends stops the exporter.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import socket
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import EunomiaError
from .exposition import Encoders
from .programs import NameConflict, ProgramSet

if TYPE_CHECKING:
    import ssl

    from .webconfig import BasicAuth

MAX_BODY = 16 << 20
HANDSHAKE_TIMEOUT_S = 10.0
API_PATHS = {"/list": "GET", "/start": "POST", "/stop": "POST"}
PAGES = {"/": "GET", "/metrics": "GET", **API_PATHS}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Exporter:
    """What the handler serves: the programs, the registry and the API settings."""

    def __init__(self, programs: ProgramSet, registry: Any, token: bytes | None,
                 start_program: Callable[[bytes], int], log: Callable[[str], None] | None = None):
        self.programs = programs
        self.registry = registry
        self.token = token  # None: the API is off
        self.start_program = start_program
        self.log = log
        self.encoders = Encoders()  # the library's encoders, each series' line start kept between scrapes


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], exporter: Exporter, tls: ssl.SSLContext | None = None,
                 auth: BasicAuth | None = None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.exporter = exporter
        self.tls = tls
        self.auth = auth
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With TLS, the handshake happens here, on the connection's own
        thread: a client that never finishes it holds only that thread."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except OSError as e:  # ssl.SSLError included: a plain-HTTP client, a bad certificate, a timeout
            log = self.exporter.log
            if log is not None:
                log(f"{client_address[0]} TLS handshake failed: {e}")
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = "eunomia-exporter"
    timeout = 60  # a client that stops sending loses its connection, not a thread forever
    # Headers and body are two writes: without TCP_NODELAY the body waits for
    # the client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        log = self.server.exporter.log
        if log is not None:
            log(f"{self.address_string()} {format % args}")

    def _handle(self, method: str) -> None:
        path = urlsplit(self.path).path
        self._body_read = False
        try:
            wanted = PAGES.get(path)
            if wanted is None:
                raise ApiError(404, f"no page {path}: see / for what this exporter serves")
            if path in API_PATHS:
                self._check_api()
            elif self.server.auth is not None:
                self._check_basic_auth(self.server.auth)
            if method != wanted:
                raise ApiError(405, f"{path} takes {wanted}, not {method}", {"Allow": wanted})
            if path == "/metrics":
                self._metrics()
            elif path == "/":
                self._send(200, _landing_page(self.server.exporter.programs).encode(), "text/html; charset=utf-8")
            elif path == "/list":
                self._json(200, self.server.exporter.programs.listing())
            elif path == "/start":
                self._json(200, {"id": self._start(self._body())})
            else:
                self._stop(self._body())
        except ApiError as e:
            self._json(e.status, {"error": str(e)}, e.headers)
        except Exception as e:  # noqa: BLE001 - a bug answers 500; the exporter keeps serving
            sys.stderr.write(f"eunomia-exporter: internal error serving {method} {path}: {type(e).__name__}: "
                             f"{e}\n")
            self._json(500, {"error": f"internal error: {type(e).__name__}: {e}"})

    # -- routes ------------------------------------------------------------------

    def _metrics(self) -> None:
        from prometheus_client.exposition import gzip_accepted

        library, content_type = metrics_encoder(self.headers.get("Accept", ""))
        exporter = self.server.exporter
        encoder = exporter.encoders.get(library)
        gate = exporter.programs.gate
        if gate is None:
            body = encoder(exporter.registry)
        else:
            with gate.scrape():
                body = encoder(exporter.registry)
        headers = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            import gzip

            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, headers)

    def _start(self, body: bytes) -> int:
        try:
            return self.server.exporter.start_program(body)
        except NameConflict as e:
            raise ApiError(409, str(e)) from None
        except EunomiaError as e:
            raise ApiError(400, str(e)) from None

    def _stop(self, body: bytes) -> None:
        program_id = parse_stop_body(body)
        if not self.server.exporter.programs.stop(program_id):
            raise ApiError(404, f"no running program has id {program_id}: see GET /list")
        self._json(200, {})

    # -- plumbing ------------------------------------------------------------------

    def _check_api(self) -> None:
        token = self.server.exporter.token
        if token is None:
            raise ApiError(404, "the management API is off: start the exporter with --enable-api "
                                "--api-token-file FILE")
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                           {"WWW-Authenticate": 'Bearer realm="eunomia-exporter"'})

    def _check_basic_auth(self, auth: BasicAuth) -> None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        user = password = None
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                sep = ""
            if not sep:
                user = None
        if user is None or password is None or not auth.check(user, password):
            raise ApiError(401, "unauthorized: send the user and password of basic_auth_users",
                           {"WWW-Authenticate": 'Basic realm="eunomia-exporter"'})

    def _body(self) -> bytes:
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "send the body with a Content-Length, not chunked")
        if length_text is None:
            raise ApiError(411, "a Content-Length is needed")
        try:
            length = int(length_text)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY:
            raise ApiError(413, f"the body is over {MAX_BODY >> 20} MiB")
        data = self.rfile.read(length)
        if len(data) != length:
            raise ApiError(400, "the body ended early")
        self._body_read = True
        return data

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, (json.dumps(value) + "\n").encode(), "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        if status >= 400 and self.command == "POST" and not self._body_read:
            self.close_connection = True  # the unread body would be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def parse_stop_body(body: bytes) -> int:
    """The program id in a /stop body ({"id": N}); ApiError 400 for anything else."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, 'invalid JSON: send {"id": N}') from None
    program_id = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(program_id, bool) or not isinstance(program_id, int):
        raise ApiError(400, 'expected {"id": N} with the id /start returned')
    return program_id


def metrics_encoder(accept: str) -> tuple[Callable[[Any], bytes], str]:
    """prometheus_client's encoder for this Accept header: OpenMetrics when
    the scraper asks for it, else the Prometheus text format.

    OpenMetrics is asked for with the `allow-utf-8` name escaping instead of
    the default `underscores`. Every name served here is a legacy Prometheus
    name (the config checks them), for which both give the same bytes (see
    tests/exporter/test_server.py), but `underscores` rebuilds each sample's
    name character by character: most of the scrape time at 100k series."""
    from functools import partial

    from prometheus_client.exposition import choose_encoder
    from prometheus_client.openmetrics import exposition as om

    encoder, content_type = choose_encoder(accept)
    fast = getattr(om, "ALLOWUTF8", None)  # prometheus_client < 0.21 has no name escaping at all
    if fast is not None and isinstance(encoder, partial) and encoder.func is om.generate_latest:
        encoder = partial(om.generate_latest, **{**encoder.keywords, "escaping": fast})
    return encoder, content_type


def _landing_page(programs: ProgramSet) -> str:
    rows = []
    for inst in programs.instances():
        metrics = ", ".join(html.escape(m.exposed_name) for m in inst.plan.config.metrics)
        state = "running" if inst.running else html.escape(inst.error or "stopped")
        rows.append(f"<tr><td>{inst.id}</td><td>{html.escape(inst.name)}</td><td>{state}</td>"
                    f"<td>{inst.writer.received}</td><td>{metrics}</td></tr>")
    table = "\n".join(rows) or '<tr><td colspan="5">no programs running</td></tr>'
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>eunomia-exporter</title></head>
<body>
<h1>eunomia-exporter</h1>
<p><a href="/metrics">Metrics</a></p>
<table border="1" cellpadding="4">
<tr><th>id</th><th>program</th><th>state</th><th>events</th><th>metrics</th></tr>
{table}
</table>
</body></html>
"""
