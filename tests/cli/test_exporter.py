"""The command line before anything is loaded: arguments, the token file, and
one-line errors with the right exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyeunomia.cli.exporter import parse_listen, read_token
from pyeunomia.errors import UsageError
from tests.hostile import fifo, returns_promptly


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyeunomia.cli.exporter", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8526", ("127.0.0.1", 8526)), ("[::1]:9000", ("::1", 9000)), (":0", ("0.0.0.0", 0)),
    ("localhost:80", ("localhost", 80)),
])
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8526", "host:port", "::1:80", "h:70000", "h:-1"])
def test_bad_listen_addresses(text):
    with pytest.raises(UsageError, match="--listen"):
        parse_listen(text)


def test_token_file_must_be_private_and_long_enough(tmp_path: Path):
    good = tmp_path / "token"
    good.write_text("  s3cr3t-token-0123456789\n")
    good.chmod(0o600)
    assert read_token(str(good)) == b"s3cr3t-token-0123456789"
    good.chmod(0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        read_token(str(good))
    short = tmp_path / "short"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(UsageError, match="16 or more"):
        read_token(str(short))
    with pytest.raises(UsageError, match="cannot read"):
        read_token(str(tmp_path / "absent"))


def test_token_fifo_is_refused_without_blocking(tmp_path: Path):
    path = fifo(tmp_path / "token")
    path.chmod(0o600)
    err = returns_promptly(lambda: read_token(str(path)), [path])
    assert isinstance(err, UsageError)
    assert str(err) == f"--api-token-file: {path} is not a regular file: put the token in one"


@pytest.mark.parametrize(("args", "status", "words"), [
    (["--enable-api"], 2, "--enable-api needs --api-token-file"),
    (["--api-token-file", "/x"], 2, "only for the API"),
    (["--listen", "nope"], 2, "--listen: expected HOST:PORT"),
    (["--bogus"], 2, "unrecognized arguments"),
    ([], 1, "config.yaml: no such file: pass the config with -c FILE"),
])
def test_command_line_errors_are_one_line(tmp_path: Path, args, status, words):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    assert words in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("eunomia-exporter: error: ")


def test_a_bad_config_names_file_line_and_key(tmp_path: Path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("programs:\n  - name: opensnoop\n    metrics:\n      counters:\n        - name: c\n"
                   "          labels:\n            - name: filename\n              from: fnam\n")
    result = run("-c", str(cfg), "--check")
    assert result.returncode == 1
    assert result.stderr == (f"eunomia-exporter: error: {cfg}:8: programs[0].metrics.counters[0].labels[0].from: "
                             "opensnoop's events have no field 'fnam' (fields: ts, cgroup_id, pid, tid, uid, ret, "
                             "flags, mode, syscall, fname_len, truncated, full, comm, fname)\n")


def test_help_lists_the_options():
    result = run("--help")
    assert result.returncode == 0
    for flag in ("-c CONFIG", "--listen HOST:PORT", "--check", "--enable-api", "--api-token-file FILE"):
        assert flag in result.stdout


def test_capabilities_are_dropped_unless_told_otherwise():
    from pyeunomia.cli.exporter import parser

    assert parser().parse_args([]).drop_caps is True
    assert parser().parse_args(["--no-drop-caps"]).drop_caps is False
    args = parser().parse_args(["--web.config.file", "web.yml"])
    assert args.web_config_file == "web.yml"


def test_a_bad_web_config_is_one_line_before_anything_loads(tmp_path: Path):
    """The web config is read first: no root needed to see the error."""
    (tmp_path / "web.yml").write_text("basic_auth_users:\n  alice: plain-text\n")
    result = subprocess.run([sys.executable, "-m", "pyeunomia.cli.exporter", "-c", str(tmp_path / "missing.yaml"),
                             "--web.config.file", str(tmp_path / "web.yml")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"eunomia-exporter: error: {tmp_path / 'web.yml'}:2: basic_auth_users.alice: "
                                    "expected a bcrypt hash")
    assert result.stderr.count("\n") == 1
