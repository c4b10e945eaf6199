"""opensnoop's own output: libbpf-tools' columns (PID COMM FD ERR PATH, plus
TIME(s), UID and the extended fields when asked), or JSON lines.

Rows are compiled once for the chosen columns (see output.rows.compile_rows),
so each event costs one tuple unpack and one %-format.
"""

from __future__ import annotations

import time
from json.encoder import encode_basestring_ascii
from typing import IO, Any, NamedTuple

from ..decoders import DECODERS  # the package's table: importing errno below loads it anyway
from ..decoders.errno import errno_name
from ..decoders.open_flags import open_flags_text
from ..decoders.registry import Provisional
from ..format.escape import escape_bytes
from ..format.layout import Layout
from ..format.rows import compile_rows
from .writers import RowsWriter

SYSCALL_NAMES = {0: "open", 1: "openat", 2: "openat2", 3: "creat"}


class Columns(NamedTuple):
    timestamp: bool = False  # -T
    uid: bool = False  # -U
    extended: bool = False  # -e
    errno_names: bool = False  # -E
    containers: bool = False  # --containers


# --containers: (title, JSON key, decoder, width), after the tool's columns
CONTAINER_CELLS = (("RUNTIME", "container_runtime", "container_runtime", -10),
                   ("CONTAINER", "container", "container", -16), ("POD", "pod", "pod", -16),
                   ("NAMESPACE", "k8s_namespace", "k8s_namespace", -12))


class _ContainerText(dict[int, bytes]):
    """A cgroup id -> a field of its container (decoders/container.py), as
    table text ('-' for the host) or a JSON string, remembered per id."""

    def __init__(self, decoder: str, as_json: bool):
        super().__init__()
        self.decode = DECODERS[decoder].make({"host": "" if as_json else "-"})
        self.as_json = as_json

    def __missing__(self, cgroup_id: int) -> bytes:
        text = self.decode(cgroup_id)
        out = encode_basestring_ascii(text).encode() if self.as_json else \
            escape_bytes(str(text).encode("utf-8", "surrogateescape"))
        if not isinstance(text, Provisional):  # a container not claimed yet is asked again
            self[cgroup_id] = out
        return out


class _FlagsText(dict[int, bytes]):
    """open flags -> 'O_RDONLY|O_CLOEXEC', remembered per value seen."""

    def __missing__(self, flags: int) -> bytes:
        text = self[flags] = open_flags_text(flags & 0xFFFFFFFF).encode()
        return text


class _ErrnoText(dict[int, bytes]):
    def __missing__(self, err: int) -> bytes:
        text = self[err] = errno_name(err).encode()
        return text


# Cells in the engine's expression language: {member} is that member's value.
COMM = "{comm}.rstrip(NUL)"  # bpf_get_current_comm pads with NULs
PATH = "(b'...' + {fname}[:{fname_len}] if {truncated} else {fname}[:{fname_len}])"


class Cell(NamedTuple):
    title: str
    width: int  # negative: left-aligned, as in printf
    fmt: bytes  # d, s or .3f
    expr: str
    kernel_text: bool = False  # escape it when the batch holds unsafe bytes

    def spec(self, last: bool) -> bytes:
        return b"%" + (b"" if last else b"%d" % self.width) + self.fmt


def table(layout: Layout, stream: IO[bytes], columns: Columns, boot_ns_at_start: int,
          header: bool = True) -> RowsWriter:
    env: dict[str, Any] = {"escape": escape_bytes, "T0": boot_ns_at_start, "FLAGS": _FlagsText(), "NUL": b"\0",
                           "ERRNO": _ErrnoText(), "SYSCALLS": {k: v.encode() for k, v in SYSCALL_NAMES.items()}}
    cells = []
    if columns.timestamp:
        cells.append(Cell("TIME(s)", -9, b".3f", "({ts} - T0) / 1e9"))
    if columns.uid:
        cells.append(Cell("UID", -6, b"d", "{uid}"))
    cells.append(Cell("PID", -7, b"d", "{pid}"))
    if columns.extended:
        cells.append(Cell("TID", -7, b"d", "{tid}"))
    cells.append(Cell("COMM", -16, b"s", COMM, kernel_text=True))
    cells.append(Cell("FD", 3, b"d", "({ret} if {ret} >= 0 else -1)"))
    if columns.errno_names:
        cells.append(Cell("ERR", -7, b"s", "(ERRNO[-{ret}] if {ret} < 0 else b'0')"))
    else:
        cells.append(Cell("ERR", 3, b"d", "(-{ret} if {ret} < 0 else 0)"))
    if columns.extended:
        cells.append(Cell("FLAGS", -28, b"s", "FLAGS[{flags}]"))
        cells.append(Cell("MODE", -5, b"s", "b'%04o' % {mode}"))
        cells.append(Cell("SYSCALL", -8, b"s", "SYSCALLS.get({syscall}, b'?')"))
    if columns.containers:
        for title, _key, decoder, width in CONTAINER_CELLS:
            env["C_" + decoder] = _ContainerText(decoder, as_json=False)
            cells.append(Cell(title, width, b"s", f"C_{decoder}[{{cgroup_id}}]"))
    cells.append(Cell("PATH", 0, b"s", PATH, kernel_text=True))
    fmt = b" ".join(c.spec(c is cells[-1]) for c in cells) + b"\n"
    fast = compile_rows(layout, fmt, [c.expr for c in cells], env)
    safe = compile_rows(layout, fmt, [f"escape({c.expr})" if c.kernel_text else c.expr for c in cells], env)
    titles = [c.title.ljust(-c.width) if c.width < 0 else c.title.rjust(c.width) for c in cells]
    head = " ".join(titles).rstrip().encode() + b"\n" if header else b""
    return RowsWriter(layout, stream, fast, safe=safe, header=head)


