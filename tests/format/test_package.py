"""pyeunomia.format.package: the upstream packages, every corruption, and writing back."""

from __future__ import annotations

import base64
import copy
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.layout import FieldKind
from pyeunomia.format.package import (
    EUNOMIA_VERSION,
    MAX_OBJECT_SIZE,
    CmdArg,
    Doc,
    ExportType,
    MapMeta,
    Package,
    ProgMeta,
    SampleMeta,
    VariableMeta,
    build_meta,
    default_export,
    parse_meta,
)
from tests.btfbuilder import ENC_BOOL, ENC_SIGNED, LINKAGE_GLOBAL, STB_GLOBAL, BtfBuilder, bpf_object

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def fixture_text(name: str) -> str:
    return (UPSTREAM / f"{name}.json").read_text()


def fixture_doc(name: str) -> dict[str, Any]:
    return json.loads(fixture_text(name))


def fixture_object(name: str) -> bytes:
    return zlib.decompress(base64.b64decode(fixture_doc(name)["bpf_object"]))


def packed(obj: bytes) -> str:
    return base64.b64encode(zlib.compress(obj)).decode()


def load(doc: Any, origin: str = "pkg.json") -> Package:
    return Package.from_json(json.dumps(doc), origin)


def refused(doc: Any, origin: str = "pkg.json") -> str:
    with pytest.raises(PackageError) as err:
        load(doc, origin)
    return str(err.value)


# -- the upstream packages --------------------------------------------------------------------


def test_bootstrap_meta():
    pkg = Package.from_json(fixture_text("bootstrap"), "bootstrap.json")
    meta = pkg.meta
    assert pkg.origin == "bootstrap.json"
    assert pkg.name == "client"
    assert meta.obj_name == "client_bpf"
    assert meta.variables == (
        VariableMeta("min_duration_ns", "unsigned long long", ".rodata"),
        VariableMeta("__eunomia_dummy_event_ptr", "struct event *", ".bss"),
    )
    assert meta.maps == (
        MapMeta("exec_start", "exec_start"), MapMeta("rb", "rb"),
        MapMeta("client_b.rodata", "rodata", mmaped=True), MapMeta("client_b.bss", "bss", mmaped=True),
    )
    assert meta.progs == (ProgMeta("handle_exec", "tp/sched/sched_process_exec", True),
                          ProgMeta("handle_exit", "tp/sched/sched_process_exit", True))
    assert meta.export_types == (ExportType("event", 613, 176, (
        ("pid", "int"), ("ppid", "int"), ("exit_code", "unsigned int"), ("duration_ns", "unsigned long long"),
        ("comm", "char[16]"), ("filename", "char[127]"), ("exit_event", "bool"), ("et", "enum event_type"))),)
    assert meta.doc == Doc()
    assert (meta.poll_timeout_ms, meta.perf_buffer_pages) == (100, 64)
    assert meta.raw == fixture_doc("bootstrap")["meta"]
    assert len(pkg.object) == 47496
    assert pkg.object == fixture_object("bootstrap")


def test_runqlat_meta():
    pkg = Package.from_json(fixture_text("runqlat").encode(), "runqlat.json")
    assert pkg.name == "runqlat"
    assert [v.name for v in pkg.meta.variables] == ["filter_cg", "targ_per_process", "targ_per_thread",
                                                    "targ_per_pidns", "targ_ms", "targ_tgid",
                                                    "__eunomia_dummy_hist_ptr"]
    assert pkg.meta.variables[5] == VariableMeta("targ_tgid", "pid_t", ".rodata")
    assert pkg.meta.maps[2] == MapMeta("hists", "hists", False, SampleMeta(1000, "log2_hist", "(unit)", False))
    assert pkg.meta.export_types == (ExportType("hist", 22, 120, (("slots", "__u32[26]"), ("comm", "char[16]"))),)
    assert pkg.meta.raw["eunomia_version"] == "0.3.0"


