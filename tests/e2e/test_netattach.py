"""tc and xdp programs on a real interface: lo of a network namespace of the
test's own (the machine's lo is shared with other tests), with real packets.

tc takes a tcx link where the kernel has tcx (6.6+, as here), else a netlink
cls_bpf filter on a clsact qdisc. The netlink path is forced by replacing
the tcx feature probe in the ecli process, as a kernel before 6.6 answers
it. Every way out must leave the interface as it was: no filter of ours,
and no qdisc unless it was there before."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.kernel import features

from ..compiler.ecc_programs import built, compiler  # noqa: F401 - compiler is a fixture
from ..conftest import assert_nothing_new_loaded, loaded_prog_ids, skip_unsupported
from .helpers import UPSTREAM, Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

FORCE_NETLINK = ("from pyeunomia.kernel import features; features.has_tcx = lambda: False; "
                 "from pyeunomia.cli.common import run_command; from pyeunomia.cli.ecli import main; "
                 "run_command('ecli', main)")
SEND_UDP = ("import socket, sys; port, size = int(sys.argv[1]), int(sys.argv[2]); "
            "rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(('127.0.0.1', port)); "
            "tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); tx.sendto(b'p' * size, ('127.0.0.1', port)); "
            "rx.settimeout(5); rx.recv(65536)")
TCX_COUNT = ("from pyeunomia.kernel import libbpf; "
             "print(libbpf.prog_query_count(1, 46), libbpf.prog_query_count(1, 47))")
_names = itertools.count()


@pytest.fixture
def netns(tool) -> Iterator[str]:
    """A fresh network namespace with lo up."""
    tool("ip")
    tool("tc")
    name = f"pyeu-{os.getpid()}-{next(_names)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ecli(ns: str, *args: str, netlink: bool = False) -> list[str]:
    python = [sys.executable, "-c", FORCE_NETLINK] if netlink else command("ecli")
    return ["ip", "netns", "exec", ns, *python, *args]


def in_ns(ns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def tc(ns: str, *what: str) -> str:
    return subprocess.run(["tc", "-n", ns, *what], capture_output=True, text=True, check=True).stdout


def qdiscs(ns: str) -> str:
    return tc(ns, "qdisc", "show", "dev", "lo")


def filters(ns: str, point: str) -> str:
    return tc(ns, "filter", "show", "dev", "lo", point)


def send_udp(ns: str, port: int, size: int) -> None:
    in_ns(ns, sys.executable, "-c", SEND_UDP, str(port), str(size))


def tcpkt(progs: dict[str, dict[str, Any]] | None = None) -> Path:
    """tests/e2e/programs/tcpkt built with ecc, each program's entry given the
    keys upstream's ecc writes from its doc comments (tchook, tcopts)."""
    doc = json.loads((built("tcpkt") / "package.json").read_text())
    for p in doc["meta"]["bpf_skel"]["progs"]:
        p.update((progs or {}).get(p["name"], {}))
    path = temp_dir() / "tcpkt.json"
    path.write_text(json.dumps(doc))
    return path


EGRESS_3_2 = {"tc_two": {"tchook": {"ifindex": 1, "attach_point": "BPF_TC_EGRESS"},
                         "tcopts": {"handle": 3, "priority": 2}}}


def packets_both_ways(run: Running, ns: str, port: int) -> None:
    """One datagram over lo: tc_one sees it on ingress, tc_two on egress."""
    size = 100 + port % 200
    send_udp(ns, port, size)
    seen = run.json_events(lambda e: e["dport"] == port, count=2, timeout=20)
    assert {(e["prog"], e["ingress_ifindex"], e["len"]) for e in seen} == {(1, 1, 14 + 28 + size),
                                                                           (2, 0, 14 + 28 + size)}


