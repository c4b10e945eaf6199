"""The runner's container options, shared by `ecli run` and `opensnoop`:
`--containers` (container columns for the event's cgroup id) and the
kernel-side filters `--container NAME`, `--pod NAME`, `--namespace NAME`
(containers/filter.py has the convention a program follows)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..format.escape import escape_text

if TYPE_CHECKING:
    from ..containers.filter import ContainerFilter
    from ..format.package import Package
    from ..runner.program import Program


def add_container_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--containers", action="store_true",
                   help="add columns naming each event's container (runtime, name, Kubernetes pod and namespace), "
                        "from its cgroup id")
    p.add_argument("--container", action="append", default=[], metavar="NAME",
                   help="trace only this container (its name, Kubernetes container name, or id prefix of 12+ "
                        "digits), also when started later; repeatable (in the kernel)")
    p.add_argument("--pod", action="append", default=[], metavar="NAME",
                   help="trace only containers of this Kubernetes pod; repeatable (in the kernel)")
    p.add_argument("--namespace", action="append", default=[], metavar="NAME",
                   help="trace only containers of this Kubernetes namespace; repeatable (in the kernel)")


def container_filters(package: Package, values: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether a container filter was asked for; then sets the program's
    filter_cgroup_map global in `values`, or says in one line that the
    package does not follow the convention (or that the host has no cgroup
    v2 hierarchy, whose ids the BPF programs read)."""
    if args.containers or args.container or args.pod or args.namespace:
        from ..containers.resolver import shared_resolver

        try:
            shared_resolver()  # a host without cgroup v2 (v1 only) says so now, not per event
        except FileNotFoundError as e:
            raise UsageError(f"--container{'s' if args.containers else ''}: {e}") from None
    if not (args.container or args.pod or args.namespace):
        return False
    from ..containers.filter import FILTER_FLAG, FILTER_MAP  # only now: ~6 ms of start-up otherwise
    from ..format.options import global_options

    has_map = any(m.name == FILTER_MAP for m in package.spec.maps)
    has_flag = any(o.name == FILTER_FLAG for o in global_options(package, runner_owned=True))
    if not (has_map and has_flag):
        which = "--container" if args.container else "--pod" if args.pod else "--namespace"
        raise UsageError(f"{which}: {escape_text(package.name)} has no {FILTER_MAP} map and {FILTER_FLAG} global "
                         "to filter containers in the kernel (see docs/writing-tools.md, Containers)")
    values[FILTER_FLAG] = True
    return True


def start_container_filter(prog: Program, args: argparse.Namespace) -> ContainerFilter:
    """The filter of a loaded program, its map filled with the containers there are now."""
    from ..containers.filter import FILTER_MAP, ContainerFilter
    from ..containers.resolver import shared_resolver

    info = next(m for m in prog.loaded.maps() if m.name == FILTER_MAP)
    try:
        resolver = shared_resolver()
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    f = ContainerFilter(resolver, info.fd, info.key_size, info.value_size, names=args.container, pods=args.pod,
                        namespaces=args.namespace)
    f.sample_now()
    return f
