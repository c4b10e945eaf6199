"""A flame graph as a self-contained SVG (no script), from folded counts.

Each frame is a rectangle as wide as its share of the samples, its callers
below it (root at the bottom, as flamegraph.pl draws); siblings are in name
order, so the same counts always give the same picture. A frame's tooltip
(the SVG <title>) holds its full name, its samples and their share. Colours
come from the name's CRC-32, so a function keeps its colour across graphs:
warm (red to yellow) for user code, orange for kernel frames (`_[k]`),
blue for the comm at the bottom. Frames narrower than MIN_WIDTH pixels are
left out with their callees (flamegraph.pl's --minwidth).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from xml.sax.saxutils import escape

WIDTH = 1200
FRAME_H = 16
FONT = 12
CHAR_W = FONT * 0.59  # flamegraph.pl's estimate of a glyph's width
PAD_X = 10
TOP = 36  # the title's band
BOTTOM = 10
MIN_WIDTH = 0.1
KERNEL_MARK = "_[k]"


class _Node:
    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(counts: Mapping[tuple[str, ...], int]) -> tuple[_Node, int]:
    root, depth = _Node(), 0
    for stack, n in counts.items():
        if n <= 0:
            continue
        root.count += n
        node = root
        for name in stack:
            node = node.children.setdefault(name, _Node())
            node.count += n
        depth = max(depth, len(stack))
    return root, depth


def colour(name: str, level: int) -> str:
    """A deterministic fill for a frame."""
    h = zlib.crc32(name.encode("utf-8", "surrogateescape"))
    v1, v2, v3 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255, ((h >> 16) & 0xFF) / 255
    if level == 0:
        r, g, b = 160 + 30 * v1, 160 + 30 * v1, 170 + 30 * v1  # all: grey
    elif level == 1:
        r, g, b = 80 + 60 * v1, 120 + 60 * v2, 200 + 55 * v3  # the comm: blue
    elif name.endswith(KERNEL_MARK):
        r, g, b = 205 + 50 * v1, 130 + 70 * v2, 20 * v3  # kernel: orange
    else:
        r, g, b = 205 + 50 * v3, 230 * v1, 55 * v2  # user: flamegraph.pl's "hot"
    return f"rgb({int(r)},{int(g)},{int(b)})"


def render_svg(counts: Mapping[tuple[str, ...], int], title: str = "Flame Graph") -> str:
    """The SVG text for `counts` (frames root first, as FoldedProfile
    keeps them)."""
    root, depth = _tree(counts)
    total = root.count
    height = TOP + (depth + 1) * FRAME_H + BOTTOM
    scale = (WIDTH - 2 * PAD_X) / total if total else 0.0
    out = [
        '<?xml version="1.0" standalone="no"?>\n',
        f'<svg version="1.1" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'xmlns="http://www.w3.org/2000/svg">\n',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="rgb(248,248,240)"/>\n',
        f'<text x="{WIDTH // 2}" y="24" font-size="17" font-family="Verdana,sans-serif" text-anchor="middle">'
        f"{escape(title)}</text>\n",
    ]
    if not total:
        out.append(f'<text x="{WIDTH // 2}" y="{TOP + FRAME_H}" font-size="{FONT}" font-family="Verdana,sans-serif" '
                   'text-anchor="middle">no samples</text>\n</svg>\n')
        return "".join(out)
    # (name, node, level, x): an explicit stack, as a profile may be deep
    todo: list[tuple[str, _Node, int, float]] = [("all", root, 0, float(PAD_X))]
    while todo:
        name, node, level, x = todo.pop()
        w = node.count * scale
        if w < MIN_WIDTH:
            continue
        y = height - BOTTOM - (level + 1) * FRAME_H
        share = 100.0 * node.count / total
        tip = f"{name} ({node.count} sample{'s' * (node.count != 1)}, {share:.2f}%)"
        out.append(f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                   f'height="{FRAME_H - 1}" rx="2" ry="2" fill="{colour(name, level)}"/>')
        fits = int((w - 6) / CHAR_W)
        if fits >= 3:
            label = name if len(name) <= fits else name[: fits - 2] + ".."
            out.append(f'<text x="{x + 3:.1f}" y="{y + FRAME_H - 4}" font-size="{FONT}" '
                       f'font-family="Verdana,sans-serif">{escape(label)}</text>')
        out.append("</g>\n")
        child_x = x
        placed = []
        for child_name in sorted(node.children):
            child = node.children[child_name]
            placed.append((child_name, child, level + 1, child_x))
            child_x += child.count * scale
        todo.extend(reversed(placed))
    out.append("</svg>\n")
    return "".join(out)
