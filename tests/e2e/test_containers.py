"""Containers named and filtered, with real containers: one of containerd
(through `ctr`) and one of podman, each opening its marker file and
connecting to a listener on loopback when the test says so
(tests/e2e/containerenv.py). opensnoop (its own command and `ecli run`),
tcpconnect and the exporter (tests/e2e/test_containers_exporter.py) must name
each container; `--container` must show only the chosen ones, also
containers started after the tool."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.source import builtin_packages

from ..conftest import require
from .containerenv import Box, Containerd, image, import_into_containerd, sh
from .helpers import Running, command, temp_dir

pytestmark = pytest.mark.usefixtures("kernel")
RUN_ID = f"{os.getpid() % 100000}"


class Listener:
    """A TCP listener on 127.0.0.1 that accepts and closes: the containers connect to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


class Env:
    def __init__(self, image_name: str, listener: Listener):
        self.image, self.listener = image_name, listener
        self.boxes: list[Box] = []

    def start(self, runtime: str, name: str) -> Box:
        box = Box(runtime, f"{name}-{RUN_ID}", self.image, self.listener.port)
        self.boxes.append(box)
        return box


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from running_env()


def running_env() -> Iterator[Env]:
    """A containerd container and a podman one, removed at the end (with every container started later)."""
    import shutil

    for name in ("ctr", "containerd", "podman", "runc"):
        require(shutil.which(name) is not None, f"{name} is not installed (make test installs it)")
    require(os.geteuid() == 0, "containers need root")
    work = temp_dir()
    ctd = Containerd(work)
    listener = Listener()
    e = None
    try:
        image_name, archive = image()
        import_into_containerd(archive, image_name)
        e = Env(image_name, listener)
        e.start("containerd", "ctd")
        e.start("podman", "pod")
        yield e
    finally:
        for box in e.boxes if e else []:
            box.remove()
        listener.close()
        ctd.stop()


def expected_runtime(box: Box) -> str:
    return box.runtime  # "containerd" or "podman", as the resolver names them


