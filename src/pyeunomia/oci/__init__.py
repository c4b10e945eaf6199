"""Packages in OCI registries: `ecli push PACKAGE REF`, `ecli pull REF`, `ecli run REF`.

REF is `host[:port]/repo[:tag|@sha256:digest]`, as upstream's ecli (oci-distribution's Reference) and ORAS
take it; the host is required (no implicit docker.io: it is a first path component with a `.` or a `:`, or
`localhost`). The registry protocol is the `oras` library's (PyPI: its URLs, blob uploads, manifest
schema and bearer tokens), imported only here and only when a REF is used, so `ecli run NAME` never pays
for it (importing oras.provider, with requests and jsonschema, took 0.24-0.33 s on the 2-core VM; a pull by
digest served from the cache imports none of it: 0.16-0.23 s against `ecli list`'s 0.13 s).

Artifact layout: one layer holding the package's bytes as they are, titled with the file's name
(`org.opencontainers.image.title`, on the layer as ORAS writes it and on the manifest as upstream's
bpf-oci does), and an empty `{}` config whose media type is the artifact type (ORAS 1.0's convention,
which registries without OCI 1.1's `artifactType` accept). Upstream defines media types only for WebAssembly
modules (`application/vnd.wasm.content.layer.v1+wasm`); those are recognised and refused in one line, since
pyeunomia runs eBPF packages only. A layer pushed by plain `oras push REF package.json` (ORAS's default
media type) is taken too.

Nothing pulled runs unverified: a manifest named by digest must hash to it, one named by tag to the digest
the registry states for it, and the package's bytes to the digest (and size) in the manifest, before they
are parsed. Bytes are capped (manifest 4 MiB, as the distribution registry's own limit; package 16 MiB, as
a package URL) and the whole operation has one deadline (`--timeout`, default 60 s; each network wait at
most 15 s). Verified blobs and manifests are cached by digest under ~/.cache/pyeunomia/oci and hashed
again on every read, so a damaged or planted cache file is never used.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..cache import cache_root, write_atomically
from ..errors import FetchError, UsageError
from ..files import FileTooLarge, NotRegularFile, read_regular
from ..format.escape import escape_text

CONFIG_MEDIA_TYPE = "application/vnd.eunomia-bpf.package.config.v1+json"  # the artifact type
LAYER_MEDIA_TYPES = {"json": "application/vnd.eunomia-bpf.package.v1+json",  # package.json
                     "tar": "application/vnd.eunomia-bpf.package.v1.tar",  # upstream's `ecc -b` tar
                     "object": "application/vnd.eunomia-bpf.object.v1"}  # a plain BPF ELF object
UPSTREAM_WASM = "application/vnd.wasm.content.layer.v1+wasm"  # upstream ecli's only artifact
TITLE = "org.opencontainers.image.title"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MAX_MANIFEST = 4 << 20
MAX_PACKAGE = 16 << 20  # as source.MAX_DOWNLOAD: what `ecli run URL` takes
MAX_DOCKER_CONFIG = 1 << 20
OP_TIMEOUT_S = 15.0

_HOST = r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?=:)|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REF = re.compile(rf"(?P<host>{_HOST})/(?P<repo>{_COMPONENT}(?:/{_COMPONENT})*)"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[A-Za-z0-9=_+.-]+))?")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


class Reference:
    """A parsed REF. Plain classes here, not dataclasses: source.py imports this module on every run, and
    dataclasses would bring inspect and ast (5 ms)."""

    def __init__(self, host: str, repository: str, tag: str | None, digest: str | None):
        self.host, self.repository, self.tag, self.digest = host, repository, tag, digest

    @classmethod
    def parse(cls, text: str) -> Reference:
        m = _REF.fullmatch(text)
        if not m:
            raise UsageError(f"{escape_text(text)}: not an image reference: write host[:port]/repo[:tag] or "
                             "host[:port]/repo@sha256:DIGEST (the host is required)")
        digest = m["digest"]
        if digest is not None and not _SHA256.fullmatch(digest):
            raise UsageError(f"{escape_text(text)}: a digest is sha256: and 64 lowercase hex digits")
        return cls(m["host"], m["repo"], m["tag"], digest)

    @property
    def target(self) -> str:
        """What the registry's manifest URL names: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.host}/{self.repository}{tag}" + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, digest: str) -> str:
        return f"{self.host}/{self.repository}@{digest}"