class _Quoted(dict[int, bytes]):
    """A syscall number as a JSON string, unknown ones too: every line keeps
    the same number of quotes (see RowsWriter)."""

    def __missing__(self, number: int) -> bytes:
        return b'"%d"' % number


def json_lines(layout: Layout, stream: IO[bytes], columns: Columns) -> RowsWriter:
    """One object per open: the tutorial's fields and the rest, flat.

    Two compiled variants: a fast one copying names raw between quotes, used
    for a batch when it holds only printable ASCII and the expected number of
    quotes, and a careful one escaping every name."""
    syscalls = _Quoted({k: f'"{v}"'.encode() for k, v in SYSCALL_NAMES.items()})
    env: dict[str, Any] = {"enc": encode_basestring_ascii, "SYSCALLS": syscalls, "TF": (b"false", b"true"),
                           "NUL": b"\0", "FLAGS_TEXT": _JsonText(open_flags_text),
                           "ERRNO_TEXT": _JsonText(errno_name)}
    # (key, format, cells): "%.*s" takes the length then the bytes, and copies
    # the name without first slicing it into a bytes object of its own
    fields: list[tuple[str, str, list[str]]] = [
        ("ts", "%d", ["{ts}"]), ("pid", "%d", ["{pid}"]), ("tid", "%d", ["{tid}"]), ("uid", "%d", ["{uid}"]),
        ("ret", "%d", ["{ret}"]), ("flags", "%d", ["{flags}"]), ("mode", "%d", ["{mode}"]),
        ("comm", '"%s"', ["{comm}.rstrip(NUL)"]),  # bpf_get_current_comm pads with NULs
        ("fname", '"%.*s"', ["{fname_len}", "{fname}"]),
        ("cgroup_id", "%d", ["{cgroup_id}"]), ("syscall", "%s", ["SYSCALLS[{syscall}]"]),
        ("truncated", "%s", ["TF[{truncated}]"]),
    ]
    if columns.extended or columns.errno_names:
        fields += [("flags_text", "%s", ["FLAGS_TEXT[{flags} & 0xFFFFFFFF]"]),
                   ("errno", "%s", ["(ERRNO_TEXT[-{ret}] if {ret} < 0 else b'null')"])]
    if columns.containers:  # JSON strings: counted as the _TEXT[ cells' quotes below
        for _title, key, decoder, _width in CONTAINER_CELLS:
            env["C_" + decoder + "_TEXT"] = _ContainerText(decoder, as_json=True)
            fields.append((key, "%s", [f"C_{decoder}_TEXT[{{cgroup_id}}]"]))
    fmt = "{" + ",".join(f'"{k}":{f}' for k, f, _c in fields) + "}\n"
    fast = compile_rows(layout, fmt.encode(), [c for _k, _f, cells in fields for c in cells], env)
    careful_cells = []
    for _k, f, cells in fields:
        if f == '"%.*s"':
            length, text = cells
            careful_cells.append(f"enc(({text})[:{length}].decode('utf-8', 'backslashreplace'))")
        elif f == '"%s"':
            careful_cells.append(f"enc(({cells[0]}).decode('utf-8', 'backslashreplace'))")
        elif f == "%s":
            careful_cells.append(f"({cells[0]}).decode()")
        else:
            careful_cells.append(cells[0])
    careful_fmt = fmt.replace('"%s"', "%s").replace('"%.*s"', "%s")
    careful = compile_rows(layout, careful_fmt, careful_cells, env)
    quotes = fmt.count('"') + 2 * sum(1 for _k, _f, cells in fields if "SYSCALLS" in cells[0] or "_TEXT[" in cells[0])
    return RowsWriter(layout, stream, fast, safe=careful, json=True, quotes=quotes)


class _JsonText(dict[int, bytes]):
    """A number's name as a JSON string, remembered per value seen."""

    def __init__(self, name_of: Any):
        super().__init__()
        self.name_of = name_of

    def __missing__(self, value: int) -> bytes:
        text = self[value] = encode_basestring_ascii(self.name_of(value)).encode()
        return text


def boot_time_ns() -> int:
    """Now on the clock bpf_ktime_get_boot_ns() reads."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)
