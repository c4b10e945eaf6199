"""HTTP/1.1 on the wire for the exporter's server: request heads parsed
strictly, response heads written. Pure: bytes in, values out; no sockets.

Why our own parser and not a library's: the server needs the request line,
Content-Length, Connection, Expect and Authorization, nothing else, and it
must decide from the head alone (before a body is read) whether a request is
refused. h11 would parse the same and costs ~20 ms of imports at every
start-up; http.server's parser reads from a blocking file, a thread per
connection. The rules follow RFC 9112 and refuse what is ambiguous instead of
guessing:

- a head is at most MAX_HEAD bytes and MAX_HEADERS fields, lines end in CRLF
  (a bare LF is accepted, RFC 9112 section 2.2), leading empty lines are skipped;
- field names are tokens with no space before the colon; obsolete line
  folding and control characters in values are refused (400);
- Content-Length is digits only: `-1`, `+1`, `1_0` and ` ` are refused, and
  several values must all be the same (`5, 5` is 5; `5` and `6` are refused);
- Transfer-Encoding is refused (411): bodies come with a Content-Length;
- HTTP/1.1 needs a Host field; only HTTP/1.0 and HTTP/1.1 are spoken (505).
"""

from __future__ import annotations

import time
from typing import NamedTuple

MAX_HEAD = 16 << 10  # Prometheus sends ~300 bytes; Go's and h11's default limits are 1 MiB and 16 KiB
MAX_HEADERS = 64
_MAX_LENGTH_DIGITS = 18  # fits an int64; anything larger is over every body limit anyway

# RFC 9110 token characters, for methods and field names
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# bytes a field value must not hold: controls other than horizontal tab, and DEL
_BAD_VALUE = bytes(b for b in range(0x20) if b != 0x09) + b"\x7f"
_DIGITS = frozenset(b"0123456789")

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Content Too Large", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class BadRequest(Exception):
    """A request head that cannot be served: the status to answer with, and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Request(NamedTuple):
    method: str
    target: str  # as sent: the path and query
    path: str  # the target without its query
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    content_length: int | None  # None: no Content-Length field
    keep_alive: bool
    expect_continue: bool


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """The offset just past the empty line that ends the head in `buf`, or -1.
    Leading empty lines (which RFC 9112 says to skip) do not end a head.
    `start`: where an earlier search that found nothing left off (less the
    3 bytes an end may straddle); each search is a C-speed find."""
    pos = start
    if pos == 0:
        while buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):
            pos += 2 if buf[pos] == 0x0D else 1
    crlf, lf = buf.find(b"\n\r\n", pos), buf.find(b"\n\n", pos)
    ends = [i + 3 for i in (crlf,) if i != -1] + [i + 2 for i in (lf,) if i != -1]
    return min(ends) if ends else -1


def parse_head(head: bytes) -> Request:
    """The request in `head` (up to and including its empty line); BadRequest
    for anything malformed, ambiguous or unsupported."""
    if len(head) > MAX_HEAD:
        raise BadRequest(431, f"the request head is over {MAX_HEAD >> 10} KiB")
    lines = head.split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise BadRequest(400, "an empty request")
    method, target, version = _request_line(lines[0])
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, f"more than {MAX_HEADERS} header fields")
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, value = _field(line)
        fields.setdefault(name, []).append(value)
    headers = {name: ", ".join(values) for name, values in fields.items()}
    if "transfer-encoding" in headers:
        raise BadRequest(411, "send the body with a Content-Length, not a Transfer-Encoding")
    if version == "HTTP/1.1" and len(fields.get("host", ())) != 1:
        raise BadRequest(400, "an HTTP/1.1 request needs one Host field")
    length = _content_length(fields.get("content-length"))
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    expect = headers.get("expect", "").strip().lower()
    if expect and expect != "100-continue":
        raise BadRequest(417, f"cannot meet Expect: {expect[:40]}")
    path = target.split("?", 1)[0]
    return Request(method, target, path, version, headers, length, keep_alive, bool(expect))


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest(400, "a request line is METHOD TARGET HTTP/1.1")
    method, target, version = parts
    if not _TOKEN.issuperset(method):
        raise BadRequest(400, "the method is not a token")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if version.startswith(b"HTTP/") and len(version) == 8:
            raise BadRequest(505, "this server speaks HTTP/1.1 and HTTP/1.0")
        raise BadRequest(400, "a request line is METHOD TARGET HTTP/1.1")
    if any(b <= 0x20 or b >= 0x7F for b in target):
        raise BadRequest(400, "the target holds spaces or control characters")
    text = target.decode("ascii")
    if text.startswith(("http://", "https://")):  # absolute form (RFC 9112 3.2.2): keep the path
        rest = text.split("://", 1)[1]
        slash = rest.find("/")
        text = rest[slash:] if slash != -1 else "/"
    elif not text.startswith("/") and text != "*":
        raise BadRequest(400, "the target is not a path")
    return method.decode("ascii"), text, version.decode("ascii")


def _field(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise BadRequest(400, "obsolete line folding in the header")
    name, sep, value = line.partition(b":")
    if not sep or not name or not _TOKEN.issuperset(name):
        raise BadRequest(400, "a header line is NAME: VALUE")
    value = value.strip(b" \t")
    if value.translate(None, _BAD_VALUE) != value:
        raise BadRequest(400, "a header value holds control characters")
    return name.decode("ascii").lower(), value.decode("latin-1")


def _content_length(values: list[str] | None) -> int | None:
    if values is None:
        return None
    seen = {v.strip(" \t") for value in values for v in value.split(",")}
    if len(seen) != 1:
        raise BadRequest(400, "conflicting Content-Length values")
    raw = seen.pop().encode("latin-1")
    if not raw or not _DIGITS.issuperset(raw):
        raise BadRequest(400, "Content-Length is not a number of bytes")
    digits = raw.lstrip(b"0") or b"0"  # int() refuses over 4300 digits, leading zeros included
    if len(digits) > _MAX_LENGTH_DIGITS:
        raise BadRequest(413, "Content-Length is too large")
    return int(digits)


def response_head(status: int, headers: list[tuple[str, str]], length: int, close: bool) -> bytes:
    """A response's status line and fields, ending in the empty line. Header
    values come from the server itself, never from a client."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
             "Server: eunomia-exporter",
             time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
             f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
