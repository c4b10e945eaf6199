"""Expectations: exact matches against what the trigger recorded."""

from __future__ import annotations

from kernel_matrix import checks

CTX = {"pid": 42, "path": "/tmp/kmx-open-abc", "fd": 3, "port": 20001}


def test_event_fields_compare_exactly_after_templating():
    e = checks.event(pid="{pid}", fname="{path}", ret="{fd}")
    assert e.matches('{"pid": 42, "fname": "/tmp/kmx-open-abc", "ret": 3, "comm": "python3"}', CTX)
    assert not e.matches('{"pid": 43, "fname": "/tmp/kmx-open-abc", "ret": 3}', CTX)
    assert not e.matches('{"pid": 42, "fname": "/tmp/kmx-open-abcd", "ret": 3}', CTX)
    assert not e.matches("not json", CTX)
    assert not e.matches("[1, 2]", CTX)


def test_booleans_and_small_ints_mean_the_same():
    e = checks.event(exit_event=0)
    assert e.matches('{"exit_event": false}', {}) and e.matches('{"exit_event": 0}', {})
    assert not e.matches('{"exit_event": true}', {})


def test_nested_fields():
    assert checks.event(**{"value.comm": "x"}).matches('{"value": {"comm": "x"}}', {})
    assert not checks.event(**{"value.comm": "x"}).matches('{"value": 1}', {})


def test_trace_lines_must_come_from_the_pid_unless_any_task():
    line = "         python3-42      [001] d..31   12.5: bpf_trace_printk: KPROBE EXIT: pid = 42, ret = 0"
    assert checks.trace("KPROBE EXIT: pid = {pid}, ret = 0").matches(line, CTX)
    other = line.replace("python3-42 ", "python3-420")
    assert not checks.trace("KPROBE EXIT").matches(other, CTX)
    assert checks.trace("KPROBE EXIT", any_task=True).matches(other, CTX)


def test_histogram_entry_needs_the_key_and_some_counts():
    h = checks.hist("{pid}")
    assert h.matches('{"key": 42, "value": {"slots": [0, 2, 0], "comm": "python3"}}', CTX)
    assert not h.matches('{"key": 42, "value": {"slots": [0, 0, 0]}}', CTX)
    assert not h.matches('{"key": 7, "value": {"slots": [1]}}', CTX)


def test_prometheus_samples():
    assert checks.parse_sample('a_total{pid="42",filename="/x \\"y\\""} 2.0') == (
        "a_total", {"pid": "42", "filename": '/x \\"y\\"'}, 2.0)
    assert checks.parse_sample("# HELP a_total x") is None
    m = checks.metric("a_total", pid="{pid}", filename="{path}")
    assert m.matches('a_total{comm="python3",filename="/tmp/kmx-open-abc",pid="42"} 1.0', CTX)
    assert not m.matches('a_total{filename="/tmp/kmx-open-abc",pid="42"} 0.0', CTX)
    assert not m.matches('b_total{filename="/tmp/kmx-open-abc",pid="42"} 1.0', CTX)


def test_progress_needs_every_expectation_in_any_order():
    p = checks.Progress((checks.event(pid="{pid}", ret=1), checks.event(pid="{pid}", ret=2),
                         checks.fact("connect_errno", "EPERM")))
    ctx = {**CTX, "connect_errno": "EPERM"}
    assert not p.feed(checks.CONTEXT, "", ctx)
    assert not p.feed(checks.STDOUT, '{"pid": 42, "ret": 2}', ctx)
    assert not p.feed(checks.TRACE, '{"pid": 42, "ret": 1}', ctx)  # the wrong stream
    assert p.missing(ctx) == ["event pid=42, ret=1"]
    assert p.feed(checks.STDOUT, '{"pid": 42, "ret": 1}', ctx)
    assert p.streams() == {checks.STDOUT, checks.CONTEXT}


def test_said_looks_at_stderr_lines_with_templates():
    said = checks.said("loads '{name}' (fentry)")
    assert said.stream == checks.STDERR
    assert said.matches("ecli: entry to syscall unlinkat: loads 'unlink_fentry' (fentry)", {"name": "unlink_fentry"})
    assert not said.matches("ecli: ... loads 'unlink_kprobe' (ksyscall)", {"name": "unlink_fentry"})
def test_stack_frames_of_the_pid():
    line = ('{"pid": 42, "comm": "kmxs1", "kstack": [{"address": 1, "symbol": "read_zero", "offset": 2}, '
            '{"address": 3, "symbol": "vfs_read", "offset": 4}], "ustack": [{"address": 5, "symbol": "kmx_user_spin", '
            '"offset": 6, "module": "/tmp/kmxs1"}, {"address": 7, "symbol": null, "offset": 0}]}')
    assert checks.frame("kstack", "vfs_read").matches(line, CTX)
    assert not checks.frame("kstack", "vfs_read", first=True).matches(line, CTX)  # not the innermost
    assert checks.frame("ustack", "kmx_user_spin", first=True).matches(line, CTX)
    assert not checks.frame("ustack", "vfs_read").matches(line, CTX)
    assert not checks.frame("kstack", "vfs_read").matches(line.replace('"pid": 42', '"pid": 43'), CTX)
    assert not checks.frame("kstack", "vfs_read").matches('{"pid": 42, "kstack": "vfs_read"}', CTX)
    assert "innermost frame kmx_user_spin" in checks.frame("ustack", "kmx_user_spin", first=True).describe(CTX)