def test_bootstrap_event_layout():
    layout = Package.from_json(fixture_text("bootstrap")).export_layout()
    assert layout is not None
    assert (layout.name, layout.size) == ("event", 176)
    assert [(f.name, f.offset, f.size, f.type_name, f.kind) for f in layout.fields] == [
        ("pid", 0, 4, "int", FieldKind.INT),
        ("ppid", 4, 4, "int", FieldKind.INT),
        ("exit_code", 8, 4, "unsigned int", FieldKind.INT),
        ("duration_ns", 16, 8, "unsigned long long", FieldKind.INT),
        ("comm", 24, 16, "char[16]", FieldKind.CHARS),
        ("filename", 40, 127, "char[127]", FieldKind.CHARS),
        ("exit_event", 167, 1, "bool", FieldKind.BOOL),
        ("et", 168, 4, "enum event_type", FieldKind.ENUM),
    ]
    assert layout.field("et").enum_names == {0: "EVENT_TYPE__ENTER", 1: "EVENT_TYPE__EXIT"}


def test_runqlat_hist_layout_and_map_layouts():
    pkg = Package.from_json(fixture_text("runqlat"))
    layout = pkg.export_layout()
    assert layout is not None
    assert [(f.name, f.offset, f.size, f.type_name) for f in layout.fields] == [
        ("slots", 0, 104, "__u32[26]"), ("comm", 104, 16, "char[16]")]
    value = pkg.map_layout("hists", "value")
    assert value is not None
    assert (value.name, value.size) == ("hist", 120)
    assert pkg.map_layout("hists", "key") is None  # a u32, not a struct
    assert pkg.map_layout("rb", "value") is None
    assert pkg.map_layout("start", "value") is None


def test_export_layout_finds_the_struct_by_name_when_the_type_id_is_stale():
    doc = fixture_doc("bootstrap")
    doc["meta"]["export_types"][0]["type_id"] = 5  # some other type in this object's BTF
    layout = load(doc).export_layout()
    assert layout is not None
    assert (layout.name, layout.size) == ("event", 176)
    doc["meta"]["export_types"][0]["type_id"] = 10**9
    layout = load(doc).export_layout()
    assert layout is not None
    assert layout.name == "event"


def test_export_type_missing_from_btf():
    doc = fixture_doc("bootstrap")
    doc["meta"]["export_types"][0]["name"] = "nope"
    assert refused(doc) == "pkg.json: export type 'struct nope' is not in the object's BTF"


def test_no_export_types_means_no_layout():
    doc = fixture_doc("bootstrap")
    doc["meta"]["export_types"] = []
    assert load(doc).export_layout() is None
    del doc["meta"]["export_types"]
    assert load(doc).export_layout() is None


@pytest.mark.parametrize(("obj_name", "given"), [
    ("client_bpf", "client_bpf"),
    ("\ud800", "_"),                      # a lone surrogate from JSON: not encodable at all
    ("\udcff", "_"),                      # an undecodable byte of a file name (ecli run $'\xff.bpf.o')
    ("prög-x_bpf", "pr_g_x_bpf"),          # libbpf would make 'ö' two '_' and '-' one in its map names
    ("a.b c\x1b", "a_b_c_"),
    ("a" * 40, "a" * 15),                 # libbpf keeps 15 bytes
])
def test_object_name_is_what_libbpf_keeps(obj_name, given):
    """The name libbpf gets, and the prefix the loader looks for its
    `<name[:8]>.rodata` under, are one and the same, encodable and unchanged
    by libbpf's own sanitising."""
    doc = fixture_doc("bootstrap")
    doc["meta"]["bpf_skel"]["obj_name"] = obj_name
    name = Package.from_json(json.dumps(doc)).object_name
    assert name == given
    assert name.encode("ascii") and len(name) <= 15


