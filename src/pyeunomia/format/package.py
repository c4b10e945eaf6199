"""The eunomia-bpf package format: read, validate, build and write.

A package is JSON: {"bpf_object": base64(zlib(ELF)), "bpf_object_size": N,
"meta": {"bpf_skel": {...}, "export_types": [...], ...}}, and, from `ecc
--btfgen`, "btf_archive" and "btf_archive_size": minimal BTF for kernels
without their own (format/btfarchive.py). Upstream's `ecc -b` tar of a
package.json and such an archive is read too (Package.from_tar). Pure: no
kernel, no network. Unknown meta keys are kept, so a package read and written
again loses nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import PackageError
from .btf import BTFError, Kind
from .escape import escape_text
from .exports import ExportPlan, export_plan
from .layout import Layout, LayoutCache, struct_layout
from .objspec import MAP_PERF_EVENT_ARRAY, MAP_RINGBUF, ObjectSpec
from .runmeta import RunMeta, run_meta
from .units import size_text

if TYPE_CHECKING:
    from .btfarchive import BtfArchive

EUNOMIA_VERSION = "0.3.4"
DUMMY_PREFIX = "__eunomia_dummy"
SAMPLE_TYPES = ("log2_hist", "linear_hist", "default_kv")
MAX_EVENT_SIZE = 1 << 20  # a perf sample's size is 16 bits; ring buffers hold far less in practice
MAX_OBJECT_SIZE = 64 << 20  # a BPF object is KBs; refuse to inflate a zip bomb
OBJECT_NAME_LEN = 15  # libbpf's BPF_OBJ_NAME_LEN, less the NUL
# The JSON besides the bpf_object string: 1-5 KB in the upstream and shipped
# packages, so 1 MiB is 200 times the largest. Without a cap of its own a
# package within the 64 MiB file cap could be 60 MiB of '[],' for json.loads:
# 1.58 GiB and 6 s; it is refused in 0.06 s now, holding only its bytes. The
# costliest 1 MiB of metadata takes about 20 MiB, and a package costs memory
# in proportion to the object it carries (a 60 MiB one peaks at 4.2 times that).
MAX_META = 1 << 20
MAX_INT_TEXT = 100  # digits of a whole number; a 128-bit global's value has 39, Python reads at most 4300
_BLOB_KEYS = (re.compile(rb'"bpf_object"\s*:\s*"'), re.compile(rb'"btf_archive"\s*:\s*"'))
_BLOB_KEYS_TEXT = (re.compile(r'"bpf_object"\s*:\s*"'), re.compile(r'"btf_archive"\s*:\s*"'))
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\\"  # and "\/", JSON's escaped '/'


class CmdArg(NamedTuple):
    short: str | None = None
    long: str | None = None
    default: Any = None
    help: str | None = None
    metavar: str | None = None
    convert: Any = None  # a converter name or {"name": ..., params} (converters/), checked when used


class VariableMeta(NamedTuple):
    name: str
    type: str
    section: str
    description: str | None = None
    cmdarg: CmdArg = CmdArg()
    value: Any = None


class SampleMeta(NamedTuple):
    interval_ms: int
    type: str = "default_kv"
    unit: str = "(unit)"
    clear_map: bool = False


class MapMeta(NamedTuple):
    name: str
    ident: str
    mmaped: bool = False
    sample: SampleMeta | None = None


class ProgMeta(NamedTuple):
    name: str
    attach: str
    link: bool = True


class ExportType(NamedTuple):
    name: str
    type_id: int
    size: int
    members: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, Any], ...] = ()  # (member, its "column"): decoders/columns.py, checked with the layout


class Doc(NamedTuple):
    description: str | None = None
    brief: str | None = None
    details: str | None = None
    version: str | None = None
    positional: tuple[str, ...] = ()  # `@positional`: "interval", "count" or globals, by position
    runner_options: tuple[tuple[str, str], ...] = ()  # `@runner`: (runner option, its short name here)


class PackageMeta(NamedTuple):
    obj_name: str
    variables: tuple[VariableMeta, ...]
    maps: tuple[MapMeta, ...]
    progs: tuple[ProgMeta, ...]
    export_types: tuple[ExportType, ...]
    doc: Doc
    run: RunMeta  # upstream's top-level run settings, checked once here (format/runmeta.py)
    raw: dict[str, Any]

    @property
    def poll_timeout_ms(self) -> int:
        return self.run.poll_timeout_ms

    @property
    def perf_buffer_pages(self) -> int:
        return self.run.perf_buffer_pages


class Package:
    """A BPF object plus the metadata that says how to run and decode it."""

    def __init__(self, obj: bytes, meta: PackageMeta, origin: str = "<memory>",
                 btf_archive: BtfArchive | tuple[str, int | None] | None = None):
        self.object = obj
        self.meta = meta
        self.origin = origin
        self._btf_archive = btf_archive  # packed as in the JSON until a kernel without BTF asks for it

    @property
    def has_btf_archive(self) -> bool:
        return self._btf_archive is not None

    @cached_property
    def btf_archive(self) -> BtfArchive | None:
        """The minimal BTF it carries for kernels without their own, if any.
        Inflated and checked on first use only: a kernel with BTF never pays
        for it."""
        if self._btf_archive is None or not isinstance(self._btf_archive, tuple):
            return self._btf_archive
        from .btfarchive import unpack  # only for kernels without BTF: xz, tar

        return unpack(*self._btf_archive, self.origin)

    # -- reading -----------------------------------------------------------

    @classmethod
    def from_json(cls, text: bytes | str, origin: str = "<memory>") -> Package:
        _check_meta_size(text, origin)
        try:
            doc = json.loads(text, parse_int=_json_int)
        except (ValueError, RecursionError) as e:
            raise PackageError(f"{origin}: not a package: invalid JSON ({_short(e)})") from None
        if not isinstance(doc, dict):
            raise PackageError(f"{origin}: not a package: expected a JSON object")
        for key in ("bpf_object", "meta"):
            if key not in doc:
                raise PackageError(f"{origin}: not a package: missing '{key}'")
        obj = _inflate(doc["bpf_object"], doc.get("bpf_object_size"), origin)
        meta = parse_meta(doc["meta"], origin)
        pkg = cls(obj, meta, origin, _archive_fields(doc, origin))
        pkg.spec  # noqa: B018 - validate the ELF and BTF now, not at load
        pkg.check_export_types()
        return pkg

    @classmethod
    def from_tar(cls, data: bytes, origin: str = "<memory>") -> Package:
        """Upstream's `ecc -b` output: a tar of package.json, the object and a
        btfhub-archive/ tree of minimal BTF (format/btfarchive.py)."""
        from .btfarchive import read_tar

        text, archive = read_tar(data, origin)
        if text is None:
            raise PackageError(f"{origin}: a tar without a package.json: not an eunomia-bpf package")
        pkg = cls.from_json(text, f"{origin}: package.json")
        if pkg.has_btf_archive and len(archive):
            raise PackageError(f"{origin}: both the tar and its package.json carry kernel BTF: keep one")
        pkg.origin = origin
        if len(archive):
            pkg._btf_archive = archive
        return pkg

    @classmethod
    def from_object(cls, obj: bytes, name: str, origin: str = "<memory>", export: list[str] | None = None) -> Package:
        """A plain libbpf object: metadata comes from its ELF and BTF."""
        try:
            spec = ObjectSpec(obj)
        except PackageError as e:
            raise PackageError(f"{origin}: {e}") from None
        raw = build_meta(spec, name, export if export is not None else default_export(spec))
        pkg = cls(obj, parse_meta(raw, origin), origin)
        pkg.__dict__["spec"] = spec
        return pkg

    @cached_property
    def spec(self) -> ObjectSpec:
        try:
            return ObjectSpec(self.object)
        except PackageError as e:
            raise PackageError(f"{self.origin}: bpf_object: {e}") from None

    @property
    def name(self) -> str:
        return self.meta.obj_name.removesuffix("_bpf")

    @property
    def object_name(self) -> str:
        """The name libbpf is given for the object. libbpf names the internal
        maps after its first 8 bytes (`<name>.rodata`), and the loader finds
        the globals by that prefix, so both take it from here. libbpf keeps 15
        bytes, and letters, digits and '_' are all a map name keeps safely;
        anything else ('-', non-ASCII, a lone surrogate from JSON, an
        undecodable byte of a file name) becomes '_'."""
        return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_"
                       for c in self.meta.obj_name[:OBJECT_NAME_LEN])

    def check_export_types(self) -> None:
        cache = LayoutCache()  # one layout per struct, however many export types name it
        for t in self.meta.export_types:
            self.export_layout(t, cache)
        self.__dict__["exports"] = export_plan(self, cache)

    @cached_property
    def exports(self) -> ExportPlan:
        """Which struct each event buffer carries (format/exports.py)."""
        return export_plan(self)

    @cached_property
    def _structs(self) -> dict[str, int]:
        """Struct name -> id of the first struct so named (what Btf.find gives), for export types."""
        out: dict[str, int] = {}
        for t in self.spec.btf.types:
            if t.kind == Kind.STRUCT:
                out.setdefault(t.name, t.id)
        return out

    def export_layout(self, export: ExportType | None = None, cache: LayoutCache | None = None) -> Layout | None:
        """The layout of the event struct (the first export type), from BTF."""
        if export is None:
            if not self.meta.export_types:
                return None
            export = self.meta.export_types[0]
        btf = self.spec.btf
        type_id = export.type_id
        t = btf[type_id] if 0 < type_id < len(btf) else None
        if t is None or t.kind not in (Kind.STRUCT, Kind.UNION) or t.name != export.name:
            found = self._structs.get(export.name)
            if found is None:
                raise PackageError(f"{self.origin}: export type 'struct {escape_text(export.name)}' "
                                   "is not in the object's BTF")
            type_id = found
        try:
            layout = struct_layout(btf, type_id, cache)
        except BTFError as e:
            raise PackageError(f"{self.origin}: export type '{escape_text(export.name)}': {e}") from None
        if layout.size > MAX_EVENT_SIZE:  # writers pad short records to this size
            raise PackageError(f"{self.origin}: export type '{escape_text(export.name)}' is {layout.size} bytes: "
                               f"no event buffer carries records over {MAX_EVENT_SIZE >> 10} KiB")
        return layout

    def map_layout(self, map_name: str, which: str) -> Layout | None:
        """Layout of a map's key or value struct, when it is a struct."""
        m = self.spec.map(map_name)
        type_id = (m.key_type_id if which == "key" else m.value_type_id) if m else 0
        if not type_id or self.spec.btf.resolve(type_id).kind not in (Kind.STRUCT, Kind.UNION):
            return None
        return struct_layout(self.spec.btf, type_id)

    # -- writing -----------------------------------------------------------

    def to_json(self) -> str:
        """The package as JSON; the same package always gives the same text."""
        blob = base64.b64encode(zlib.compress(self.object, 9)).decode("ascii")
        doc: dict[str, Any] = {"bpf_object": blob, "bpf_object_size": len(self.object), "meta": self.meta.raw}
        archive = self._btf_archive
        if archive is not None and not isinstance(archive, tuple):
            from .btfarchive import pack

            archive = pack(archive) if len(archive) else None
        if archive is not None:
            doc["btf_archive"], doc["btf_archive_size"] = archive
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def doc_summary(doc: Any) -> str:
    """The first sentence of a package's `doc` (brief, else description),
    whitespace folded: what `ecli list` and README's catalogue table show."""
    text = " ".join(str(doc.get("brief") or doc.get("description") or "").split()) if isinstance(doc, dict) else ""
    m = re.match(r"(.*?[.!?])(?:\s|$)", text)
    return m.group(1) if m else text


