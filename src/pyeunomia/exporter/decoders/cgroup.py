"""`cgroup`: a cgroup v2 id as its path below the cgroup root
("/system.slice/ssh.service"); an id no longer present stays a number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...decoders.cgroup import CgroupNames
from . import Decode, register


@register("cgroup", accepts=("int",), help="a cgroup v2 id as its path below the cgroup v2 root",
          params=("root",))
def make(params: Mapping[str, Any]) -> Decode:
    root = params.get("root")
    if root is not None and not isinstance(root, str):
        raise ValueError("root: expected the path of a cgroup v2 mount")
    return CgroupNames(root).name