# -- writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bootstrap", "runqlat"])
def test_to_json_round_trip(name):
    pkg = Package.from_json(fixture_text(name))
    text = pkg.to_json()
    again = Package.from_json(text)
    assert again.object == pkg.object
    assert again.meta == pkg.meta
    assert again.to_json() == text
    doc = json.loads(text)
    assert list(doc) == ["bpf_object", "bpf_object_size", "meta"]
    assert doc["bpf_object_size"] == len(pkg.object)
    assert zlib.decompress(base64.b64decode(doc["bpf_object"])) == pkg.object
    assert doc["meta"] == fixture_doc(name)["meta"]


def test_unknown_meta_keys_survive_a_round_trip():
    doc = fixture_doc("runqlat")
    doc["meta"]["future_key"] = {"nested": [1, 2, 3]}
    doc["meta"]["bpf_skel"]["maps"][2]["sample"]["extra"] = "kept"
    again = json.loads(load(doc).to_json())
    assert again["meta"]["future_key"] == {"nested": [1, 2, 3]}
    assert again["meta"]["bpf_skel"]["maps"][2]["sample"]["extra"] == "kept"


# -- corrupted packages -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "p: not a package: invalid JSON (Expecting value: line 1 column 1 (char 0))"),
    ("{", "p: not a package: invalid JSON (Expecting property name enclosed in double quotes: "
          "line 1 column 2 (char 1))"),
    (b"\xff{}", "p: not a package: invalid JSON ('utf-8' codec can't decode byte 0xff in position 0: "
                "invalid start byte)"),
    ("[" * 100_000 + "]" * 100_000, "p: not a package: invalid JSON (maximum recursion depth exceeded while "
                                    "decoding a JSON array from a unicode string)"),
    ("[]", "p: not a package: expected a JSON object"),
    ('"text"', "p: not a package: expected a JSON object"),
    ('{"meta": {}}', "p: not a package: missing 'bpf_object'"),
    ('{"bpf_object": ""}', "p: not a package: missing 'meta'"),
])
def test_not_a_package(text, message):
    with pytest.raises(PackageError) as err:
        Package.from_json(text, "p")
    assert str(err.value) == message


def with_object(value: Any, size: Any = ..., name: str = "bootstrap") -> dict[str, Any]:
    doc = fixture_doc(name)
    doc["bpf_object"] = value
    if size is ...:
        del doc["bpf_object_size"]
    else:
        doc["bpf_object_size"] = size
    return doc


@pytest.mark.parametrize("value", [None, 5, ["x"], {"a": 1}, True])
def test_object_must_be_a_string(value):
    assert refused(with_object(value)) == "pkg.json: bpf_object must be a base64 string"


@pytest.mark.parametrize("value", ["!!!!", "abc", "YWJj\n", "YW Jj", "YW=j", "\u00e9\u00e9\u00e9\u00e9"])
def test_bad_base64(value):
    assert refused(with_object(value)) == "pkg.json: bpf_object is not valid base64"


@pytest.mark.parametrize("raw", [b"not zlib at all", b"\x78\x9c\xff\xff\xff\xff", b"\x1f\x8b\x08\x00"])
def test_bad_zlib(raw):
    assert refused(with_object(base64.b64encode(raw).decode())) == "pkg.json: bpf_object is not zlib data"