@pytest.mark.parametrize("way_out", ["SIGINT", "SIGTERM", "duration"])
def test_netlink_filters_see_packets_and_nothing_is_left(netns: str, way_out: str):
    port = 31000 + os.getpid() % 1000
    duration = ["-d", "6"] if way_out == "duration" else []
    run = Running(ecli(netns, "run", "-j", *duration, "--ifname", "lo", str(tcpkt(EGRESS_3_2)), "--port", str(port),
                       netlink=True), "attached")
    try:
        assert "clsact" in qdiscs(netns)
        assert "pref 2 bpf" in filters(netns, "egress") and "handle 0x3 tc_two" in filters(netns, "egress")
        assert "tc_one" in filters(netns, "ingress")  # no tcopts: the kernel chose its handle and priority
        packets_both_ways(run, netns, port)
    finally:
        code = run.proc.wait(20) if way_out == "duration" else run.stop(getattr(signal, way_out))
    assert code == 0, run.stderr_lines
    assert "clsact" not in qdiscs(netns)
    assert filters(netns, "ingress") == filters(netns, "egress") == ""


def test_netlink_leaves_a_qdisc_and_filters_it_did_not_add(netns: str):
    tc(netns, "qdisc", "add", "dev", "lo", "clsact")
    tc(netns, "filter", "add", "dev", "lo", "ingress", "prio", "5", "handle", "800::7", "protocol", "ip", "u32",
       "match", "ip", "dst", "127.0.0.9/32", "classid", "1:1")
    theirs = filters(netns, "ingress")
    progs = {"tc_one": {"tcopts": {"handle": 1, "priority": 1}}, **EGRESS_3_2}
    port = 32000 + os.getpid() % 1000
    run = Running(ecli(netns, "run", "-j", "--ifname", "lo", str(tcpkt(progs)), "--port", str(port), netlink=True),
                  "attached")
    try:
        assert "handle 0x1 tc_one" in filters(netns, "ingress") and "u32" in filters(netns, "ingress")
        packets_both_ways(run, netns, port)
    finally:
        assert run.stop(signal.SIGTERM) == 0, run.stderr_lines
    assert "clsact" in qdiscs(netns)  # someone else's: it stays, with their filter
    assert filters(netns, "ingress") == theirs and filters(netns, "egress") == ""


def test_netlink_error_after_attaching_takes_everything_down(netns: str):
    """Both programs ask for handle 1, priority 1 on ingress: the first is
    attached (and the qdisc added) when the second is refused."""
    same = {"tcopts": {"handle": 1, "priority": 1}}
    before = loaded_prog_ids()
    done = subprocess.run(ecli(netns, "run", "--ifname", "lo", str(tcpkt({"tc_one": same, "tc_two": same})),
                               netlink=True), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ecli: error: cannot attach program 'tc_two' (tc): a tc filter with handle 1 and priority 1 is already on "
        "lo ingress: remove it (tc filter del dev lo ingress handle 1 prio 1 bpf), or give the package other tcopts"]
    assert "clsact" not in qdiscs(netns) and filters(netns, "ingress") == ""
    assert_nothing_new_loaded(before)


def test_netlink_filter_someone_else_removed_is_no_error(netns: str):
    run = Running(ecli(netns, "run", "--ifname", "lo", str(tcpkt(EGRESS_3_2)), netlink=True), "attached")
    try:
        tc(netns, "qdisc", "del", "dev", "lo", "clsact")  # our filters and qdisc, gone under us
    finally:
        assert run.stop() == 0, run.stderr_lines
    assert [line for line in run.stderr_lines if "error" in line] == []
    assert "clsact" not in qdiscs(netns)


def test_tcx_links_see_packets_on_lo_by_default_and_nothing_is_left(netns: str):
    """No --ifname and no tchook.ifindex: lo (ifindex 1), as upstream, said
    in one line. tcx needs no qdisc, and its links die with ecli."""
    skip_unsupported("tcx (Linux 6.6)", features.has_tcx())
    port = 33000 + os.getpid() % 1000
    run = Running(ecli(netns, "run", "-j", str(tcpkt(EGRESS_3_2)), "--port", str(port)), "attached")
    try:
        assert "clsact" not in qdiscs(netns)
        assert in_ns(netns, sys.executable, "-c", TCX_COUNT).split() == ["1", "1"]
        packets_both_ways(run, netns, port)
    finally:
        assert run.stop() == 0, run.stderr_lines
    notes = [line for line in run.stderr_lines if "attaches to" in line]
    assert notes == ["ecli: tc program 'tc_one' attaches to lo (ifindex 1), upstream's default when neither the "
                     "package nor --ifname names an interface; --ifname IFACE picks another\n",
                     "ecli: tc program 'tc_two' attaches to lo (ifindex 1), as its package's tchook.ifindex says; "
                     "--ifname IFACE picks another\n"]
    assert in_ns(netns, sys.executable, "-c", TCX_COUNT).split() == ["0", "0"]


