"""A program's global variables as typed options: parse, check, encode.

An array of integers (`const volatile __u16 targ_ports[16]`) is an option of
kind "ints": a comma list (`-P 80,443`) fills its first elements, the rest
stay zero; more values than elements is one error line. Its value is a tuple
of all its elements.

Pure: built from the package's BTF and metadata, testable without root. The
command line (argparse) and the Python API both go through `GlobalOption`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import PackageError
from .btf import INT_BOOL, INT_SIGNED, Kind, byte_order
from .escape import escape_text
from .objspec import GlobalVar
from .package import DUMMY_PREFIX, Package, VariableMeta

FLT_MAX = 3.4028234663852886e38


class Converter(NamedTuple):
    """An option's converter (pyeunomia.converters), ready: text -> value."""

    name: str
    parse: Callable[[str], Any]  # ValueError("what is wrong: what to do")
    syntax: str  # what it takes, for --help


ConverterOf = Callable[[Any], Converter]  # a cmdarg's `convert` -> its Converter; ValueError if unknown


class GlobalOption(NamedTuple):
    name: str
    kind: str  # "int", "bool", "float", "str", "enum", "ints" (an array of integers)
    type_name: str
    section: str
    offset: int
    size: int
    signed: bool
    endian: str
    initial: Any  # the value the object file starts with
    default: Any  # what an option not given keeps: metadata default, else initial
    help: str
    long: str
    short: str | None = None
    enum_values: tuple[tuple[str, int], ...] = ()
    metavar: str | None = None
    convert: Converter | None = None  # its cmdarg's `convert`, when the caller gave the converters
    elements: int = 0  # "ints": the array's elements (size is the whole array's)

    @property
    def syntax(self) -> str | None:
        """What a converting option takes, for --help."""
        return self.convert.syntax if self.convert else None

    @property
    def flag(self) -> str:
        return "--" + self.long

    def accepts(self) -> str:
        """What the option takes, for error messages."""
        if self.kind == "int":
            lo, hi = self.int_range()
            return f"an integer from {lo} to {hi}"
        if self.kind == "ints":
            lo, hi = self.int_range()
            return f"up to {self.elements} integers from {lo} to {hi}, separated by commas"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "float":
            return f"a number from {-FLT_MAX!r} to {FLT_MAX!r}" if self.size == 4 else "a number"
        if self.kind == "str":
            return f"a string of at most {self.size - 1} bytes"
        return "one of " + ", ".join(escape_text(n) for n, _ in self.enum_values) + " or an integer"

    def int_range(self) -> tuple[int, int]:
        """An integer's range (for "ints", one element's)."""
        bits = (self.size // self.elements if self.elements else self.size) * 8
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)

    def parse(self, text: str) -> Any:
        """A command-line string as this option's value; ValueError says why not."""
        if self.kind == "ints":
            return self._parse_list(text)
        if self.convert is not None:
            return self.check(self.convert.parse(text))
        t = text.strip()
        try:
            if self.kind == "bool":
                low = t.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            value: Any
            if self.kind == "float":
                value = float(t)
            elif self.kind == "str":
                value = text
            elif self.kind == "enum":
                names = dict(self.enum_values)
                value = names[t] if t in names else int(t, 0)
            else:
                value = int(t, 0)
        except (ValueError, KeyError):
            raise ValueError(f"expected {self.accepts()}, got {_brief(text)}") from None
        return self.check(value)

    def _parse_list(self, text: str) -> Any:
        """`80,443` (a converter, if any, reads each item); empty items are refused."""
        items = [t.strip() for t in text.split(",")]
        if text.strip() == "":
            return self.check(())
        values = []
        for item in items:
            if not item:
                raise ValueError(f"expected {self.accepts()}, got an empty item in {_brief(text)}")
            if self.convert is not None:
                values.append(self.convert.parse(item))
                continue
            try:
                values.append(int(item, 0))
            except ValueError:
                raise ValueError(f"expected {self.accepts()}, got {_brief(item)}") from None
        return self.check(values)

    def check(self, value: Any) -> Any:
        """Validate a Python value for this option; returns it normalised."""
        bad = ValueError(f"expected {self.accepts()}, got {_brief(value)}")
        if self.kind == "ints":
            if isinstance(value, int) and not isinstance(value, bool):
                value = (value,)
            if not isinstance(value, list | tuple):
                raise bad
            if len(value) > self.elements:
                raise ValueError(f"{len(value)} values, and it holds at most {self.elements}")
            lo, hi = self.int_range()
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise bad
                if not lo <= v <= hi:
                    raise ValueError(f"{_brief(v)} is out of range: expected {self.accepts()}")
            return tuple(value) + (0,) * (self.elements - len(value))
        if self.kind == "bool":
            if not isinstance(value, bool | int) or value not in (0, 1):
                raise bad
            return bool(value)
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
            if self.size == 4 and math.isfinite(value):
                try:
                    struct.pack("<f", value)  # rounds to the nearest float (FLT_MAX too); "f" would not check
                except OverflowError:
                    raise ValueError(f"{value!r} is out of range: expected {self.accepts()}") from None
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise bad
            try:
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a lone surrogate that stands for no byte
                raise bad from None
            # the object's own value may fill the array without a NUL (char s[4] = "abcd")
            if (len(raw) > self.size - 1 or b"\0" in raw) and value != self.initial:
                raise ValueError(f"expected {self.accepts()} without NUL, got {len(raw)} bytes")
            return value
        if self.kind == "enum" and isinstance(value, str):
            names = dict(self.enum_values)
            if value not in names:
                raise bad
            value = names[value]
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        lo, hi = self.int_range()
        if not lo <= value <= hi:
            raise ValueError(f"{_brief(value)} is out of range: expected {self.accepts()}")
        return value

    def encode(self, value: Any) -> bytes:
        value = self.check(value)
        e = self.endian
        if self.kind == "bool":
            return int(value).to_bytes(self.size, byte_order(e))
        if self.kind == "float":
            return struct.pack(e + ("f" if self.size == 4 else "d"), value)
        if self.kind == "str":
            raw: bytes = value.encode("utf-8", "surrogateescape")
            return raw.ljust(self.size, b"\0")
        if self.kind == "ints":
            width = self.size // self.elements
            return b"".join(int(v).to_bytes(width, byte_order(e), signed=self.signed) for v in value)
        return int(value).to_bytes(self.size, byte_order(e), signed=self.signed)

    def decode(self, raw: bytes) -> Any:
        order = byte_order(self.endian)
        if self.kind == "bool":
            return raw != bytes(len(raw))
        if self.kind == "float":
            return struct.unpack(self.endian + ("f" if self.size == 4 else "d"), raw)[0]
        if self.kind == "str":
            return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")
        if self.kind == "ints":
            width = self.size // self.elements
            return tuple(int.from_bytes(raw[i:i + width], order, signed=self.signed)
                         for i in range(0, width * self.elements, width))
        value = int.from_bytes(raw, order, signed=self.signed)
        if self.kind == "enum":  # a name only when parse gives this value back for it (names may repeat)
            names = dict(self.enum_values)
            return next((n for n, v in self.enum_values if v == value and names[n] == value), value)
        return value

    def show(self, value: Any) -> str:
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "str":
            return repr(value)
        if self.kind == "ints":  # the elements set, as the option takes them
            shown = list(value)
            while shown and shown[-1] == 0:
                shown.pop()
            return ",".join(map(str, shown)) or "(none)"
        return str(value)


