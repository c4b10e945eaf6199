"""Which struct each event buffer carries (format/exports.py) and which record
sizes fit it, on upstream's own multiple-export-types assets and on sizes."""

from __future__ import annotations

import json
import re

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.exports import RecordCheck, perf_raw_size, record_check
from pyeunomia.format.package import Package
from pyeunomia.source import open_package
from tests.e2e.helpers import UPSTREAM


def upstream(name: str) -> Package:
    return open_package(str(UPSTREAM / f"{name}.json"))


def test_multiple_export_types_give_each_ring_its_own_struct():
    plan = upstream("multiple_export_ringbuf").exports
    assert {m: (b.layout.name, b.layout.size) for m, b in plan.buffers.items() if b.layout} == {
        "rb_exec": ("event_exec", 152), "rb_exit": ("event_exit", 40)}
    assert [f.name for f in plan.buffers["rb_exec"].layout.fields] == ["pid", "ppid", "comm", "filename"]
    assert plan.notes == []


def test_custom_members_describe_a_prefix_of_the_record():
    plan = upstream("multiple_custom_members").exports
    exec_ = plan.buffers["rb_exec"]
    assert [(f.name, f.offset, f.size) for f in exec_.layout.fields] == [
        ("pid", 0, 4), ("ppid", 4, 4), ("comm?", 8, 16), ("fname", 24, 127)]
    assert exec_.check is not None and exec_.check.longer and exec_.check.accepts(152)
    assert plan.buffers["rb_exit"].layout.name == "event_exit"


def test_overlapping_custom_members_are_refused_in_one_line():
    with pytest.raises(PackageError) as e:
        upstream("multiple_overlapping_members")
    assert "map 'rb_exec': export_config: member 'ppid' overlaps the member before it" in str(e.value)
    assert "\n" not in str(e.value)


def _with_meta(pkg: Package, change) -> bytes:
    doc = json.loads(pkg.to_json())
    change(doc["meta"])
    return json.dumps(doc).encode()


@pytest.mark.parametrize("config, message", [
    ({"btf_type_id": 99999}, "btf_type_id 99999 is not a type of the object's BTF"),
    ({"btf_type_id": 2}, "btf_type_id 2 is not a struct"),
    ("default", "export_config \"default\" is for sampled maps"),
    ({"btf_type_id": 1, "x": 2}, "expected \"no_export\", \"default\""),
    ({"custom_members": [{"name": "a"}]}, "custom_members[0] needs a name, an offset and a btf_type_id"),
])
def test_bad_export_configs_are_named(config, message):
    pkg = upstream("multiple_export_ringbuf")

    def change(meta):
        for m in meta["bpf_skel"]["maps"]:
            if m["name"] == "rb_exit":
                m["export_config"] = config
    with pytest.raises(PackageError) as e:
        Package.from_json(_with_meta(pkg, change), "bad.json")
    assert message in str(e.value) and "rb_exit" in str(e.value)


def test_a_buffer_without_export_config_is_not_read_in_multiple_mode():
    pkg = upstream("multiple_export_ringbuf")

    def change(meta):
        for m in meta["bpf_skel"]["maps"]:
            m.pop("export_config", None) if m["name"] == "rb_exec" else None
    plan = Package.from_json(_with_meta(pkg, change), "p.json").exports
    assert sorted(plan.buffers) == ["rb_exit"]


def test_old_packages_pick_the_export_type_the_program_writes():
    """export_types listing a helper struct first (upstream ecc lists a header's
    structs in BTF order and decodes every buffer with the first): the buffer
    takes the one whose size the program reserves, and a note says so."""
    pkg = upstream("multiple_export_ringbuf")

    def change(meta):
        del meta["enable_multiple_export_types"]
        for m in meta["bpf_skel"]["maps"]:
            m.pop("export_config", None)
        meta["export_types"] = [{"name": "event_exit", "members": [], "size": 40, "type_id": 0},
                                {"name": "event_exec", "members": [], "size": 152, "type_id": 0}]
    plan = Package.from_json(_with_meta(pkg, change), "p.json").exports
    assert plan.buffers["rb_exec"].layout.name == "event_exec"
    assert plan.buffers["rb_exit"].layout.name == "event_exit"
    assert plan.notes == ["map 'rb_exec' is decoded as struct event_exec: the program writes 152-byte records into "
                          "it, the size of that struct (the package lists struct event_exit first)"]


def test_perf_samples_are_padded_to_eight_bytes_with_their_size_word():
    # the kernel's perf_prepare_sample: round_up(size + 4, 8) - 4
    assert [perf_raw_size(n) for n in (1, 4, 12, 16, 20, 40, 152)] == [4, 4, 12, 20, 20, 44, 156]


def check(size: int, *, shortest: int | None = None, perf: bool = False, longer: bool = False,
          variable: bool = True) -> RecordCheck:
    exact = perf_raw_size(size) if perf else size
    return RecordCheck("events", "event", size, exact, shortest if shortest is not None else size, longer,
                       lambda: variable)


def test_record_sizes_that_fit():
    assert check(40).accepts(40)
    assert not check(40).accepts(48) and not check(40).accepts(16) and not check(40).accepts(44)
    assert check(40, perf=True).accepts(44) and not check(40, perf=True).accepts(48)
    assert check(40, longer=True).accepts(400)
    # a trailing array cut short: only where the program writes a computed size
    assert check(40, shortest=24).accepts(30)
    assert not check(40, shortest=24, variable=False).accepts(30)
    assert not check(40, shortest=24).accepts(20)


def test_describe_names_map_struct_and_both_sizes():
    line = check(16).describe(24)
    assert re.fullmatch(r"map 'events': a 24-byte record is not struct event \(16 bytes\): printed in hex, never "
                        r"decoded as it; name the struct it carries with '/// @export STRUCT' above the map and "
                        r"rebuild", line)
    assert "20 in a perf sample" in check(16, perf=True).describe(28)


def test_a_struct_ending_in_an_array_may_be_cut_short():
    pkg = upstream("bootstrap")
    layout = pkg.export_layout()
    c = record_check("rb", layout, perf=False)
    assert (c.size, c.exact, c.shortest) == (176, 176, 176)  # bootstrap's event ends in an enum
    ex = upstream("multiple_export_ringbuf").exports.buffers["rb_exec"].check
    assert (ex.size, ex.shortest) == (152, 24)  # event_exec ends in filename[127]
    assert not ex.accepts(100)  # the program reserves sizeof(*e): no shorter record is legitimate
