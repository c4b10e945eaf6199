"""Each converter: the values it gives for the forms it takes, and one-line
errors that say what to give instead."""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pyeunomia.converters import CONVERTERS, converter_of, disk
from pyeunomia.decoders.cgroup import cgroup2_root


def conv(name: str, text: str, **params: Any) -> Any:
    c, p = converter_of({"name": name, **params})
    return c.parse(text, p)


def refused(name: str, text: str, **params: Any) -> str:
    with pytest.raises(ValueError) as e:
        conv(name, text, **params)
    message = str(e.value)
    assert "\n" not in message and ": " in message  # what is wrong: what to do
    return message


def test_the_table_names_every_converter_of_the_spec():
    assert sorted(CONVERTERS) == ["bytes", "cgroup", "disk", "duration", "errno", "flags", "ifindex", "signal",
                                  "syscall", "uid"]


@pytest.mark.parametrize(("spec", "says"), [
    ("nope", "unknown converter 'nope': use one of cgroup, duration"),
    ({"name": "duration", "unit": "fortnights"}, "converter 'duration': unit must be one of ns, us, ms, s"),
    ({"name": "duration", "scale": 2}, "converter 'duration': unknown parameter 'scale'"),
    ({"name": "signal", "x": 1}, "converter 'signal': takes no parameters, got x"),
    ({"name": "flags"}, 'converter \'flags\': flags needs "names"'),
    ({"name": "flags", "names": {"A": -1}}, "names: 'A' must be a whole number from 0"),
    (3, "convert must be a converter name or"),
])
def test_bad_specs_are_refused(spec: Any, says: str):
    with pytest.raises(ValueError) as e:
        converter_of(spec)
    assert says in str(e.value)


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("10ms", "us", 10_000), ("2s", "ms", 2000), ("500us", "ns", 500_000), ("1.5m", "s", 90),
    ("100ns", "us", 0), ("7", "ms", 7), ("1.5", "us", 1), ("3µs", "ns", 3000), (" 4 ms ", "us", 4000),
    ("1h", "s", 3600), (".5s", "ms", 500),
])
def test_duration(text: str, unit: str, value: int):
    assert conv("duration", text, unit=unit) == value


def test_duration_defaults_to_microseconds_and_refuses_other_text():
    assert conv("duration", "2ms") == 2000
    assert "'10 parsecs' is not a duration: give a number with a unit (10ms, 2s, 500us) or a number of ms" == \
        refused("duration", "10 parsecs", unit="ms")
    refused("duration", "-5ms")


@pytest.mark.parametrize(("text", "value"), [
    ("512", 512), ("4K", 4096), ("4k", 4096), ("1M", 1 << 20), ("2G", 2 << 30), ("16KiB", 16384), ("1.5K", 1536),
    ("3KB", 3072), ("1T", 1 << 40), ("10b", 10),
])
def test_bytes(text: str, value: int):
    assert conv("bytes", text) == value


def test_bytes_refuses_what_is_no_size():
    assert refused("bytes", "lots") == "'lots' is not a size: give bytes, or a number with K, M, G (4K, 1M)"
    refused("bytes", "4X")


@pytest.mark.parametrize(("text", "value"), [("TERM", 15), ("SIGKILL", 9), ("term", 15), ("9", 9), ("0", 0),
                                              ("SIGRTMIN", 34), ("usr1", 10)])
def test_signal(text: str, value: int):
    assert conv("signal", text) == value


def test_signal_refuses_unknown_names_and_numbers():
    assert refused("signal", "BOGUS") == "'BOGUS' is not a signal: give a name (TERM, SIGKILL) or a number"
    assert "65 is not a signal number: give 0 to 64" in refused("signal", "65")
    refused("signal", "SIG_DFL")


@pytest.mark.parametrize(("text", "value"), [("openat", 257), ("execve", 59), ("read", 0), ("sys_write", 1),
                                              ("OPENAT", 257), ("42", 42), ("0x10", 16), ("openat2", 437)])
def test_syscall(text: str, value: int):
    assert conv("syscall", text) == value


def test_syscall_refuses_unknown_names():
    assert refused("syscall", "frobnicate") == ("'frobnicate' is not a syscall on this architecture: give a name "
                                               "such as openat, or a number")
    refused("syscall", "-1")


