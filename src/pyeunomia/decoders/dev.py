"""`dev`: a block device number as its disk name ("sda", "nvme0n1p2"), from
/sys/dev/block/MAJOR:MINOR (a symlink whose last part is the name); a
number that names no block device shows as "MAJOR:MINOR".

The value is the kernel's dev_t (MKDEV: major << 20 | minor), as
bio->bi_bdev->bd_dev and libbpf-tools' biosnoop carry it; `"format":
"user"` takes the user-space encoding instead (stat's st_dev, glibc's
makedev). Names are cached per number for the run: a disk appearing later
is looked up on its first event."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType

MINORBITS = 20


def kernel_dev(value: int) -> tuple[int, int]:
    return value >> MINORBITS, value & ((1 << MINORBITS) - 1)


def user_dev(value: int) -> tuple[int, int]:
    return os.major(value), os.minor(value)


def dev_name(major: int, minor: int, root: str = "/sys/dev/block") -> str:
    try:
        return os.path.basename(os.readlink(f"{root}/{major}:{minor}"))
    except OSError:
        return f"{major}:{minor}"


def _make(params: Mapping[str, Any]) -> Decode:
    encoding = params.get("format", "kernel")
    if encoding not in ("kernel", "user"):
        raise ValueError("format: expected 'kernel' (MKDEV, the default) or 'user' (st_dev)")
    root = params.get("sysfs", "/sys/dev/block")
    if not isinstance(root, str):
        raise ValueError("sysfs: expected a path")
    split = kernel_dev if encoding == "kernel" else user_dev
    names: dict[int, str] = {}

    def decode(value: int) -> str:
        found = names.get(value)
        if found is None:
            if len(names) >= 4096:
                names.clear()
            found = names[value] = dev_name(*split(value), root=root)
        return found
    return decode


DECODER = DecoderType("dev", ("int",), ("format", "sysfs"), _make,
                      "a block device number (the kernel's dev_t) as its disk name")