@pytest.mark.parametrize("size", [..., 47496])
def test_truncated_zlib_stream(size):
    stream = base64.b64decode(fixture_doc("bootstrap")["bpf_object"])
    value = base64.b64encode(stream[: len(stream) // 2]).decode()
    assert refused(with_object(value, size)) == "pkg.json: bpf_object's zlib data is truncated"


def test_empty_object():
    assert refused(with_object("")) == "pkg.json: bpf_object's zlib data is truncated"
    assert refused(with_object(packed(b""))) == "pkg.json: bpf_object is not an ELF object"


def test_trailing_bytes_after_the_zlib_stream_are_ignored():
    obj = fixture_object("bootstrap")
    value = base64.b64encode(zlib.compress(obj) + b"trailer").decode()
    assert load(with_object(value, len(obj))).object == obj


@pytest.mark.parametrize(("size", "shown"), [(1, "1"), (47495, "47495"), (-1, "-1"), (0, "0")])
def test_size_mismatch(size, shown):
    doc = fixture_doc("bootstrap")
    doc["bpf_object_size"] = size
    assert refused(doc) == f"pkg.json: bpf_object_size says {shown} but the object has 47496 bytes"


@pytest.mark.parametrize("size", ["47496", 47496.0, True, [47496]])
def test_size_of_the_wrong_type(size):
    doc = fixture_doc("bootstrap")
    doc["bpf_object_size"] = size
    assert refused(doc) == "pkg.json: bpf_object_size must be an integer"


def test_size_may_be_absent_or_null():
    assert load(with_object(fixture_doc("bootstrap")["bpf_object"])).object == fixture_object("bootstrap")
    assert load(with_object(fixture_doc("bootstrap")["bpf_object"], None)).object == fixture_object("bootstrap")


@pytest.mark.parametrize("raw", [b"hello", b"\x7fEL", b"{}" * 40, b"MZ" + bytes(100)])
def test_not_elf(raw):
    assert refused(with_object(packed(raw))) == "pkg.json: bpf_object is not an ELF object"


def test_elf_that_is_not_a_bpf_object():
    raw = b"\x7fELF\x01\x01\x01" + bytes(57)
    assert refused(with_object(packed(raw))) == "pkg.json: bpf_object: not a 64-bit ELF object"


def test_elf_without_btf():
    obj = bytearray(fixture_object("bootstrap"))
    obj[obj.index(b".BTF\0")] = ord("x")  # rename the section
    assert refused(with_object(packed(bytes(obj)))) == (
        "pkg.json: bpf_object: the object has no BTF (.BTF section): compile it with clang -g")


def test_zlib_bomb_is_capped():
    bomb = base64.b64encode(zlib.compress(bytes(MAX_OBJECT_SIZE + 1), 9)).decode()
    assert refused(with_object(bomb)) == "pkg.json: bpf_object inflates beyond 64 MiB"


def test_object_of_exactly_the_cap_is_inflated():
    # the cap itself is allowed: it fails later, for not being an ELF object
    blob = base64.b64encode(zlib.compress(bytes(MAX_OBJECT_SIZE), 9)).decode()
    assert refused(with_object(blob, MAX_OBJECT_SIZE)) == "pkg.json: bpf_object is not an ELF object"


@pytest.mark.parametrize("digits", ["9" * 5000, "-" + "9" * 101])
def test_a_huge_number_is_refused_by_its_length(digits):
    """Python's own refusal (4300 digits) read 'use sys.set_int_max_str_digits() to increase the l'."""
    text = fixture_text("bootstrap").replace('"bpf_object_size":47496', f'"bpf_object_size":{digits}')
    with pytest.raises(PackageError) as err:
        Package.from_json(text, "p")
    assert str(err.value) == f"p: not a package: invalid JSON (a whole number of {len(digits)} digits)"


def big_package(meta_pad: int, escape_slashes: bool = False) -> str:
    """The bootstrap package with 2 MiB of incompressible bytes after its ELF object, and `meta_pad`
    bytes of empty lists in its metadata."""
    obj = fixture_object("bootstrap") + bytes(range(256)) * 8192
    blob = base64.b64encode(zlib.compress(obj, 1)).decode()
    doc = fixture_doc("bootstrap")
    doc.update(bpf_object="@", bpf_object_size=len(obj))
    doc["meta"]["pad"] = [[]] * (meta_pad // 3)
    blob = blob.replace("/", "\\/") if escape_slashes else blob
    return json.dumps(doc, separators=(",", ":")).replace('"@"', f'"{blob}"')


def test_metadata_has_a_cap_of_its_own():
    """Everything but the bpf_object string: 1 MiB, whatever the object's size, checked before json.loads."""
    assert Package.from_json(big_package(1000), "p").object == fixture_object("bootstrap") + bytes(range(256)) * 8192
    assert Package.from_json(big_package(1000, escape_slashes=True).encode(), "p").meta.obj_name == "client_bpf"
    for text in (big_package(1 << 20), big_package(1 << 20).encode(), fixture_text("bootstrap")[:-1] + ', "pad": "'
                 + "x" * (1 << 20) + '"}'):
        with pytest.raises(PackageError) as err:
            Package.from_json(text, "p")
        assert str(err.value) == ("p: not a package: more than 1 MiB of JSON besides the bpf_object string "
                                  "(package metadata is KBs)")


# -- the meta object ---------------------------------------------------------------------------


def meta_error(edit, name: str = "bootstrap") -> str:  # type: ignore[no-untyped-def]
    doc = fixture_doc(name)
    edit(doc["meta"])
    return refused(doc)


def setitem(path: list[Any], value: Any):  # type: ignore[no-untyped-def]
    def edit(meta: dict[str, Any]) -> None:
        target: Any = meta
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return edit


DELETE = object()
M = "pkg.json: meta"
S = "pkg.json: meta.bpf_skel"


@pytest.mark.parametrize(("path", "value", "message"), [
    (["bpf_skel"], DELETE, f"{M}: missing 'bpf_skel'"),
    (["bpf_skel"], None, f"{M}: missing 'bpf_skel'"),
    (["bpf_skel"], [], f"{M}: 'bpf_skel' must be an object"),
    (["bpf_skel", "obj_name"], DELETE, f"{S}: missing 'obj_name'"),
    (["bpf_skel", "obj_name"], 7, f"{S}: 'obj_name' must be a string"),
    (["bpf_skel", "data_sections"], {}, f"{S}: 'data_sections' must be a list"),
    (["bpf_skel", "data_sections", 0], "x", f"{S}.data_sections[0]: expected an object"),
    (["bpf_skel", "data_sections", 0, "name"], DELETE, f"{S}.data_sections[0]: missing 'name'"),
    (["bpf_skel", "data_sections", 1, "variables"], "v", f"{S}.data_sections[1]: 'variables' must be a list"),
    (["bpf_skel", "data_sections", 0, "variables", 0], 3, f"{S}.data_sections[0].variables[0]: expected an object"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "name"], 1,
     f"{S}.data_sections[0].variables[0]: 'name' must be a string"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "type"], DELETE,
     f"{S}.data_sections[0].variables[0]: missing 'type'"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "description"], ["d"],
     f"{S}.data_sections[0].variables[0]: 'description' must be a string"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], "c",
     f"{S}.data_sections[0].variables[0]: 'cmdarg' must be an object"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], {"short": "ab"},
     f"{S}.data_sections[0].variables[0].cmdarg: 'short' must be one character"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], {"short": ""},
     f"{S}.data_sections[0].variables[0].cmdarg: 'short' must be one character"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], {"short": 1},
     f"{S}.data_sections[0].variables[0].cmdarg: 'short' must be a string"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], {"long": False},
     f"{S}.data_sections[0].variables[0].cmdarg: 'long' must be a string"),
    (["bpf_skel", "data_sections", 0, "variables", 0, "cmdarg"], {"help": 2},
     f"{S}.data_sections[0].variables[0].cmdarg: 'help' must be a string"),
    (["bpf_skel", "maps"], "m", f"{S}: 'maps' must be a list"),
    (["bpf_skel", "maps", 0], 1, f"{S}.maps[0]: expected an object"),
    (["bpf_skel", "maps", 0, "ident"], DELETE, f"{S}.maps[0]: missing 'ident'"),
    (["bpf_skel", "maps", 1, "name"], 5, f"{S}.maps[1]: 'name' must be a string"),
    (["bpf_skel", "maps", 2, "mmaped"], "yes", f"{S}.maps[2]: 'mmaped' must be true or false"),
    (["bpf_skel", "maps", 2, "mmaped"], 1, f"{S}.maps[2]: 'mmaped' must be true or false"),
    (["bpf_skel", "maps", 0, "sample"], "s", f"{S}.maps[0]: 'sample' must be an object"),
    (["bpf_skel", "maps", 0, "sample"], {}, f"{S}.maps[0].sample: missing 'interval'"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": "1000"}, f"{S}.maps[0].sample: 'interval' must be an integer"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": True}, f"{S}.maps[0].sample: 'interval' must be an integer"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": 1.5}, f"{S}.maps[0].sample: 'interval' must be an integer"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": 0},
     f"{S}.maps[0].sample: type must be one of log2_hist, linear_hist, default_kv and interval > 0"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": 10, "type": "pie"},
     f"{S}.maps[0].sample: type must be one of log2_hist, linear_hist, default_kv and interval > 0"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": 10, "unit": 3}, f"{S}.maps[0].sample: 'unit' must be a string"),
    (["bpf_skel", "maps", 0, "sample"], {"interval": 10, "clear_map": "no"},
     f"{S}.maps[0].sample: 'clear_map' must be true or false"),
    (["bpf_skel", "progs"], None, None),
    (["bpf_skel", "progs", 0], [], f"{S}.progs[0]: expected an object"),
    (["bpf_skel", "progs", 0, "attach"], DELETE, f"{S}.progs[0]: missing 'attach'"),
    (["bpf_skel", "progs", 1, "link"], "true", f"{S}.progs[1]: 'link' must be true or false"),
    (["bpf_skel", "doc"], "d", f"{S}: 'doc' must be an object"),
    (["bpf_skel", "doc"], {"brief": 1}, f"{S}.doc: 'brief' must be a string"),
    (["export_types"], {}, f"{M}: 'export_types' must be a list"),
    (["export_types", 0], "e", f"{M}.export_types[0]: expected an object"),
    (["export_types", 0, "name"], DELETE, f"{M}.export_types[0]: missing 'name'"),
    (["export_types", 0, "type_id"], "613", f"{M}.export_types[0]: 'type_id' must be an integer"),
    (["export_types", 0, "size"], 176.0, f"{M}.export_types[0]: 'size' must be an integer"),
    (["export_types", 0, "members"], "m", f"{M}.export_types[0]: 'members' must be a list"),
    (["export_types", 0, "members", 3], 4, f"{M}.export_types[0].members[3]: expected an object"),
    (["export_types", 0, "members", 3, "type"], None, f"{M}.export_types[0].members[3]: missing 'type'"),
    (["poll_timeout_ms"], "100", f"{M}: 'poll_timeout_ms' must be an integer"),
    (["perf_buffer_pages"], False, f"{M}: 'perf_buffer_pages' must be an integer"),
])
def test_bad_meta(path, value, message):
    if message is None:  # progs: null is the same as absent
        doc = fixture_doc("bootstrap")
        doc["meta"]["bpf_skel"]["progs"] = None
        assert load(doc).meta.progs == ()
        return
    assert meta_error(setitem(path, value)) == message


