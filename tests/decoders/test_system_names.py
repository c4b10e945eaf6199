"""bytes, ksym, dev, exit_status, softirq, irq, uid."""

import os
import pwd

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.irq import parse_interrupts

INTERRUPTS = """           CPU0       CPU1
  0:         44          0   IO-APIC   2-edge      timer
  1:          9          0   IO-APIC   1-edge      i8042
 24:       1234          0  PCI-MSI 49152-edge      virtio0-input.0
NMI:          0          0   Non-maskable interrupts
"""


def test_bytes():
    decode = DECODERS["bytes"].make({})
    assert [decode(0), decode(1023), decode(1536), decode(3 << 30)] == ["0 B", "1023 B", "1.5 KiB", "3.0 GiB"]


def test_ksym_reads_kallsyms_once_and_looks_up(tmp_path):
    path = tmp_path / "kallsyms"
    decode = DECODERS["ksym"].make({"kallsyms": str(path)})  # not read when made: the file is not there yet
    path.write_text("ffffffff81000000 T _stext\nffffffff81000100 T vfs_read\nffffffff81000200 t helper\t[mod]\n")
    assert decode(0xFFFFFFFF81000112) == "vfs_read+0x12"
    path.unlink()  # read on the first address, then kept
    assert decode(0xFFFFFFFF81000100) == "vfs_read"
    assert decode(0xFFFFFFFF81000200) == "helper"
    assert decode(0x1000) == "0x1000"
    bare = DECODERS["ksym"].make({"kallsyms": str(tmp_path / "none"), "offset": False})
    assert bare(0xFFFFFFFF81000112) == "0xffffffff81000112"


def test_dev_names_from_sysfs(tmp_path):
    (tmp_path / "8:0").symlink_to("../../devices/pci0000:00/block/sda")
    (tmp_path / "259:2").symlink_to("../../devices/nvme/nvme0n1/nvme0n1p2")
    decode = DECODERS["dev"].make({"sysfs": str(tmp_path)})
    assert decode(8 << 20) == "sda"
    assert decode((259 << 20) | 2) == "nvme0n1p2"
    assert decode((7 << 20) | 3) == "7:3"
    user = DECODERS["dev"].make({"sysfs": str(tmp_path), "format": "user"})
    assert user(os.makedev(8, 0)) == "sda"
    with pytest.raises(ValueError, match="format"):
        DECODERS["dev"].make({"format": "mkdev"})


def test_exit_status():
    decode = DECODERS["exit_status"].make({})
    assert [decode(0), decode(1 << 8), decode(9), decode(11 | 0x80), decode(0x137f)] == [
        "0", "code 1", "signal 9 (SIGKILL)", "signal 11 (SIGSEGV), core", "stopped by SIGSTOP"]


def test_softirq_and_irq(tmp_path):
    softirq = DECODERS["softirq"].make({})
    assert [softirq(0), softirq(3), softirq(9), softirq(10)] == ["hi", "net_rx", "rcu", "10"]
    assert parse_interrupts(INTERRUPTS) == {0: "timer", 1: "i8042", 24: "virtio0-input.0"}
    path = tmp_path / "interrupts"
    path.write_text(INTERRUPTS)
    irq = DECODERS["irq"].make({"interrupts": str(path)})
    assert [irq(1), irq(24), irq(5)] == ["i8042", "virtio0-input.0", "5"]


def test_uid():
    decode = DECODERS["uid"].make({})
    assert decode(0) == pwd.getpwuid(0).pw_name
    free = next(u for u in range(60000, 65000) if not _exists(u))
    assert decode(free) == str(free)


def _exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False
