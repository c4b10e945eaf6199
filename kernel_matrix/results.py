"""From what the guests reported to the kernel x program table.

The guest only says what happened (ran, refused to start, or failed); the
verdict comes from the matrix: a refusal on a kernel the table marks
unsupported is "unsupported" only if the program said so in one line, and a
failure where the table names a product defect stays FAILED, with the defect
named, so that the fix turns the cell into "ran".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .matrix import Program

MARK = "KMX "
RAN, UNSUPPORTED, FAILED = "ran", "unsupported", "FAILED"


def parse_records(text: str) -> list[dict[str, Any]]:
    """The `KMX {json}` records of a results log; anything else (a torn last
    line, line noise, carriage returns) is skipped."""
    records = []
    for raw in text.splitlines():
        line = raw.strip("\r\n\0 ")
        at = line.find(MARK + "{")
        if at < 0:
            continue
        try:
            value = json.loads(line[at + len(MARK):])
        except ValueError:
            continue
        if isinstance(value, dict) and "event" in value:
            records.append(value)
    return records


def results_by_check(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["check"]): dict(r) for r in records if r.get("event") == "result" and "check" in r}


def last_started(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The check the guest was in when its records stop (None if it finished it)."""
    done = {r.get("check") for r in records if r.get("event") == "result"}
    started = [str(r["check"]) for r in records if r.get("event") == "start" and "check" in r]
    return started[-1] if started and started[-1] not in done else None


@dataclass(frozen=True)
class Cell:
    status: str
    reason: str = ""
    defect: str = ""
    seconds: float | None = None

    @property
    def mark(self) -> str:
        return f"{FAILED}*" if self.status == FAILED and self.defect else self.status


def classify(program: Program, kernel: str, record: Mapping[str, Any] | None, missing_reason: str = "") -> Cell:
    unsupported = program.unsupported.get(kernel, "")
    defect = program.defects.get(kernel, "")
    if record is None:
        return Cell(FAILED, missing_reason or "no result from the guest", defect)
    seconds = record.get("seconds")
    seconds = float(seconds) if isinstance(seconds, int | float) else None
    status = record.get("status")
    said = str(record.get("reason", "")).strip()
    if status == "ran":
        if unsupported:
            return Cell(FAILED, f"ran, but the matrix says this kernel cannot ({unsupported}): update the table",
                        "", seconds)
        note = "ran: the known defect did not show, remove its mark" if defect else ""
        return Cell(RAN, note, "", seconds)
    if status == "refused" and unsupported:
        if record.get("stderr_lines") == 1:
            return Cell(UNSUPPORTED, f"{unsupported}; it said: {said}", "", seconds)
        return Cell(FAILED, f"unsupported here ({unsupported}), but it did not say so in one line: {said}",
                    defect, seconds)
    if unsupported:
        return Cell(FAILED, f"started although unsupported here ({unsupported}), then: {said}", defect, seconds)
    prefix = "refused to start: " if status == "refused" else ""
    return Cell(FAILED, prefix + (said or "failed without a reason"), defect, seconds)


def render(programs: Sequence[Program], kernels: Sequence[str], cells: Mapping[tuple[str, str], Cell],
           header: Sequence[str] = ()) -> str:
    """The table, then one line for every cell that is not a plain "ran"."""
    name_w = max([len("program")] + [len(p.name) for p in programs])
    col_w = max([len(UNSUPPORTED), len(f"{FAILED}*"), *(len(k) for k in kernels)]) + 2
    lines = list(header)
    lines.append("program".ljust(name_w) + "  " + "".join(k.ljust(col_w) for k in kernels).rstrip())
    lines.append("-" * name_w + "  " + "".join(("-" * (col_w - 2)).ljust(col_w) for k in kernels).rstrip())
    for p in programs:
        row = "".join(cells[(p.name, k)].mark.ljust(col_w) if (p.name, k) in cells else "-".ljust(col_w)
                      for k in kernels)
        lines.append(p.name.ljust(name_w) + "  " + row.rstrip())
    notes = []
    for p in programs:
        for k in kernels:
            cell = cells.get((p.name, k))
            if cell is None or (cell.status == RAN and not cell.reason):
                continue
            text = f"[{k}] {p.name}: {cell.status}: {cell.reason}"
            if cell.defect and cell.status == FAILED:
                text += f" [known {cell.defect}]"
            notes.append(text)
    if notes:
        lines += ["", "FAILED* = a failure the matrix attributes to a known product defect", "", *notes]
    return "\n".join(lines) + "\n"


def summary(cells: Mapping[tuple[str, str], Cell]) -> dict[str, int]:
    counts = {RAN: 0, UNSUPPORTED: 0, FAILED: 0}
    for cell in cells.values():
        counts[cell.status] += 1
    return counts