def _archive_fields(doc: dict[str, Any], origin: str) -> tuple[str, int | None] | None:
    """The embedded archive's fields, type-checked; unpacked only when used."""
    text, size = doc.get("btf_archive"), doc.get("btf_archive_size")
    if text is None:
        if size is not None:
            raise PackageError(f"{origin}: btf_archive_size without a btf_archive")
        return None
    if not isinstance(text, str):
        raise PackageError(f"{origin}: btf_archive must be a base64 string")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise PackageError(f"{origin}: btf_archive_size must be a whole number")
    return text, size


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:120]


def _check_meta_size(text: bytes | str, origin: str) -> None:
    """Refuse more than MAX_META bytes besides the bpf_object and btf_archive
    strings, before json.loads. Each of those strings (found by its key, and
    only if it holds nothing but base64) is one JSON value however long, so
    whatever else the text holds, json.loads builds at most about MAX_META
    values."""
    if len(text) <= MAX_META:
        return
    blobs = 0
    for key, key_text in zip(_BLOB_KEYS, _BLOB_KEYS_TEXT, strict=True):
        span = b""
        if isinstance(text, str):
            found = key_text.search(text)
            if found is not None and (end := text.find('"', found.end())) >= 0:
                chars = text[found.end():end]
                span = chars.encode("ascii") if chars.isascii() else b"-"
        else:
            hit = key.search(text)
            if hit is not None and (end := text.find(b'"', hit.end())) >= 0:
                span = text[hit.end():end]
        blobs += 0 if span.translate(None, _BASE64) else len(span)
    if len(text) - blobs > MAX_META:
        raise PackageError(f"{origin}: not a package: more than {size_text(MAX_META)} of JSON besides the "
                           "bpf_object string (package metadata is KBs)")


