"""Histograms in the layout bcc and libbpf-tools made familiar:

         usecs               : count    distribution
             0 -> 1          : 3        |****                                    |
             2 -> 3          : 30       |****************************************|
"""

from __future__ import annotations

from collections.abc import Sequence

STARS = 40


def _bar(count: int, largest: int, width: int) -> str:
    n = min(count, largest) * width // largest if largest else 0
    return "*" * n + " " * (width - n) + ("+" if count > largest else "")


def _last_nonzero(counts: Sequence[int]) -> int:
    for i in range(len(counts) - 1, -1, -1):
        if counts[i]:
            return i
    return -1


def log2_histogram(counts: Sequence[int], unit: str = "(unit)") -> str:
    """Slot i counts values in [2^i, 2^(i+1)); slot 0 also holds 0."""
    last = _last_nonzero(counts)
    if last < 0:
        return ""
    wide = last > 32
    num_w, stars = (20, STARS // 2) if wide else (10, STARS)
    label_w = 29 if wide else 19
    lines = [" " * (5 if not wide else 15) + f"{unit:<{label_w}} : count    distribution"]
    largest = max(counts[: last + 1])
    for i in range(last + 1):
        low = 0 if i == 0 else 1 << i
        high = (1 << (i + 1)) - 1
        lines.append(f"{low:>{num_w}} -> {high:<{num_w}} : {counts[i]:<8} |{_bar(counts[i], largest, stars)}|")
    return "\n".join(lines) + "\n"


def linear_histogram(counts: Sequence[int], step: int = 1, base: int = 0, unit: str = "(unit)") -> str:
    """Slot i counts values in [base + i*step, base + (i+1)*step)."""
    last = _last_nonzero(counts)
    if last < 0:
        return ""
    largest = max(counts[: last + 1])
    lines = [f"{unit:>15} : count    distribution"]
    for i in range(last + 1):
        low = base + i * step
        label = f"{low}" if step == 1 else f"{low} -> {low + step - 1}"
        lines.append(f"{label:>15} : {counts[i]:<8} |{_bar(counts[i], largest, STARS)}|")
    return "\n".join(lines) + "\n"
