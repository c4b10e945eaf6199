"""Copy struct types (and every type they refer to) from one BTF into another.

Why: clang emits BTF only for types reachable from globals, function
signatures and CO-RE relocations, so an event struct the program only uses as
a local variable is missing from the object's BTF, yet the runner (and
upstream's ecli) decode events by that struct. The header is compiled in a
separate translation unit that forces its structs into BTF; here those types
are grafted onto the program's own BTF. Types the program's BTF already has
(same kind, name and shape) are reused, new ones are appended.
"""

from __future__ import annotations

from collections.abc import Hashable

from ..errors import CompileError
from ..format.btf import Btf, BTFError, BtfType, Kind, Member
from .btfwrite import ARRAY_SIZE_TYPE, BtfBlob

_RECORDS = (Kind.STRUCT, Kind.UNION)


def _key(t: BtfType) -> Hashable | None:
    """What makes two non-record types interchangeable, in terms of the
    target BTF's ids; None for kinds never shared."""
    k = t.kind
    if k == Kind.INT:
        return (k, t.name, t.size, t.encoding, t.bits, t.bit_offset)
    if k == Kind.FLOAT:
        return (k, t.name, t.size)
    if k in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
        return (k, t.type_id)
    if k in (Kind.TYPEDEF, Kind.TYPE_TAG):
        return (k, t.name, t.type_id)
    if k == Kind.ARRAY:
        return (k, t.elem_id, t.count)
    if k in (Kind.ENUM, Kind.ENUM64):
        return (k, t.name, t.size, t.signed, tuple(t.enumerators))
    if k == Kind.FWD:
        return (k, t.name, t.fwd_union)
    if k == Kind.FUNC_PROTO:
        return (k, t.type_id, tuple(t.params))
    return None


def _shape(t: BtfType) -> tuple[Hashable, ...]:
    """A named record's identity: same name, size and member layout."""
    return (t.kind, t.name, t.size, tuple((m.name, m.bit_offset, m.bit_size) for m in t.members))


class TypeImporter:
    """Maps type ids of `source` into `target`, collecting the types to append."""

    def __init__(self, target: Btf, source: Btf):
        self.target = target
        self.source = source
        self.base = len(target.types)
        self.new: list[BtfType | None] = []
        self.mapping: dict[int, int] = {0: 0}
        self.keys: dict[Hashable, int] = {}
        self.records: dict[tuple[Hashable, ...], int] = {}
        for t in target.types[1:]:
            key = _key(t)
            if key is not None:
                self.keys.setdefault(key, t.id)
            elif t.kind in _RECORDS and t.name:
                self.records.setdefault(_shape(t), t.id)

    def _reserve(self) -> int:
        self.new.append(None)
        return self.base + len(self.new) - 1

    def _place(self, t: BtfType) -> None:
        self.new[t.id - self.base] = t

    def import_type(self, src_id: int, _depth: int = 0) -> int:
        if src_id in self.mapping:
            return self.mapping[src_id]
        if _depth > 256:
            raise BTFError(f"BTF type {src_id} nests too deeply to copy")
        t = self.source[src_id]
        if t.kind in _RECORDS:
            return self._import_record(t, _depth)
        if t.kind in (Kind.VAR, Kind.DATASEC, Kind.FUNC, Kind.DECL_TAG):
            raise BTFError(f"BTF type {src_id} ({t.kind.name}) cannot be part of a struct")

        def sub(i: int) -> int:
            return self.import_type(i, _depth + 1)

        copy = BtfType(0, t.kind, t.name, size=t.size, type_id=sub(t.type_id) if t.type_id else 0,
                       encoding=t.encoding, bits=t.bits, bit_offset=t.bit_offset,
                       elem_id=sub(t.elem_id) if t.kind == Kind.ARRAY else 0, count=t.count,
                       enumerators=list(t.enumerators), signed=t.signed,
                       params=[(n, sub(p)) for n, p in t.params], fwd_union=t.fwd_union)
        key = _key(copy)
        found = self.keys.get(key)
        if found is None:
            copy.id = found = self._reserve()
            self._place(copy)
            self.keys[key] = found
        self.mapping[src_id] = found
        return found

    def _import_record(self, t: BtfType, depth: int) -> int:
        if t.name:
            found = self.records.get(_shape(t))
            if found is not None:
                self.mapping[t.id] = found
                return found
        new_id = self._reserve()
        self.mapping[t.id] = new_id  # before the members: a struct may point to itself
        members = [Member(m.name, self.import_type(m.type_id, depth + 1), m.bit_offset, m.bit_size)
                   for m in t.members]
        copy = BtfType(new_id, t.kind, t.name, size=t.size, members=members)
        self._place(copy)
        if t.name:
            self.records[_shape(copy)] = new_id
        return new_id

    def array_index_id(self) -> int:
        """The INT every new ARRAY uses as its index type (the kernel checks it)."""
        wanted = BtfType(0, Kind.INT, ARRAY_SIZE_TYPE, size=4, bits=32)
        found = self.keys.get(_key(wanted))
        if found is None:
            wanted.id = found = self._reserve()
            self._place(wanted)
            self.keys[_key(wanted)] = found
        return found

    def appended(self) -> list[BtfType]:
        if any(t is None for t in self.new):
            raise BTFError("internal error: a reserved BTF type was never filled in")
        return [t for t in self.new if t is not None]


def merge_structs(target_blob: bytes, endian: str, source: Btf, names: list[str],
                  where: str) -> tuple[bytes, list[str]]:
    """`target_blob` plus the named structs from `source` that it lacks.

    Returns the new blob and the names that were copied. `where` names the
    header in error messages.
    """
    target = Btf.parse(target_blob)
    importer = TypeImporter(target, source)
    copied = []
    for name in names:
        if target.find(name, Kind.STRUCT) is not None:
            continue  # the program's BTF has it already: use it as it is
        found = source.find(name, Kind.STRUCT)
        if found is None:
            raise CompileError(f"struct {name} from {where} is not in the BTF clang emitted: "
                               "declare it completely (not only 'struct " + name + ";') in the header")
        importer.import_type(found.id)
        copied.append(name)
    if not copied:
        return target_blob, []
    has_arrays = any(t is not None and t.kind == Kind.ARRAY for t in importer.new)
    index_id = importer.array_index_id() if has_arrays else 0
    return BtfBlob(target_blob, endian).extend(importer.appended(), index_id), copied

