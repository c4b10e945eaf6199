"""Request heads parsed strictly: what is ambiguous is refused, with the
status a client should see."""

from __future__ import annotations

import pytest

from pyeunomia.exporter.httpwire import MAX_HEAD, MAX_HEADERS, BadRequest, head_end, parse_head, response_head


def head(*lines: str, version: str = "HTTP/1.1", method: str = "GET", target: str = "/metrics") -> bytes:
    host = ["Host: 127.0.0.1:8526"] if version == "HTTP/1.1" else []
    return ("\r\n".join([f"{method} {target} {version}", *host, *lines]) + "\r\n\r\n").encode("latin-1")


def refused(data: bytes) -> tuple[int, str]:
    with pytest.raises(BadRequest) as e:
        parse_head(data)
    return e.value.status, str(e.value)


def test_a_prometheus_scrape():
    r = parse_head(head("Accept: application/openmetrics-text;version=1.0.0", "Accept-Encoding: gzip",
                        "User-Agent: Prometheus/2.45.0", "X-Prometheus-Scrape-Timeout-Seconds: 10"))
    assert (r.method, r.path, r.version, r.content_length, r.keep_alive) == ("GET", "/metrics", "HTTP/1.1", None, True)
    assert r.headers["accept-encoding"] == "gzip"


def test_query_absolute_form_and_repeated_fields():
    r = parse_head(head("Accept: a", "Accept: b", target="/metrics?x=1"))
    assert (r.path, r.target, r.headers["accept"]) == ("/metrics", "/metrics?x=1", "a, b")
    assert parse_head(head(target="http://127.0.0.1:8526/list?a")).path == "/list"
    assert parse_head(head(target="http://127.0.0.1:8526")).path == "/"


def test_keep_alive_rules():
    assert parse_head(head("Connection: close")).keep_alive is False
    assert parse_head(head("Connection: Keep-Alive, Close")).keep_alive is False
    assert parse_head(head(version="HTTP/1.0")).keep_alive is False
    assert parse_head(head("Connection: keep-alive", version="HTTP/1.0")).keep_alive is True


@pytest.mark.parametrize(("value", "length"), [("0", 0), ("17", 17), ("007", 7), ("5, 5", 5), (" 5 ", 5)])
def test_content_length(value, length):
    assert parse_head(head(f"Content-Length: {value}", method="POST")).content_length == length


@pytest.mark.parametrize("values", [["-1"], ["+1"], ["1_0"], [""], ["0x10"], ["1e3"], ["5, 6"], ["5", "6"],
                                    ["\u00b2"], ["5 5"]])
def test_content_length_that_is_not_one_number(values):
    status, message = refused(head(*[f"Content-Length: {v}" for v in values], method="POST"))
    assert status == 400 and "Content-Length" in message


def test_same_content_length_twice_is_one():
    assert parse_head(head("Content-Length: 3", "Content-Length: 3", method="POST")).content_length == 3


def test_huge_content_length_is_too_large_not_a_crash():
    assert refused(head("Content-Length: " + "9" * 5000, method="POST"))[0] == 413


def test_transfer_encoding_is_refused():
    status, message = refused(head("Transfer-Encoding: chunked", method="POST"))
    assert status == 411 and "Content-Length" in message


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9
    (b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # two spaces
    (b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /metrics HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /m\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417),
    (b"\r\n\r\n", 400),
])
def test_malformed_heads(data, status):
    assert refused(data)[0] == status


def test_too_many_fields_and_too_long_a_head():
    assert refused(head(*[f"X-{i}: y" for i in range(MAX_HEADERS + 1)]))[0] == 431
    assert refused(head("X: " + "y" * MAX_HEAD))[0] == 431


def test_expect_continue_and_bare_lf():
    r = parse_head(head("Content-Length: 5", "Expect: 100-continue", method="POST"))
    assert r.expect_continue and r.content_length == 5
    assert parse_head(b"GET / HTTP/1.1\nHost: x\n\n").path == "/"


def test_head_end_finds_the_empty_line():
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody") == 27
    assert head_end(b"GET / HTTP/1.1\nHost: x\n\nbody") == 24
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1
    assert head_end(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n") == 22  # leading empty lines are skipped
    assert head_end(b"\r\n\r\n") == -1


def test_response_head():
    out = response_head(404, [("Content-Type", "application/json")], 12, close=True).decode()
    assert out.startswith("HTTP/1.1 404 Not Found\r\n") and out.endswith("\r\n\r\n")
    assert "Content-Length: 12\r\n" in out and "Connection: close\r\n" in out
    assert "Connection" not in response_head(200, [], 0, close=False).decode()


def test_a_content_length_of_thousands_of_zeros_is_a_number_not_a_crash():
    """int() refuses over 4,300 digits, leading zeros included: a 4,301-digit
    Content-Length once killed the server's I/O thread."""
    assert parse_head(head("Content-Length: " + "0" * 4300 + "1", method="POST")).content_length == 1
    assert parse_head(head("Content-Length: " + "0" * 9000, method="POST")).content_length == 0


def test_the_search_for_the_end_goes_on_where_it_stopped():
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 100 + b"\r\n"
    for cut in range(1, len(data)):
        start = max(0, cut - 3)
        assert head_end(data[:cut]) in (-1, len(data))
        if head_end(data[:cut]) == -1:
            assert head_end(data, start) == len(data)
