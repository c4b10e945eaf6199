"""Fuzz target: package JSON (Package.from_json, parse_meta, source.open_package).

    .venv/bin/python tests/fuzz/fuzz_package.py -max_total_time=300

The first byte picks what the rest is, so the fuzzer reaches deep: 0, the
package text itself; 1, an ELF object packed with the bootstrap metadata;
2, JSON metadata packed with the real bootstrap object.
Contract: a package or one PackageError line; a package read is written and
read back unchanged; its layouts, options and command line work (see checks).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.checks import check_package_text
from tests.property.strategies import packed, upstream_doc, upstream_object


@cache
def _bootstrap() -> tuple[str, str]:
    doc = upstream_doc("bootstrap")
    return packed(upstream_object("bootstrap")), json.dumps(doc["meta"])


def package_bytes(data: bytes) -> bytes | None:
    """The package text an input stands for (see the module docstring)."""
    if not data:
        return None
    mode, body = data[0] % 3, data[1:]
    if mode == 0:
        return body
    blob, meta = _bootstrap()
    if mode == 1:
        text = '{"bpf_object": "%s", "meta": %s}' % (packed(body), meta)  # noqa: UP031
    else:
        text = '{"bpf_object": "%s", "meta": %s}' % (blob, body.decode("utf-8", "replace"))  # noqa: UP031
    return text.encode("utf-8", "surrogateescape")


def TestOneInput(data: bytes) -> None:
    text = package_bytes(data)
    if text is not None:
        check_package_text(text)


def seeds() -> list[bytes]:
    from tests.property.strategies import UPSTREAM, upstream_text

    doc = upstream_doc("bootstrap")
    padded = {**doc["meta"], "pad": [[]] * 400_000}  # 1.2 MB: over the metadata's own cap (MAX_META)
    huge = json.dumps({**doc, "bpf_object_size": "@"}).replace('"@"', "9" * 5000)  # over Python's 4300 digits
    return ([b"\0" + upstream_text(name).encode() for name in UPSTREAM]
            + [b"\1" + upstream_object("bootstrap"), b"\2" + json.dumps(doc["meta"]).encode(),
               b"\2" + json.dumps(upstream_doc("runqlat")["meta"]).encode(), b"\2" + json.dumps(padded).encode(),
               b"\0" + huge.encode()])


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "package", seeds)