def _opens_named(run: Running, boxes: list[Box]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Each box's open of its marker once every box made one round, and
    every event printed until then."""
    found: dict[str, dict[str, Any]] = {}
    every: list[dict[str, Any]] = []
    markers = {b.marker for b in boxes}

    def note(e: dict[str, Any]) -> bool:
        every.append(e)
        if e.get("fname") in markers and e["fname"] not in found:
            found[e["fname"]] = e
            return True
        return False
    for b in boxes:
        b.go()
    run.json_events(note, count=len(boxes), timeout=15)
    return found, every


@pytest.mark.parametrize("how", ["opensnoop", "ecli"])
def test_opensnoop_names_each_container(env: Env, how: str) -> None:
    argv = [*command("opensnoop"), "-j", "--containers"] if how == "opensnoop" else \
        [*command("ecli"), "run", "-j", "--containers", "opensnoop"]
    run = Running(argv, "attached")
    try:
        found, _ = _opens_named(run, env.boxes[:2])
    finally:
        run.stop()
    for box in env.boxes[:2]:
        e = found[box.marker]
        assert e["cgroup_id"] == box.cgroup_id
        assert (e["container_runtime"], e["container"], e["pod"], e["k8s_namespace"]) == \
            (expected_runtime(box), box.name, "", ""), e
        assert e["comm"] == "busybox" and e["ret"] >= 0


def test_table_shows_the_container_columns(env: Env) -> None:
    box = env.boxes[0]
    run = Running([*command("opensnoop"), "--containers"], "attached")
    try:
        header = run.wait_for(lambda line: "PATH" in line, timeout=10)[-1].split()
        box.go()
        line = run.wait_for(lambda line: line.rstrip().endswith(box.marker), timeout=10)[-1].split()
    finally:
        run.stop()
    assert header == ["PID", "COMM", "FD", "ERR", "RUNTIME", "CONTAINER", "POD", "NAMESPACE", "PATH"]
    assert line[1:] == ["busybox", "3", "0", "containerd" if box.runtime == "containerd" else "podman", box.name,
                        "-", "-", box.marker]


def test_tcpconnect_names_each_container(env: Env) -> None:
    require("tcpconnect" in builtin_packages(), "tcpconnect is not in this catalogue yet (issue 15's tools-net)")
    run = Running([*command("ecli"), "run", "-j", "--containers", "tcpconnect"], "attached")
    boxes = env.boxes[:2]
    seen: dict[str, dict[str, Any]] = {}
    try:
        for b in boxes:
            b.go()
        for _ in boxes:
            run.json_events(lambda e: e.get("dport") == env.listener.port and e.get("container") not in seen
                            and seen.setdefault(e["container"], e) is not None, timeout=15)
    finally:
        run.stop()
    assert sorted(seen) == sorted(b.name for b in boxes)
    for b in boxes:
        assert seen[b.name]["container_runtime"] == expected_runtime(b)
        assert seen[b.name]["daddr_text"] == "127.0.0.1"


def test_containers_started_after_the_tool_are_named(env: Env) -> None:
    """Their first events come while `runc create` still starts them (the
    shim is a grandparent then), and the column memo keeps the first answer."""
    run = Running([*command("opensnoop"), "-j", "--containers"], "attached")
    try:
        late = [env.start("containerd", "new-ctd"), env.start("podman", "new-pod")]
        seen, every = _opens_named(run, late)
    finally:
        run.stop()
    for b in late:
        assert (seen[b.marker]["container"], seen[b.marker]["container_runtime"]) == (b.name, b.runtime)
        # every event of its cgroup, from the runtime's first steps on, is named
        named = {(e["container"], e["container_runtime"]) for e in every if e["cgroup_id"] == b.cgroup_id}
        assert named == {(b.name, b.runtime)}


def test_container_filter_follows_containers_started_later(env: Env) -> None:
    late_names = [f"late-ctd-{RUN_ID}", f"late-pod-{RUN_ID}"]
    argv = command("opensnoop") + ["-j", "--containers"] + [a for n in late_names for a in ("--container", n)]
    others = filter_maps()  # other tools' (helpers running beside these tests)
    run = Running(argv, "attached")
    try:
        ours = filter_maps() - others
        assert len(ours) == 1, ours
        late = [env.start("containerd", "late-ctd"), env.start("podman", "late-pod")]
        time.sleep(1.0)  # the filter's rescan (every 0.25 s) and the runtime's metadata read
        for b in env.boxes[:2]:
            b.go()  # not chosen: must not show
        seen, every = _opens_named(run, late)
        in_map = filter_map_ids(*ours)
        late[0].remove()  # its cgroup goes: the filter takes it out of the map
        time.sleep(1.0)
        after_removal = filter_map_ids(*ours)
        again = env.start("containerd", "late-ctd")  # the same name again: a new cgroup, followed
        time.sleep(1.0)
        seen_again, _ = _opens_named(run, [again])
        after_restart = filter_map_ids(*ours)
    finally:
        run.stop()
    assert {e["container"] for e in seen.values()} == set(late_names)
    for b in late:
        assert seen[b.marker]["cgroup_id"] == b.cgroup_id  # the inode of its cgroup, read at its start
    # every event printed, the earlier containers' rounds included: only the chosen containers' cgroups
    assert {e["cgroup_id"] for e in every} <= {b.cgroup_id for b in late}, \
        sorted({(e["container"], e["fname"]) for e in every if e["cgroup_id"] not in {b.cgroup_id for b in late}})
    assert in_map == {late[0].cgroup_id, late[1].cgroup_id}
    assert after_removal == {late[1].cgroup_id}
    assert again.cgroup_id != late[0].cgroup_id
    assert seen_again[again.marker]["cgroup_id"] == again.cgroup_id
    assert after_restart == {late[1].cgroup_id, again.cgroup_id}


def filter_maps() -> set[int]:
    """The ids of every map named cgroup_filter."""
    return {m["id"] for m in json.loads(sh("bpftool", "-j", "map", "show").stdout) if m.get("name") == "cgroup_filter"}


def filter_map_ids(map_id: int) -> set[int]:
    """The cgroup ids in the running tool's cgroup_filter map."""
    out = sh("bpftool", "-j", "map", "dump", "id", str(map_id)).stdout
    entries = json.loads(out) if out.strip() else []
    ids = set()
    for e in entries:
        if "formatted" in e:
            ids.add(int(e["formatted"]["key"]))
        else:
            ids.add(int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"))
    return ids


def test_resolver_reads_the_runtimes_metadata(env: Env) -> None:
    from pyeunomia.containers import ContainerResolver

    resolver = ContainerResolver()
    resolver.scan()
    named = resolver.containers()
    for b in env.boxes[:2]:
        c = named[b.cgroup_id]
        assert (c.runtime, c.name, c.image, c.pod, c.namespace) == (b.runtime, b.name, env.image, "", "")
        if b.runtime == "containerd":
            assert (c.id, c.cgroup) == (b.name, f"/pyeunomia-test/{b.name}")
        else:
            cid = sh("podman", "inspect", "-f", "{{.Id}}", b.name).stdout.strip()
            assert (c.id, c.cgroup) == (cid, f"/libpod_parent/libpod-{cid}")
    assert resolver.matching(names=[env.boxes[1].name]) == {env.boxes[1].cgroup_id}


UPSTREAM_BOOTSTRAP = str(Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "bootstrap.json")


def test_a_package_without_the_conventions_is_refused_in_one_line() -> None:
    from .helpers import run as run_cmd

    out = run_cmd("ecli", "run", "--container", "x", "-d", "1", UPSTREAM_BOOTSTRAP)
    assert (out.returncode, out.stderr.splitlines()) == (2, [
        "ecli: error: --container: client has no cgroup_filter map and filter_cgroup_map global to filter "
        "containers in the kernel (see docs/writing-tools.md, Containers)"])
    out = run_cmd("ecli", "run", "--containers", "-d", "1", UPSTREAM_BOOTSTRAP)
    assert (out.returncode, out.stderr.splitlines()[-1]) == (1,
        "ecli: error: struct event: --containers: no cgroup id member (a __u64 named cgroup_id, from "
        "bpf_get_current_cgroup_id(), or a member whose @column has the cgroup decoder)")