def test_upstream_tc_package_attaches_where_its_metadata_says(netns: str):
    """tc.json, built by upstream's ecc: tchook ifindex 1 ingress, tcopts
    handle 1 priority 1, honoured without any option."""
    run = Running(ecli(netns, "run", str(UPSTREAM / "tc.json"), netlink=True), "attached")
    try:
        assert "pref 1 bpf" in filters(netns, "ingress") and "handle 0x1 tc_ingress" in filters(netns, "ingress")
    finally:
        assert run.stop() == 0, run.stderr_lines
    assert "as its package's tchook.ifindex says" in "".join(run.stderr_lines)
    assert "clsact" not in qdiscs(netns) and filters(netns, "ingress") == ""


def xdp_package(**keys: Any) -> Path:
    doc = json.loads((UPSTREAM / "xdp.json").read_text())
    doc["meta"]["bpf_skel"]["progs"][0].update(keys)
    path = temp_dir() / "xdp.json"
    path.write_text(json.dumps(doc))
    return path


def test_upstream_xdp_package_attaches_to_its_ifindex(netns: str):
    run = Running(ecli(netns, "run", str(UPSTREAM / "xdp.json")), "attached")
    try:
        assert "xdp" in in_ns(netns, "ip", "link", "show", "dev", "lo")
        send_udp(netns, 34000, 64)
    finally:
        assert run.stop() == 0, run.stderr_lines
    assert ("ecli: xdp program 'xdp_pass' attaches to lo (ifindex 1), as its package's ifindex says; "
            "--ifname IFACE picks another\n") in run.stderr_lines
    assert "xdp" not in in_ns(netns, "ip", "link", "show", "dev", "lo")


def test_xdp_without_an_interface_attaches_to_lo_and_says_so(netns: str):
    doc = json.loads((UPSTREAM / "xdp.json").read_text())
    del doc["meta"]["bpf_skel"]["progs"][0]["ifindex"]
    path = temp_dir() / "xdp.json"
    path.write_text(json.dumps(doc))
    before = loaded_prog_ids()
    done = subprocess.run(ecli(netns, "run", "-d", "0.5", str(path)), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "xdp program 'xdp_pass' attaches to lo (ifindex 1), upstream's default" in done.stderr
    done = subprocess.run(ecli(netns, "run", "-d", "0.5", "--ifname", "lo", str(path)), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "attaches to" not in done.stderr  # the interface the user named needs no word
    assert_nothing_new_loaded(before)


def test_ifname_wins_over_the_packages_interface(netns: str):
    """A package naming an interface this machine lacks runs where --ifname says."""
    done = subprocess.run(ecli(netns, "run", "-d", "0.5", "--ifname", "lo", str(xdp_package(ifindex=77))),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "attaches to" not in done.stderr


@pytest.mark.parametrize(("keys", "says"), [
    ({"flags": 4}, "lo cannot run XDP in the mode the package's flags (0x4) ask for (EOPNOTSUPP)"),
    ({"xdpopts": {"old_prog_fd": 5}}, "asks to replace a program by file descriptor"),
    ({"ifindex": 77}, "the package's ifindex is 77, which no network interface here has: pass --ifname IFACE"),
], ids=["native-mode-on-lo", "old_prog_fd", "missing-ifindex"])
def test_xdp_metadata_the_interface_cannot_take_is_one_line(netns: str, keys: dict[str, Any], says: str):
    before = loaded_prog_ids()
    done = subprocess.run(ecli(netns, "run", str(xdp_package(**keys))), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
    assert "xdp" not in in_ns(netns, "ip", "link", "show", "dev", "lo")
    assert_nothing_new_loaded(before)


def test_xdp_generic_mode_flag_is_passed(netns: str):
    run = Running(ecli(netns, "run", str(xdp_package(flags=2))), "attached")  # XDP_FLAGS_SKB_MODE
    try:
        assert "xdpgeneric" in in_ns(netns, "ip", "link", "show", "dev", "lo")
    finally:
        assert run.stop() == 0, run.stderr_lines
