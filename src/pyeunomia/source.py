"""Where packages come from: a file, standard input, a URL, raw bytes, or the
name of a package built into pyeunomia (such as "opensnoop")."""

from __future__ import annotations

import os
import sys
from typing import IO, Any, BinaryIO

from . import oci  # light: the registry client (oras, requests) is imported only when a REF is pulled
from .errors import FetchError, PackageError
from .files import FileTooLarge, NotRegularFile, read_regular
from .format.escape import escape_text
from .format.package import Package

MAX_DOWNLOAD = 16 << 20
MAX_FILE = MAX_DOWNLOAD * 4
URL_TIMEOUT_S = 15  # one network operation (connect, a read) stalled this long ends a download
# A whole download: connect, TLS, headers and body. A real package is 25-40 KB
# (the shipped and upstream ones), a second's work; 60 s still brings the
# 16 MiB cap over a 2.3 Mbit/s link. Per-read timeouts alone did not bound it:
# a server dripping a byte every 5 s kept `ecli run URL` waiting forever.
FETCH_TIMEOUT_S = 60.0


def builtin_packages() -> dict[str, str]:
    """Name -> resource path of every package shipped inside pyeunomia."""
    out = {}
    tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
    for name in sorted(os.listdir(tools)) if os.path.isdir(tools) else []:
        candidate = os.path.join(tools, name, "package.json")
        if os.path.isfile(candidate):
            out[name] = candidate
    return out


def open_package(source: str | bytes | os.PathLike[str], *, sha256: str | None = None,
                 insecure: bool = False, stdin: BinaryIO | None = None,
                 timeout: float = FETCH_TIMEOUT_S, registry: dict[str, Any] | None = None) -> Package:
    """A package from a path, '-' (stdin), an http(s) URL, bytes, a built-in name, or an OCI
    registry reference (host[:port]/repo[:tag|@sha256:...], oci/; `registry` holds its access
    options beside `insecure` and `timeout`).

    `sha256` pins the content: a package whose bytes hash differently is refused.
    Plain http is refused unless `insecure` or the host is a loopback address;
    a download taking over `timeout` seconds in all is abandoned. A path must
    name a regular file (a FIFO or device is refused without blocking).
    """
    if isinstance(source, bytes):
        return _parse(source, "<bytes>", "package", sha256)
    text = os.fspath(source)
    shown = escape_text(text)  # how messages name it: a path may hold a newline
    if text == "-":
        data = (stdin or sys.stdin.buffer).read(MAX_DOWNLOAD + 1)
        if len(data) > MAX_DOWNLOAD:
            raise FetchError(f"<stdin>: more than {MAX_DOWNLOAD >> 20} MiB: not a package")
        return _parse(data, "<stdin>", "package", sha256)
    if text.startswith(("http://", "https://")):
        import urllib.parse

        data = fetch_url(text, insecure=insecure, timeout=timeout)
        return _parse(data, shown, _stem(urllib.parse.urlparse(text).path), sha256)
    if os.path.exists(text):
        try:
            data = read_regular(text, MAX_FILE)
        except NotRegularFile as e:
            raise FetchError(f"{shown}: not a regular file ({e.kind}): pass a package file, "
                             "or '-' for standard input") from None
        except FileTooLarge:
            raise FetchError(f"{shown}: more than {MAX_FILE >> 20} MiB: not a package") from None
        except OSError as e:
            raise FetchError(f"{shown}: cannot read: {e.strerror}") from None
        return _parse(data, shown, _stem(text), sha256)
    builtin = builtin_packages()
    if text in builtin:
        with open(builtin[text], "rb") as f:
            return _parse(f.read(), text, text, sha256)
    if "/" in text and not text.startswith(("/", ".")):
        if oci.looks_like_reference(text):
            ref = oci.Reference.parse(text)
            access = oci.Access(insecure=insecure, timeout=timeout, **(registry or {}))
            pulled = oci.pull(ref, access)  # verified against the manifest's digest before it is parsed
            return _parse(pulled.data, shown, ref.repository.rsplit("/", 1)[-1], sha256)
    names = ", ".join(sorted(builtin)) or "none"
    raise FetchError(f"{shown}: no such file, URL or built-in package (built-in: {names})")


def read_package(text: str) -> tuple[bytes, str]:
    """The bytes and file name of a package named by a path, '-' or a built-in name (ecli push)."""
    if text == "-":
        data = sys.stdin.buffer.read(MAX_DOWNLOAD + 1)
        if len(data) > MAX_DOWNLOAD:
            raise FetchError(f"<stdin>: more than {MAX_DOWNLOAD >> 20} MiB: not a package")
        return data, "package.json"
    path = text if os.path.exists(text) else builtin_packages().get(text)
    if path is None:
        raise FetchError(f"{escape_text(text)}: no such file or built-in package")
    try:
        data = read_regular(path, MAX_DOWNLOAD)  # a registry's package is pulled back under this cap
    except NotRegularFile as e:
        raise FetchError(f"{escape_text(text)}: not a regular file ({e.kind})") from None
    except FileTooLarge:
        raise FetchError(f"{escape_text(text)}: more than {MAX_DOWNLOAD >> 20} MiB: too large to pull back") from None
    except OSError as e:
        raise FetchError(f"{escape_text(text)}: cannot read: {e.strerror}") from None
    return data, os.path.basename(path)


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/")) or "package"
    return base.split(".")[0] or "package"


