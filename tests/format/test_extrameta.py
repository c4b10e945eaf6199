"""Upstream's extra keys for attaching tc and xdp programs, and a map's
interpreter, read from packages built by upstream's ecc."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.errors import PackageError
from pyeunomia.format.extrameta import TcMeta, XdpMeta, interpreters, tc_meta, xdp_meta
from pyeunomia.format.package import Package

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def package(name: str, change: Callable[[dict[str, Any]], None] | None = None) -> Package:
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    if change is not None:
        change(doc["meta"]["bpf_skel"])
    return Package.from_json(json.dumps(doc), f"{name}.json")


def prog(**keys: Any) -> Callable[[dict[str, Any]], None]:
    def change(skel: dict[str, Any]) -> None:
        skel["progs"][0].update(keys)
    return change


def test_upstream_tc_package():
    assert tc_meta(package("tc"), "tc_ingress") == TcMeta(1, "ingress", 1, 1)


def test_upstream_xdp_package():
    assert xdp_meta(package("xdp"), "xdp_pass") == XdpMeta(1, 0, 0)


def test_keys_left_out_are_none():
    def strip(skel: dict[str, Any]) -> None:
        for key in ("tchook", "tcopts"):
            del skel["progs"][0][key]
    assert tc_meta(package("tc", strip), "tc_ingress") == TcMeta(None, None, None, None)
    assert tc_meta(package("tc"), "no_such_program") == TcMeta(None, None, None, None)
    assert xdp_meta(package("bootstrap"), "handle_exec") == XdpMeta(None, 0, 0)


def test_egress_and_other_options():
    p = package("tc", prog(tchook={"attach_point": "BPF_TC_EGRESS"}, tcopts={"priority": 9}))
    assert tc_meta(p, "tc_ingress") == TcMeta(None, "egress", None, 9)
    p = package("xdp", prog(flags=2, ifindex=3))
    assert xdp_meta(p, "xdp_pass") == XdpMeta(3, 2, 0)


@pytest.mark.parametrize(("keys", "says"), [
    ({"tchook": {"attach_point": "BPF_TC_SIDEWAYS"}},
     "tc.json: meta.bpf_skel.progs[0].tchook: 'attach_point' must be one of BPF_TC_INGRESS, BPF_TC_EGRESS, "
     "BPF_TC_CUSTOM"),
    ({"tcopts": {"handle": 1, "priority": 70000}},
     "tc.json: meta.bpf_skel.progs[0].tcopts: 'priority' must be an integer from 0 to 65535"),
    ({"tchook": {"ifindex": 0}}, "tc.json: meta.bpf_skel.progs[0].tchook: 'ifindex' must be an integer from 1 to"),
    ({"tchook": {"ifindex": True}}, "'ifindex' must be an integer"),
    ({"tchook": [1]}, "tc.json: meta.bpf_skel.progs[0]: 'tchook' must be an object"),
])
def test_bad_tc_keys_name_the_key(keys: dict[str, Any], says: str):
    with pytest.raises(PackageError) as e:
        tc_meta(package("tc", prog(**keys)), "tc_ingress")
    assert says in str(e.value)


@pytest.mark.parametrize(("keys", "says"), [
    ({"flags": 0x100}, "xdp.json: meta.bpf_skel.progs[0]: 'flags' has bits no XDP_FLAGS_* names (0x100)"),
    ({"flags": "SKB"}, "'flags' must be an integer"),
    ({"xdpopts": {"old_prog_fd": -3}}, "xdp.json: meta.bpf_skel.progs[0].xdpopts: 'old_prog_fd' must be an integer"),
])
def test_bad_xdp_keys_name_the_key(keys: dict[str, Any], says: str):
    with pytest.raises(PackageError) as e:
        xdp_meta(package("xdp", prog(**keys)), "xdp_pass")
    assert says in str(e.value)


def test_interpreters_other_than_plain_fields():
    assert interpreters(package("runqlat")) == []

    def stack_trace(skel: dict[str, Any]) -> None:
        skel["maps"][0]["intepreter"] = {"stack_trace": {"with_symbols": False}}
        skel["maps"][1]["intepreter"] = "default_struct"
    p = package("runqlat", stack_trace)
    assert interpreters(p) == [(p.meta.maps[0].name, "stack_trace")]
