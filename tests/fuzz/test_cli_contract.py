"""The command-line contract for bad input: `ecli run BADFILE` exits non-zero
with exactly one stderr line, "ecli: error: ...", and no traceback.

Every case is first checked in-process to fail before anything is loaded
(open_package, global_options, the program parser), so these tests never
touch the kernel and need no root.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyeunomia.cli.ecli import program_parser
from pyeunomia.errors import EunomiaError
from pyeunomia.format.options import global_options
from pyeunomia.source import open_package
from tests.e2e.helpers import command
from tests.fuzz.fuzz_package import package_bytes

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "package"


def fails_before_loading(source: str | bytes) -> bool:
    try:
        pkg = open_package(source)
        options = global_options(pkg)
        program_parser(pkg, options).parse_args([])
    except EunomiaError:
        return True
    return False


def refused(path: str, *args: str) -> str:
    done = subprocess.run([*command("ecli"), "run", path, *args], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ecli: error: "), done.stderr
    assert done.stdout == ""
    return lines[0]


def _refused_cases() -> list[Path]:
    """The corpus packages that fail before anything is loaded; the valid
    ones (which running would load into the kernel) are left to the
    in-process corpus replay."""
    out = []
    for case in sorted(CORPUS.glob("*")):
        text = package_bytes(case.read_bytes())
        if text is not None and fails_before_loading(text):
            out.append(case)
    return out


CASES = _refused_cases()


def test_most_of_the_corpus_is_bad_input() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_corpus_package_is_refused_in_one_line(case: Path, tmp_path: Path) -> None:
    text = package_bytes(case.read_bytes())
    assert text is not None
    path = tmp_path / "pkg.json"
    path.write_bytes(text)
    refused(str(path))


def test_path_with_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname.json"
    path.write_bytes(b"{ not json")
    line = refused(str(path))
    assert "bad\\nname.json" in line


def test_missing_file_with_control_characters() -> None:
    line = refused("/nonexistent/\x1b[2J\rpkg.json")
    assert "\\x1b[2J\\rpkg.json" in line


def test_help_of_a_package_whose_doc_has_percent_signs(tmp_path: Path) -> None:
    """argparse %-formats descriptions: "%(prog)s counts 100%" was an internal error."""
    text = package_bytes((CORPUS / "doc-with-percent-prog").read_bytes())
    assert text is not None
    path = tmp_path / "pkg.json"
    path.write_bytes(text)
    done = subprocess.run([*command("ecli"), "run", str(path), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "%(prog)s counts 100%" in done.stdout and done.stderr == ""
