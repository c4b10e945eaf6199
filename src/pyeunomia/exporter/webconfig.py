"""The web config (--web.config.file): TLS and basic auth in the format of
the Prometheus exporter-toolkit, so a file written for node_exporter works.

    tls_server_config:
      cert_file: server.crt            # PEM; relative paths start at this file's directory
      key_file: server.key
      client_auth_type: NoClientCert   # or VerifyClientCertIfGiven, RequireAndVerifyClientCert
      client_ca_file: ca.crt           # the CAs client certificates must chain to (for the last two)
      min_version: TLS12               # TLS10, TLS11, TLS12 (the default) or TLS13
      max_version: TLS13
    basic_auth_users:                  # user: bcrypt hash, e.g. from htpasswd -nBC 10 alice
      alice: $2y$10$...

The subset: RequestClientCert and RequireAnyClientCert (a certificate asked
for but not verified), cipher_suites, curve_preferences and
http_server_config are refused by name, as is any other key. Basic auth
guards every page but the management API, which has its own bearer token
(both travel in the Authorization header).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..files import FileTooLarge, NotRegularFile, read_regular
from ..format.units import size_text
from .document import Node, config_error, parse_text, shown

if TYPE_CHECKING:
    import ssl

TOP_KEYS = ("tls_server_config", "basic_auth_users")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
CLIENT_AUTH = ("NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
UNSUPPORTED_AUTH = ("RequestClientCert", "RequireAnyClientCert")
VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
BCRYPT_HASH = re.compile(r"\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}\Z")
MAX_WEB_CONFIG = 1 << 20  # a TLS section and a few users: under 1 KB
CACHE_MAX = 256  # successful logins remembered, so a scrape does not pay for bcrypt (60 ms at cost 10)


@dataclass(frozen=True)
class WebConfig:
    file: str
    tls: ssl.SSLContext | None
    auth: BasicAuth | None


class BasicAuth:
    """Users and their bcrypt hashes; a checked password is remembered (as a
    SHA-256 of user, password and hash), like exporter-toolkit's cache."""

    def __init__(self, users: dict[str, bytes]):
        self.users = users
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()
        # an unknown user still costs one bcrypt check: the timing does not tell who exists
        self._decoy = next(iter(users.values()))

    def _key(self, user: str, password: str) -> tuple[bytes | None, bytes]:
        hashed = self.users.get(user)
        return hashed, hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed or b""))).digest()

    def known(self, user: str, password: str) -> bool:
        """Whether these credentials were checked and found good before: a
        SHA-256, no bcrypt (~1 µs against 60 ms), so the server can tell a
        known scraper from a guesser before queueing either."""
        hashed, key = self._key(user, password)
        with self._lock:
            return hashed is not None and key in self._ok

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed, key = self._key(user, password)
        with self._lock:
            if hashed is not None and key in self._ok:
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or self._decoy) and hashed is not None
        except ValueError:
            return False
        if ok:
            with self._lock:
                if len(self._ok) >= CACHE_MAX:
                    self._ok.clear()
                self._ok.add(key)
        return ok


