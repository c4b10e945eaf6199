"""--drop-caps (the default): once its programs are attached, every thread of
the exporter runs as user nobody (or --user), in its group with no
supplementary groups, non-dumpable, with no-new-privs and without
capabilities (with the API on: only those loading programs needs), and
everything a scrape reads still works: events, maps, run statistics, losses.
The API token file must be the exporter's user's alone."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from pyeunomia.kernel.caps import CAPABILITIES

from ..exporter.live import Exporter, Opener
from .helpers import ROOT, run, temp_dir
from .test_exporter_api import program_doc

pytestmark = pytest.mark.usefixtures("kernel")

API_CAPS = sum(1 << CAPABILITIES[c] for c in ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"))
NOBODY = "65534"


def identity(pid: int) -> dict[str, set[str]]:
    """Uid, Gid, Groups and NoNewPrivs of each thread: {field: {values}}."""
    out: dict[str, set[str]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in ("Uid", "Gid", "Groups", "NoNewPrivs"):
                out.setdefault(name, set()).add(" ".join(value.split()))
    return out


def assert_unprivileged(pid: int, user: str = NOBODY, group: str = NOBODY) -> None:
    ids = identity(pid)
    assert ids == {"Uid": {f"{user} {user} {user} {user}"}, "Gid": {f"{group} {group} {group} {group}"},
                   "Groups": {""}, "NoNewPrivs": {"1"}}, ids
    assert os.stat(f"/proc/{pid}/mem").st_uid == 0  # not dumpable: its user's other processes cannot ptrace it


def capabilities(pid: int) -> dict[str, set[int]]:
    """CapEff, CapPrm, CapInh and CapBnd of each thread: {set name: {values}}."""
    out: dict[str, set[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a request's thread that just ended
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":\t")
            if name in ("CapEff", "CapPrm", "CapInh", "CapBnd"):
                out.setdefault(name, set()).add(int(value, 16))
    return out


def both_configs(pid: int) -> str:
    """Events (the tutorial's labels) and the in-kernel opens map, read at scrape time."""
    kernel = (ROOT / "examples" / "opensnoop-kernel.yaml").read_text().split("programs:\n", 1)[1]
    return f"""programs:
  - name: opensnoop
    options: {{pid: {pid}}}
    metrics:
      counters:
        - name: dropped_opens
          labels: [{{name: comm}}, {{name: filename, from: fname}}]
{kernel}"""


def test_no_capabilities_and_scrapes_still_work():
    tmp = temp_dir()
    child = Opener(tmp, "c")
    target = tmp / "without-caps.txt"
    target.write_text("x")
    with Exporter(tmp, both_configs(child.pid)) as exp:
        assert f"privileges: uid {NOBODY}, gid {NOBODY}, no capabilities" in "".join(exp.running.stderr_lines)
        caps = capabilities(exp.pid)
        assert len(list(Path(f"/proc/{exp.pid}/task").iterdir())) >= 3  # main, http, one event thread
        assert caps == {"CapEff": {0}, "CapPrm": {0}, "CapInh": {0}, "CapBnd": {0}}, caps
        assert_unprivileged(exp.pid)
        child.do("open", target, 5)
        child.do("open", tmp / "absent", 2)
        exp.wait_for(lambda: exp.value("dropped_opens_total", comm=child.name, filename=str(target)) == 5,
                     what="5 opens counted from events")
        exp.wait_for(lambda: (exp.value("eunomia_opens_total", comm=child.name, result="ENOENT") or 0) >= 2,
                     what="the opens map read at scrape time")
        assert sum(exp.samples("eunomia_exporter_bpf_run_count_total").values()) > 0  # run statistics
        assert exp.value("eunomia_exporter_events_lost_total", id="0", program="opensnoop") == 0
        assert exp.stop() == 0
    child.close()


def test_the_api_keeps_what_loading_needs():
    tmp = temp_dir()
    token = secrets.token_hex(24)
    (tmp / "token").write_text(token)
    (tmp / "token").chmod(0o600)
    child = Opener(tmp, "k")
    target = tmp / "loaded-after-the-drop.txt"
    target.write_text("x")
    with Exporter(tmp, "programs: []\n", "--enable-api", "--api-token-file", str(tmp / "token")) as exp:
        caps = capabilities(exp.pid)
        assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == {API_CAPS}, caps
        assert_unprivileged(exp.pid)
        status, doc = exp.post("/start", program_doc(child.pid), token)  # loads and attaches after the drop
        assert (status, doc) == (200, {"id": 0})
        child.do("open", target, 2)
        exp.wait_for(lambda: exp.value("api_opens_total", comm=child.name, filename=str(target)) == 2,
                     what="2 opens through a program the API loaded")
        assert capabilities(exp.pid)["CapEff"] == {API_CAPS}  # the new event thread has no more
    child.close()


def test_no_drop_caps_keeps_them():
    tmp = temp_dir()
    mine = capabilities(os.getpid())
    with Exporter(tmp, "programs: []\n", "--no-drop-caps") as exp:
        assert "privileges: all kept (--no-drop-caps)" in "".join(exp.running.stderr_lines)
        assert capabilities(exp.pid)["CapEff"] == mine["CapEff"] != {0}
        assert exp.get("/metrics")[0] == 200


def test_another_user_and_group():
    tmp = temp_dir()
    with Exporter(tmp, "programs: []\n", "--user", "daemon:nogroup") as exp:
        assert_unprivileged(exp.pid, "1", NOBODY)
        assert capabilities(exp.pid)["CapEff"] == {0}
        assert exp.get("/metrics")[0] == 200


@pytest.mark.parametrize("owner", [65534, 1])
def test_a_token_file_of_another_user_is_refused(owner):
    """An ordinary user who owns the token file could write any token into it
    and load programs as root through the API."""
    tmp = temp_dir()
    token = tmp / "token"
    token.write_text(secrets.token_hex(24))
    token.chmod(0o600)
    os.chown(token, owner, owner)
    (tmp / "empty.yaml").write_text("programs: []\n")  # a config that serves: only the token may stop it
    result = run("eunomia-exporter", "-c", str(tmp / "empty.yaml"), "--listen", "127.0.0.1:0", "--enable-api",
                 "--api-token-file", str(token), timeout=20)
    assert result.returncode == 2
    assert result.stderr == (f"eunomia-exporter: error: --api-token-file: {token} belongs to uid {owner}, not to the "
                             f"exporter's user (uid 0): chown 0 {token}\n")


@pytest.mark.parametrize("text", ["no-such-user-here", "nobody:no-such-group"])
def test_an_unknown_user_is_one_line(text):
    tmp = temp_dir()
    result = run("eunomia-exporter", "-c", str(tmp / "none.yaml"), "--user", text)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--user: no " in result.stderr


def _token_in(directory: Path) -> Path:
    token = directory / "token"
    token.write_text(secrets.token_hex(24))
    token.chmod(0o600)
    return token


def _refused(token: Path, words: str) -> None:
    config = token.parent / "empty.yaml"
    config.write_text("programs: []\n")  # a config that serves: only the token may stop it
    result = run("eunomia-exporter", "-c", str(config), "--listen", "127.0.0.1:0", "--enable-api", "--api-token-file",
                 str(token), timeout=20)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


def test_a_token_behind_a_symlink_is_refused():
    """A user owning the token's directory could point a link at a root-owned
    file whose content is known (/sys/kernel/slab/*/ctor reads
    'init_once+0x0/0x10'), and call the API with that as the token."""
    tmp = temp_dir()
    link = tmp / "token"
    link.symlink_to("/proc/sys/kernel/ostype")  # root's, mode 0444 here; refused as a link before anything else
    _refused(link, "is a symbolic link")


def test_a_token_in_a_directory_another_user_controls_is_refused():
    tmp = temp_dir()
    theirs = tmp / "theirs"
    theirs.mkdir()
    token = _token_in(theirs)
    os.chown(theirs, 65534, 65534)
    _refused(token, "can be changed by users other than root")
    os.chown(theirs, 0, 0)
    theirs.chmod(0o777)  # anyone may write there, and it is not sticky
    _refused(token, "can be changed by users other than root")


def test_a_token_with_two_names_is_refused():
    tmp = temp_dir()
    token = _token_in(tmp)
    os.link(token, tmp / "another-name")
    _refused(token, "has 2 names")