@pytest.mark.parametrize(("text", "value"), [("ENOENT", 2), ("-ENOENT", 2), ("eperm", 1), ("2", 2), ("-13", 13)])
def test_errno(text: str, value: int):
    assert conv("errno", text) == value


def test_errno_refuses_unknown_names():
    assert refused("errno", "EWHATEVER") == "'EWHATEVER' is not an errno name: give one such as ENOENT, or a number"
    refused("errno", "errorcode")


def test_uid():
    assert conv("uid", "root") == 0
    assert conv("uid", "nobody") == pwd.getpwnam("nobody").pw_uid
    assert conv("uid", "1234") == 1234
    assert refused("uid", "no-such-user-x") == "no user is named 'no-such-user-x': give a user name or a uid"
    refused("uid", str(1 << 32))


def test_ifindex():
    assert conv("ifindex", "lo") == socket.if_nametoindex("lo")
    assert conv("ifindex", "7") == 7
    assert refused("ifindex", "nosuchif0").startswith("no interface is named 'nosuchif0': give one of ")
    assert "lo" in refused("ifindex", "nosuchif0")
    refused("ifindex", "0")


def test_disk_names_maj_min_and_numbers_as_the_kernels_dev_t(tmp_path: Path):
    (tmp_path / "sda").mkdir()
    (tmp_path / "sda" / "dev").write_text("8:0\n")
    (tmp_path / "loop3").mkdir()
    (tmp_path / "loop3" / "dev").write_text("7:3\n")
    assert disk.parse("sda", {}, str(tmp_path)) == 8 << 20
    assert disk.parse("/dev/loop3", {}, str(tmp_path)) == 7 << 20 | 3
    assert conv("disk", "259:1") == 259 << 20 | 1
    assert conv("disk", "8388608") == 8388608  # a number is the dev_t already
    with pytest.raises(ValueError, match=r"no block device is named .sdz.: give one of loop3, sda$"):
        disk.parse("sdz", {}, str(tmp_path))
    for text in ("../sda", "1:99999999", "-1", "4294967296"):
        refused("disk", text)
    for name in sorted(os.listdir("/sys/class/block"))[:3]:  # this machine's disks, by stat(2) of /dev too
        dev = os.stat(f"/dev/{name}").st_rdev if os.path.exists(f"/dev/{name}") else None
        major, minor = map(int, Path(f"/sys/class/block/{name}/dev").read_text().split(":"))
        assert conv("disk", name) == major << 20 | minor
        assert dev is None or (os.major(dev), os.minor(dev)) == (major, minor)


def test_flags():
    names = {"O_CREAT": 64, "O_TRUNC": 512, "O_APPEND": 1024}
    assert conv("flags", "O_CREAT,O_TRUNC", names=names) == 576
    assert conv("flags", "o_append", names=names) == 1024
    assert conv("flags", "O_CREAT, 0x2", names=names) == 66
    assert refused("flags", "O_CREAT,O_NOPE", names=names) == (
        "'O_NOPE' is not one of the flags: give names from O_CREAT, O_TRUNC, O_APPEND separated by commas")


def test_cgroup_gives_the_directory_inode_as_its_id():
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy is mounted")  # a kernel feature, not a missing tool
    assert conv("cgroup", root) == os.stat(root).st_ino
    inside = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
    if inside:
        assert conv("cgroup", inside[0]) == os.stat(os.path.join(root, inside[0])).st_ino  # relative to the mount
        assert conv("cgroup", "/" + inside[0]) == os.stat(os.path.join(root, inside[0])).st_ino


def test_cgroup_refuses_what_is_no_cgroup():
    assert refused("cgroup", "/no/such/cgroup") == (
        "/no/such/cgroup does not exist: give a cgroup v2 directory, such as /sys/fs/cgroup/unified/user.slice or "
        "user.slice")
    with tempfile.TemporaryDirectory() as d:
        assert refused("cgroup", d) == f"{d} is not under the cgroup v2 mount {cgroup2_root()}: give a directory there"


def test_every_converter_says_what_it_takes():
    for c in CONVERTERS.values():
        assert c.syntax and c.syntax == c.syntax.strip()
