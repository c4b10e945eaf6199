"""Registry references, Docker credentials and the manifest's layer choice (pyeunomia/oci/), without a
registry: tests/e2e/test_oci.py runs them against a real one."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from pyeunomia import oci
from pyeunomia.errors import FetchError, UsageError
from pyeunomia.oci.client import Client

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "host", "repo", "tag", "digest"), [
    ("127.0.0.1:5000/opensnoop:latest", "127.0.0.1:5000", "opensnoop", "latest", None),
    ("127.0.0.1:5000/opensnoop", "127.0.0.1:5000", "opensnoop", None, None),
    ("localhost/tools/opensnoop:v1.2", "localhost", "tools/opensnoop", "v1.2", None),
    ("ghcr.io/eunomia-bpf/execve:latest", "ghcr.io", "eunomia-bpf/execve", "latest", None),
    (f"registry:5000/a/b@{DIGEST}", "registry:5000", "a/b", None, DIGEST),
    (f"[::1]:5000/x:t@{DIGEST}", "[::1]:5000", "x", "t", DIGEST),
])
def test_references_as_upstream_and_oras_take_them(text: str, host: str, repo: str, tag: str | None,
                                                   digest: str | None) -> None:
    ref = oci.Reference.parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repo, tag, digest)
    assert str(ref) == text
    assert ref.target == (digest or tag or "latest")
    assert oci.looks_like_reference(text)


@pytest.mark.parametrize("text", [
    "opensnoop", "tools/opensnoop:v1",  # no host: docker.io is not assumed
    "127.0.0.1:5000/Upper:1",  # repository names are lowercase
    "127.0.0.1:5000/x:-bad", "127.0.0.1:5000/x:" + "t" * 129,
    "./package.json", "/tmp/x/package.json", "https://example.org/x:1",
])
def test_not_references(text: str) -> None:
    assert not oci.looks_like_reference(text)
    with pytest.raises(UsageError, match="not an image reference"):
        oci.Reference.parse(text)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 128, "sha256:" + "A" * 64])
def test_only_sha256_digests(digest: str) -> None:
    with pytest.raises(UsageError, match="64 lowercase hex digits"):
        oci.Reference.parse(f"localhost:5000/x@{digest}")


def _config(tmp: Path, monkeypatch: pytest.MonkeyPatch, auths: object) -> None:
    (tmp / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp))


def test_credentials_from_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b64 = base64.b64encode(b"alice:pa:ss").decode()  # a password may hold a colon
    _config(tmp_path, monkeypatch, {"reg.example:5000": {"auth": b64},
                                    "https://other.example": {"username": "bob", "password": "pw"},
                                    "localhost:5001": {"auth": base64.b64encode(b"carol:x").decode()}})
    assert oci.docker_config_path() == str(tmp_path / "config.json")
    assert oci.credentials("reg.example:5000") == ("alice", "pa:ss")
    assert oci.credentials("other.example") == ("bob", "pw")
    assert oci.credentials("127.0.0.1:5001") == ("carol", "x")  # docker's localhost alias
    assert oci.credentials("nowhere.example") is None


def test_a_bad_docker_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, {"reg.example": {"auth": "%%%"}})
    with pytest.raises(FetchError, match=r"the auth of reg\.example is not base64 of user:password"):
        oci.credentials("reg.example")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(FetchError, match="not a readable Docker config"):
        oci.credentials("reg.example")
    (tmp_path / "config.json").unlink()
    os.mkfifo(tmp_path / "config.json")  # never waited on
    with pytest.raises(FetchError, match="not a readable Docker config"):
        oci.credentials("reg.example")


def test_without_docker_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert oci.docker_config_path() == str(tmp_path / ".docker" / "config.json")
    assert oci.credentials("reg.example") is None


REF = oci.Reference.parse("localhost:5000/x:1")


def layer(media: str = oci.LAYER_MEDIA_TYPES["json"], size: int = 10, digest: str = DIGEST,
          title: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {"mediaType": media, "digest": digest, "size": size}
    if title:
        out["annotations"] = {oci.TITLE: title}
    return out


def manifest(*layers: object, **extra: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "config": {}, "layers": list(layers), **extra}).encode()


def test_layer_choice() -> None:
    ours = layer(title="package.json")
    assert oci._choose_layer(REF, manifest(layer("text/plain", digest="sha256:" + "1" * 64), ours)) == ours
    # `oras push REF package.json`: ORAS's default media type, alone or by its title
    plain = layer("application/vnd.oci.image.layer.v1.tar")
    assert oci._choose_layer(REF, manifest(plain)) == plain
    titled = layer("application/vnd.oci.image.layer.v1.tar", title="package.json")
    assert oci._choose_layer(REF, manifest(plain, titled)) == titled


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xff", "not JSON"),
    (b"[]", "not a JSON object"),
    (manifest(layer(), mediaType="application/vnd.oci.image.index.v1+json"), "an image index"),
    (json.dumps({"schemaVersion": 2, "manifests": []}).encode(), "an image index"),
    (manifest(), "not an OCI image manifest with layers"),
    (manifest(layer(), schemaVersion=1), "not an OCI image manifest"),
    (manifest({"mediaType": "x", "digest": DIGEST, "size": "10"}), "lacks its mediaType, digest or size"),
    (manifest({"mediaType": "x", "digest": DIGEST, "size": True}), "lacks its mediaType, digest or size"),
    (manifest({**layer(), "annotations": []}), "lacks its mediaType, digest or size"),
    (manifest(layer(oci.UPSTREAM_WASM)), "a WebAssembly module"),
    (manifest(layer("a"), layer("b")), "2 layers and no single eBPF package"),
    (manifest(layer(), layer()), "2 layers and no single eBPF package"),
    (manifest(layer(digest="sha512:" + "a" * 128)), "is not sha256: refusing what cannot be verified"),
    (manifest(layer(digest="sha256:../../etc")), "is not sha256"),
    (manifest(layer(size=(16 << 20) + 1)), "over 16 MiB or empty"),
    (manifest(layer(size=0)), "over 16 MiB or empty"),
])
def test_hostile_manifests_are_one_line(raw: bytes, message: str) -> None:
    with pytest.raises(FetchError, match=r"^localhost:5000/x:1: .*") as e:
        oci._choose_layer(REF, raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_cache_is_verified_on_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = b'{"a": 1}'
    digest = oci._sha256(data)
    oci._store(digest, data)
    path = Path(oci._cache_path(digest))
    assert path.read_bytes() == data and path.parent.stat().st_mode & 0o077 == 0
    assert oci._cached(digest, 100) == data
    assert oci._cached(digest, 4) is None  # over the cap
    path.write_bytes(b'{"a": 2}')
    assert oci._cached(digest, 100) is None  # damaged or planted: never used


def test_without_the_oras_package_a_reference_is_one_line() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['oras'] = None\n"
            "from pyeunomia import oci\n"
            "try:\n"
            "    oci.pull(oci.Reference.parse('127.0.0.1:9/x:1'), oci.Access(timeout=5))\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == ("FetchError 127.0.0.1:9/x:1: registry references need the oras package: "
                   "pip install 'pyeunomia[oci]'\n")


@pytest.mark.parametrize(("text", "url"), [
    ("localhost/x:1", "https://localhost/v2/x/manifests/1"),
    ("127.0.0.1:5000/my.org/x:1", "http://127.0.0.1:5000/v2/my.org/x/manifests/1"),
    (f"reg.example:5000/a/b/c@{DIGEST}", f"https://reg.example:5000/v2/a/b/c/manifests/{DIGEST}"),
])
def test_registry_urls_follow_the_reference_grammar(text: str, url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """oras reads names by docker's rule, where a first component with a dot is a host: not ours."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    ref = oci.Reference.parse(text)
    client = Client(ref, oci.Access(plain_http=text.startswith("127.")))
    assert f"{client.registry.prefix}://{client.container.manifest_url(ref.target)}" == url
