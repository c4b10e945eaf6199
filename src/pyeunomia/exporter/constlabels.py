"""`const_labels`: labels added to every series an exporter serves (a
fleet's `node`, as Prometheus client libraries' const labels), and the label
name rules they share with a metric's own labels."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .document import Node, shown

if TYPE_CHECKING:
    from .config import ProgramConfig

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
RESERVED_LABELS = {"overflow": "the overflow series", "le": "histogram buckets", "quantile": "summaries"}
SELF_LABELS = ("id", "program", "bpf_program", "metric")  # the exporter's own metrics' labels


def parse_const_labels(node: Node | None) -> tuple[tuple[str, str], ...]:
    """`const_labels: {node: node-1, ...}`: names checked as a metric's labels are."""
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, dict):
        raise node.error("expected a mapping of label names to values, e.g. {node: node-1}")
    out = []
    for name, child in node.value.items():
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise child.error(f"{shown(name)} is not a Prometheus label name: use letters, digits and _, "
                              "not starting with __")
        if name in RESERVED_LABELS or name in SELF_LABELS:
            taken = RESERVED_LABELS.get(name) or "the exporter's own metrics"
            raise child.error(f"label name {shown(name)} is taken by {taken}: pick another")
        if isinstance(child.value, bool) or not isinstance(child.value, str | int | float):
            raise child.error(f"expected the label's value as text, got {shown(child.value)}")
        out.append((name, str(child.value)))
    return tuple(out)


def check_const_labels(programs: tuple[ProgramConfig, ...] | list[ProgramConfig],
                       const: tuple[tuple[str, str], ...]) -> None:
    """A metric's own label may not share a name with a const label: one series would have it twice."""
    names = {name for name, _ in const}
    for p in programs:
        for m in p.metrics:
            for label in m.labels:
                if label.name in names:
                    raise label.at.error(f"label {shown(label.name)} is one of the config's const_labels: rename it "
                                         f"(and keep the field with from: {label.source})", "name")
