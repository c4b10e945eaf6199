"""Which struct each ring buffer and perf event array carries, as ecc decides it.

In this order, for every event buffer of the object:

1. `/// @export STRUCT` in the doc comment above the map (ours: upstream has
   no way to say it in the source; its `export_config` per map is written by
   hand into the package);
2. the one candidate, when there is one (upstream's rule: the header's
   structs, the first of them for every buffer);
3. the candidate named `event`;
4. the candidate whose size is what the program writes into that map
   (bpf_ringbuf_reserve's size, bpf_ringbuf_output's and
   bpf_perf_event_output's size argument: format/bufsizes.py);
5. the first candidate.

Candidates are the export header's structs, then structs marked with a
bare `/// @export` (upstream's documented annotation) in the source or a
header it includes. 4 and 5 are guesses, and say so on stderr in one line
that names the map, the struct and the annotation that makes it explicit; a
choice whose size contradicts what the program writes says that too.

The package carries the choice in upstream's format: every buffer gets
`"export_config": {"btf_type_id": N}` and the meta
`"enable_multiple_export_types": true`, so upstream's ecli decodes each
buffer with its own struct too (sampled maps get `"export_config":
"default"`, without which upstream would stop sampling them).
`export_types` keeps the chosen structs first, for older readers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CompileError
from ..format.btf import Btf, Kind
from ..format.bufsizes import BufferWrites, buffer_writes
from ..format.objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF, ObjectSpec
from .clangast import Decl
from .docs import SourceDocs, comment_keys

EXPORT_KEY = "export"


@dataclass
class ExportChoice:
    by_map: dict[str, str] = field(default_factory=dict)  # buffer map -> struct name
    notes: list[str] = field(default_factory=list)  # one stderr line each


def annotated_structs(decls: list[Decl], in_scope: Any) -> list[str]:
    """Structs marked with a bare `/// @export`, in declaration order."""
    out: list[str] = []
    for d in decls:
        if d.kind == "RecordDecl" and d.tag == "struct" and d.complete and d.name and d.comment is not None \
                and in_scope(d.file) and comment_keys(d.comment).get(EXPORT_KEY) is True and d.name not in out:
            out.append(d.name)
    return out


def map_annotations(docs: SourceDocs) -> dict[str, tuple[str, int]]:
    """Map (or any variable) name -> (struct named by `/// @export STRUCT`, line)."""
    out: dict[str, tuple[str, int]] = {}
    for name, (keys, line) in docs.variables.items():
        value = keys.get(EXPORT_KEY)
        if value is None:
            continue
        struct = value.removeprefix("struct ").strip() if isinstance(value, str) else ""
        if not struct.isidentifier():
            raise CompileError(f"{docs.file}:{line}: @export above '{name}' needs a struct name, "
                               "as in '/// @export event' (the struct its records are)")
        out[name] = (struct, line)
    return out


def choose(spec: ObjectSpec, candidates: list[str], annotations: dict[str, tuple[str, int]],
           file: str) -> ExportChoice:
    btf = spec.btf
    choice = ExportChoice()
    buffers = [m for m in spec.maps if m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY)]
    names = {m.name for m in buffers}
    for var, (_struct, line) in annotations.items():
        if var not in names:
            raise CompileError(f"{file}:{line}: @export is for ring buffers and perf event arrays, "
                               f"and '{var}' is not one: move it above the map whose records are that struct")
    writes = buffer_writes(spec.elf) if buffers else {}
    sizes = {n: _size(btf, n) for n in candidates}
    for m in buffers:
        written = writes.get(m.name, BufferWrites())
        size = written.size
        if m.name in annotations:
            struct, line = annotations[m.name]
            if btf.find(struct, Kind.STRUCT) is None:
                raise CompileError(f"{file}:{line}: @export names struct {struct}, which the source and its "
                                   "headers do not define: define it, or name the struct the map carries")
            chosen, how = struct, ""
        elif not candidates:
            continue
        elif len(candidates) == 1:
            chosen, how = candidates[0], ""
        elif "event" in candidates:
            chosen, how = "event", ""
        else:
            fits = [n for n in candidates if size is not None and sizes[n] == size]
            if fits:
                chosen = fits[0]
                how = f"its {size} bytes are what the program writes into the map" + (
                    f" (so are {', '.join('struct ' + f for f in fits[1:])}'s)" if len(fits) > 1 else "")
            else:
                chosen = candidates[0]
                how = "the first export struct" + (
                    f" (the program writes {size}-byte records, which no export struct is)" if size else
                    " (the size of what the program writes is not a constant)")
        choice.by_map[m.name] = chosen
        if how:
            choice.notes.append(f"map '{m.name}': guessed that it carries struct {chosen} ({how}); make it "
                                f"explicit with '/// @export {chosen}' above the map")
        elif size is not None and _size(btf, chosen) != size and not _cut_short(btf, chosen, size):
            choice.notes.append(f"warning: map '{m.name}' gets {size}-byte records but struct {chosen} is "
                                f"{_size(btf, chosen)} bytes: ecli will print them in hex; name the struct it "
                                "carries with '/// @export STRUCT' above the map")
    return choice


def _size(btf: Btf, name: str) -> int:
    t = btf.find(name, Kind.STRUCT)
    return t.size if t is not None else -1


def _cut_short(btf: Btf, name: str, size: int) -> bool:
    """A record shorter than the struct that still reaches its trailing array
    (format/exports.py accepts those)."""
    t = btf.find(name, Kind.STRUCT)
    if t is None or not t.members or size > t.size:
        return False
    last = max(t.members, key=lambda m: m.bit_offset)
    return btf.resolve(last.type_id).kind == Kind.ARRAY and size >= last.bit_offset // 8


def ordered_exports(exports: list[str], choice: ExportChoice) -> list[str]:
    """The chosen structs first (in map order), then the other candidates."""
    chosen = list(dict.fromkeys(choice.by_map.values()))
    return chosen + [n for n in exports if n not in chosen]


def apply(meta: dict[str, Any], btf: Btf, choice: ExportChoice) -> None:
    """Write the choice into `meta` in upstream's per-map form."""
    if not choice.by_map:
        return
    for entry in meta["bpf_skel"]["maps"]:
        struct = choice.by_map.get(entry["name"])
        if struct is not None:
            t = btf.find(struct, Kind.STRUCT)
            assert t is not None
            entry["export_config"] = {"btf_type_id": t.id}
        elif entry.get("sample") is not None:
            entry["export_config"] = "default"
    meta["enable_multiple_export_types"] = True
