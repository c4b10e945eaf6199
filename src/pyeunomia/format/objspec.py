"""What a BPF object file declares, read from its ELF and BTF without the kernel:
programs with their SEC() names, BTF-defined maps, and global variables with
their layout and initial values.
"""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

from .btf import Btf, BTFError, Kind
from .elf import SHF_EXECINSTR, STB_LOCAL, STT_FUNC, ELFError, ElfFile
from .escape import escape_text

DATA_SECTION_PREFIXES = (".rodata", ".data", ".bss")

MAP_TYPE_NAMES = {
    1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash",
    6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
    14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap", 18: "sockhash",
    19: "cgroup_storage", 20: "reuseport_sockarray", 21: "percpu_cgroup_storage",
    22: "queue", 23: "stack", 24: "sk_storage", 25: "devmap_hash", 26: "struct_ops",
    27: "ringbuf", 28: "inode_storage", 29: "task_storage", 30: "bloom_filter",
    31: "user_ringbuf",
}
MAP_PERF_EVENT_ARRAY = 4
MAP_RINGBUF = 27
VAR_GLOBAL = 1


class GlobalVar(NamedTuple):
    """A global variable in a data section: a candidate command-line option."""

    name: str
    section: str
    offset: int
    size: int
    type_id: int
    type_name: str
    initial: bytes


class ProgramSpec(NamedTuple):
    name: str
    section: str


class MapSpec(NamedTuple):
    name: str
    type: int
    key_type_id: int = 0
    value_type_id: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.type, f"type {self.type}")


class ObjectSpec:
    """A BPF ELF object, parsed: pure, never touches the kernel."""

    def __init__(self, data: bytes):
        self.data = data
        self.elf = ElfFile(data)
        btf_section = self.elf.section(".BTF")
        if btf_section is None:
            raise BTFError("the object has no BTF (.BTF section): compile it with clang -g")
        self.btf = Btf.parse(self.elf.section_bytes(btf_section))
        if self.btf.endian != self.elf.endian:
            raise BTFError("the object's BTF byte order differs from its ELF's")
        self._place_vars()

    def _place_vars(self) -> None:
        sizes = {s.name: s.size for s in self.elf.sections}
        offsets: dict[tuple[str, str], int] = {}
        for sym in self.elf.symbols():
            if 0 < sym.section_index < len(self.elf.sections):
                offsets[(self.elf.sections[sym.section_index].name, sym.name)] = sym.value
        self.btf.place_section_vars(sizes, offsets)

    @cached_property
    def programs(self) -> list[ProgramSpec]:
        out = []
        for sym in self.elf.symbols():
            if sym.type != STT_FUNC or not 0 < sym.section_index < len(self.elf.sections):
                continue
            sec = self.elf.sections[sym.section_index]
            # libbpf takes global and weak functions, and refuses static ones
            if sec.flags & SHF_EXECINSTR and sec.name != ".text" and sym.binding != STB_LOCAL:
                out.append(ProgramSpec(sym.name, sec.name))
        return out

    @cached_property
    def maps(self) -> list[MapSpec]:
        sec = self.btf.datasec(".maps")
        if sec is None:
            return []
        out = []
        for v in sec.vars:
            var = self.btf[v.type_id]
            definition = self.btf.resolve(var.type_id)
            fields: dict[str, int] = {}
            for m in definition.members:
                ptr = self.btf.resolve(m.type_id)
                if ptr.kind != Kind.PTR:
                    continue
                target = self.btf.resolve(ptr.type_id)
                if m.name in ("key", "value"):
                    fields[m.name + "_type"] = ptr.type_id
                elif target.kind == Kind.ARRAY:
                    fields[m.name] = target.count
            out.append(MapSpec(
                var.name, fields.get("type", 0),
                key_type_id=fields.get("key_type", 0), value_type_id=fields.get("value_type", 0),
                key_size=fields.get("key_size", 0) or _size_or_zero(self.btf, fields.get("key_type", 0)),
                value_size=fields.get("value_size", 0) or _size_or_zero(self.btf, fields.get("value_type", 0)),
                max_entries=fields.get("max_entries", 0),
            ))
        return out

    def map(self, name: str) -> MapSpec | None:
        return next((m for m in self.maps if m.name == name), None)

    @cached_property
    def globals(self) -> list[GlobalVar]:
        contents: dict[str, bytes] = {}  # each section read once, however many DATASECs name it
        placed = []
        for t in self.btf.types:
            if t.kind != Kind.DATASEC or not t.name.startswith(DATA_SECTION_PREFIXES):
                continue
            if t.name not in contents:
                section = self.elf.section(t.name)
                contents[t.name] = self.elf.section_bytes(section) if section else b""
            for v in t.vars:
                var = self.btf[v.type_id]
                if var.kind != Kind.VAR or var.linkage != VAR_GLOBAL:
                    continue
                if v.offset + v.size > len(contents[t.name]):
                    raise ELFError(f"global '{escape_text(var.name)}' lies outside section {escape_text(t.name)}")
                placed.append((t.name, v.offset, v.size, var))
        # The kernel refuses overlapping variables; copying each one's bytes
        # would make memory grow with the square of the input.
        end: dict[str, tuple[int, str]] = {}
        for name, offset, size, var in sorted(placed, key=lambda p: p[:3]):
            last, other = end.get(name, (0, ""))
            if offset < last:
                raise ELFError(f"globals '{escape_text(other)}' and '{escape_text(var.name)}' overlap "
                               f"in section {escape_text(name)}")
            end[name] = (offset + size, var.name)
        return [GlobalVar(var.name, name, offset, size, var.type_id, self.btf.plain_c_name(var.type_id),
                          contents[name][offset : offset + size]) for name, offset, size, var in placed]

    def data_var(self, name: str) -> tuple[str, int, int] | None:
        """(section, offset, size) of a data section's variable, of any
        linkage (runner/promise.py writes one while the program runs)."""
        for t in self.btf.types:
            if t.kind != Kind.DATASEC or not t.name.startswith(DATA_SECTION_PREFIXES):
                continue
            for v in t.vars:
                var = self.btf[v.type_id]
                if var.kind == Kind.VAR and var.name == name:
                    return t.name, v.offset, v.size
        return None


def names_section(map_name: str, section: str) -> bool:
    """libbpf names an internal map by up to 8 characters of the object's name
    and the section's (`runqlat_.bss`), or by the section alone (`.data.x`)."""
    return map_name == section or (map_name.endswith(section) and len(map_name) - len(section) <= 8)


def _size_or_zero(btf: Btf, type_id: int) -> int:
    if not type_id:
        return 0
    try:
        return btf.size_of(type_id)
    except BTFError:
        return 0
