"""Upstream's `stack_trace` interpreter: which event members hold a sample's
pid, cpu, comm and its kernel and user stacks, and how to read them from a
record.

bpf-loader-rs (meta/mod.rs, BufferValueInterpreter and StackTraceFieldMapping;
export_event/event_handlers/buffer.rs) reads a buffer map's

    "intepreter": {"stack_trace": {"field_map": {"kstack": "kstack", ...},
                                   "with_symbols": true}}

(sic), every field_map key defaulting to its own name and with_symbols to
true. The stacks are arrays of u64 addresses and the `*_sz` members their
length in bytes, as bpf_get_stack() returns it (negative: an error, no stack).

Beyond upstream: a stack member may be an integer, a stack id from
bpf_get_stackid(), looked up in the program's BPF_MAP_TYPE_STACK_TRACE map
(libbpf-tools style); pid, cpu_id, comm and the sizes may be absent unless
field_map names them. And field_map's `weight`, only when named: an integer
member that the folded stacks and the flame graph add up instead of counting
1 per sample (offcputime's off-CPU microseconds, as libbpf-tools' folded
output sums them).

Pure: the spec, a record reader bound to a layout, and the frame type the
symbolizer (runner/) fills and the writers (output/) show.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from ..errors import PackageError
from .layout import FieldKind, Layout
from .package import Package

INTERPRETER = "stack_trace"
DEFAULT_INTERPRETER = "default_struct"
FIELDS = ("pid", "cpu_id", "comm", "kstack_sz", "ustack_sz", "kstack", "ustack")
WEIGHT = "weight"  # ours, never defaulted to a member of that name
ADDRESS_SIZE = 8


class StackTraceSpec(NamedTuple):
    map_name: str
    field_map: dict[str, str]  # only the keys the package names
    with_symbols: bool


def check_interpreter(value: Any, where: str) -> Any:
    """A map's `intepreter` value as a package may hold it: "default_struct"
    or {"stack_trace": {...}}, checked; raises PackageError (ecc turns it
    into a CompileError naming the source line)."""
    if value == DEFAULT_INTERPRETER:
        return value
    if not isinstance(value, dict) or list(value) != [INTERPRETER]:
        raise PackageError(f"{where}: 'intepreter' must be \"{DEFAULT_INTERPRETER}\" or "
                           f"{{\"{INTERPRETER}\": {{...}}}}")
    _stack_trace_body(value[INTERPRETER], f"{where}: intepreter.{INTERPRETER}")
    return value


def _stack_trace_body(body: Any, where: str) -> tuple[dict[str, str], bool]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise PackageError(f"{where}: must be an object")
    unknown = sorted(set(body) - {"field_map", "with_symbols"})
    if unknown:
        raise PackageError(f"{where}: unknown key '{unknown[0]}': use field_map and with_symbols")
    field_map = body.get("field_map") or {}
    if not isinstance(field_map, dict):
        raise PackageError(f"{where}: 'field_map' must be an object")
    for key, value in field_map.items():
        if key not in FIELDS and key != WEIGHT:
            raise PackageError(f"{where}.field_map: unknown key '{key}': use {', '.join(FIELDS)} or {WEIGHT}")
        if value is not None and not isinstance(value, str):
            raise PackageError(f"{where}.field_map: '{key}' must name a member (a string)")
    symbols = body.get("with_symbols", True)
    if not isinstance(symbols, bool):
        raise PackageError(f"{where}: 'with_symbols' must be true or false")
    return {k: v for k, v in field_map.items() if v is not None}, symbols


def stack_trace_specs(package: Package) -> list[StackTraceSpec]:
    """Every map that asks for the stack_trace interpreter, checked."""
    raw = package.meta.raw if isinstance(package.meta.raw, dict) else {}
    skel = raw.get("bpf_skel", {})
    out = []
    for i, m in enumerate(skel.get("maps", []) if isinstance(skel, dict) else []):
        kind = m.get("intepreter") if isinstance(m, dict) else None
        if not isinstance(kind, dict) or INTERPRETER not in kind:
            continue
        where = f"{package.origin}: meta.bpf_skel.maps[{i}].intepreter.{INTERPRETER}"
        field_map, symbols = _stack_trace_body(kind[INTERPRETER], where)
        out.append(StackTraceSpec(str(m.get("name", "")), field_map, symbols))
    return out


class Frame(NamedTuple):
    """One symbolized address. `symbol` None: unknown; `module` is the
    mapped file of a user frame ("" in the kernel)."""

    address: int
    symbol: str | None
    offset: int
    module: str


class Symbolizer(Protocol):
    """What the runner gives the writers: frames for raw addresses, the
    same tuple object each time a stack repeats."""

    def kernel(self, addresses: tuple[int, ...]) -> tuple[Frame, ...]: ...

    def user(self, pid: int, addresses: tuple[int, ...], comm: bytes | None = None) -> tuple[Frame, ...]: ...


StackIds = Callable[[int], tuple[int, ...]]  # a stack id -> its addresses (empty: gone)


class Sample(NamedTuple):
    pid: int | None
    cpu_id: int | None
    comm: bytes | None
    kstack: tuple[int, ...] | None  # None: the event has no such stack (error or absent member)
    ustack: tuple[int, ...] | None
    weight: int | None = None  # what the sample counts for in folded stacks (None: 1)


class SampleReader:
    """Reads Samples out of records of `layout`, as `spec` maps members.

    Scalars come from one precompiled Struct; a stack array from an
    unpack of exactly its used length (cached per length), so a sample costs
    two or three unpacks whatever the depth."""

    def __init__(self, spec: StackTraceSpec, layout: Layout, stack_ids: StackIds | None = None):
        self.spec = spec
        self.layout = layout
        self.stack_ids = stack_ids
        order = layout.struct.format[0] if layout.struct.format[:1] in "<>=!@" else "<"
        self._order = "<" if order in "<=@" else ">"
        self._arrays: dict[int, Callable[..., tuple[int, ...]]] = {}
        scalars: list[tuple[str, str, int]] = []  # (name, code, offset)
        self.id_mode: set[str] = set()
        self._stacks: dict[str, tuple[int, int]] = {}  # name -> (offset, capacity in addresses)
        for key in (*FIELDS, WEIGHT):
            member = spec.field_map.get(key, key if key != WEIGHT else "")
            if not member:
                continue
            try:
                f = layout.field(member)
            except KeyError:
                if key in spec.field_map:
                    raise PackageError(f"map '{spec.map_name}': stack_trace field_map names '{member}' for {key}, "
                                       f"which struct {layout.name} has not: name one of its members") from None
                continue
            if key == "comm":
                if f.kind != FieldKind.CHARS:
                    raise self._type_error(key, member, "a char array")
                scalars.append((key, f"{f.size}s", f.offset))
            elif key in ("kstack", "ustack"):
                if f.kind == FieldKind.ARRAY and f.size % ADDRESS_SIZE == 0 and f.type_name.find("*") < 0:
                    self._stacks[key] = (f.offset, f.size // ADDRESS_SIZE)
                elif f.kind == FieldKind.INT and f.size in (4, 8):
                    self.id_mode.add(key)
                    scalars.append((key, "q" if f.size == 8 else "i", f.offset))
                else:
                    raise self._type_error(key, member, "an array of 64-bit addresses or a stack id")
            else:
                if f.kind != FieldKind.INT or f.size not in (1, 2, 4, 8):
                    raise self._type_error(key, member, "an integer")
                code = {1: "b", 2: "h", 4: "i", 8: "q"}[f.size]
                scalars.append((key, code if f.signed or key.endswith("_sz") else code.upper(), f.offset))
        if not self._stacks and not self.id_mode:
            raise PackageError(f"map '{spec.map_name}': struct {layout.name} has neither a kstack nor a ustack "
                               "member: map one in the stack_trace field_map")
        if self.id_mode and stack_ids is None:
            raise PackageError(f"map '{spec.map_name}': stack ids need a BPF_MAP_TYPE_STACK_TRACE map in the program")
        scalars.sort(key=lambda s: s[2])
        fmt, pos = self._order, 0
        for _name, code, off in scalars:
            fmt += f"{off - pos}x{code}" if off > pos else code
            pos = off + struct.calcsize(self._order + code)
        self._scalar = struct.Struct(fmt).unpack_from
        names = [s[0] for s in scalars]
        self._at = {key: names.index(key) if key in names else -1 for key in (*FIELDS, WEIGHT)}
        self._k_array, self._u_array = "kstack" in self._stacks, "ustack" in self._stacks
        self._k_ids = stack_ids if "kstack" in self.id_mode else None
        self._u_ids = stack_ids if "ustack" in self.id_mode else None

    def _type_error(self, key: str, member: str, wanted: str) -> PackageError:
        return PackageError(f"map '{self.spec.map_name}': stack_trace {key} ('{member}' of struct "
                            f"{self.layout.name}) must be {wanted}")

    def _array(self, view: Any, start: int, key: str, size: int | None) -> tuple[int, ...] | None:
        offset, capacity = self._stacks[key]
        if size is None:
            count = capacity
        elif size <= 0:
            return None
        else:
            count = min(capacity, size // ADDRESS_SIZE)
        unpack = self._arrays.get(count)
        if unpack is None:
            unpack = self._arrays[count] = struct.Struct(f"{self._order}{count}Q").unpack_from
        addresses = unpack(view, start + offset)
        if size is None:  # no size member: the stack ends at its first zero
            try:
                addresses = addresses[: addresses.index(0)]
            except ValueError:
                pass
        return addresses

    def read(self, view: Any, start: int) -> Sample:
        values = (*self._scalar(view, start), None)  # index -1: a member the struct has not
        at = self._at
        kstack = ustack = None
        if self._k_array:
            kstack = self._array(view, start, "kstack", values[at["kstack_sz"]])
        elif self._k_ids is not None and values[at["kstack"]] >= 0:
            kstack = self._k_ids(values[at["kstack"]])
        if self._u_array:
            ustack = self._array(view, start, "ustack", values[at["ustack_sz"]])
        elif self._u_ids is not None and values[at["ustack"]] >= 0:
            ustack = self._u_ids(values[at["ustack"]])
        comm = values[at["comm"]]
        if comm is not None:
            comm = comm.split(b"\0", 1)[0]
        return Sample(values[at["pid"]], values[at["cpu_id"]], comm, kstack, ustack, values[at[WEIGHT]])
