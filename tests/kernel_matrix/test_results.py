"""From guest records to cells, and the table."""

from __future__ import annotations

from kernel_matrix import actions, checks, matrix, results

PROG = matrix.row("p", None, "ecli run x", actions.write_null, [checks.trace("x")],
                  unsupported={"5.10": "no hook before 5.11"}, defects={"6.1": "product defect: it is broken"})


def test_records_survive_noise_and_torn_lines():
    text = ('[ 1.0] kernel noise\r\nKMX {"event": "boot", "kernel": "6.1"}\r\n'
            'garbage KMX {"event": "start", "check": "p"}\n'
            'KMX {"event": "result", "check": "p", "status": "ran"}\n'
            'KMX {"event": "result", "check": "q", "sta')
    records = results.parse_records(text)
    assert [r["event"] for r in records] == ["boot", "start", "result"]
    assert results.results_by_check(records) == {"p": {"event": "result", "check": "p", "status": "ran"}}
    assert results.last_started(records) is None
    assert results.last_started([*records, {"event": "start", "check": "q"}]) == "q"


def test_ran():
    assert results.classify(PROG, "6.12", {"status": "ran", "seconds": 2}) == results.Cell("ran", "", "", 2.0)
    cell = results.classify(PROG, "6.1", {"status": "ran"})
    assert cell.status == "ran" and "remove its mark" in cell.reason


def test_running_where_the_table_says_it_cannot_is_a_failure_of_the_table():
    cell = results.classify(PROG, "5.10", {"status": "ran"})
    assert cell.status == "FAILED" and "update the table" in cell.reason


def test_expected_unsupported_only_with_a_one_line_refusal():
    one = {"status": "refused", "reason": "ecli: error: no such hook", "stderr_lines": 1}
    cell = results.classify(PROG, "5.10", one)
    assert cell.status == "unsupported" and "no hook before 5.11" in cell.reason and "no such hook" in cell.reason
    many = {**one, "stderr_lines": 30}
    assert results.classify(PROG, "5.10", many).status == "FAILED"
    attached = {"status": "failed", "reason": "not seen"}
    assert results.classify(PROG, "5.10", attached).status == "FAILED"


def test_defects_stay_failed_and_are_named():
    cell = results.classify(PROG, "6.1", {"status": "refused", "reason": "ecli: error: x", "stderr_lines": 1})
    assert cell.status == "FAILED" and cell.defect.startswith("product defect") and cell.mark == "FAILED*"
    plain = results.classify(PROG, "6.12", {"status": "failed", "reason": "not seen within 45 s"})
    assert plain.mark == "FAILED" and plain.reason == "not seen within 45 s"
    assert results.classify(PROG, "6.12", None, "guest stuck").reason == "guest stuck"


def test_table_and_notes():
    other = matrix.row("longer name", None, "opensnoop", actions.write_null, [checks.trace("x")])
    cells = {("p", "5.10"): results.Cell("unsupported", "no hook"),
             ("p", "6.1"): results.Cell("FAILED", "broke", "product defect: it is broken"),
             ("longer name", "5.10"): results.Cell("ran"), ("longer name", "6.1"): results.Cell("ran")}
    text = results.render([PROG, other], ["5.10", "6.1"], cells, ["header line"])
    lines = text.splitlines()
    assert lines[0] == "header line"
    assert lines[1].split() == ["program", "5.10", "6.1"]
    assert lines[3].split() == ["p", "unsupported", "FAILED*"]
    assert lines[4].split() == ["longer", "name", "ran", "ran"]
    assert "[5.10] p: unsupported: no hook" in text
    assert "[6.1] p: FAILED: broke [known product defect: it is broken]" in text
    assert results.summary(cells) == {"ran": 2, "unsupported": 1, "FAILED": 1}


def test_a_programs_message_is_kept_whole_or_marked_cut():
    from kernel_matrix.guest import SAID_MAX, one_line
    line = "ecli: error: " + "x" * 293 + " BTF=y"  # 312 characters, as 6.12's fentry refusal
    assert one_line([line]) == line
    long = "ecli: error: " + "y" * 600
    assert one_line([long]) == long[:SAID_MAX - 3] + "..."
    assert one_line(["warn", long, "z"]) == (long + " z")[:SAID_MAX - 3] + "... (3 lines on stderr)"