def test_meta_must_be_an_object():
    doc = fixture_doc("bootstrap")
    doc["meta"] = [1]
    assert refused(doc) == "pkg.json: meta: expected an object"


def test_meta_with_every_optional_key():
    raw = {
        "bpf_skel": {
            "obj_name": "tool_bpf",
            "data_sections": [{"name": ".rodata", "variables": [
                {"name": "min_us", "type": "unsigned int", "description": "minimum latency",
                 "cmdarg": {"short": "m", "long": "min", "default": 10, "help": "only slower"}, "value": 5}]}],
            "maps": [{"name": "h", "ident": "h", "sample": {"interval": 500, "type": "linear_hist", "unit": "ms",
                                                            "clear_map": True}}],
            "progs": [{"name": "p", "attach": "kprobe/x", "link": False}],
            "doc": {"description": "d", "brief": "b", "details": "x", "version": "1.0"},
        },
        "poll_timeout_ms": 7,
        "perf_buffer_pages": 8,
    }
    meta = parse_meta(copy.deepcopy(raw), "o")
    assert meta.variables == (VariableMeta("min_us", "unsigned int", ".rodata", "minimum latency",
                                           CmdArg("m", "min", 10, "only slower"), 5),)
    assert meta.maps == (MapMeta("h", "h", False, SampleMeta(500, "linear_hist", "ms", True)),)
    assert meta.progs == (ProgMeta("p", "kprobe/x", False),)
    assert meta.doc == Doc("d", "b", "x", "1.0")
    assert (meta.poll_timeout_ms, meta.perf_buffer_pages) == (7, 8)
    assert meta.export_types == ()
    assert meta.raw == raw


