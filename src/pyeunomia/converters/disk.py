"""`disk`: a block device as the kernel's dev_t (MAJOR << 20 | MINOR, what
block tracepoints carry): a name (`sda`, `loop3`, `/dev/vda1`) read from
/sys/class/block/NAME/dev, `MAJ:MIN`, or a number taken as it is."""

from __future__ import annotations

import os
import re

from .base import ConverterType, Params, no_params, whole_number

SYS_BLOCK = "/sys/class/block"
MINOR_BITS = 20  # the kernel's MINORBITS (include/linux/kdev_t.h)


def kernel_dev(major: int, minor: int) -> int:
    if not (0 <= major < 1 << 12 and 0 <= minor < 1 << MINOR_BITS):
        raise ValueError(f"{major}:{minor} is not a device number: the major is below 4096, the minor below 1048576")
    return major << MINOR_BITS | minor


def parse(text: str, params: Params, sys_block: str = SYS_BLOCK) -> int:
    number = whole_number(text)
    if number is not None:
        if not 0 <= number < 1 << 32:
            raise ValueError(f"{number} is not a dev_t: give a disk name, MAJ:MIN or MAJOR << 20 | MINOR")
        return number
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text)
    if m:
        return kernel_dev(int(m.group(1)), int(m.group(2)))
    name = text.strip().removeprefix("/dev/")
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{text!r} is not a disk name: give one such as sda, a MAJ:MIN or a number")
    try:
        with open(os.path.join(sys_block, name, "dev")) as f:
            found = re.fullmatch(r"(\d+):(\d+)\s*", f.read())
    except OSError:
        try:
            known = sorted(os.listdir(sys_block))
        except OSError:
            known = []
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise ValueError(f"no block device is named {name!r}" + (f": give one of {shown}" if known else "")) \
            from None
    if found is None:
        raise ValueError(f"{sys_block}/{name}/dev does not hold MAJ:MIN")
    return kernel_dev(int(found.group(1)), int(found.group(2)))


CONVERTER = ConverterType("disk", (), parse, "a disk name (sda), MAJ:MIN or a dev_t", no_params)
