"""The web config (exporter-toolkit format): what it accepts, and one error
naming the file, the line and the key for everything it does not."""

from __future__ import annotations

import ssl
from pathlib import Path

import bcrypt
import pytest

from pyeunomia.errors import ConfigError
from pyeunomia.exporter.webconfig import load_web_config, parse_web_config
from tests.hostile import fifo, returns_promptly

from .webcerts import self_signed

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


def test_empty_file_means_plain_http(tmp_path: Path) -> None:
    web = parse_web_config("", str(tmp_path / "web.yml"))
    assert web.tls is None and web.auth is None


def test_tls_and_users(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    text = f"""tls_server_config:
  cert_file: {cert.name}
  key_file: {key}
  min_version: TLS13
basic_auth_users:
  alice: {HASH}
  bob: {HASH.replace("$2b$", "$2y$")}
"""
    (tmp_path / "web.yml").write_text(text)
    web = load_web_config(str(tmp_path / "web.yml"))  # cert_file relative to the web config's directory
    assert isinstance(web.tls, ssl.SSLContext)
    assert web.tls.minimum_version == ssl.TLSVersion.TLSv1_3 and web.tls.verify_mode == ssl.CERT_NONE
    assert web.auth is not None
    assert web.auth.check("alice", "s3cret") and web.auth.check("alice", "s3cret")  # the second from the cache
    assert web.auth.check("bob", "s3cret")  # htpasswd's $2y$
    assert not web.auth.check("alice", "wrong") and not web.auth.check("carol", "s3cret")
    assert not web.auth.check("alice", "")


def test_client_certificates_verified(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    text = (f"tls_server_config: {{cert_file: {cert}, key_file: {key}, client_ca_file: {cert}, "
            "client_auth_type: RequireAndVerifyClientCert}\n")
    web = parse_web_config(text, str(tmp_path / "w.yml"))
    assert web.tls is not None and web.tls.verify_mode == ssl.CERT_REQUIRED
    text = text.replace("RequireAndVerifyClientCert", "VerifyClientCertIfGiven")
    web = parse_web_config(text, str(tmp_path / "w.yml"))
    assert web.tls is not None and web.tls.verify_mode == ssl.CERT_OPTIONAL


CERT = "{cert}"
KEY = "{key}"


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("tls_server_config:\n  cert_file: {cert}\n", 2, "tls_server_config.key_file", "missing 'key_file'"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {cert}\n", 2, "tls_server_config.cert_file",
     "cannot load"),
    ("tls_server_config:\n  cert_file: nope.crt\n  key_file: {key}\n", 2, "tls_server_config.cert_file",
     "No such file"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  cert: x\n", 4, "tls_server_config.cert",
     "unknown or unsupported key 'cert'"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS14\n", 4,
     "tls_server_config.min_version", "unknown TLS version 'TLS14'"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS13\n  max_version: TLS12\n", 5,
     "tls_server_config.max_version", "below min_version"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAnyClientCert\n", 4,
     "tls_server_config.client_auth_type", "not supported"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: Whatever\n", 4,
     "tls_server_config.client_auth_type", "unknown client_auth_type"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: VerifyClientCertIfGiven\n", 2,
     "tls_server_config.client_ca_file", "needs client_ca_file"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_ca_file: {cert}\n", 4,
     "tls_server_config.client_ca_file", "only used with"),
    ("basic_auth_users:\n  alice: s3cret\n", 2, "basic_auth_users.alice", "bcrypt hash"),
    ("basic_auth_users:\n  alice: 12\n", 2, "basic_auth_users.alice", "bcrypt hash"),
    ("basic_auth_users: {}\n", 1, "basic_auth_users", "no users"),
    ("basic_auth_users: [alice]\n", 1, "basic_auth_users", "as a mapping"),
    ("http_server_config:\n  http2: false\n", 1, "http_server_config", "unsupported key 'http_server_config'"),
    ("tls_server_config: [\n", 2, "", "invalid YAML"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, words: str) -> None:
    cert, key_file = self_signed(tmp_path)
    text = text.replace(CERT, str(cert)).replace(KEY, str(key_file))
    with pytest.raises(ConfigError) as info:
        parse_web_config(text, "web.yml")
    e = info.value
    assert (e.file, e.line, e.key) == ("web.yml", line, key), str(e)
    assert words in str(e) and "\n" not in str(e)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"web\.yml: cannot read: No such file"):
        load_web_config(str(tmp_path / "web.yml"))


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = fifo(tmp_path / "web.yml")
    err = returns_promptly(lambda: load_web_config(str(path)), [path])
    assert isinstance(err, ConfigError)
    assert str(err) == f"{path}: not a regular file (a FIFO): pass a web config file to --web.config.file"


def test_a_file_over_1_mib_is_refused_unread(tmp_path: Path) -> None:
    """It was cut at 1 MiB and the rest ignored."""
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n" + "#" * (1 << 20) + "\n  alice: x\n")
    with pytest.raises(ConfigError) as e:
        load_web_config(str(path))
    assert str(e.value) == f"{path}: larger than 1 MiB: a web config is a few lines: check the file"