def test_sample_type_defaults_to_default_kv():
    meta = parse_meta({"bpf_skel": {"obj_name": "x", "maps": [{"name": "m", "ident": "m",
                                                                  "sample": {"interval": 1}}]}})
    assert meta.maps[0].sample == SampleMeta(1, "default_kv", "(unit)", False)


# -- plain objects ------------------------------------------------------------------------------


def event_object(with_ringbuf: bool = True) -> bytes:
    b = BtfBuilder()
    i = b.int("int", 4, ENC_SIGNED)
    u64 = b.int("unsigned long long", 8)
    c = b.int("char", 1, ENC_SIGNED)
    bo = b.int("_Bool", 1, ENC_BOOL)
    event = b.struct("event", 32, [("pid", i, 0), ("ts", u64, 64), ("comm", b.array(c, 8), 128),
                                   ("ok", b.const(bo), 192)])
    members = [("type", b.ptr(b.array(i, 27 if with_ringbuf else 2)), 0), ("max_entries", b.ptr(b.array(i, 4096)), 64)]
    rb = b.var("events", b.struct("", 16, members), LINKAGE_GLOBAL)
    v_min = b.var("min_ns", b.const(b.volatile(u64)))
    v_dummy = b.var("__eunomia_dummy_event_ptr", b.ptr(event))
    v_on = b.var("enabled", bo)
    b.datasec(".maps", [(rb, 0, 16)])
    b.datasec(".rodata", [(v_min, 0, 8)])
    b.datasec(".bss", [(v_dummy, 0, 8), (v_on, 8, 1)])
    return bpf_object(b.build(), programs=[("trace_exec", "tp/sched/sched_process_exec")],
                      data={".rodata": (1000).to_bytes(8, "little")}, bss_size=16, maps_size=16,
                      symbols=[("events", ".maps", 0, 16, STB_GLOBAL), ("min_ns", ".rodata", 0, 8, STB_GLOBAL),
                               ("__eunomia_dummy_event_ptr", ".bss", 0, 8, STB_GLOBAL),
                               ("enabled", ".bss", 8, 1, STB_GLOBAL)])


