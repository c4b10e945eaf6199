"""A histogram's buckets in the exporter's config: parsed and checked
(`buckets: {type: exp2|linear|explicit, ...}`), and the upper bounds of a
map's slot array (log2 or linear slots)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .document import Node, shown
from .values import Located, mapping, need, number, text, whole

MAX_BUCKETS = 1000


@dataclass(frozen=True)
class BucketsConfig:
    type: str  # exp2, linear, explicit
    bounds: tuple[float, ...]  # upper bounds in the value's own unit; empty for a map's exp2
    multiplier: float  # exported bounds and sums are value * multiplier
    at: Located


def parse_buckets(metric: Node, node: Node | None, from_map: bool) -> BucketsConfig | None:
    """A histogram's `buckets`: exp2, linear or explicit bounds (a map's slot
    array: exp2 or linear, set by its slots), each exported bound finite and
    above the one before."""
    if node is None or node.value is None:
        if from_map:
            return None  # a log2 slot array: exp2 buckets from its length
        raise metric.error("an event histogram needs 'buckets', e.g. {type: exp2, min: 0, max: 20}",
                           metric.child_path("buckets"))
    keys = mapping(node, "buckets", ("type", "min", "max", "start", "width", "count", "bounds", "multiplier"))
    kind = text(node, keys, "type", required=True)
    wanted = {"exp2": ("min", "max"), "linear": ("start", "width", "count"), "explicit": ("bounds",)}
    if kind not in wanted:
        raise keys["type"].error(f"unknown bucket type {shown(kind)}: use exp2, linear or explicit")
    if from_map and kind == "explicit":
        raise keys["type"].error("a map histogram is a slot array: its buckets are exp2 (log2 slots) or linear "
                                 "(slot i counts value i)")
    if from_map and kind == "linear":
        for key in keys:
            if key not in ("type", "multiplier"):
                raise keys[key].error("a map's linear slots set its buckets (slot i counts value i): leave out "
                                      f"{key}")
        multiplier = number(keys["multiplier"], positive=True) if "multiplier" in keys else 1.0
        return BucketsConfig(kind, (), multiplier, Located(node))
    for key in keys:
        if key not in (*wanted[kind], "type", "multiplier"):
            raise keys[key].error(f"{kind} buckets take {', '.join(wanted[kind])} (and multiplier), not {shown(key)}")
    multiplier = number(keys["multiplier"], positive=True) if "multiplier" in keys else 1.0
    bounds: tuple[float, ...] = ()
    if kind == "exp2" and not from_map:
        low = whole(keys, node, "min", 0, 0, 62)
        high = whole(keys, node, "max", None, low, 63)
        bounds = tuple(float(1 << k) for k in range(low, high + 1))
    elif kind == "exp2":
        for key in ("min", "max"):
            if key in keys:
                raise keys[key].error("a map histogram's slots set its buckets: leave out min and max")
    elif kind == "linear":
        start = number(need(keys, node, "start"))
        width = number(need(keys, node, "width"), positive=True)
        count = whole(keys, node, "count", None, 1, MAX_BUCKETS)
        bounds = tuple(start + i * width for i in range(count))
    else:
        raw = need(keys, node, "bounds")
        if not isinstance(raw.value, list) or not raw.value:
            raise raw.error("expected a list of increasing upper bounds, e.g. [0.001, 0.01, 0.1]")
        if len(raw.value) > MAX_BUCKETS:
            raise raw.error(f"more than {MAX_BUCKETS} buckets: use fewer")
        bounds = tuple(number(b) for b in raw.value)
        for i in range(1, len(bounds)):
            if bounds[i] <= bounds[i - 1]:
                raise raw.value[i].error("bounds must increase")
    problem = bounds_problem(bounds, multiplier)
    if problem is not None:
        why, too_large = problem
        if bounds_problem(bounds, 1.0) is None:
            raise keys["multiplier"].error(why + (": use a smaller multiplier" if too_large else
                                                   ": use a multiplier nearer 1"))
        # only linear bounds go wrong by themselves (start + i * width)
        raise keys["width"].error(why + (": use a smaller start or width" if too_large else
                                          ": use a larger width, or a start nearer 0"))
    return BucketsConfig(kind, bounds, multiplier, Located(node))


def slot_bounds(slots: int, buckets: BucketsConfig | None) -> tuple[float, ...]:
    """A map histogram's upper bounds: log2 slots (log2_bounds), or linear
    ones where slot i counts value i (libbpf-tools' runqlen; its last slot
    also counts every larger value, which the +Inf bucket then shows as it is)."""
    if buckets is not None and buckets.type == "linear":
        return tuple(float(i) for i in range(slots))
    return log2_bounds(slots)


def log2_bounds(slots: int) -> tuple[float, ...]:
    """A log2 slot array's upper bounds: slot i (libbpf-tools' log2l) counts
    values from 2^i to 2^(i+1)-1, slot 0 also 0."""
    return tuple(float((1 << (i + 1)) - 1) for i in range(slots))


def bounds_problem(bounds: tuple[float, ...], multiplier: float) -> tuple[str, bool] | None:
    """Why the exported bounds (bound * multiplier) cannot be a histogram's,
    and whether because one is too large; None when each is a finite number
    above the one before. Otherwise Prometheus gets buckets at +Inf, or two
    buckets with one bound."""
    previous = None
    for i, bound in enumerate(bounds):
        value = bound * multiplier
        if not math.isfinite(value):
            scaled = f"{bound:g} * {multiplier:g}" if multiplier != 1.0 else f"{bound:g}"
            return f"bucket bound {scaled} is not a finite number", True
        if previous is not None and value <= previous:
            return f"bucket bounds {bounds[i - 1]:g} and {bound:g} are both {previous:g} once exported", False
        previous = value
    return None
