"""pyeunomia.source: packages from paths, bytes, stdin and URLs (a local server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from pyeunomia.errors import FetchError, PackageError
from pyeunomia.source import MAX_DOWNLOAD, _stem, fetch_url, open_package
from tests.btfbuilder import ENC_SIGNED, BtfBuilder, bpf_object
from tests.hostile import DRIPPED_HEADERS, HEADERS_THEN_DRIPPED_BODY, dripping_server, fifo, returns_promptly

UPSTREAM = Path(__file__).resolve().parent / "fixtures" / "upstream"
BOOTSTRAP = (UPSTREAM / "bootstrap.json").read_bytes()
BOOTSTRAP_SHA = hashlib.sha256(BOOTSTRAP).hexdigest()


def plain_object() -> bytes:
    b = BtfBuilder()
    b.int("int", 4, ENC_SIGNED)
    return bpf_object(b.build(), programs=[("handler", "kprobe/do_nanosleep")])


# -- a local HTTP server -----------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked-garbage":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"zz\r\nnot a chunk\r\n0\r\n\r\n")
            return
        if self.path == "/cut-short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BOOTSTRAP)))
            self.end_headers()
            self.wfile.write(BOOTSTRAP[:1000])
            self.close_connection = True
            return
        if self.path == "/odd-reason":
            self.send_response(404, "Gone\x1b[2J\rok 200")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    Handler.routes = {
        "/bootstrap.json": (200, {}, BOOTSTRAP),
        "/tools/my-tool.bpf.o": (200, {}, plain_object()),
        "/huge.json": (200, {}, b"{" + b" " * MAX_DOWNLOAD),
        "/limit.json": (200, {}, b"{" + b" " * (MAX_DOWNLOAD - 2) + b"}"),
        "/to-loopback": (302, {"Location": f"http://localhost:{port}/bootstrap.json"}, b""),
        "/to-plain-http": (302, {"Location": OFF_LOOPBACK}, b""),
        "/to-ftp": (302, {"Location": "ftp://example.invalid/bootstrap.json"}, b""),
        "/gone": (500, {}, b"oops"),
        "/loop": (302, {"Location": "/loop"}, b""),
    }
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()
    srv.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Not a loopback address to the policy, yet it fails fast with no DNS and no network.
OFF_LOOPBACK = f"http://0.0.0.0:{closed_port()}/bootstrap.json"


# -- bytes, paths and stdin ---------------------------------------------------------------------------


def test_bytes():
    pkg = open_package(BOOTSTRAP)
    assert (pkg.origin, pkg.meta.obj_name) == ("<bytes>", "client_bpf")


def test_bytes_with_leading_whitespace():
    assert open_package(b"\n\t  " + BOOTSTRAP).meta.obj_name == "client_bpf"


def test_plain_object_bytes():
    pkg = open_package(plain_object())
    assert (pkg.origin, pkg.meta.obj_name, pkg.name) == ("<bytes>", "package", "package")
    assert [p.name for p in pkg.meta.progs] == ["handler"]


@pytest.mark.parametrize("data", [b"", b"   ", b"hello", b"[1, 2]", b"\x00ELF", b"\x7fEL"])
def test_neither_json_nor_elf(data):
    with pytest.raises(PackageError) as err:
        open_package(data)
    assert str(err.value) == "<bytes>: neither a package (JSON or an ecc -b tar) nor a BPF object (ELF)"


def test_path_as_str_and_as_pathlike(tmp_path):
    path = tmp_path / "bootstrap.json"
    path.write_bytes(BOOTSTRAP)
    assert open_package(str(path)).origin == str(path)
    assert open_package(path).origin == str(path)


def test_object_path_names_the_package_after_the_file(tmp_path):
    path = tmp_path / "my-tool.bpf.o"
    path.write_bytes(plain_object())
    pkg = open_package(path)
    assert (pkg.meta.obj_name, pkg.name, pkg.origin) == ("my_tool", "my_tool", str(path))


def test_stdin():
    pkg = open_package("-", stdin=io.BytesIO(BOOTSTRAP))
    assert (pkg.origin, pkg.meta.obj_name) == ("<stdin>", "client_bpf")


def test_stdin_object():
    assert open_package("-", stdin=io.BytesIO(plain_object())).meta.obj_name == "package"


def test_stdin_too_big():
    with pytest.raises(FetchError) as err:
        open_package("-", stdin=io.BytesIO(b"{" + bytes(MAX_DOWNLOAD)))
    assert str(err.value) == "<stdin>: more than 16 MiB: not a package"


def test_stdin_of_exactly_the_limit_is_read():
    data = b"{" + b" " * (MAX_DOWNLOAD - 2) + b"}"
    with pytest.raises(PackageError) as err:
        open_package("-", stdin=io.BytesIO(data))
    # read, and refused by the package parser: that much besides a bpf_object string is no package's metadata
    assert str(err.value) == ("<stdin>: not a package: more than 1 MiB of JSON besides the bpf_object string "
                              "(package metadata is KBs)")


def test_missing_path():
    with pytest.raises(FetchError, match=r"^no/such/file\.json: no such file, URL or built-in package \(built-in: "):
        open_package("no/such/file.json")


def test_directory(tmp_path):
    with pytest.raises(FetchError) as err:
        open_package(tmp_path)
    assert str(err.value) == f"{tmp_path}: cannot read: Is a directory"


def test_file_too_big_is_refused(tmp_path):
    path = tmp_path / "big.json"
    with path.open("wb") as f:
        f.write(b"{")
        f.truncate(MAX_DOWNLOAD * 4 + 1)  # sparse
    with pytest.raises(FetchError) as err:
        open_package(path)
    assert str(err.value) == f"{path}: more than 64 MiB: not a package"


def test_fifo_is_refused_without_blocking(tmp_path):
    path = fifo(tmp_path / "pkg.json")
    err = returns_promptly(lambda: open_package(path), [path])
    assert isinstance(err, FetchError)
    assert str(err) == f"{path}: not a regular file (a FIFO): pass a package file, or '-' for standard input"


def test_device_is_refused_unread():
    with pytest.raises(FetchError) as err:
        open_package("/dev/zero")
    assert str(err.value) == ("/dev/zero: not a regular file (a character device): pass a package file, "
                              "or '-' for standard input")


def test_corrupt_file_is_a_package_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"meta": {}}')
    with pytest.raises(PackageError) as err:
        open_package(path)
    assert str(err.value) == f"{path}: not a package: missing 'bpf_object'"


# -- sha256 pinning ------------------------------------------------------------------------------------


def test_sha256_pin_matches():
    assert open_package(BOOTSTRAP, sha256=BOOTSTRAP_SHA).meta.obj_name == "client_bpf"
    assert open_package(BOOTSTRAP, sha256=BOOTSTRAP_SHA.upper()).meta.obj_name == "client_bpf"


def test_sha256_pin_mismatch():
    pin = "0" * 64
    with pytest.raises(FetchError) as err:
        open_package(BOOTSTRAP, sha256=pin)
    assert str(err.value) == f"<bytes>: sha256 is {BOOTSTRAP_SHA}, not the pinned {pin}: refusing to run it"


def test_sha256_pin_is_checked_before_parsing(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"junk")
    digest = hashlib.sha256(b"junk").hexdigest()
    with pytest.raises(FetchError, match=f"^{path}: sha256 is {digest}, not the pinned abc: refusing to run it$"):
        open_package(path, sha256="abc")


def test_sha256_pin_on_stdin():
    with pytest.raises(FetchError, match=r"^<stdin>: sha256 is "):
        open_package("-", stdin=io.BytesIO(BOOTSTRAP), sha256="1" * 64)


# -- URLs -----------------------------------------------------------------------------------------------


def test_url_on_loopback(server):
    url = f"{server}/bootstrap.json"
    pkg = open_package(url, sha256=BOOTSTRAP_SHA)
    assert (pkg.origin, pkg.meta.obj_name) == (url, "client_bpf")
    assert pkg.object == open_package(BOOTSTRAP).object


def test_url_by_localhost_name(server):
    url = server.replace("127.0.0.1", "localhost") + "/bootstrap.json"
    assert open_package(url).origin == url


def test_object_url_names_the_package_after_the_path(server):
    pkg = open_package(f"{server}/tools/my-tool.bpf.o")
    assert pkg.meta.obj_name == "my_tool"


def test_url_sha256_mismatch(server):
    url = f"{server}/bootstrap.json"
    with pytest.raises(FetchError, match=f"^{url}: sha256 is {BOOTSTRAP_SHA}, not the pinned "):
        open_package(url, sha256="f" * 64)


@pytest.mark.parametrize("url", ["http://example.com/x.json", "http://10.0.0.1/x.json", "http://[2001:db8::1]/p",
                                 "http://127.0.0.1.example.com/x.json", "http://localhost.evil/x.json"])
def test_plain_http_is_refused_off_loopback(url):
    with pytest.raises(FetchError) as err:
        open_package(url)
    assert str(err.value) == f"{url}: plain http can be tampered with on the way: use https, or pass --insecure"


def test_plain_http_with_insecure_is_attempted():
    with pytest.raises(FetchError) as err:
        open_package(OFF_LOOPBACK, insecure=True)
    assert str(err.value) == (f"{OFF_LOOPBACK}: cannot fetch ([Errno 111] Connection refused): "
                              "check the address and the network")


def test_unreachable_url():
    port = closed_port()
    url = f"http://127.0.0.1:{port}/x.json"
    with pytest.raises(FetchError) as err:
        fetch_url(url)
    assert str(err.value) == f"{url}: cannot fetch ([Errno 111] Connection refused): check the address and the network"


@pytest.mark.parametrize(("path", "answer"), [("/missing.json", "404 Not Found"),
                                              ("/gone", "500 Internal Server Error")])
def test_http_errors(server, path, answer):
    with pytest.raises(FetchError) as err:
        open_package(server + path)
    assert str(err.value) == f"{server}{path}: the server answered {answer}: check the address"


def test_reason_phrase_is_escaped(server):
    url = f"{server}/odd-reason"
    with pytest.raises(FetchError) as err:
        fetch_url(url)
    assert str(err.value) == f"{url}: the server answered 404 Gone\\x1b[2J\\rok 200: check the address"


def test_bad_status_line_is_escaped():
    with dripping_server(b"HTTP/1.1 2x0\x1b[2J\r\n\r\n", b"", 0.01) as url:
        with pytest.raises(FetchError) as err:
            fetch_url(url + "/x.json")
    assert "\x1b" not in str(err.value) and "\\x1b[2J" in str(err.value)


def test_redirect_loop_is_one_line(server):
    url = f"{server}/loop"
    with pytest.raises(FetchError) as err:
        fetch_url(url)
    assert str(err.value) == f"{url}: the redirects go round in a loop or past 10: check the address"


@pytest.mark.parametrize("answer", [HEADERS_THEN_DRIPPED_BODY, DRIPPED_HEADERS], ids=["body", "headers"])
def test_a_dripping_server_meets_the_deadline(answer):
    """A byte every 0.2 s never trips the 15 s per-read timeout: the deadline ends it."""
    with dripping_server(*answer) as url:
        start = time.monotonic()
        with pytest.raises(FetchError) as err:
            fetch_url(url + "/x.json", timeout=1)
        took = time.monotonic() - start
    assert str(err.value) == f"{url}/x.json: no complete answer within 1 s: check the address and the network"
    assert 0.9 < took < 3


def test_the_deadline_is_open_packages_too():
    with dripping_server(*HEADERS_THEN_DRIPPED_BODY) as url:
        start = time.monotonic()
        with pytest.raises(FetchError, match=r"no complete answer within 0\.5 s"):
            open_package(url + "/x.json", timeout=0.5)
        assert time.monotonic() - start < 2.5


def test_download_too_big(server):
    with pytest.raises(FetchError) as err:
        open_package(f"{server}/huge.json")
    assert str(err.value) == f"{server}/huge.json: larger than 16 MiB: not a package"


def test_download_of_exactly_the_limit(server):
    assert len(fetch_url(f"{server}/limit.json")) == MAX_DOWNLOAD


def test_redirect_on_loopback_is_followed(server):
    assert open_package(f"{server}/to-loopback").meta.obj_name == "client_bpf"


def test_redirect_to_plain_http_off_loopback_is_refused(server):
    # the check on the URL given must hold for the URL a redirect leads to
    with pytest.raises(FetchError) as err:
        open_package(f"{server}/to-plain-http")
    assert str(err.value) == (f"{OFF_LOOPBACK}: plain http can be tampered with on the way: "
                              "use https, or pass --insecure")


def test_redirect_to_ftp_is_refused(server):
    with pytest.raises(FetchError) as err:
        open_package(f"{server}/to-ftp", insecure=True)
    assert str(err.value) == "ftp://example.invalid/bootstrap.json: not an http or https URL"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.json", "data:,{}"])
def test_fetch_url_takes_only_http_and_https(url):
    with pytest.raises(FetchError) as err:
        fetch_url(url, insecure=True)
    assert str(err.value) == f"{url}: not an http or https URL"


def test_redirect_to_plain_http_with_insecure_is_followed(server):
    url = f"{server}/to-plain-http"
    with pytest.raises(FetchError) as err:
        open_package(url, insecure=True)
    assert str(err.value) == f"{url}: cannot fetch ([Errno 111] Connection refused): check the address and the network"


def test_broken_chunked_response_is_a_fetch_error(server):
    url = f"{server}/chunked-garbage"
    with pytest.raises(FetchError) as err:
        fetch_url(url)
    assert str(err.value) == f"{url}: cannot fetch (IncompleteRead(0 bytes read)): check the address and the network"


def test_response_cut_short_is_a_fetch_error(server):
    url = f"{server}/cut-short"
    with pytest.raises(FetchError) as err:
        fetch_url(url)
    assert str(err.value) == (f"{url}: the connection closed after 1000 of {len(BOOTSTRAP)} bytes: "
                              "check the address and the network")


# -- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "stem"), [
    ("/a/b/opensnoop.json", "opensnoop"), ("tool.bpf.o", "tool"), ("/dir/", "dir"), ("/", "package"),
    ("", "package"), (".hidden", "package"), ("a-b.c.d", "a-b"),
])
def test_stem(path, stem):
    assert _stem(path) == stem
