"""The exporter's pages and API, served by httpserver.HttpServer.

    GET  /          a small HTML page: the running programs, a link to /metrics
    GET  /metrics   Prometheus text format, or OpenMetrics when the scraper asks
    GET  /list      [{"id": 0, "name": "opensnoop"}]             \\
    POST /start     a program config (JSON) -> {"id": n}          } API: off unless
    POST /stop      {"id": n} -> {}                               /  --enable-api

The API loads kernel programs as root, so it is off by default and, when on,
every call needs `Authorization: Bearer <token>`, checked on the request's
head before its body is read. A bad request gets a 4xx answer with
{"error": "..."}; nothing a client sends stops the exporter.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import EunomiaError
from ..format.escape import escape_text
from .config import MAX_REQUEST_BODY
from .exposition import Encoders
from .httplanes import Response
from .httpserver import DEFAULT_LIMITS, HttpServer, Limits
from .httpwire import Request
from .programs import NameConflict, ProgramSet

if TYPE_CHECKING:
    import ssl

    from .webconfig import BasicAuth

MAX_PAGE_BODY = 1 << 10  # a GET may carry a small body (some clients send one); it is read and ignored
API_PATHS = {"/list": "GET", "/start": "POST", "/stop": "POST"}
PAGES = {"/": "GET", "/metrics": "GET", **API_PATHS}
SLOW_PATHS = ("/start", "/stop")  # they load and unload programs: on the API's own worker


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        return Response(self.status, _json_bytes({"error": str(self)}), headers=tuple(self.headers.items()))


class Exporter:
    """What the server serves: the programs, the registry and the API settings."""

    def __init__(self, programs: ProgramSet, registry: Any, token: bytes | None,
                 start_program: Callable[[bytes], int], log: Callable[[str], None] | None = None):
        self.programs = programs
        self.registry = registry
        self.token = token  # None: the API is off
        self.start_program = start_program
        self.log = log  # the request log (-v); problems always go to stderr
        self.encoders = Encoders()  # the library's encoders, each series' line start kept between scrapes


class ExporterApp:
    """Routes, auth and answers; httpserver calls admit() on the I/O thread
    and handle() on a worker."""

    def __init__(self, exporter: Exporter, auth: BasicAuth | None):
        self.exporter = exporter
        self.auth = auth

    def admit(self, request: Request) -> str | Response:
        try:
            path = request.path
            wanted = PAGES.get(path)
            if wanted is None:
                raise ApiError(404, f"no page {escape_text(path)[:200]}: see / for what this exporter serves")
            if path in API_PATHS:
                self._check_token(request)
            if request.method != wanted and not (request.method == "HEAD" and wanted == "GET"):
                raise ApiError(405, f"{path} takes {wanted}, not {escape_text(request.method)[:20]}",
                               {"Allow": wanted})
            if wanted == "POST" and request.content_length is None:
                raise ApiError(411, "a Content-Length is needed")
        except ApiError as e:
            return e.response()
        if path in SLOW_PATHS:
            return "api"
        if path not in API_PATHS and self.auth is not None:
            credentials = basic_credentials(request)
            if credentials is None or not self.auth.known(*credentials):
                # a bcrypt check (60 ms) on a lane of its own: a flood of guesses can fill
                # that lane (503s for guessers), never the one known scrapers are answered on
                return "auth"
        return "pages"

    def max_body(self, request: Request) -> int:
        return MAX_REQUEST_BODY if request.path in SLOW_PATHS else MAX_PAGE_BODY

    def handle(self, request: Request, body: bytes, client: str) -> Response:
        path = request.path
        try:
            if path not in API_PATHS and self.auth is not None:
                self._check_basic_auth(request, self.auth)
            if path == "/metrics":
                return self._metrics(request)
            if path == "/":
                return Response(200, _landing_page(self.exporter.programs).encode(), "text/html; charset=utf-8")
            if path == "/list":
                return Response(200, _json_bytes(self.exporter.programs.listing()))
            if path == "/start":
                return Response(200, _json_bytes({"id": self._start(body)}))
            return self._stop(body)
        except ApiError as e:
            return e.response()
        except Exception as e:  # noqa: BLE001 - a bug answers 500; the exporter keeps serving
            sys.stderr.write(f"eunomia-exporter: internal error serving {request.method} {escape_text(path)}: "
                             f"{type(e).__name__}: {escape_text(str(e))}\n")
            return Response(500, _json_bytes({"error": f"internal error: {type(e).__name__}"}))

    # -- routes ------------------------------------------------------------------

    def _metrics(self, request: Request) -> Response:
        from prometheus_client.exposition import gzip_accepted

        exporter = self.exporter
        bare = any(m.bare for inst in exporter.programs.instances() for m in inst.plan.config.metrics)
        library, content_type = metrics_encoder(request.headers.get("accept", ""), prefer_text=bare)
        encoder = exporter.encoders.get(library)
        gate = exporter.programs.gate
        if gate is None:
            body = encoder(exporter.registry)
        else:
            with gate.scrape():
                body = encoder(exporter.registry)
        if gzip_accepted(request.headers.get("accept-encoding", "")):
            import gzip

            return Response(200, gzip.compress(body, compresslevel=1), content_type, (("Content-Encoding", "gzip"),))
        return Response(200, body, content_type)

    def _start(self, body: bytes) -> int:
        try:
            return self.exporter.start_program(body)
        except NameConflict as e:
            raise ApiError(409, str(e)) from None
        except EunomiaError as e:
            raise ApiError(400, str(e)) from None

    def _stop(self, body: bytes) -> Response:
        program_id = parse_stop_body(body)
        if not self.exporter.programs.stop(program_id):
            raise ApiError(404, f"no running program has id {program_id}: see GET /list")
        return Response(200, _json_bytes({}))

    # -- auth ----------------------------------------------------------------------

    def _check_token(self, request: Request) -> None:
        token = self.exporter.token
        if token is None:
            raise ApiError(404, "the management API is off: start the exporter with --enable-api "
                                "--api-token-file FILE")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode("latin-1"), token):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                           {"WWW-Authenticate": 'Bearer realm="eunomia-exporter"'})

    @staticmethod
    def _check_basic_auth(request: Request, auth: BasicAuth) -> None:
        credentials = basic_credentials(request)
        if credentials is None or not auth.check(*credentials):
            raise ApiError(401, "unauthorized: send the user and password of basic_auth_users",
                           {"WWW-Authenticate": 'Basic realm="eunomia-exporter"'})


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header, else None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class ExporterServer(HttpServer):
    """The exporter's app on an HttpServer."""

    def __init__(self, address: tuple[str, int], exporter: Exporter, tls: ssl.SSLContext | None = None,
                 auth: BasicAuth | None = None, limits: Limits = DEFAULT_LIMITS,
                 problems: Callable[[str], None] | None = None):
        self.exporter = exporter
        super().__init__(address, ExporterApp(exporter, auth), tls, limits,
                         problems or _stderr_line, exporter.log)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"


