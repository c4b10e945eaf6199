"""`cgroup`: a cgroup v2 directory (absolute, or relative to the cgroup2
mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system) as its
id, the directory's inode number, which bpf_get_current_cgroup_id() gives."""

from __future__ import annotations

import os

from ..decoders.cgroup import cgroup2_root, cgroup_id_and_level
from .base import ConverterType, Params, no_params


def parse(text: str, params: Params) -> int:
    root = cgroup2_root()
    if root is not None and os.path.isabs(text) and os.path.exists(text) and \
            not os.path.realpath(text).startswith(os.path.realpath(root)):
        raise ValueError(f"{text} is not under the cgroup v2 mount {root}: give a directory there")
    try:
        return cgroup_id_and_level(text)[0]
    except OSError as e:
        what = f"{text} does not exist" if isinstance(e, FileNotFoundError) and e.filename else str(e)
        raise ValueError(f"{what}: give a cgroup v2 directory, such as /sys/fs/cgroup/unified/user.slice "
                         "or user.slice") from None


CONVERTER = ConverterType("cgroup", (), parse, "a cgroup v2 directory (path)", no_params)