def load_web_config(path: str) -> WebConfig:
    """Read and check the web config at `path`; ConfigError names the file and the key.
    Only a regular file is read (a FIFO is refused, not waited on), of at most
    MAX_WEB_CONFIG bytes."""
    try:
        data = read_regular(path, MAX_WEB_CONFIG)
    except NotRegularFile as e:
        raise config_error(f"not a regular file ({e.kind}): pass a web config file to --web.config.file",
                           file=path) from None
    except FileTooLarge:
        raise config_error(f"larger than {size_text(MAX_WEB_CONFIG)}: a web config is a few lines: check the file",
                           file=path) from None
    except OSError as e:
        raise config_error(f"cannot read: {e.strerror}: pass an existing file to --web.config.file",
                          file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise config_error(f"not UTF-8 text (byte {e.start})", file=path) from None
    return parse_web_config(text, path)


def parse_web_config(text: str, file: str) -> WebConfig:
    root = parse_text(text, file, as_json=False)
    if root.value is None:
        return WebConfig(file, None, None)
    top = _mapping(root, "the web config", TOP_KEYS)
    base = os.path.dirname(os.path.abspath(file))
    tls_node, users_node = top.get("tls_server_config"), top.get("basic_auth_users")
    tls = _tls(tls_node, base) if tls_node is not None and tls_node.value is not None else None
    auth = _users(users_node) if users_node is not None and users_node.value is not None else None
    return WebConfig(file, tls, auth)


def _mapping(node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        raise node.error(f"expected {what} as a mapping")
    for key, child in node.value.items():
        if key not in allowed:
            raise config_error(f"unknown or unsupported key {shown(key)} in {what} (supported: {', '.join(allowed)})",
                              file=child.file, line=child.key_line or child.line, key=child.path)
    return dict(node.value)


def _text(node: Node) -> str:
    if not isinstance(node.value, str) or not node.value:
        raise node.error("expected text")
    return node.value


def _tls(node: Node, base: str) -> ssl.SSLContext:
    import ssl

    keys = _mapping(node, "tls_server_config", TLS_KEYS)
    for need in ("cert_file", "key_file"):
        if need not in keys:
            raise node.error(f"missing '{need}': TLS needs a certificate and its key", node.child_path(need))
    files = {k: os.path.join(base, _text(keys[k])) for k in ("cert_file", "key_file", "client_ca_file") if k in keys}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _version(keys.get("min_version"), ssl.TLSVersion.TLSv1_2)
    ctx.maximum_version = _version(keys.get("max_version"), ssl.TLSVersion.MAXIMUM_SUPPORTED)
    if ctx.maximum_version != ssl.TLSVersion.MAXIMUM_SUPPORTED and ctx.maximum_version < ctx.minimum_version:
        raise keys["max_version"].error("max_version is below min_version")
    try:
        ctx.load_cert_chain(files["cert_file"], files["key_file"])
    except (OSError, ssl.SSLError) as e:
        raise keys["cert_file"].error(f"cannot load {files['cert_file']} with key {files['key_file']}: "
                                      f"{_reason(e)}") from None
    auth = _text(keys["client_auth_type"]) if "client_auth_type" in keys else "NoClientCert"
    if auth in UNSUPPORTED_AUTH:
        raise keys["client_auth_type"].error(f"{auth} (a client certificate asked for but not verified) is not "
                                             f"supported: use {' or '.join(CLIENT_AUTH[1:])}")
    if auth not in CLIENT_AUTH:
        raise keys["client_auth_type"].error(f"unknown client_auth_type {shown(auth)}: use one of "
                                             f"{', '.join(CLIENT_AUTH)}")
    if auth != "NoClientCert":
        if "client_ca_file" not in files:
            raise node.error(f"{auth} needs client_ca_file: the CAs that sign client certificates",
                             node.child_path("client_ca_file"))
        try:
            ctx.load_verify_locations(files["client_ca_file"])
        except (OSError, ssl.SSLError) as e:
            raise keys["client_ca_file"].error(f"cannot load {files['client_ca_file']}: {_reason(e)}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if auth == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
    elif "client_ca_file" in keys:
        raise keys["client_ca_file"].error("client_ca_file is only used with a client_auth_type that verifies: "
                                           f"{' or '.join(CLIENT_AUTH[1:])}")
    return ctx


def _version(node: Node | None, default: Any) -> Any:
    import ssl

    if node is None:
        return default
    name = _text(node)
    if name not in VERSIONS:
        raise node.error(f"unknown TLS version {shown(name)}: use one of {', '.join(VERSIONS)}")
    return getattr(ssl.TLSVersion, f"TLSv1_{name[4]}" if name != "TLS10" else "TLSv1")


def _reason(e: Exception) -> str:
    import ssl

    if isinstance(e, ssl.SSLError):
        return str(e.reason or e).replace("_", " ").lower()
    return str(getattr(e, "strerror", None) or e)


def _users(node: Node) -> BasicAuth:
    keys = _mapping(node, "basic_auth_users", tuple(node.value) if isinstance(node.value, dict) else ())
    if not keys:
        raise node.error("no users: list user: bcrypt-hash pairs, or leave basic_auth_users out")
    users = {}
    for user, hashed in keys.items():
        if ":" in user or not user:
            raise hashed.error("a user name cannot be empty or hold ':'")
        value = hashed.value
        if not isinstance(value, str) or not BCRYPT_HASH.match(value):
            raise hashed.error("expected a bcrypt hash ($2y$10$ and 53 more characters), e.g. from "
                               "'htpasswd -nBC 10 USER'; plain passwords are not accepted")
        users[user] = value.encode()
    try:
        import bcrypt  # noqa: F401 - checked now, not at the first request
    except ImportError:
        raise node.error("basic auth needs the bcrypt package: pip install bcrypt") from None
    return BasicAuth(users)
