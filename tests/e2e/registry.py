"""A real OCI registry for tests: Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1,
started with a config of the test's own: plain http, TLS with a CA made here by openssl, or TLS with
htpasswd basic auth. Its storage is a directory the test can read (and damage, to play a hostile registry)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

from ..conftest import require

Mode = Literal["plain", "tls", "auth"]
USER, PASSWORD = "ecli-test", "s3cret-ecli"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 and localhost signed by it: (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
             "-days", "2", "-subj", "/CN=pyeunomia test CA")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = tmp / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca, cert, key


class Registry:
    def __init__(self, tmp: Path, mode: Mode):
        binary = shutil.which("docker-registry")
        require(binary is not None, "docker-registry is not installed (make test installs it)")
        assert binary is not None
        self.tmp, self.mode = tmp, mode
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = tmp / "storage"
        self.ca: Path | None = None
        lines = ["version: 0.1", "log: {level: error, accesslog: {disabled: true}}",
                 f"storage: {{filesystem: {{rootdirectory: {self.storage}}}}}",
                 "http:", f"  addr: {self.host}"]
        if mode in ("tls", "auth"):
            self.ca, cert, key = make_ca(tmp)
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if mode == "auth":
            require(shutil.which("htpasswd") is not None, "htpasswd is not installed (apache2-utils)")
            out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
            (tmp / "htpasswd").write_text(out.stdout)
            lines += ["auth:", "  htpasswd:", "    realm: pyeunomia-test", f"    path: {tmp / 'htpasswd'}"]
        config = tmp / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        self.log = open(tmp / "registry.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # never left running by a failed start
            raise

    def _wait_ready(self) -> None:
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        url = f"{'https' if self.ca else 'http'}://{self.host}/v2/"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {(self.tmp / 'registry.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2, context=ctx)
                return
            except urllib.error.HTTPError:  # 401 from the auth registry: it answers
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("docker-registry did not answer in 20 s")

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's (or a manifest's) bytes."""
        hexdigest = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"

    def docker_config(self, user: str = USER, password: str = PASSWORD) -> Path:
        """A DOCKER_CONFIG directory whose config.json holds these credentials for this registry."""
        import base64
        import json

        d = self.tmp / f"docker-{hashlib.sha256((user + password).encode()).hexdigest()[:8]}"
        d.mkdir(exist_ok=True)
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        (d / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return d

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