def _parse(data: bytes, origin: str, name: str, sha256: str | None) -> Package:
    if sha256 is not None:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise FetchError(f"{origin}: sha256 is {digest}, not the pinned {sha256}: refusing to run it")
    if data.startswith(b"\x7fELF"):
        return Package.from_object(data, name.replace("-", "_"), origin)
    if data.lstrip()[:1] == b"{":
        return Package.from_json(data, origin)
    if data[257:262] == b"ustar":  # a tar: upstream's `ecc -b` output, package.json and minimal BTF beside it
        return Package.from_tar(data, origin)
    raise PackageError(f"{origin}: neither a package (JSON or an ecc -b tar) nor a BPF object (ELF)")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, insecure: bool) -> None:
    import urllib.parse

    parts = urllib.parse.urlparse(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{escape_text(url)}: not an http or https URL")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname or ""):
        raise FetchError(f"{escape_text(url)}: plain http can be tampered with on the way: "
                         "use https, or pass --insecure")


def fetch_url(url: str, *, insecure: bool = False, limit: int = MAX_DOWNLOAD,
              timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The body at `url`, at most `limit` bytes, in at most `timeout` seconds.

    The download runs in a worker thread the caller waits for: that bounds it
    all (the name lookup, connect, TLS, headers and body) where socket
    timeouts bound only each read. At the deadline the worker's sockets are
    shut down, so it ends as well instead of lingering.
    """
    import threading

    _check_url(url, insecure)
    sockets = _Sockets()
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(_download(url, insecure, limit, min(timeout, URL_TIMEOUT_S), sockets))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            outcome.append(e)

    worker = threading.Thread(target=work, name="pyeunomia-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    late = worker.is_alive()
    sockets.close(shut_down=late)
    if late:
        raise FetchError(f"{escape_text(url)}: no complete answer within {timeout:g} s: "
                         "check the address and the network")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    data: bytes = outcome[0]
    return data


class _Sockets:
    """The sockets of one download, shut down together at its deadline. Each
    is held by a duplicate fd: shutting that down is safe even after the
    worker closed its own (and its number went to another file)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._fds: list[int] = []
        self._closed = False

    def connect(self, address: tuple[str, int], timeout: Any = None,
                source_address: tuple[str, int] | None = None) -> Any:
        """socket.create_connection, remembered; refused once the time is up."""
        import socket

        sock = socket.create_connection(address, timeout, source_address)
        with self._lock:
            if self._closed:
                sock.close()
                raise TimeoutError("the download's time is up")
            self._fds.append(os.dup(sock.fileno()))
        return sock

    def close(self, shut_down: bool) -> None:
        import socket

        with self._lock:
            self._closed = True
            fds, self._fds = self._fds, []
        for fd in fds:
            with socket.socket(fileno=fd) as sock:
                if shut_down:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # a blocked read in the worker returns
                    except OSError:
                        pass


def _download(url: str, insecure: bool, limit: int, op_timeout: float, sockets: _Sockets) -> bytes:
    import http.client
    import urllib.error
    import urllib.request

    class CheckedRedirects(urllib.request.HTTPRedirectHandler):
        """Hold every URL a redirect leads to to the same rule as the first."""

        def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                             headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
            try:
                _check_url(newurl, insecure)
            except FetchError:
                fp.close()
                raise
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    def tracked(http_class: Any) -> Any:
        def connection(*args: Any, **kwargs: Any) -> Any:
            conn = http_class(*args, **kwargs)
            conn._create_connection = sockets.connect  # every socket it opens, for the deadline
            return conn
        return connection

    class Plain(urllib.request.HTTPHandler):
        def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
            return super().do_open(tracked(http_class), req, **kwargs)

    class Secure(urllib.request.HTTPSHandler):
        def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
            return super().do_open(tracked(http_class), req, **kwargs)

    shown = escape_text(url)  # how messages name it
    opener = urllib.request.build_opener(Plain(), Secure(), CheckedRedirects())
    try:
        with opener.open(url, timeout=op_timeout) as resp:
            data: bytes = resp.read(limit + 1)
            missing = resp.length or 0  # what a Content-Length promised and never came
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400 and str(e.reason).startswith(CheckedRedirects.inf_msg):
            raise FetchError(f"{shown}: the redirects go round in a loop or past "
                             f"{CheckedRedirects.max_redirections}: check the address") from None
        raise FetchError(f"{shown}: the server answered {e.code} {escape_text(str(e.reason))}: "
                         "check the address") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = escape_text(str(getattr(e, "reason", e)))
        raise FetchError(f"{shown}: cannot fetch ({reason}): check the address and the network") from None
    if len(data) > limit:
        raise FetchError(f"{shown}: larger than {limit >> 20} MiB: not a package")
    if missing:
        raise FetchError(f"{shown}: the connection closed after {len(data)} of {len(data) + missing} bytes: "
                         "check the address and the network")
    return data
