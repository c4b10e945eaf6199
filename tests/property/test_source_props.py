"""source.open_package on bytes, files and pinned hashes."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pyeunomia.errors import FetchError
from pyeunomia.source import open_package
from tests.fuzz.contract import outcome, raises_ours

from .strategies import mutated_objects, upstream_text

prefixes = st.sampled_from([b"", b"{", b"  \n{", b"\x7fELF", b"\xef\xbb\xbf{", b"\x00"])


@given(prefixes, st.binary(max_size=200))
def test_any_bytes(prefix: bytes, data: bytes) -> None:
    outcome(lambda: open_package(prefix + data))


@given(st.binary(max_size=100))
def test_any_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pkg.json"
        path.write_bytes(data)
        outcome(lambda: open_package(str(path)))
        outcome(lambda: open_package(path))


@given(st.text(max_size=20))
def test_any_source_name(name: str) -> None:
    if name.startswith(("http://", "https://")) or "\0" in name:
        return  # no network here; a NUL is refused by the OS
    outcome(lambda: open_package(name))


@given(st.text(alphabet="0123456789abcdefABCDEF", max_size=64))
def test_sha256_mismatch(pin: str) -> None:
    data = upstream_text("bootstrap").encode()
    if pin.lower() == hashlib.sha256(data).hexdigest():
        return
    raises_ours(lambda: open_package(data, sha256=pin), (FetchError,))


@given(mutated_objects())
def test_raw_objects(obj: bytes) -> None:
    outcome(lambda: open_package(obj))
