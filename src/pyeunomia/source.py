"""Where packages come from: a file, standard input, a URL, raw bytes, or the
name of a package built into pyeunomia (such as "opensnoop")."""

from __future__ import annotations

import os
import sys
from typing import IO, BinaryIO

from .errors import FetchError, PackageError
from .output.escape import escape_text
from .package import Package

MAX_DOWNLOAD = 16 << 20
MAX_FILE = MAX_DOWNLOAD * 4
URL_TIMEOUT_S = 15


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
                 insecure: bool = False, stdin: BinaryIO | None = None) -> Package:
    """A package from a path, '-' (stdin), an http(s) URL, bytes, or a built-in name.

    `sha256` pins the content: a package whose bytes hash differently is refused.
    Plain http is refused unless `insecure` or the host is a loopback address.
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

        return _parse(fetch_url(text, insecure=insecure), shown, _stem(urllib.parse.urlparse(text).path), sha256)
    if os.path.exists(text):
        try:
            with open(text, "rb") as f:
                data = f.read(MAX_FILE + 1)
        except OSError as e:
            raise FetchError(f"{shown}: cannot read: {e.strerror}") from None
        if len(data) > MAX_FILE:
            raise FetchError(f"{shown}: more than {MAX_FILE >> 20} MiB: not a package")
        return _parse(data, shown, _stem(text), sha256)
    builtin = builtin_packages()
    if text in builtin:
        with open(builtin[text], "rb") as f:
            return _parse(f.read(), text, text, sha256)
    names = ", ".join(sorted(builtin)) or "none"
    raise FetchError(f"{shown}: no such file, URL or built-in package (built-in: {names})")


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
    raise PackageError(f"{origin}: neither a package (JSON) nor a BPF object (ELF)")


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


def fetch_url(url: str, *, insecure: bool = False, limit: int = MAX_DOWNLOAD) -> bytes:
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

    _check_url(url, insecure)
    shown = escape_text(url)  # how messages name it
    opener = urllib.request.build_opener(CheckedRedirects())
    try:
        with opener.open(url, timeout=URL_TIMEOUT_S) as resp:
            data: bytes = resp.read(limit + 1)
            missing = resp.length or 0  # what a Content-Length promised and never came
    except urllib.error.HTTPError as e:
        raise FetchError(f"{shown}: the server answered {e.code} {e.reason}: check the address") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"{shown}: cannot fetch ({reason}): check the address and the network") from None
    if len(data) > limit:
        raise FetchError(f"{shown}: larger than {limit >> 20} MiB: not a package")
    if missing:
        raise FetchError(f"{shown}: the connection closed after {len(data)} of {len(data) + missing} bytes: "
                         "check the address and the network")
    return data
