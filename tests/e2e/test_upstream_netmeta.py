"""eunomia-bpf's tc and xdp examples, compiled by our ecc and run by our
ecli exactly as their READMEs show (`ecc tc.bpf.c`, then `ecli run
./package.json`, no --ifname), and tc attach points chosen by doc comments
(`/// @tchook {"attach_point": ...}`), with real packets on lo of a network
namespace of the test's own.

The examples report through bpf_printk: their lines are read from tracefs'
`trace` (reading it consumes nothing), matched by the sending process's pid
and a datagram size no other test uses, and counted exactly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyeunomia.kernel import features

from ..compiler.ecc_programs import compiler, copy_sources  # noqa: F401 - compiler is a fixture
from ..conftest import EUNOMIA_EXAMPLES, assert_nothing_new_loaded, loaded_prog_ids, require
from .helpers import UPSTREAM, Running, command, run, temp_dir
from .test_netattach import FORCE_NETLINK, TCX_COUNT, filters, in_ns, netns, qdiscs  # noqa: F401 - netns: fixture

pytestmark = pytest.mark.usefixtures("kernel", "compiler")

EXAMPLES = EUNOMIA_EXAMPLES
TRACE = Path("/sys/kernel/tracing/trace")
DATAGRAMS = 3
# Sends COUNT datagrams of SIZE bytes to PORT on 127.0.0.1 and receives them
# all (so every packet has crossed lo when it returns), printing its pid.
SEND = ("import os, socket, sys; port, size, count = map(int, sys.argv[1:]); "
        "rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(('127.0.0.1', port)); rx.settimeout(5); "
        "tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "[tx.sendto(b'u' * size, ('127.0.0.1', port)) for _ in range(count)]; "
        "[rx.recv(65536) for _ in range(count)]; print(os.getpid())")


@pytest.fixture
def ns(netns: str) -> str:  # noqa: F811 - the fixture imported above
    """A network namespace of the test's own, lo up (test_netattach's)."""
    return netns


def example(name: str) -> Path:
    """A copy of the example's directory, compiled as its README says: `ecc NAME.bpf.c` there."""
    source = EXAMPLES / name
    require((source / f"{name}.bpf.c").exists(), f"eunomia-bpf's examples are not at {EXAMPLES}")
    here = temp_dir() / name
    here.mkdir()
    (here / f"{name}.bpf.c").write_bytes((source / f"{name}.bpf.c").read_bytes())
    done = run("ecc", f"{name}.bpf.c", cwd=here)
    assert done.returncode == 0, done.stderr
    return here


def send(ns: str, port: int, size: int, count: int = DATAGRAMS) -> int:
    """The sender's pid: lo delivers in the sender's softirq, so trace lines carry it."""
    return int(in_ns(ns, sys.executable, "-c", SEND, str(port), str(size), str(count)))


