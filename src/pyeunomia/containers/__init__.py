"""Containers named: a cgroup id as its container (runtime, id, name, image,
Kubernetes pod, namespace and container name), for the `--containers`
columns, the exporter's `container`/`pod`/`k8s_namespace` label decoders and
the kernel-side `--container/--pod/--namespace` filters (containers/filter.py).
"""

from .metadata import Container
from .paths import PathInfo, parse_cgroup_path, proc_cgroup_path
from .resolver import ContainerResolver, shared_resolver

__all__ = ["Container", "ContainerResolver", "PathInfo", "parse_cgroup_path", "proc_cgroup_path",
           "shared_resolver"]
