"""Doc comments on BPF programs and maps, written into their entries of
`meta.bpf_skel` the way upstream's ecc writes them: its document parser
(compiler/cmd/src/document_parser.rs) copies every key of the comment above
a program's function or a map's declaration into that program's or map's
entry, JSON where the text parses as JSON:

    /// @tchook {"ifindex": 1, "attach_point": "BPF_TC_EGRESS"}  -> "tchook": {...}
    /// @tcopts {"handle": 1, "priority": 1}                    -> "tcopts": {...}
    /// @ifindex 1 / @flags 0 / @xdpopts {"old_prog_fd": 0}     -> "ifindex": 1, ...
    /// @sample {"interval": 1000} (a map)                       -> "sample": {...}
    /// @histogram {...} / @table {...} (a map: format/mapmeta.py)   -> "histogram": {...}
    /// Plain text                                               -> "description": "..."

The keys the runner reads (format/extrameta.py, format/package.py) are
checked here, naming the comment's line, so a typo fails the build instead
of the run; any other key is copied as upstream copies it. A tc key on an
xdp program (or on a kprobe) is kept but warned about: neither loader reads
it there.
"""

from __future__ import annotations

import logging
from typing import Any

from ..decoders import DECODERS
from ..errors import CompileError, PackageError
from ..format.extrameta import (
    TC_KEYS,
    TC_SECTION_PREFIXES,
    WHEN,
    XDP_KEYS,
    XDP_SECTION_PREFIXES,
    tc_keys,
    xdp_keys,
)
from ..format.mapmeta import HISTOGRAM, TABLE, bool_globals, int_globals, map_view, when_names
from ..format.objspec import ObjectSpec
from .docs import SourceDocs, check_interpreter, check_sample

log = logging.getLogger("pyeunomia.ecc")

# Keys the skeleton itself sets: a comment may not change what the object says.
PROG_OWN_KEYS = ("name", "attach", "link")
MAP_OWN_KEYS = ("name", "ident", "mmaped", "type")


def apply(skel: dict[str, Any], spec: ObjectSpec, docs: SourceDocs) -> None:
    """Add the programs' and maps' doc comment keys to `skel`'s entries."""
    sections = {p.name: p.section for p in spec.programs}
    for entry in skel.get("progs", []):
        found = docs.functions.get(entry["name"])
        if found is not None:
            entry.update(program_keys(entry["name"], sections.get(entry["name"], ""), *found, docs.file, spec))
    for entry in skel.get("maps", []):
        found = docs.variables.get(entry["name"])
        if found is not None and not entry.get("mmaped"):
            entry.update(map_keys(entry["name"], *found, docs.file, spec))


def program_keys(name: str, section: str, keys: dict[str, Any], line: int, file: str,
                 spec: ObjectSpec | None = None) -> dict[str, Any]:
    """A program's doc comment keys, checked: tchook/tcopts and ifindex/
    flags/xdpopts as the runner will read them, `when` naming bool globals."""
    where = f"{file}:{line}"
    _own_keys(keys, PROG_OWN_KEYS, where, f"program '{name}'")
    if WHEN in keys:
        try:
            names = when_names(keys[WHEN], where)
        except ValueError as e:
            raise CompileError(f"{e} (on program '{name}')") from None
        known = bool_globals(spec.btf, spec.globals) if spec is not None else None
        for n in names:
            if known is not None and n.lstrip("!") not in known:
                raise CompileError(f"{where}: @when on program '{name}' names '{n.lstrip('!')}', which is not a "
                                   "bool global: name a `const volatile bool`")
    try:
        tc_keys(keys, f"{where}: {name}")
        xdp_keys(keys, f"{where}: {name}")
    except PackageError as e:
        raise CompileError(f"{e}: fix the doc comment") from None
    is_tc, is_xdp = section.startswith(TC_SECTION_PREFIXES), section.startswith(XDP_SECTION_PREFIXES)
    for key in keys:
        if (key in TC_KEYS and not is_tc) or (key in XDP_KEYS and not is_xdp):
            kind = "tc" if key in TC_KEYS else "xdp"
            log.warning("%s: warning: @%s is read for %s programs only, and '%s' is SEC(\"%s\"): it is kept "
                        "but does nothing", where, key, kind, name, section)
    return dict(keys)


INTERNAL = "internal"  # `/// @internal`: a map of state, not results, never printed at exit (runner/mapdump.py)


def map_keys(name: str, keys: dict[str, Any], line: int, file: str, spec: ObjectSpec | None = None) -> dict[str, Any]:
    where = f"{file}:{line}"
    _own_keys(keys, MAP_OWN_KEYS, where, f"map '{name}'")
    out = dict(keys)
    if "sample" in out:
        out["sample"] = check_sample(out["sample"], where)
    if not isinstance(out.get(INTERNAL, False), bool):
        raise CompileError(f"{where}: @{INTERNAL} takes no value (or true/false): it marks map '{name}' as state "
                           "(Doxygen reads the lines after it as its text: put it last in the comment)")
    if "intepreter" in out:  # sic, upstream's key: `/// @intepreter {"stack_trace": {...}}`
        out["intepreter"] = check_interpreter(out["intepreter"], where)
    if spec is not None and (HISTOGRAM in out or TABLE in out):
        m = spec.map(name)
        try:
            map_view(name, out, spec.btf, m.key_type_id if m else 0, m.value_type_id if m else 0,
                     bool_globals(spec.btf, spec.globals), {n: d.params for n, d in DECODERS.items()},
                     int_globals=int_globals(spec.btf, spec.globals),
                     siblings={n: d.siblings for n, d in DECODERS.items()})
        except ValueError as e:
            raise CompileError(f"{where}: {e}") from None
    return out


def _own_keys(keys: dict[str, Any], own: tuple[str, ...], where: str, what: str) -> None:
    taken = [k for k in keys if k in own]
    if taken:
        raise CompileError(f"{where}: @{taken[0]} would change the {what}'s own '{taken[0]}' in the package: "
                           "remove it from the doc comment")
