"""Self-signed certificates for the web config tests, made with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..conftest import require


def self_signed(tmp: Path, name: str = "server") -> tuple[Path, Path]:
    """(cert, key) for localhost and 127.0.0.1; the certificate is its own CA."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed (apt-get install openssl)")
    assert openssl is not None
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key