def _brief(value: Any) -> str:
    """repr(value) for a message, cut short: a number too long for str() or a
    megabyte of text does not fill the terminal."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# Globals the runner sets itself, never the user: containers/filter.py's
# filter_cgroup_map (set by --container, --pod, --namespace, which also fill its map)
# Globals the runner sets at load: the container filter's switch (cli/containeropts.py).
RUNNER_OWNED = frozenset({"filter_cgroup_map"})
# Globals the runner writes while the program runs, never an option, a value
# to load with, a metric or a printed result: the reader's wakeup promise
# (runner/promise.py).
WRITTEN_WHILE_RUNNING = frozenset({"reader_polls_until_ns"})
NOT_RESULTS = RUNNER_OWNED | WRITTEN_WHILE_RUNNING


def global_options(package: Package, converters: ConverterOf | None = None, *,
                   runner_owned: bool = False) -> list[GlobalOption]:
    """One option per settable global, in section then offset order.
    `converters` (pyeunomia.converters.for_option, which the command line
    passes) turns each cmdarg's `convert` into the option's parser; without
    it an option takes its type's plain syntax. The runner's own globals
    (RUNNER_OWNED) only with `runner_owned`, for the loader, as no command
    line or config should set them."""
    spec = package.spec
    metas = {v.name: v for v in package.meta.variables}
    out = []
    for g in sorted(spec.globals, key=lambda g: (_section_rank(g.section), g.offset)):
        if g.name.startswith(DUMMY_PREFIX) or g.name in WRITTEN_WHILE_RUNNING or \
                (g.name in RUNNER_OWNED and not runner_owned):
            continue
        opt = _option(package, g, metas.get(g.name), converters)
        if opt is not None:
            out.append(opt)
    _check_flags(package, out)
    return out


def _check_flags(package: Package, options: list[GlobalOption]) -> None:
    """Two options with one flag (or one taking -h/--help) cannot both be set, and a
    flag with a space, a control character or nothing but dashes cannot be given."""
    owner: dict[str, GlobalOption | None] = {"-h": None, "--help": None}
    for o in options:
        flags = [o.flag, "--" + o.name] + ([f"-{o.short}"] if o.short else [])
        if o.kind == "bool":  # argparse adds --no-FLAG
            flags += ["--no-" + f[2:] for f in flags if f.startswith("--")]
        for flag in flags:
            if not flag.strip("-") or not flag.isprintable() or any(c.isspace() for c in flag):
                raise PackageError(f"{package.origin}: global '{escape_text(o.name)}' would need the option "
                                   f"'{escape_text(flag)}', which no command line can give: "
                                   "change a cmdarg in the package's metadata")
            other = owner.setdefault(flag, o)
            if other is not o:
                taken = f"global '{escape_text(other.name)}'" if other else "help"
                raise PackageError(f"{package.origin}: global '{escape_text(o.name)}' and {taken} both use the "
                                   f"option {escape_text(flag)}: change a cmdarg in the package's metadata")


def _section_rank(section: str) -> tuple[int, str]:
    for i, prefix in enumerate((".rodata", ".data", ".bss")):
        if section.startswith(prefix):
            return (i, section)
    return (3, section)


def _option(package: Package, g: GlobalVar, meta: VariableMeta | None,
            converters: ConverterOf | None = None) -> GlobalOption | None:
    btf = package.spec.btf
    t = btf.resolve(g.type_id)
    size = g.size
    signed = False
    enum_values: tuple[tuple[str, int], ...] = ()
    count = 0
    if t.kind == Kind.INT and t.encoding & INT_BOOL and size > 0:
        kind = "bool"
    elif t.kind == Kind.INT and size in (1, 2, 4, 8):
        kind, signed = "int", bool(t.encoding & INT_SIGNED)
    elif t.kind in (Kind.ENUM, Kind.ENUM64) and size in (1, 2, 4, 8):
        kind, signed, enum_values = "enum", t.signed, tuple(t.enumerators)
    elif t.kind == Kind.FLOAT and size in (4, 8):
        kind, signed = "float", True
    elif t.kind == Kind.ARRAY and size > 1 and t.count > 0:
        elem = btf.resolve(t.elem_id)
        if elem.kind == Kind.INT and elem.size == 1 and elem.name == "char":
            kind = "str"
        elif elem.kind == Kind.INT and not elem.encoding & INT_BOOL and elem.size in (1, 2, 4, 8) \
                and elem.size * t.count == size:
            kind, signed, count = "ints", bool(elem.encoding & INT_SIGNED), t.count
        else:
            return None
    else:
        return None  # pointers, structs, arrays of anything else: not options
    cmdarg = meta.cmdarg if meta else None
    help_text = (cmdarg.help if cmdarg and cmdarg.help else None) or (meta.description if meta else None)
    opt = GlobalOption(
        name=g.name, kind=kind, type_name=g.type_name, section=g.section, offset=g.offset, size=size,
        signed=signed, endian=btf.endian, initial=None, default=None,
        help=help_text or f"set {g.type_name} {g.name}",
        long=(cmdarg.long if cmdarg and cmdarg.long else g.name),
        short=cmdarg.short if cmdarg else None, enum_values=enum_values,
        metavar=cmdarg.metavar if cmdarg else None, elements=count,
        convert=_converter(package, g.name, cmdarg.convert, converters)
        if cmdarg and cmdarg.convert is not None and converters else None,
    )
    initial = opt.decode(g.initial)
    default = initial
    for candidate in ((cmdarg.default if cmdarg else None), (meta.value if meta else None)):
        if candidate is not None:
            try:
                default = opt.parse(candidate) if opt.convert and isinstance(candidate, str) else opt.check(candidate)
            except ValueError:
                continue
            break
    return opt._replace(initial=initial, default=default)


def _converter(package: Package, name: str, spec: Any, converters: ConverterOf) -> Converter:
    try:
        return converters(spec)
    except ValueError as e:
        raise PackageError(f"{package.origin}: global '{escape_text(name)}': {e}") from None