def _json_int(text: str) -> int:
    if len(text) > MAX_INT_TEXT:  # not converted: Python refuses over 4300 digits, and it is slow near that
        raise ValueError(f"a whole number of {len(text)} digits")
    return int(text)


def _inflate(blob: Any, size: Any, origin: str) -> bytes:
    if not isinstance(blob, str):
        raise PackageError(f"{origin}: bpf_object must be a base64 string")
    try:
        packed = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise PackageError(f"{origin}: bpf_object is not valid base64") from None
    try:
        d = zlib.decompressobj()
        obj = d.decompress(packed, MAX_OBJECT_SIZE + 1)
    except zlib.error:
        raise PackageError(f"{origin}: bpf_object is not zlib data") from None
    if len(obj) > MAX_OBJECT_SIZE:
        raise PackageError(f"{origin}: bpf_object inflates beyond {MAX_OBJECT_SIZE >> 20} MiB")
    if not d.eof:
        raise PackageError(f"{origin}: bpf_object's zlib data is truncated")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise PackageError(f"{origin}: bpf_object_size must be an integer")
    if size is not None and size != len(obj):
        raise PackageError(f"{origin}: bpf_object_size says {size!r} but the object has {len(obj)} bytes")
    if not obj.startswith(b"\x7fELF"):
        raise PackageError(f"{origin}: bpf_object is not an ELF object")
    return obj