def test_package_from_a_plain_object():
    pkg = Package.from_object(event_object(), "mytool", "mytool.bpf.o")
    assert pkg.meta.raw == {
        "bpf_skel": {
            "data_sections": [  # in the ELF's section order, as upstream writes them
                {"name": ".rodata", "variables": [{"name": "min_ns", "type": "unsigned long long", "size": 8,
                                                   "offset": 0}]},
                {"name": ".bss", "variables": [{"name": "enabled", "type": "_Bool", "size": 1, "offset": 8}]},
            ],
            "maps": [{"ident": "events", "name": "events"},
                     {"ident": "rodata", "mmaped": True, "name": "mytool.rodata"},
                     {"ident": "bss", "mmaped": True, "name": "mytool.bss"}],
            "obj_name": "mytool",
            "progs": [{"attach": "tp/sched/sched_process_exec", "link": True, "name": "trace_exec"}],
        },
        "eunomia_version": EUNOMIA_VERSION,
        "export_types": [{"members": [{"name": "pid", "type": "int", "offset": 0, "size": 4},
                                      {"name": "ts", "type": "unsigned long long", "offset": 8, "size": 8},
                                      {"name": "comm", "type": "char[8]", "offset": 16, "size": 8},
                                      {"name": "ok", "type": "_Bool", "offset": 24, "size": 1}],
                          "name": "event", "size": 32, "type_id": 7}],
    }
    assert pkg.name == "mytool"
    layout = pkg.export_layout()
    assert layout is not None
    assert [f.name for f in layout.fields] == ["pid", "ts", "comm", "ok"]
    again = Package.from_json(pkg.to_json(), "again")
    assert again.meta == pkg.meta
    assert again.object == pkg.object


