"""Typed values read from a config document's nodes (exporter/document.py):
each reader checks one value and raises a ConfigError naming its file, line
and key. Shared by the config (exporter/config.py) and its buckets
(exporter/buckets.py)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import ConfigError
from .document import Node, config_error, shown

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*\Z")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass(frozen=True)
class Located:
    """Where a config object and each of its keys are, for later errors."""

    node: Node

    def error(self, message: str, key: str | None = None) -> ConfigError:
        """An error at `key` of this object (its line, or the object's when absent)."""
        if key is None:
            return self.node.error(message)
        child: Node | None = self.node.value.get(key) if isinstance(self.node.value, dict) else None
        if child is not None:
            return child.error(message)
        return self.node.error(message, self.node.child_path(key))


def mapping(node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        found = "nothing" if node.value is None else type(node.value).__name__
        raise node.error(f"expected {what} as a mapping, got {found}")
    for key, child in node.value.items():
        if key not in allowed:
            raise config_error(f"unknown key {shown(key)} in {what} (known: {', '.join(allowed)})", file=child.file,
                              line=child.key_line or child.line, key=child.path)
    return dict(node.value)


def text(node: Node, keys: dict[str, Node], key: str, required: bool = False) -> str | None:
    child = keys.get(key)
    if child is None or child.value is None:
        if required:
            raise node.error(f"missing '{key}'", node.child_path(key))
        return None
    if isinstance(child.value, bool) or not isinstance(child.value, str | int | float):
        raise child.error(f"expected text, got {type(child.value).__name__}")
    return str(child.value)


def need(keys: dict[str, Node], node: Node, key: str) -> Node:
    if key not in keys:
        raise node.error(f"missing '{key}'", node.child_path(key))
    return keys[key]


def number(node: Node, positive: bool = False) -> float:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise node.error(f"expected a number, got {shown(v)}")
    if positive and v <= 0:
        raise node.error(f"expected a number above 0, got {shown(v)}")
    return float(v)


def whole(keys: dict[str, Node], node: Node, key: str, default: int | None, low: int, high: int) -> int:
    if key not in keys:
        if default is None:
            raise node.error(f"missing '{key}'", node.child_path(key))
        return default
    v = keys[key].value
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise keys[key].error(f"expected a whole number from {low} to {high}, got {shown(v)}")
    return v


def duration(node: Node) -> float:
    v = node.value
    if isinstance(v, int | float) and not isinstance(v, bool):
        seconds = float(v)
    else:
        m = _DURATION.match(str(v))
        if m is None:
            raise node.error(f"expected a duration such as 300, 90s, 5m or 1h, got {shown(v)}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds > 0 or not math.isfinite(seconds):
        raise node.error(f"expected a duration above 0, got {shown(v)}")
    return seconds


def flag(node: Node) -> bool:
    if not isinstance(node.value, bool):
        raise node.error(f"expected true or false, got {shown(node.value)}")
    return node.value
