"""Doc comments in the source show up in `ecli run PACKAGE --help`."""

from __future__ import annotations

import pytest

from tests.compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture

from .helpers import run

pytestmark = pytest.mark.usefixtures("compiler")


def help_text(name: str) -> str:
    done = run("ecli", "run", str(built(name) / "package.json"), "--help")
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # argparse wraps lines: compare words


def test_license_comment_and_variable_comments():
    text = help_text("allglobals")
    assert "Copies every global into an event, for each openat by one process." in text
    # @cmdarg: short and long spelling, its own help
    assert "-p INT, --pid INT, --target_pid INT only report opens by this process" in text
    assert "--g_u8 INT an unsigned byte (u8, default: 8)" in text
    assert "--g_bool, --no-g_bool a switch (bool, default: false)" in text
    assert "--name TEXT, --g_name TEXT a name to echo" in text
    assert "--g_u16 INT a default from the comment, not from the initializer (u16, default: 1234)" in text
    assert "--g_u32 INT set u32 g_u32" in text  # no comment: a generic help


def test_top_of_file_comment_brief_and_details():
    text = help_text("hist")
    assert "log2 histogram of a chosen value, one count per openat" in text  # @brief
    assert text.endswith("Every openat(2) by --target_pid adds one to the slot of log2(--value).")  # @details
    assert "--value INT the value whose log2 slot each open counts in (u64, default: 1)" in text


def test_plain_comments_are_not_documentation():
    text = help_text("opensnoop")
    assert "eBPF program opensnoop" in text  # the tutorial has no doc comments: the generic description
    assert "SPDX" not in text and "Copyright" not in text
