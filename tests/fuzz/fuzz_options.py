"""Fuzz target: program option values (runner.options, via global_options) and
ecli's program parser.

    .venv/bin/python tests/fuzz/fuzz_options.py -max_total_time=300

The input describes a package: globals of assorted C types with initial
bytes, metadata (cmdarg short/long/default, value), then texts and arguments
to parse. Contract: global_options gives options or one PackageError line;
parse/check say what is accepted when they refuse; encode/decode round-trip;
the command line gives values or one UsageError line (see checks).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyeunomia.format.options import global_options
from pyeunomia.format.package import Package
from tests.btfbuilder import ENC_BOOL, ENC_SIGNED, LINKAGE_GLOBAL, STB_GLOBAL, BtfBuilder, bpf_object
from tests.fuzz.checks import argv_for, check_command_line, check_option
from tests.fuzz.contract import outcome
from tests.fuzz.provider import Provider
from tests.property.strategies import package_text

KINDS = ["s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "bool", "bool4", "bool0", "bool3", "char[16]",
         "char[1]", "char[2]", "enum", "enum1", "enum64", "float", "double", "ldouble", "ptr", "u32[2]", "int3"]
NAMES = ["x", "targ_pid", "h", "help", "a\nb", "", "é", "x y", "-x", "v", "targ_pid"]
SHORTS: list[Any] = [None, None, "h", "x", "-", "é", "v", "p", "", "xy", 7]
LONGS: list[Any] = [None, None, "help", "x", "targ-pid", "", "--", "a b", "a\nb", "é", "v"]
DEFAULTS: list[Any] = [None, 0, 1, -1, True, "7", "ON", "text", 2 ** 70, 1.5, float("inf"), "a" * 20, [], "\ud800"]


def _type(b: BtfBuilder, kind: str, p: Provider) -> tuple[int, int]:
    ints = {"s8": (1, True), "u8": (1, False), "s16": (2, True), "u16": (2, False), "s32": (4, True),
            "u32": (4, False), "s64": (8, True), "u64": (8, False), "int3": (3, True)}
    if kind in ints:
        size, signed = ints[kind]
        return b.int(kind, size, ENC_SIGNED if signed else 0), size
    if kind.startswith("bool"):
        size = {"bool": 1, "bool4": 4, "bool0": 0, "bool3": 3}[kind]
        return b.int("_Bool", size, ENC_BOOL), size
    if kind.startswith("char["):
        n = int(kind[5:-1])
        return b.array(b.int("char", 1, ENC_SIGNED), n), n
    if kind.startswith("enum"):
        values = [(p.pick(["A", "B", "", "a\nb", "ON", "7", "é"]), p.uint(1) - 2) for _ in range(p.below(4))]
        signed = p.flag()
        if kind == "enum64":
            return b.enum64("e", values, 8, signed), 8
        size = 1 if kind == "enum1" else 4
        return b.enum("e", [(k, v if signed else v & 0xFFFFFFFF) for k, v in values], size, signed), size
    if kind in ("float", "double", "ldouble"):
        size = {"float": 4, "double": 8, "ldouble": 16}[kind]
        return b.float(kind, size), size
    if kind == "ptr":
        return b.ptr(0), 8
    return b.array(b.int("u32", 4), 2), 8


def package_from(p: Provider) -> Package | None:
    e = p.pick("<>")
    b = BtfBuilder(e)
    data = bytearray()
    vars_, symbols, metas = [], [], []
    for _ in range(1 + p.below(3)):
        tid, size = _type(b, p.pick(KINDS), p)
        name = p.pick(NAMES)
        v = b.var(name, tid, LINKAGE_GLOBAL)
        off = (len(data) + 7) // 8 * 8
        data = data.ljust(off, b"\0") + p.take(size).ljust(size, b"\0")
        vars_.append((v, off, size))
        symbols.append((name, ".rodata", off, size, STB_GLOBAL))
        meta: dict[str, Any] = {"name": name, "type": "t"}
        if p.flag():
            cmdarg = {"short": p.pick(SHORTS), "long": p.pick(LONGS), "default": p.pick(DEFAULTS)}
            meta["cmdarg"] = {k: v for k, v in cmdarg.items() if v is not None}
        if p.flag():
            meta["value"] = p.pick(DEFAULTS)
        if p.flag():
            meta["description"] = p.pick(["%(prog)s %d", "100%", "plain", "a\nb"])
        metas.append(meta)
    b.datasec(".rodata", vars_)
    obj = bpf_object(b.build(), endian=e, programs=[("handle", "tp/sched/x")], data={".rodata": bytes(data)},
                     symbols=symbols)
    skel: dict[str, Any] = {"obj_name": "fuzz_bpf", "data_sections": [{"name": ".rodata", "variables": metas}],
                            "maps": [], "progs": []}
    if p.flag():
        skel["doc"] = {"brief": p.pick(["%(prog)s %d", "100%", "b"]), "details": p.pick(["%(prog)s", "%", "d"])}
    return outcome(lambda: Package.from_json(package_text(obj, {"bpf_skel": skel}), "fuzz.json"))


def TestOneInput(data: bytes) -> None:
    p = Provider(data)
    pkg = package_from(p)
    if pkg is None:
        return
    options = outcome(lambda: global_options(pkg))
    if options is None:
        return
    texts = [p.text(12) for _ in range(3)]
    for o in options:
        check_option(o, texts, raw=p.take(16))
    argv = argv_for(options, [(p.uint(), p.text(10)) for _ in range(p.below(4))])
    if p.flag():
        argv.append(p.pick(["--", "-", "-h", "--x", "--help=1", "--no-x", "-x", "=", "--targ_pid"]))
    check_command_line(pkg, options, argv)


def seeds() -> list[bytes]:
    return [bytes((i + 7 * k) % 256 for k in range(64)) for i in range(0, 256, 16)] + [b"\0" * 64, b"\xff" * 64]


if __name__ == "__main__":
    from tests.fuzz.launch import main

    main(TestOneInput, "options", seeds)