def trace_lines(pid: int, text: str, expected: int, timeout: float = 10) -> list[str]:
    """The lines of tracefs' buffer by task `pid` containing `text`, once
    `expected` have shown up (and a moment more, for any extra)."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"^\s*\S+-{pid}\s.*{re.escape(text)}$")
    while True:
        found = [line for line in TRACE.read_text(errors="replace").splitlines() if pattern.match(line)]
        if len(found) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(0.3)
    return [line for line in TRACE.read_text(errors="replace").splitlines() if pattern.match(line)]


def ecli_in(ns: str, here: Path, *args: str, netlink: bool = False) -> Running:
    python = [sys.executable, "-c", FORCE_NETLINK] if netlink else command("ecli")
    return Running(["ip", "netns", "exec", ns, "env", "-C", str(here), *python, *args], "attached")


def upstream_entry(name: str) -> dict[str, object]:
    doc = json.loads((UPSTREAM / f"{name}.json").read_text())
    entry = doc["meta"]["bpf_skel"]["progs"][0]
    assert isinstance(entry, dict)
    return entry


def test_tc_example_runs_as_its_readme_shows(ns: str):
    require(TRACE.exists(), "tracefs is not mounted at /sys/kernel/tracing")
    here = example("tc")
    package = json.loads((here / "package.json").read_text())
    # the program's entry is upstream ecc's, key for key (tests/fixtures/upstream/tc.json)
    assert package["meta"]["bpf_skel"]["progs"] == [upstream_entry("tc")]
    before = loaded_prog_ids()
    ecli = ecli_in(ns, here, "run", "./package.json")
    try:
        size = 700 + os.getpid() % 200
        pid = send(ns, 35000 + os.getpid() % 1000, size)
        lines = trace_lines(pid, f"Got IP packet: tot_len: {size + 28}, ttl: 64", DATAGRAMS)
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    assert len(lines) == DATAGRAMS, lines  # ingress only: each datagram once
    assert ("ecli: tc program 'tc_ingress' attaches to lo (ifindex 1), as its package's tchook.ifindex says; "
            "--ifname IFACE picks another\n") in ecli.stderr_lines
    assert in_ns(ns, sys.executable, "-c", TCX_COUNT).split() == ["0", "0"]
    assert "clsact" not in qdiscs(ns)
    assert_nothing_new_loaded(before)


def test_xdp_example_runs_as_its_readme_shows(ns: str):
    require(TRACE.exists(), "tracefs is not mounted at /sys/kernel/tracing")
    here = example("xdp")
    package = json.loads((here / "package.json").read_text())
    assert package["meta"]["bpf_skel"]["progs"] == [upstream_entry("xdp")]
    before = loaded_prog_ids()
    ecli = ecli_in(ns, here, "run", "./package.json")
    try:
        assert "xdp" in in_ns(ns, "ip", "link", "show", "dev", "lo")
        size = 500 + os.getpid() % 150
        pid = send(ns, 36000 + os.getpid() % 1000, size)
        lines = trace_lines(pid, f"packet size is {size + 28 + 14}", DATAGRAMS)
    finally:
        assert ecli.stop() == 0, ecli.stderr_lines
    assert len(lines) == DATAGRAMS, lines
    assert "xdp" not in in_ns(ns, "ip", "link", "show", "dev", "lo")
    assert_nothing_new_loaded(before)


def tcpkt_with(comments: dict[str, str]) -> Path:
    """tests/e2e/programs/tcpkt with a doc comment above each named program, built by ecc."""
    src, header = copy_sources("tcpkt", temp_dir())
    text = src.read_text()
    for prog, comment in comments.items():
        anchor = f'SEC("tc")\nint {prog}('
        assert anchor in text
        text = text.replace(anchor, comment + "\n" + anchor)
    src.write_text(text)
    out = src.parent / "out"
    done = run("ecc", str(src), str(header), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out / "package.json"


EGRESS = '/// @tchook {"attach_point": "BPF_TC_EGRESS"}'
INGRESS = '/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}'


@pytest.mark.parametrize("netlink", [False, True], ids=["tcx", "netlink"])
@pytest.mark.parametrize("one_on_egress", [True, False], ids=["one-egress", "two-egress"])
def test_tchook_attach_point_from_a_doc_comment_is_honoured(ns: str, netlink: bool, one_on_egress: bool):
    """Each program sees every datagram once, on the hook its comment names:
    ingress_ifindex is 1 (lo) on ingress and 0 on egress of a locally sent packet."""
    if not netlink:
        require(features.has_tcx(), "tcx (Linux 6.6)")
    package = tcpkt_with({"tc_one": EGRESS, "tc_two": INGRESS} if one_on_egress else
                         {"tc_one": INGRESS, "tc_two": EGRESS})
    progs = json.loads(package.read_text())["meta"]["bpf_skel"]["progs"]
    assert [p.get("tchook") for p in progs] == ([{"attach_point": "BPF_TC_EGRESS"},
                                                 {"attach_point": "BPF_TC_INGRESS", "ifindex": 1}] if one_on_egress
                                                else [{"attach_point": "BPF_TC_INGRESS", "ifindex": 1},
                                                      {"attach_point": "BPF_TC_EGRESS"}])
    port = 37000 + os.getpid() % 1000 + 7 * one_on_egress + 3 * netlink
    size = 100 + port % 300
    ecli = ecli_in(ns, package.parent, "run", "-j", "./package.json", "--port", str(port), netlink=netlink)
    try:
        if netlink:
            egress = "tc_one" if one_on_egress else "tc_two"
            assert egress in filters(ns, "egress") and egress not in filters(ns, "ingress")
        send(ns, port, size)
        events = ecli.json_events(lambda e: e["dport"] == port, count=2 * DATAGRAMS, timeout=20)
    finally:
        assert ecli.stop(signal.SIGTERM) == 0, ecli.stderr_lines
    extra = [json.loads(line) for line in ecli.rest() if line.startswith("{")]
    assert [e for e in extra if e["dport"] == port] == []
    egress_prog = 1 if one_on_egress else 2
    seen = sorted((e["prog"], e["ingress_ifindex"], e["len"]) for e in events)
    assert seen == sorted([(egress_prog, 0, 14 + 28 + size)] * DATAGRAMS +
                          [(3 - egress_prog, 1, 14 + 28 + size)] * DATAGRAMS)
    assert "clsact" not in qdiscs(ns) and filters(ns, "ingress") == filters(ns, "egress") == ""


def test_a_bad_tchook_fails_the_build_naming_the_line():
    src, header = copy_sources("tcpkt", temp_dir())
    text = src.read_text().replace('SEC("tc")\nint tc_two(', '/// @tchook {"attach_point": "BPF_TC_OUT"}\n'
                                   'SEC("tc")\nint tc_two(')
    src.write_text(text)
    line = text.splitlines().index("int tc_two(struct __sk_buff *skb)") + 1
    done = run("ecc", str(src), str(header), "-o", str(src.parent / "out"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ecc: error: {src}:{line}: tc_two.tchook: 'attach_point' must be one of BPF_TC_INGRESS, BPF_TC_EGRESS, "
        "BPF_TC_CUSTOM: fix the doc comment"]
    assert not (src.parent / "out" / "package.json").exists()


def test_a_tc_key_on_an_xdp_program_is_a_warning(tmp_path: Path):
    here = tmp_path / "x"
    here.mkdir()
    text = (EXAMPLES / "xdp" / "xdp.bpf.c").read_text().replace("/// @ifindex 1", '/// @tcopts {"handle": 1}')
    (here / "xdp.bpf.c").write_text(text)
    done = run("ecc", "xdp.bpf.c", cwd=here)
    assert done.returncode == 0, done.stderr
    assert "xdp.bpf.c:8: warning: @tcopts is read for tc programs only, and 'xdp_pass' is SEC(\"xdp\"): it is " \
           "kept but does nothing\n" in done.stderr


def test_xdp_flags_from_a_doc_comment_choose_the_mode(ns: str, tmp_path: Path):
    """`/// @flags 4` (XDP_FLAGS_DRV_MODE) on the example: lo has no native
    XDP, so the attach is refused, in one line, and nothing is left; with
    flags 0 (the example's) the kernel falls back to generic XDP."""
    require((EXAMPLES / "xdp" / "xdp.bpf.c").exists(), f"eunomia-bpf's examples are not at {EXAMPLES}")
    (tmp_path / "xdp.bpf.c").write_text((EXAMPLES / "xdp" / "xdp.bpf.c").read_text().replace("/// @flags 0",
                                                                                          "/// @flags 4"))
    run("ecc", "xdp.bpf.c", cwd=tmp_path)
    assert json.loads((tmp_path / "package.json").read_text())["meta"]["bpf_skel"]["progs"][0]["flags"] == 4
    before = loaded_prog_ids()
    done = subprocess.run(["ip", "netns", "exec", ns, "env", "-C", str(tmp_path), *command("ecli"), "run",
                           "./package.json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ecli: error: cannot attach program 'xdp_pass' (xdp): lo cannot run XDP in the mode the package's flags "
        "(0x4) ask for (EOPNOTSUPP): use another interface, or flags 0")
    assert "xdp" not in in_ns(ns, "ip", "link", "show", "dev", "lo")
    assert_nothing_new_loaded(before)