def test_long_object_names_are_cut_to_eight_characters_in_map_names():
    pkg = Package.from_object(event_object(), "averylongname_bpf")
    assert [m.name for m in pkg.meta.maps][1:] == ["averylon.rodata", "averylon.bss"]
    assert pkg.name == "averylongname"


def test_default_export_needs_an_event_buffer():
    pkg = Package.from_object(event_object(with_ringbuf=False), "t")
    assert default_export(pkg.spec) == []
    assert pkg.meta.export_types == ()
    assert default_export(Package.from_object(event_object(), "t").spec) == ["event"]


def test_build_meta_with_docs_and_an_explicit_export():
    spec = Package.from_object(event_object(), "t").spec
    raw = build_meta(spec, "t", ["event"], docs={
        "": {"description": "traces execs"},
        "min_ns": {"description": "minimum", "cmdarg": {"long": "min"}},
        "events": {"sample": {"interval": 5}, "ignored": 1},
    })
    assert raw["bpf_skel"]["doc"] == {"description": "traces execs"}
    assert raw["bpf_skel"]["data_sections"][0]["variables"][0] == {
        "name": "min_ns", "type": "unsigned long long", "size": 8, "offset": 0, "description": "minimum",
        "cmdarg": {"long": "min"}}
    assert raw["bpf_skel"]["maps"][0] == {"ident": "events", "name": "events", "sample": {"interval": 5}}
    with pytest.raises(PackageError, match=r"^struct nope is not in the object's BTF$"):
        build_meta(spec, "t", ["nope"])


def test_from_object_refuses_a_bad_object():
    with pytest.raises(PackageError, match=r"^x\.o: not an ELF object \(bad magic\)$"):
        Package.from_object(b"\x7fELX" + bytes(100), "x", "x.o")


def test_export_type_whose_member_has_no_size():
    b = BtfBuilder()
    proto = b.func_proto(0, [])
    b.struct("event", 8, [("fn", proto, 0)])
    obj = bpf_object(b.build())
    doc = {"bpf_object": packed(obj), "bpf_object_size": len(obj),
           "meta": {"bpf_skel": {"obj_name": "x"}, "export_types": [{"name": "event", "type_id": 2}]}}
    assert refused(doc) == "pkg.json: export type 'event': BTF type 1 (FUNC_PROTO) has no size"


def test_export_type_larger_than_any_event_is_refused():
    b = BtfBuilder()
    char = b.int("char", 1)
    b.struct("event", 2 << 20, [("blob", b.array(char, 2 << 20), 0)])
    pkg = Package.from_object(bpf_object(b.build()), "big", export=["event"])
    refused = r"export type 'event' is 2097152 bytes: no event buffer carries records over 1024 KiB"
    with pytest.raises(PackageError, match=refused):
        pkg.export_layout()
