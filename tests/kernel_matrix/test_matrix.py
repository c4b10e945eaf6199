"""The matrix table itself: sound, and one line per program."""

from __future__ import annotations

import inspect

from kernel_matrix import actions, checks, matrix


def test_the_table_is_sound():
    assert matrix.validate() == []


def test_every_trigger_is_an_action_and_every_expectation_a_known_stream():
    streams = {checks.STDOUT, checks.TRACE, checks.METRICS, checks.CONTEXT, checks.STDERR}
    for p in matrix.PROGRAMS:
        module = inspect.getmodule(p.trigger)  # actions.py, or a catalogue group's kernel_matrix/tools_GROUP.py
        assert module is actions or (module is not None and module.__name__.startswith("kernel_matrix.tools_")), p.name
        assert {e.stream for e in p.expect} <= streams, p.name
        assert p.run and p.timeout > 0


def test_marks_name_kernels_of_the_matrix_with_a_reason():
    labels = {k.label for k in matrix.KERNELS}
    for p in matrix.PROGRAMS:
        for marks in (p.unsupported, p.defects):
            assert set(marks) <= labels
            assert all(reason.strip() for reason in marks.values())
        assert all(reason.startswith("product defect:") for reason in p.defects.values()), p.name


def test_opensnoop_runs_everywhere_and_mdflush_needs_module_btf():
    table = matrix.by_name()
    assert not table["opensnoop"].defects and not table["opensnoop"].unsupported  # compat programs before 5.17
    assert set(table["ex/mdflush"].unsupported) == {"5.10"}


def test_row_helpers():
    p = matrix.row("x/y z", matrix.example("minimal"), "ecli run -j {pkg}", actions.write_null,
                   [checks.trace("hi")], unsupported=matrix.before("6.1", "old"), modules="loop md_mod")
    assert p.run == ("ecli", "run", "-j", "{pkg}")
    assert p.unsupported == {"5.10": "old"}
    assert p.modules == ("loop", "md_mod")
    assert p.package_file == "/kmx/pkg/x_y_z/package.json"
    assert matrix.row("c", matrix.copy("repo:a/b.json"), "ecli run {pkg}", actions.write_null,
                      [checks.trace("x")]).package_file == "/kmx/pkg/c/b.json"
    assert matrix.row("n", None, "opensnoop", actions.write_null, [checks.trace("x")]).package_file == ""


def test_validate_finds_mistakes():
    good = matrix.row("a", None, "opensnoop", actions.open_file, [matrix.UNIQUE_OPEN])
    twice = [good, good]
    assert any("twice" in m for m in matrix.validate(twice))
    unknown = matrix.row("b", None, "opensnoop", actions.open_file, [matrix.UNIQUE_OPEN], defects={"4.19": "x"})
    assert any("4.19" in m for m in matrix.validate([unknown]))
    both = matrix.row("c", None, "opensnoop", actions.open_file, [matrix.UNIQUE_OPEN],
                      unsupported={"6.1": "x"}, defects={"6.1": "y"})
    assert any("both" in m for m in matrix.validate([both]))
    nothing = matrix.row("d", None, "ecli run {pkg}", actions.open_file, [])
    problems = matrix.validate([nothing])
    assert any("expects nothing" in m for m in problems) and any("builds nothing" in m for m in problems)


def test_kernel_versions_order_numerically():
    assert matrix.version("6.12") > matrix.version("6.1") > matrix.version("5.10")
    assert [k.label for k in matrix.KERNELS] == ["5.10", "6.1", "6.12"]