def looks_like_reference(text: str) -> bool:
    """A registry reference rather than a misspelt file or built-in name."""
    return _REF.fullmatch(text) is not None


class Access:
    """How to reach a registry: ORAS's --plain-http, --insecure (no certificate check) and --ca-file."""

    def __init__(self, plain_http: bool = False, insecure: bool = False, ca_file: str | None = None,
                 timeout: float = 60.0, credentials: tuple[str, str] | None = None):
        self.plain_http, self.insecure, self.ca_file, self.timeout = plain_http, insecure, ca_file, timeout
        self.credentials = credentials  # --username and --password-stdin, instead of Docker's config


class Pulled:
    def __init__(self, data: bytes, manifest_digest: str, blob_digest: str, title: str | None):
        self.data, self.manifest_digest, self.blob_digest, self.title = data, manifest_digest, blob_digest, title


def docker_config_path() -> str:
    """Docker's own rule: $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def credentials(host: str) -> tuple[str, str] | None:
    """The user and password Docker's config file keeps for `host` (`auths` entries, as `docker login`
    writes them: `auth` is base64 of user:password). Credential helpers are not run."""
    path = docker_config_path()
    shown = escape_text(path)
    if not os.path.exists(path):
        return None
    try:
        config = json.loads(read_regular(path, MAX_DOCKER_CONFIG))
    except (OSError, NotRegularFile, FileTooLarge, ValueError) as e:
        raise FetchError(f"{shown}: not a readable Docker config ({escape_text(str(e))}): fix or move it") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    aliases = [host, *([host.replace("localhost", "127.0.0.1")] if host.startswith("localhost") else []),
               *([host.replace("127.0.0.1", "localhost")] if host.startswith("127.0.0.1") else [])]
    for name in aliases:
        for key in (name, f"https://{name}", f"http://{name}", f"https://{name}/v2/"):
            entry = auths.get(key)
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                try:
                    import base64

                    user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise FetchError(f"{shown}: the auth of {escape_text(key)} is not base64 of user:password: "
                                     "log in again (docker login)") from None
                return user, password
            if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
                return entry["username"], entry["password"]
    return None


# --- the cache: content-addressed, verified on every read -------------------------------------------

def _cache_path(digest: str) -> str:
    return os.path.join(cache_root(), "oci", "sha256", digest.split(":", 1)[1])


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cached(digest: str, limit: int) -> bytes | None:
    try:
        data = read_regular(_cache_path(digest), limit)
    except (OSError, NotRegularFile, FileTooLarge):
        return None
    return data if _sha256(data) == digest else None


def _store(digest: str, data: bytes) -> None:
    try:
        write_atomically(_cache_path(digest), data)
    except OSError:
        pass  # a cache that cannot be written costs a download next time, nothing else


# --- pull -------------------------------------------------------------------------------------------

def pull(ref: Reference, access: Access) -> Pulled:
    """The package at `ref`, its bytes verified against the manifest and the manifest against `ref`."""
    result: Pulled = _within(ref, access, lambda: _pull(ref, access))
    return result


def _pull(ref: Reference, access: Access) -> Pulled:
    from .client import Client  # oras and requests, imported when a REF is used

    client: Client | None = None
    raw = _cached(ref.digest, MAX_MANIFEST) if ref.digest else None
    if raw is None:
        client = Client(ref, access)
        raw = client.manifest()
    digest = _sha256(raw)
    if ref.digest:
        _store(digest, raw)
    layer = _choose_layer(ref, raw)
    blob_digest, size = layer["digest"], layer["size"]
    data = _cached(blob_digest, MAX_PACKAGE)
    if data is None:
        client = client or Client(ref, access)
        data = client.blob(blob_digest, size)
        _store(blob_digest, data)
    title = layer.get("annotations", {}).get(TITLE)
    return Pulled(data, digest, blob_digest, title if isinstance(title, str) else None)


def _choose_layer(ref: Reference, raw: bytes) -> dict[str, Any]:
    shown = escape_text(str(ref))
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise FetchError(f"{shown}: the registry's manifest is not JSON: not a package") from None
    if not isinstance(manifest, dict):
        raise FetchError(f"{shown}: the registry's manifest is not a JSON object: not a package")
    media = manifest.get("mediaType")
    if media in INDEX_TYPES or "manifests" in manifest:
        raise FetchError(f"{shown}: an image index (several platforms), not a package: name one of its manifests "
                         "by digest")
    layers = manifest.get("layers")
    if manifest.get("schemaVersion") != 2 or not isinstance(layers, list) or not layers:
        raise FetchError(f"{shown}: not an OCI image manifest with layers: not a package")
    for la in layers:
        ok = isinstance(la, dict) and isinstance(la.get("mediaType"), str) and \
            isinstance(la.get("digest"), str) and type(la.get("size")) is int and \
            isinstance(la.get("annotations", {}), dict)
        if not ok:
            raise FetchError(f"{shown}: a layer of the manifest lacks its mediaType, digest or size: not a package")
    ours = [la for la in layers if la["mediaType"] in LAYER_MEDIA_TYPES.values()]
    if not ours and any(la["mediaType"] == UPSTREAM_WASM for la in layers):
        raise FetchError(f"{shown}: a WebAssembly module (upstream ecli's wasm runtime runs those); "
                         "pyeunomia runs eBPF packages: push a package.json with 'ecli push'")
    if not ours:  # `oras push REF package.json`: ORAS's default media type, titled by the file
        titled = [la for la in layers if la.get("annotations", {}).get(TITLE) == "package.json"]
        ours = titled or (layers if len(layers) == 1 else [])
    if len(ours) != 1:
        raise FetchError(f"{shown}: {len(layers)} layers and no single eBPF package among them: push one package "
                         "per reference")
    layer: dict[str, Any] = dict(ours[0])
    if not _SHA256.fullmatch(layer["digest"]):
        raise FetchError(f"{shown}: the package's digest {escape_text(layer['digest'])} is not sha256: "
                         "refusing what cannot be verified")
    if not 0 < layer["size"] <= MAX_PACKAGE:
        raise FetchError(f"{shown}: the package is {layer['size']} bytes by its manifest: over "
                         f"{MAX_PACKAGE >> 20} MiB or empty, not a package")
    return layer


# --- push -------------------------------------------------------------------------------------------

def push(data: bytes, filename: str, ref: Reference, access: Access) -> str:
    """Push the package `data`, titled `filename`; the manifest's digest."""
    if ref.digest:
        raise UsageError(f"{escape_text(str(ref))}: push to a tag (host/repo:tag), not a digest")
    if data.startswith(b"\x7fELF"):
        kind = "object"
    elif data[257:262] == b"ustar":
        kind = "tar"
    else:
        kind = "json"
    title = os.path.basename(filename)
    from .client import Client

    digest: str = _within(ref, access, lambda: Client(ref, access).push(
        data, title if title not in ("", ".", "..") else "package.json", LAYER_MEDIA_TYPES[kind]))
    return digest


def _within(ref: Reference, access: Access, work: Any) -> Any:
    """`work()`, given up at the deadline. Socket timeouts bound each wait only: a server dripping a byte
    every few seconds (of headers too, which no read size bounds) would hold a pull for days, so the work
    runs in a thread the caller waits for. A thread given up on is left blocked; its sessions are closed
    (ecli exits right after the error)."""
    import threading

    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            outcome.append((False, e))

    worker = threading.Thread(target=run, name="pyeunomia-oci", daemon=True)
    worker.start()
    worker.join(access.timeout)
    if worker.is_alive():
        for session in list(_SESSIONS):
            session.close()
        raise FetchError(f"{escape_text(str(ref))}: no complete answer within {access.timeout:g} s: check the "
                         "registry and the network (--timeout)")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


_SESSIONS: list[Any] = []  # the requests sessions of clients alive, for _within to close
