"""The web config against the real exporter: TLS (a self-signed certificate
made here), client certificates, basic auth accepted and refused, a real
Prometheus scraping over TLS with basic auth, and a broken web config
refused in one line before anything is loaded."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess

import bcrypt
import pytest

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from ..exporter.live import Exporter, Opener
from ..exporter.webcerts import self_signed
from .helpers import command, temp_dir
from .test_exporter_prometheus import prometheus

pytestmark = pytest.mark.usefixtures("kernel")

PASSWORD = "correct horse"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


def config_for(pid: int) -> str:
    return f"""programs:
  - name: opensnoop
    options: {{pid: {pid}}}
    metrics:
      counters:
        - name: web_opens
          labels: [{{name: filename, from: fname}}]
"""


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def client_context(ca: object, cert: object = None, key: object = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def test_tls_and_basic_auth():
    tmp = temp_dir()
    cert, key = self_signed(tmp)
    (tmp / "web.yml").write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
                                 f"basic_auth_users:\n  prom: {HASH}\n")
    child = Opener(tmp, "w")
    target = tmp / "over-tls.txt"
    target.write_text("x")
    with Exporter(tmp, config_for(child.pid), "--web.config.file", str(tmp / "web.yml"),
                  tls=client_context(cert)) as exp:
        assert f"https://127.0.0.1:{exp.port}/metrics" in "".join(exp.running.stderr_lines)
        assert "basic auth" in "".join(exp.running.stderr_lines)
        for headers in ({}, basic("prom", "wrong"), basic("nobody", PASSWORD), {"Authorization": "Basic !!"},
                        {"Authorization": "Bearer " + PASSWORD}):
            for path in ("/metrics", "/"):
                status, got, body = exp.get(path, headers)
                assert status == 401, (path, headers)
                assert got["www-authenticate"] == 'Basic realm="eunomia-exporter"' and b"unauthorized" in body
        exp.headers = basic("prom", PASSWORD)
        child.do("open", target, 3)
        exp.wait_for(lambda: exp.value("web_opens_total", filename=str(target)) == 3, what="3 opens over TLS")
        assert exp.get("/")[0] == 200

        # plain HTTP on the TLS port is not served, and the exporter goes on
        with socket.create_connection(("127.0.0.1", exp.port), timeout=10) as raw:
            raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                reply = raw.recv(65536)
            except ConnectionResetError:  # the failed handshake closed it with our request unread
                reply = b""
            assert b"HTTP/1" not in reply and b"web_opens" not in reply
        # a client that does not trust the certificate cannot connect
        with pytest.raises(ssl.SSLCertVerificationError):
            http.client.HTTPSConnection("127.0.0.1", exp.port, context=ssl.create_default_context(),
                                        timeout=10).request("GET", "/metrics")
        assert exp.value("web_opens_total", filename=str(target)) == 3
    child.close()


def test_client_certificates_required():
    tmp = temp_dir()
    cert, key = self_signed(tmp)
    client_cert, client_key = self_signed(tmp, "client")
    (tmp / "web.yml").write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                                 f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {client_cert}\n")
    with Exporter(tmp, config_for(1), "--web.config.file", str(tmp / "web.yml"),
                  tls=client_context(cert, client_cert, client_key)) as exp:
        assert exp.get("/metrics")[0] == 200
        for ctx in (client_context(cert), client_context(cert, cert, key)):  # none, or one the CA did not sign
            conn = http.client.HTTPSConnection("127.0.0.1", exp.port, context=ctx, timeout=10)
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.request("GET", "/metrics")
                conn.getresponse()
            conn.close()
        assert exp.get("/metrics")[0] == 200


def test_a_broken_web_config_is_one_line_and_loads_nothing():
    tmp = temp_dir()
    (tmp / "config.yaml").write_text(config_for(1))
    (tmp / "web.yml").write_text("tls_server_config:\n  cert_file: server.crt\n")
    before = loaded_prog_ids()
    result = subprocess.run([*command("eunomia-exporter"), "--web.config.file", str(tmp / "web.yml")], cwd=tmp,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (f"eunomia-exporter: error: {tmp / 'web.yml'}:2: tls_server_config.key_file: missing "
                             "'key_file': TLS needs a certificate and its key\n")
    assert_nothing_new_loaded(before)


def test_prometheus_scrapes_over_tls_with_basic_auth():
    tmp = temp_dir()
    cert, key = self_signed(tmp)
    (tmp / "web.yml").write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                                 f"basic_auth_users:\n  prom: {HASH}\n")
    child = Opener(tmp, "t")
    target = tmp / "scraped-over-tls.txt"
    target.write_text("x")
    job = {"scheme": "https", "tls_config": {"ca_file": str(cert)},
           "basic_auth": {"username": "prom", "password": PASSWORD}}
    with Exporter(tmp, config_for(child.pid), "--web.config.file", str(tmp / "web.yml"),
                  tls=client_context(cert), headers=basic("prom", PASSWORD)) as exp, \
            prometheus(tmp, f"127.0.0.1:{exp.port}", job) as prom:
        prom.wait_for('up{job="eunomia"}', lambda r: r and r[0]["value"][1] == "1")
        child.do("open", target, 6)
        prom.wait_for(f'web_opens_total{{filename="{target}"}}', lambda r: r and r[0]["value"][1] == "6")
    wrong = tmp / "wrong-password"
    wrong.mkdir()
    with Exporter(tmp, config_for(child.pid), "--web.config.file", str(tmp / "web.yml"),
                  tls=client_context(cert)) as exp, \
            prometheus(wrong, f"127.0.0.1:{exp.port}", {**job, "basic_auth": {"username": "prom",
                                                                               "password": "wrong"}}) as prom:
        # a wrong password: Prometheus gets 401, its target is down
        prom.wait_for(f'up{{instance="127.0.0.1:{exp.port}"}}', lambda r: r and r[0]["value"][1] == "0")
    child.close()