def _stderr_line(line: str) -> None:
    sys.stderr.write(f"eunomia-exporter: {line}\n")
    sys.stderr.flush()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value) + "\n").encode()


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


def metrics_encoder(accept: str, prefer_text: bool = False) -> tuple[Callable[[Any], bytes], str]:
    """prometheus_client's encoder for this Accept header: OpenMetrics when
    the scraper asks for it, else the Prometheus text format.

    `prefer_text` (a counter is served without `_total`): the text format
    whenever the scraper takes it too (Prometheus asks for OpenMetrics first
    and text/plain after), as upstream's exporter, which serves only text,
    is scraped: OpenMetrics has no counter without `_total`, and gives such a
    counter the type `unknown` (exposition.py).

    OpenMetrics is asked for with the `allow-utf-8` name escaping instead of
    the default `underscores`. Every name served here is a legacy Prometheus
    name (the config checks them), for which both give the same bytes (see
    tests/exporter/test_server.py), but `underscores` rebuilds each sample's
    name character by character: most of the scrape time at 100k series."""
    from functools import partial

    from prometheus_client.exposition import choose_encoder
    from prometheus_client.openmetrics import exposition as om

    if prefer_text:
        kinds = [part.split(";")[0].strip() for part in accept.split(",")]
        if "text/plain" in kinds or "*/*" in kinds or not accept.strip():
            accept = ",".join(part for part in accept.split(",")
                              if part.split(";")[0].strip() != "application/openmetrics-text")
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
