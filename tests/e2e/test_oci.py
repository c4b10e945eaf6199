"""ecli push / pull / run REF against a real registry (Debian's docker-registry on 127.0.0.1): plain http,
TLS with a CA made by openssl, and htpasswd basic auth; a registry whose stored bytes were damaged plays
the hostile one. Every run has a cache of its own (XDG_CACHE_HOME), so nothing is served from an earlier
test's pull unless the test means it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyeunomia.source import builtin_packages

from .helpers import Running, command, temp_dir
from .registry import PASSWORD, USER, Mode, Registry

OPENSNOOP = Path(builtin_packages()["opensnoop"])


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = temp_dir()
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start(tmp: Path) -> Iterator[object]:
    started: list[Registry] = []

    def start(mode: Mode) -> Registry:
        d = tmp / f"registry-{len(started)}"
        d.mkdir()
        started.append(Registry(d, mode))
        return started[-1]
    yield start
    for r in started:
        r.stop()


def ecli(tmp: Path, *args: str, docker_config: Path | None = None, cache: str = "cache",
         timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / cache), "DOCKER_CONFIG": str(docker_config or tmp / "nodocker")}
    return subprocess.run(command("ecli") + list(args), capture_output=True, text=True, env=env, timeout=timeout,
                          input=stdin)


def one_error_line(p: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecli: error: "), p.stderr
    return lines[0]


def push(tmp: Path, reg: Registry, ref: str, *extra: str, source: str = "opensnoop",
         docker_config: Path | None = None) -> str:
    p = ecli(tmp, "push", *extra, source, f"{reg.host}/{ref}", docker_config=docker_config)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{reg.host}/{ref.split(':')[0]}@sha256:"), p.stdout
    return p.stdout.strip()


@pytest.mark.usefixtures("kernel")
def test_push_then_run_from_the_registry_prints_a_real_open(tmp: Path, start) -> None:
    reg = start("plain")
    push(tmp, reg, "opensnoop:latest")
    target = tmp / "opened-through-oci"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline(); open(sys.argv[1], 'w')",
                              str(target)], stdin=subprocess.PIPE)
    try:
        r = Running([*command("ecli"), "run", "-j", f"{reg.host}/opensnoop:latest", "--targ_pid", str(child.pid)],
                    "attached", env=env)
        try:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            event = r.json_events(lambda e: e["fname"] == str(target))[0]
        finally:
            assert r.stop() == 0
    finally:
        child.wait(10)
    assert event["pid"] == child.pid and event["ret"] >= 0
    assert "opensnoop: " in "".join(r.stderr_lines)  # the package named by the repository


def test_pull_by_digest_over_tls_gives_the_pushed_bytes(tmp: Path, start) -> None:
    reg = start("tls")
    assert reg.ca is not None
    pinned = push(tmp, reg, "tools/opensnoop:v1", "--ca-file", str(reg.ca))
    out = tmp / "pulled.json"
    p = ecli(tmp, "pull", "--ca-file", str(reg.ca), pinned, "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout == pinned + "\n"
    assert out.read_bytes() == OPENSNOOP.read_bytes()
    # by tag, the default output is the name it was pushed with
    cwd = tmp / "cwd"
    cwd.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache2"), "DOCKER_CONFIG": str(tmp / "none")}
    p = subprocess.run([*command("ecli"), "pull", "--ca-file", str(reg.ca), f"{reg.host}/tools/opensnoop:v1"],
                       capture_output=True, text=True, env=env, cwd=cwd)
    assert p.returncode == 0, p.stderr
    assert (cwd / "package.json").read_bytes() == OPENSNOOP.read_bytes()
    # the CA is not in the system's store: refused in one line that says what to pass
    line = one_error_line(ecli(tmp, "pull", pinned, "-o", str(out), cache="cache3"))
    assert "TLS failed" in line and "--ca-file" in line and "CERTIFICATE_VERIFY_FAILED" in line
    # --insecure skips the check (ORAS's meaning), and the digest still pins the bytes
    p = ecli(tmp, "pull", "--insecure", pinned, "-o", str(tmp / "insecure.json"), cache="cache4")
    assert p.returncode == 0, p.stderr
    assert (tmp / "insecure.json").read_bytes() == OPENSNOOP.read_bytes()


def test_a_wrong_digest_is_refused_in_one_line(tmp: Path, start) -> None:
    reg = start("plain")
    push(tmp, reg, "opensnoop:latest")
    wrong = f"{reg.host}/opensnoop@sha256:{'0' * 64}"
    line = one_error_line(ecli(tmp, "run", wrong))
    assert line == f"ecli: error: {wrong}: the registry has no manifest with digest sha256:{'0' * 64} in opensnoop: " \
                   "check the reference"
    one_error_line(ecli(tmp, "pull", wrong, "-o", str(tmp / "x")))
    assert not (tmp / "x").exists()
    line = one_error_line(ecli(tmp, "pull", f"{reg.host}/opensnoop@sha256:abc"), status=2)
    assert "64 lowercase hex digits" in line
    # --sha256 still pins the package's own bytes, whatever the registry's digests say
    line = one_error_line(ecli(tmp, "run", "--sha256", "1" * 64, f"{reg.host}/opensnoop:latest"))
    assert line == (f"ecli: error: {reg.host}/opensnoop:latest: sha256 is "
                    f"{hashlib.sha256(OPENSNOOP.read_bytes()).hexdigest()}, not the pinned {'1' * 64}: refusing to "
                    "run it")


def test_basic_auth_credentials_from_the_docker_config(tmp: Path, start) -> None:
    reg = start("auth")
    assert reg.ca is not None
    ca = ("--ca-file", str(reg.ca))
    good = reg.docker_config()
    pinned = push(tmp, reg, "opensnoop:latest", *ca, docker_config=good)
    p = ecli(tmp, "pull", *ca, pinned, "-o", str(tmp / "p.json"), docker_config=good)
    assert p.returncode == 0, p.stderr
    assert (tmp / "p.json").read_bytes() == OPENSNOOP.read_bytes()
    bad = reg.docker_config(password="wrong-" + PASSWORD)
    line = one_error_line(ecli(tmp, "pull", *ca, pinned, "-o", str(tmp / "q.json"), docker_config=bad, cache="c2"))
    assert line == (f"ecli: error: {pinned}: the registry refused the credentials of user {USER} from "
                    f"{bad}/config.json: check them")
    assert PASSWORD not in line
    line = one_error_line(ecli(tmp, "push", *ca, "opensnoop", f"{reg.host}/other:1", docker_config=bad))
    assert "refused the credentials of user" in line
    line = one_error_line(ecli(tmp, "run", *ca, pinned, cache="c3"))
    assert line == (f"ecli: error: {pinned}: the registry asks for credentials: add them to "
                    f"{tmp / 'nodocker'}/config.json (docker login {reg.host}), or pass --username and "
                    "--password-stdin")
    assert not (tmp / "q.json").exists()
    # ORAS's and docker's --username with --password-stdin; upstream's -m PACKAGE
    login = ("-u", USER, "--password-stdin")
    p = ecli(tmp, "push", *ca, *login, "-m", str(OPENSNOOP), f"{reg.host}/login:1", stdin=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{reg.host}/login@{pinned.split('@')[1]}"  # the same manifest: the same digest
    line = one_error_line(ecli(tmp, "pull", *ca, *login, f"{reg.host}/login:1", cache="c4", stdin="nope\n"))
    assert line.endswith(f"the registry refused the credentials of user {USER} from --username: check them")
    line = one_error_line(ecli(tmp, "pull", *ca, "-u", USER, f"{reg.host}/login:1"), status=2)
    assert "--username and --password-stdin go together" in line


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # the same size: only the digest can tell
    path.write_bytes(bytes(data))


def test_a_registry_serving_a_blob_that_does_not_match_its_digest_is_refused(tmp: Path, start) -> None:
    reg = start("plain")
    push(tmp, reg, "opensnoop:latest")
    import urllib.request

    request = urllib.request.Request(f"http://{reg.host}/v2/opensnoop/manifests/latest",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        manifest = json.loads(resp.read())
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.eunomia-bpf.package.v1+json"
    assert layer["annotations"]["org.opencontainers.image.title"] == "package.json"
    assert manifest["config"]["mediaType"] == "application/vnd.eunomia-bpf.package.config.v1+json"
    _flip_last_byte(reg.blob_file(layer["digest"]))
    line = one_error_line(ecli(tmp, "run", f"{reg.host}/opensnoop:latest"))
    assert f"not the manifest's {layer['digest']} ({layer['size']} bytes): refusing to run it" in line
    assert not (tmp / "cache" / "pyeunomia" / "oci" / "sha256" / layer["digest"][7:]).exists()


def test_a_manifest_that_does_not_match_the_pinned_digest_is_refused(tmp: Path, start) -> None:
    reg = start("plain")
    pinned = push(tmp, reg, "opensnoop:latest")
    digest = pinned.split("@")[1]
    manifest = reg.blob_file(digest).read_bytes()
    _flip_last_byte(reg.blob_file(digest))  # the registry keeps manifests as blobs, and checks them itself
    line = one_error_line(ecli(tmp, "run", pinned))
    assert line == f"ecli: error: {pinned}: the registry answered 500 Internal Server Error: check the reference"
    # a registry that does not check: it serves other bytes for the digest, or for the tag than it states
    forged = manifest.replace(b'"package.json"', b'"other.json"')
    with _HostileRegistry(forged, digest) as host:
        line = one_error_line(ecli(tmp, "run", f"{host}/opensnoop@{digest}"))
        assert line.startswith(f"ecli: error: {host}/opensnoop@{digest}: the manifest the registry sent hashes to "
                               f"sha256:{hashlib.sha256(forged).hexdigest()}, not {digest}: refusing it")
        line = one_error_line(ecli(tmp, "run", f"{host}/opensnoop:latest"))
        assert line.endswith(f", not {digest}: refusing it")


class _HostileRegistry:
    """An http server on loopback answering every manifest request with `body`, stating `digest` for it;
    `length` is the Content-Length it claims (None: none, the body ends when the connection closes), and
    with `drip` it sends a byte every `drip` seconds."""

    def __init__(self, body: bytes, digest: str, length: int | None = -1, drip: float = 0.0):
        import http.server
        import threading
        import time

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = b"{}" if self.path == "/v2/" else body
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Docker-Content-Digest", digest)
                if length is not None:
                    self.send_header("Content-Length", str(len(data) if length == -1 else length))
                self.end_headers()
                try:
                    if drip and data != b"{}":
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(drip)
                    else:
                        self.wfile.write(data)
                except OSError:
                    pass  # the client gave up: what the test wants

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_hostile_registry_is_bounded_in_size_and_time(tmp: Path) -> None:
    import time

    digest = "sha256:" + "2" * 64
    huge = b"{" + b" " * (5 << 20) + b"}"
    with _HostileRegistry(huge, digest, length=len(huge)) as host:  # refused on its Content-Length
        line = one_error_line(ecli(tmp, "run", f"{host}/x:1"))
        assert line == f"ecli: error: {host}/x:1: the registry offers a manifest of {len(huge)} bytes, over " \
                       f"{4 << 20}: refusing it"
    with _HostileRegistry(huge, digest, length=None) as host:  # no length: cut at the cap
        line = one_error_line(ecli(tmp, "run", f"{host}/x:1"))
        assert line == f"ecli: error: {host}/x:1: the registry sent a manifest of more than {4 << 20} bytes: " \
                       "refusing it"
    with _HostileRegistry(b'{"schemaVersion": 2}', digest, drip=0.5) as host:  # a byte every 0.5 s
        began = time.monotonic()
        line = one_error_line(ecli(tmp, "pull", "--timeout", "2", f"{host}/x:1"))
        assert line == f"ecli: error: {host}/x:1: no complete answer within 2 s: check the registry and the " \
                       "network (--timeout)"
        assert time.monotonic() - began < 10


def test_pulled_packages_are_cached_by_digest_and_verified_on_every_read(tmp: Path, start) -> None:
    reg = start("plain")
    pinned = push(tmp, reg, "opensnoop:latest")
    assert ecli(tmp, "pull", pinned, "-o", str(tmp / "a.json")).returncode == 0
    reg.stop()
    p = ecli(tmp, "pull", pinned, "-o", str(tmp / "b.json"))  # the registry is gone: from the cache
    assert p.returncode == 0, p.stderr
    assert (tmp / "b.json").read_bytes() == OPENSNOOP.read_bytes()
    cached = tmp / "cache" / "pyeunomia" / "oci" / "sha256"
    blob = next(f for f in cached.iterdir() if f.read_bytes() == OPENSNOOP.read_bytes())
    _flip_last_byte(blob)  # damaged (or planted): not used, so the registry is asked again, and is gone
    line = one_error_line(ecli(tmp, "pull", pinned, "-o", str(tmp / "c.json")))
    assert f"127.0.0.1:{reg.port}: cannot connect" in line
    assert not (tmp / "c.json").exists()


def test_oras_layouts_are_read_and_upstream_wasm_modules_refused(tmp: Path, start) -> None:
    """What `oras push REF package.json` writes (ORAS's default media type, titled by the file) runs; a
    module pushed as upstream's ecli pushes wasm is refused in one line."""
    import oras.provider

    reg = start("plain")
    client = oras.provider.Registry(hostname=reg.host, insecure=True)
    work = tmp / "oras"
    work.mkdir()
    (work / "package.json").write_bytes(OPENSNOOP.read_bytes())
    (work / "app.wasm").write_bytes(b"\0asm\1\0\0\0")
    client.push(f"{reg.host}/plain-oras:1", files=[str(work / "package.json")], disable_path_validation=True,
                quiet=True)
    client.push(f"{reg.host}/wasm:1", files=[f"{work / 'app.wasm'}:application/vnd.wasm.content.layer.v1+wasm"],
                disable_path_validation=True, quiet=True)
    p = ecli(tmp, "pull", f"{reg.host}/plain-oras:1", "-o", str(tmp / "o.json"))
    assert p.returncode == 0, p.stderr
    assert (tmp / "o.json").read_bytes() == OPENSNOOP.read_bytes()
    line = one_error_line(ecli(tmp, "run", f"{reg.host}/wasm:1"))
    assert "a WebAssembly module (upstream ecli's wasm runtime runs those)" in line


def test_plain_http_is_opt_in_beyond_loopback_and_errors_are_one_line(tmp: Path) -> None:
    # nothing listens on port 9 of loopback: one line at once, no retries
    line = one_error_line(ecli(tmp, "pull", "127.0.0.1:9/x:1", timeout=20))
    assert line.startswith("ecli: error: 127.0.0.1:9: cannot connect (")
    line = one_error_line(ecli(tmp, "push", "opensnoop", "127.0.0.1:9/x@sha256:" + "1" * 64), status=2)
    assert "push to a tag" in line
    line = one_error_line(ecli(tmp, "push", "opensnoop", "no-host/x:1"), status=2)
    assert "the host is required" in line


def test_push_takes_every_package_form_and_refuses_what_ecli_run_would(tmp: Path, start) -> None:
    """An object and upstream's JSON go up with their media types and come back byte for byte; a file
    that is no package is refused before anything is sent."""
    import urllib.request

    from .helpers import compile_bpf

    reg = start("plain")
    obj = compile_bpf('#include <linux/bpf.h>\n#define SEC(n) __attribute__((section(n), used))\n'
                      'SEC("tracepoint/syscalls/sys_enter_getpid") int f(void *ctx) { return 0; }\n'
                      'char LICENSE[] SEC("license") = "GPL";\n', tmp, "tiny")
    upstream = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "bootstrap.json"
    for source, repo, media in ((obj, "tiny:1", "application/vnd.eunomia-bpf.object.v1"),
                                (upstream, "bootstrap:1", "application/vnd.eunomia-bpf.package.v1+json")):
        push(tmp, reg, repo, source=str(source))
        request = urllib.request.Request(f"http://{reg.host}/v2/{repo.replace(':', '/manifests/')}",
                                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            layer = json.loads(resp.read())["layers"][0]
        assert layer["mediaType"] == media
        assert layer["annotations"]["org.opencontainers.image.title"] == source.name
        p = ecli(tmp, "pull", f"{reg.host}/{repo}", "-o", str(tmp / "back"))
        assert p.returncode == 0, p.stderr
        assert (tmp / "back").read_bytes() == source.read_bytes()
    p = subprocess.run([*command("ecli"), "pull", f"{reg.host}/tiny:1", "-o", "-"], capture_output=True,
                       env={**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")})
    assert p.stdout == obj.read_bytes()
    junk = tmp / "junk.json"
    junk.write_text("not a package")
    line = one_error_line(ecli(tmp, "push", str(junk), f"{reg.host}/junk:1"))
    assert "neither a package" in line
    assert not (reg.storage / "docker/registry/v2/repositories/junk").exists()


def test_run_of_a_name_never_imports_the_registry_client() -> None:
    code = ("import sys; from pyeunomia.source import open_package; open_package('opensnoop'); "
            "print(sorted(m for m in ('oras', 'requests', 'jsonschema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"
