"""The server's request-head parser on generated heads: well-formed ones
parse to what was sent, whatever the line ends; any bytes give a Request or
a BadRequest (the fuzz target's contract); the head size bound holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyeunomia.exporter.httpwire import MAX_HEAD, BadRequest, head_end, parse_head
from tests.fuzz import fuzz_http_heads

TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."), min_size=1,
                max_size=12)
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
PATH = st.lists(TOKEN, max_size=4).map(lambda parts: "/" + "/".join(parts))


@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    fuzz_http_heads.TestOneInput(data)


@given(st.sampled_from(["GET", "POST", "HEAD"]), PATH, st.dictionaries(TOKEN, VALUE, max_size=8),
       st.sampled_from(["\r\n", "\n"]), st.one_of(st.none(), st.integers(0, 10**12)))
def test_well_formed_heads_parse_to_what_was_sent(method: str, path: str, fields: dict[str, str], eol: str,
                                                  length: int | None) -> None:
    fields = {k: v for k, v in fields.items()
              if k.lower() not in ("host", "content-length", "transfer-encoding", "expect", "connection")}
    lines = [f"{method} {path}?q=1 HTTP/1.1", "Host: example", *[f"{k}: {v}" for k, v in fields.items()]]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    data = (eol.join(lines) + eol + eol).encode()
    assert head_end(data + b"body") == len(data)
    if len(data) > MAX_HEAD:
        return
    request = parse_head(data)
    assert (request.method, request.path, request.content_length) == (method, path, length)
    for k, v in fields.items():
        assert v in request.headers[k.lower()]


@given(st.binary(min_size=1, max_size=64))
def test_a_head_over_the_bound_is_refused_without_parsing(junk: bytes) -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + junk.replace(b"\n", b"a") * (MAX_HEAD // len(junk) + 1) + b"\r\n\r\n"
    try:
        parse_head(data)
    except BadRequest as e:
        assert e.status == 431
    else:
        raise AssertionError("a head over MAX_HEAD was parsed")