def _get(d: Any, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if not isinstance(d, dict):
        raise PackageError(f"{where}: expected an object")
    if key not in d or d[key] is None:
        if default is ...:
            raise PackageError(f"{where}: missing '{key}'")
        return default
    v = d[key]
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise PackageError(f"{where}: '{key}' must be {_article(names)}")
    return v


def _article(name: str) -> str:
    return {"str": "a string", "int": "an integer", "bool": "true or false", "list": "a list",
            "dict": "an object"}.get(name, name)


def parse_meta(raw: Any, origin: str = "<memory>") -> PackageMeta:
    """Validate and type the 'meta' object; every error names the bad key."""
    where = f"{origin}: meta"
    skel = _get(raw, "bpf_skel", dict, where)
    sw = where + ".bpf_skel"
    obj_name = _get(skel, "obj_name", str, sw)
    variables = []
    for i, sec in enumerate(_get(skel, "data_sections", list, sw, [])):
        secw = f"{sw}.data_sections[{i}]"
        sname = _get(sec, "name", str, secw)
        for j, v in enumerate(_get(sec, "variables", list, secw, [])):
            vw = f"{secw}.variables[{j}]"
            c = _get(v, "cmdarg", dict, vw, {})
            short = _get(c, "short", str, vw + ".cmdarg", None)
            if short is not None and len(short) != 1:
                raise PackageError(f"{vw}.cmdarg: 'short' must be one character")
            variables.append(VariableMeta(
                _get(v, "name", str, vw), _get(v, "type", str, vw), sname,
                _get(v, "description", str, vw, None),
                CmdArg(short, _get(c, "long", str, vw + ".cmdarg", None), c.get("default"),
                       _get(c, "help", str, vw + ".cmdarg", None), _get(c, "metavar", str, vw + ".cmdarg", None),
                       _get(c, "convert", (str, dict), vw + ".cmdarg", None)),
                v.get("value"),
            ))
    maps = []
    for i, m in enumerate(_get(skel, "maps", list, sw, [])):
        mw = f"{sw}.maps[{i}]"
        sample = None
        if m.get("sample") is not None if isinstance(m, dict) else False:
            s = _get(m, "sample", dict, mw)
            interval = _get(s, "interval", int, mw + ".sample")
            kind = _get(s, "type", str, mw + ".sample", "default_kv")
            if kind not in SAMPLE_TYPES or interval <= 0:
                raise PackageError(f"{mw}.sample: type must be one of {', '.join(SAMPLE_TYPES)} and interval > 0")
            sample = SampleMeta(interval, kind, _get(s, "unit", str, mw + ".sample", "(unit)"),
                                _get(s, "clear_map", bool, mw + ".sample", False))
        maps.append(MapMeta(_get(m, "name", str, mw), _get(m, "ident", str, mw),
                            _get(m, "mmaped", bool, mw, False), sample))
    progs = []
    for i, p in enumerate(_get(skel, "progs", list, sw, [])):
        pw = f"{sw}.progs[{i}]"
        progs.append(ProgMeta(_get(p, "name", str, pw), _get(p, "attach", str, pw), _get(p, "link", bool, pw, True)))
    exports = []
    for i, t in enumerate(_get(raw, "export_types", list, where, [])):
        tw = f"{where}.export_types[{i}]"
        members = tuple((_get(m, "name", str, f"{tw}.members[{j}]"), _get(m, "type", str, f"{tw}.members[{j}]"))
                        for j, m in enumerate(_get(t, "members", list, tw, [])))
        columns = tuple((m["name"], m["column"]) for m in _get(t, "members", list, tw, [])
                        if isinstance(m, dict) and isinstance(m.get("name"), str) and m.get("column") is not None)
        exports.append(ExportType(_get(t, "name", str, tw), _get(t, "type_id", int, tw, 0),
                                  _get(t, "size", int, tw, 0), members, columns))
    d = _get(skel, "doc", dict, sw, {})
    doc = Doc(*(_get(d, k, str, sw + ".doc", None) for k in ("description", "brief", "details", "version")))
    positional = _get(d, "positional", list, sw + ".doc", [])
    if not all(isinstance(n, str) for n in positional):
        raise PackageError(f"{sw}.doc: 'positional' must be a list of names")
    shorts = _get(d, "runner", dict, sw + ".doc", {})
    if not all(isinstance(v, str) and len(v) == 1 for v in shorts.values()):
        raise PackageError(f"{sw}.doc: 'runner' must map runner options to one-character short names")
    doc = doc._replace(positional=tuple(positional), runner_options=tuple(shorts.items()))
    return PackageMeta(
        obj_name, tuple(variables), tuple(maps), tuple(progs), tuple(exports), doc, run_meta(raw, where), raw,
    )


def default_export(spec: ObjectSpec) -> list[str]:
    """For a plain object: 'struct event' when the object has an event buffer."""
    has_buffer = any(m.type in (MAP_RINGBUF, MAP_PERF_EVENT_ARRAY) for m in spec.maps)
    return ["event"] if has_buffer and spec.btf.find("event", Kind.STRUCT) else []


def build_meta(spec: ObjectSpec, obj_name: str, export: list[str],
               docs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The meta object for `spec`, in the upstream field names and order.

    `docs` maps a variable, map or program name (or "" for the program itself)
    to the keys its doc comment gave (description, cmdarg, sample, ...).
    """
    docs = docs or {}
    btf = spec.btf
    sections: dict[str, list[dict[str, Any]]] = {}
    section_index = {s.name: s.index for s in spec.elf.sections}
    for g in sorted(spec.globals, key=lambda g: (section_index.get(g.section, 0), g.offset)):
        if g.name.startswith(DUMMY_PREFIX):
            continue
        var: dict[str, Any] = {"name": g.name, "type": g.type_name, "size": g.size, "offset": g.offset}
        var.update(docs.get(g.name, {}))
        sections.setdefault(g.section, []).append(var)
    maps: list[dict[str, Any]] = []
    for m in spec.maps:
        entry: dict[str, Any] = {"ident": m.name, "name": m.name}
        entry.update({k: v for k, v in docs.get(m.name, {}).items() if k in ("sample", "intepreter")})
        maps.append(entry)
    short = obj_name[:8]
    for sec in sections:
        maps.append({"ident": sec.lstrip("."), "mmaped": True, "name": f"{short}{sec}"})
    progs = [{"attach": p.section, "link": True, "name": p.name} for p in spec.programs]
    skel: dict[str, Any] = {
        "data_sections": [{"name": s, "variables": v} for s, v in sections.items()],
        "maps": maps, "obj_name": obj_name, "progs": progs,
    }
    if docs.get(""):
        skel["doc"] = docs[""]
    exports = []
    for name in export:
        t = btf.find(name, Kind.STRUCT)
        if t is None:
            raise PackageError(f"struct {name} is not in the object's BTF")
        members = [{"name": m.name, "type": btf.c_name(btf.strip_qualifiers(m.type_id)),
                    "offset": m.bit_offset // 8, "size": btf.size_of(m.type_id)} for m in t.members]
        exports.append({"members": members, "name": name, "size": t.size, "type_id": t.id})
    return {"bpf_skel": skel, "eunomia_version": EUNOMIA_VERSION, "export_types": exports}
