/* SPDX-License-Identifier: GPL-2.0 */
/* The container filter every catalogue tool shares (docs/writing-tools.md,
 * "Containers"): `--container NAME`, `--pod NAME` and `--namespace NAME` set
 * filter_cgroup_map before the load and keep cgroup_filter equal to the
 * cgroup v2 ids of the matching containers (containers/filter.py). With the
 * flag set and the map still empty every event is dropped, so nothing
 * unwanted shows before the runner has filled it.
 *
 * Included by a tool's .bpf.c after vmlinux.h and bpf_helpers.h;
 * scripts/rebuild_tools.py hashes it into each including tool's build.json. */
#ifndef PYEUNOMIA_CONTAINER_FILTER_BPF_H
#define PYEUNOMIA_CONTAINER_FILTER_BPF_H

/// Trace only the cgroups in cgroup_filter (the runner's --container, --pod, --namespace fill it)
const volatile bool filter_cgroup_map = false;

/* The cgroup v2 ids of the containers to trace, when filter_cgroup_map.
 * 1024 containers per node is above Kubernetes' default of 110 pods. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_filter SEC(".maps");

/* Whether an event of cgroup `cgid` passes the container filter: one hash
 * lookup when a filter is on, nothing otherwise (the flag is a constant the
 * verifier folds, so unfiltered runs do not even test it). */
static __always_inline bool container_allowed(__u64 cgid)
{
	return !filter_cgroup_map || bpf_map_lookup_elem(&cgroup_filter, &cgid);
}

#endif
