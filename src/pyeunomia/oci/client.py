"""The registry client behind `ecli push`, `pull` and `run REF` (oci/__init__.py): oras' protocol
(URLs, blob uploads, manifest schema, bearer tokens) under our deadline, verification and messages.
Imported only when a REF is used: oras, requests and jsonschema cost 0.24-0.33 s to import."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from ..errors import FetchError
from ..format.escape import escape_text
from . import (
    _SESSIONS,
    _SHA256,
    CONFIG_MEDIA_TYPE,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST,
    OP_TIMEOUT_S,
    TITLE,
    Access,
    Reference,
    _sha256,
    credentials,
    docker_config_path,
)


class Denied(Exception):
    pass


class Client:
    def __init__(self, ref: Reference, access: Access):
        import logging

        try:
            import oras.container
            import oras.provider
        except ImportError:
            raise FetchError(f"{escape_text(str(ref))}: registry references need the oras package: "
                             "pip install 'pyeunomia[oci]'") from None

        logging.getLogger("oras.logger").disabled = True  # its messages would be a second, unescaped line
        self.ref = ref
        self.shown = escape_text(str(ref))
        self.access = access
        self.deadline = time.monotonic() + access.timeout
        self.creds = access.credentials or credentials(ref.host)
        self.creds_from = "--username" if access.credentials else escape_text(docker_config_path())
        # Docker's rule for loopback registries: https first, plain http if the server speaks no TLS
        self.fallback = not access.plain_http and not access.ca_file and _is_loopback(ref.host)
        verify: bool | str = access.ca_file or not access.insecure
        self.registry = _registry_class(oras.provider.Registry)(hostname=ref.host, insecure=access.plain_http,
                                                                tls_verify=verify, client=self)
        # oras parses names by docker's rule, which takes a first component with a dot for a host
        # ("localhost/x", ".../my.org/x" go wrong): the parts are set as REF's grammar read them
        self.container = oras.container.Container("placeholder", registry=ref.host)
        namespace, _, repository = ref.repository.rpartition("/")
        self.container.namespace, self.container.repository = namespace or None, repository
        self.container.tag, self.container.digest = ref.tag or "latest", None

    def manifest(self) -> bytes:
        url = f"{self.registry.prefix}://{self.container.manifest_url(self.ref.target)}"
        resp = self._get(url, {"Accept": ", ".join(MANIFEST_TYPES + INDEX_TYPES)})
        if resp.status_code == 404:
            what = f"no manifest with digest {self.ref.digest}" if self.ref.digest else \
                f"no tag {self.ref.tag or 'latest'}"
            raise FetchError(f"{self.shown}: the registry has {what} in {escape_text(self.ref.repository)}: "
                             "check the reference")
        raw = self._body(resp, MAX_MANIFEST, "manifest")
        digest = _sha256(raw)
        stated = resp.headers.get("Docker-Content-Digest")
        expected = self.ref.digest or (stated if stated and stated.startswith("sha256:") else None)
        if expected and digest != expected:
            raise FetchError(f"{self.shown}: the manifest the registry sent hashes to {digest}, not {expected}: "
                             "refusing it")
        return raw

    def blob(self, digest: str, size: int) -> bytes:
        resp = self._get(f"{self.registry.prefix}://{self.container.get_blob_url(digest)}", {})
        if resp.status_code == 404:
            resp.close()
            raise FetchError(f"{self.shown}: the registry lacks the package {digest} its manifest names: "
                             "push it again")
        data = self._body(resp, size, "package")
        got = _sha256(data)
        if len(data) != size or got != digest:
            raise FetchError(f"{self.shown}: the package the registry sent ({len(data)} bytes) hashes to {got}, not "
                             f"the manifest's {digest} ({size} bytes): refusing to run it")
        return data

    def push(self, data: bytes, title: str, media_type: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pyeunomia-push-") as tmp:
            path = os.path.join(tmp, title.replace(":", "_"))  # oras titles the layer by the file's name
            config = os.path.join(tmp, "config.json")
            with open(path, "wb") as f:
                f.write(data)
            with open(config, "wb") as f:
                f.write(b"{}")
            try:
                resp = self._call(lambda: self.registry.push(
                    self.container, files=[f"{path}:{media_type}"],
                    manifest_config=f"{config}:{CONFIG_MEDIA_TYPE}", disable_path_validation=True,
                    manifest_annotations={TITLE: title}, quiet=True))
            except ValueError as e:  # oras' _check_200_response: "Issue with URL: REASON"
                raise FetchError(f"{self.shown}: the registry refused the push ({escape_text(str(e))})") from None
        digest = resp.headers.get("Docker-Content-Digest", "")
        if not _SHA256.fullmatch(digest):
            raise FetchError(f"{self.shown}: the registry stored the manifest but named no sha256 digest for it")
        return str(digest)

    def _get(self, url: str, headers: dict[str, str]) -> Any:
        resp = self._call(lambda: self.registry.do_request(url, "GET", headers=headers, stream=True))
        if resp.status_code not in (200, 404):
            resp.close()
            raise FetchError(f"{self.shown}: the registry answered {resp.status_code} "
                             f"{escape_text(str(resp.reason))}: check the reference")
        return resp

    def _body(self, resp: Any, limit: int, what: str) -> bytes:
        """At most `limit` bytes of a streamed answer, the deadline checked between reads."""
        import requests

        try:
            try:
                length = int(resp.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0  # what arrives is counted all the same
            if length > limit:
                raise FetchError(f"{self.shown}: the registry offers a {what} of {length} bytes, over {limit}: "
                                 "refusing it")
            chunks, got = [], 0
            try:
                for chunk in resp.iter_content(65536):
                    chunks.append(chunk)
                    got += len(chunk)
                    if got > limit:
                        raise FetchError(f"{self.shown}: the registry sent a {what} of more than {limit} bytes: "
                                         "refusing it")
                    if time.monotonic() > self.deadline:
                        raise FetchError(f"{self.shown}: no complete answer within {self.access.timeout:g} s: "
                                         "check the registry and the network")
            except requests.RequestException as e:
                raise FetchError(f"{self.shown}: the {what} did not arrive ({escape_text(_reason(e))}): "
                                 "check the registry and the network") from None
            return b"".join(chunks)
        finally:
            resp.close()

    def _call(self, work: Any) -> Any:
        """One library call, its failures as one line each."""
        import requests

        host = escape_text(self.ref.host)
        try:
            return work()
        except Denied as e:
            raise FetchError(f"{self.shown}: {e}") from None
        except requests.exceptions.SSLError as e:
            hint = "pass the registry's CA with --ca-file" + ("" if self.access.insecure else ", or --insecure")
            raise FetchError(f"{host}: TLS failed ({escape_text(_reason(e))}): {hint}") from None
        except requests.Timeout:
            raise FetchError(f"{host}: no answer within {OP_TIMEOUT_S:g} s: check the registry and the "
                             "network") from None
        except requests.ConnectionError as e:
            raise FetchError(f"{host}: cannot connect ({escape_text(_reason(e))}): check the address, or pass "
                             "--plain-http for a registry without TLS") from None
        except requests.RequestException as e:
            raise FetchError(f"{host}: {escape_text(_reason(e))}: check the registry") from None


def _is_loopback(host: str) -> bool:
    """`host` (with its port) is this machine: localhost, 127.0.0.0/8, [::1]."""
    import ipaddress

    name = host.strip("[]") if host.endswith("]") else host.rsplit(":", 1)[0].strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _reason(e: BaseException) -> str:
    """The innermost cause, which names what failed (urllib3 wraps it twice)."""
    while e.__context__ is not None and not isinstance(e.__context__, KeyError):
        e = e.__context__
    return re.sub(r"^<[^>]+>: ", "", str(e))[:300]


def _registry_class(base: Any) -> Any:
    """oras' Registry with its requests: no retries (oras sleeps 2 s + 3^n, five times, on any error, which
    would turn a refused connection into two minutes), a timeout on each and the deadline over all, the
    credentials of Docker's config offered to a Basic challenge (the distribution registry's htpasswd) as
    to a token realm, and https falling back to http on loopback."""
    import requests
    from oras.auth.token import TokenAuth

    class Auth(TokenAuth):  # type: ignore[misc]
        def load_configs(self, container: Any, configs: Any = None) -> None:
            """Credentials come from Client (DOCKER_CONFIG honoured, size capped), not from oras' reader."""

    class Registry(base):  # type: ignore[misc]
        def __init__(self, *, client: Client, **kwargs: Any):
            super().__init__(**kwargs)
            self.client = client
            self.auth = Auth()
            self.auth.session, self.auth.prefix, self.auth._tls_verify = self.session, self.prefix, self._tls_verify
            if client.creds:
                self.auth.set_basic_auth(*client.creds)
            self.basic = False  # the registry asked for Basic: send it up front from then on
            original = self.session.request

            def timed(method: str, url: str, *args: Any, **kw: Any) -> Any:
                left = client.deadline - time.monotonic()
                if left <= 0:
                    raise requests.Timeout("the deadline passed")
                kw["timeout"] = min(OP_TIMEOUT_S, left)
                return original(method, url, *args, **kw)
            self.session.request = timed
            _SESSIONS.append(self.session)

        def do_request(self, url: str, method: str = "GET", data: Any = None, headers: dict[str, str] | None = None,
                       json: Any = None, stream: bool = False) -> Any:
            headers = dict(headers or {})
            if self.client.fallback and self.prefix == "http" and url.startswith("https://"):
                url = "http://" + url[len("https://"):]
            if self.basic:
                headers["Authorization"] = f"Basic {self.auth._basic_auth}"
            elif self.auth.token:
                headers["Authorization"] = f"Bearer {self.auth.token}"
            resp = self._send(method, url, data, headers, json, stream)
            if resp.status_code != 401:
                return resp
            challenge = resp.headers.get("Www-Authenticate", "")
            resp.close()
            user = self.client.creds[0] if self.client.creds else None
            where = self.client.creds_from
            ask = f"the registry asks for credentials: add them to {where} (docker login " \
                  f"{escape_text(self.client.ref.host)}), or pass --username and --password-stdin"
            if challenge.lower().startswith("basic"):
                if not user:
                    raise Denied(ask)
                self.basic = True
                headers["Authorization"] = f"Basic {self.auth._basic_auth}"
            else:  # a bearer token realm: anonymous tokens are asked for without credentials
                headers, changed = self.auth.authenticate_request(resp, headers)
                if not changed:
                    raise Denied(f"the registry's token service refused user {escape_text(user)} from {where}: "
                                  "check the credentials" if user else ask)
            resp = self._send(method, url, data, headers, json, stream)
            if resp.status_code == 401:
                resp.close()
                if not user:
                    raise Denied(ask)
                raise Denied(f"the registry refused the credentials of user {escape_text(user)} from {where}: "
                              "check them")
            return resp

        def _send(self, method: str, url: str, data: Any, headers: dict[str, str], json: Any, stream: bool) -> Any:
            try:
                return self.session.request(method, url, data=data, json=json, headers=headers, stream=stream,
                                            verify=self._tls_verify, allow_redirects=True)
            except requests.exceptions.SSLError as e:
                # only a server that answered TLS with plain http; a certificate it failed is an error
                plain = any(s in str(e) for s in ("WRONG_VERSION_NUMBER", "record layer failure"))
                if not (plain and self.client.fallback and url.startswith("https://")):
                    raise
            self.prefix = self.auth.prefix = "http"  # the loopback registry speaks plain http
            return self.session.request(method, "http://" + url[len("https://"):], data=data, json=json,
                                        headers=headers, stream=stream, allow_redirects=True)

    return Registry
