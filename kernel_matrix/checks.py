"""What a check expects to see: small predicates over one output item.

They run in the guest (to stop a check the moment its last expected event has
arrived) and on the host (in unit tests), so this module uses the standard
library only. Expected values are templates filled from the check's context,
the facts its trigger recorded (the pid that opened a file, the fd it got, the
unique path it used), which is what makes a match exact rather than "some
event arrived".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Ctx = dict[str, Any]

STDOUT = "stdout"  # the program's standard output, line by line
TRACE = "trace"  # lines of tracefs' trace_pipe (bpf_printk output)
METRICS = "metrics"  # the exporter's /metrics text, scraped repeatedly
CONTEXT = "context"  # the trigger's own findings (a syscall's errno, say)
STDERR = "stderr"  # the program's standard error, line by line (what -v says it chose)


def render(template: str, ctx: Mapping[str, Any]) -> str:
    return template.format_map(ctx)


def normal(value: Any) -> str:
    """An event value as text: booleans as 0/1 (upstream's bool and an
    `unsigned char` flag print differently but mean the same), numbers plainly."""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def dig(event: Any, path: str) -> Any:
    """`a.b` looks up event["a"]["b"]; a missing key is None."""
    for part in path.split("."):
        if not isinstance(event, dict) or part not in event:
            return None
        event = event[part]
    return event


def parse_json(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Json:
    """A JSON event (ecli -j, opensnoop -j) whose fields equal these templates."""

    fields: Mapping[str, str]
    stream: str = STDOUT

    def matches(self, line: str, ctx: Ctx) -> bool:
        event = parse_json(line)
        if event is None:
            return False
        return all(normal(dig(event, k)) == render(v, ctx) for k, v in self.fields.items())

    def describe(self, ctx: Ctx) -> str:
        return "event " + ", ".join(f"{k}={render(v, ctx)}" for k, v in self.fields.items())


def event(**fields: str | int) -> Json:
    """`event(pid="{pid}", ret="{fd}")`: the form the matrix table uses."""
    return Json({k: str(v) for k, v in fields.items()})


@dataclass(frozen=True)
class Hist:
    """A sampled log2 histogram entry (runqlat -j) for one key with counts in
    it. The entry's comm is the task's name when it was first counted, which
    for a child can still be its parent's (before exec), so only the key is
    compared."""

    key: str
    stream: str = STDOUT

    def matches(self, line: str, ctx: Ctx) -> bool:
        event = parse_json(line)
        if event is None or normal(event.get("key")) != render(self.key, ctx):
            return False
        slots = dig(event, "value.slots")
        return isinstance(slots, list) and sum(int(s) for s in slots) > 0

    def describe(self, ctx: Ctx) -> str:
        return f"histogram key={render(self.key, ctx)} with counts"


def hist(key: str) -> Hist:
    return Hist(key)


@dataclass(frozen=True)
class Trace:
    """A trace_pipe line containing this text, written by the task with `{pid}`
    (trace lines start with the task's `comm-pid`) unless `any_task`."""

    text: str
    any_task: bool = False
    stream: str = TRACE

    def matches(self, line: str, ctx: Ctx) -> bool:
        if render(self.text, ctx) not in line:
            return False
        if self.any_task:
            return True
        task = line.split("[", 1)[0]
        return task.rstrip().endswith(f"-{ctx.get('pid')}")

    def describe(self, ctx: Ctx) -> str:
        who = "" if self.any_task else f" from pid {ctx.get('pid')}"
        return f"trace line '{render(self.text, ctx)}'{who}"


def trace(text: str, any_task: bool = False) -> Trace:
    return Trace(text, any_task)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_sample(line: str) -> tuple[str, dict[str, str], float] | None:
    """A Prometheus text-format sample line: name, labels, value."""
    m = _SAMPLE.match(line.strip())
    if not m or line.startswith("#"):
        return None
    try:
        value = float(m.group(3))
    except ValueError:
        return None
    return m.group(1), dict(_LABEL.findall(m.group(2) or "")), value


@dataclass(frozen=True)
class Metric:
    """A scraped sample of this metric with these labels (others may be there too)."""

    name: str
    labels: Mapping[str, str]
    minimum: float = 1.0
    stream: str = METRICS

    def matches(self, line: str, ctx: Ctx) -> bool:
        sample = parse_sample(line)
        if sample is None or sample[0] != self.name or sample[2] < self.minimum:
            return False
        return all(sample[1].get(k) == render(v, ctx) for k, v in self.labels.items())

    def describe(self, ctx: Ctx) -> str:
        labels = ",".join(f'{k}="{render(v, ctx)}"' for k, v in self.labels.items())
        return f"metric {self.name}{{{labels}}} >= {self.minimum:g}"


def metric(name: str, **labels: str) -> Metric:
    return Metric(name, labels)


@dataclass(frozen=True)
class Fact:
    """Something the trigger itself observed, e.g. connect() failing with EPERM."""

    key: str
    value: str
    stream: str = CONTEXT

    def matches(self, line: str, ctx: Ctx) -> bool:
        return normal(ctx.get(self.key)) == render(self.value, ctx)

    def describe(self, ctx: Ctx) -> str:
        return f"{self.key} = {render(self.value, ctx)} (saw {ctx.get(self.key)})"


def fact(key: str, value: str) -> Fact:
    return Fact(key, value)


@dataclass(frozen=True)
class Said:
    """A line of the program's standard error containing this text."""

    text: str
    stream: str = STDERR

    def matches(self, line: str, ctx: Ctx) -> bool:
        return render(self.text, ctx) in line

    def describe(self, ctx: Ctx) -> str:
        return f"stderr line '{render(self.text, ctx)}'"


def said(text: str) -> Said:
    return Said(text)


@dataclass(frozen=True)
class StackFrame:
    """A stack sample of `{pid}` (ecli -j of a stack_trace package) whose
    `stack` ("kstack" or "ustack") has a frame named `symbol`; with `first`,
    as its innermost frame (where the sample hit, which needs no unwinding)."""

    stack: str
    symbol: str
    first: bool = False
    stream: str = STDOUT

    def matches(self, line: str, ctx: Ctx) -> bool:
        event = parse_json(line)
        if event is None or normal(event.get("pid")) != render("{pid}", ctx):
            return False
        frames = event.get(self.stack)
        if not isinstance(frames, list):
            return False
        names = [f.get("symbol") for f in frames if isinstance(f, dict)]
        return names[:1] == [self.symbol] if self.first else self.symbol in names

    def describe(self, ctx: Ctx) -> str:
        where = "innermost " if self.first else ""
        return f"a {self.stack} of pid {ctx.get('pid')} with {where}frame {self.symbol}"


def frame(stack: str, symbol: str, first: bool = False) -> StackFrame:
    return StackFrame(stack, symbol, first)


Expect = Json | Hist | Trace | Metric | Fact | Said | StackFrame


@dataclass
class Progress:
    """Which of a check's expectations have been met so far."""

    expect: tuple[Expect, ...]
    met: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.met = [False] * len(self.expect)

    def feed(self, stream: str, line: str, ctx: Ctx) -> bool:
        """Offer one item; True once everything has been seen."""
        for i, e in enumerate(self.expect):
            if not self.met[i] and e.stream == stream and e.matches(line, ctx):
                self.met[i] = True
        return self.done

    @property
    def done(self) -> bool:
        return all(self.met)

    def missing(self, ctx: Ctx) -> list[str]:
        return [e.describe(ctx) for e, ok in zip(self.expect, self.met, strict=True) if not ok]

    def streams(self) -> set[str]:
        return {e.stream for e in self.expect}
