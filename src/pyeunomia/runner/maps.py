"""Read whole BPF maps from userspace (batched where the kernel allows), and
write single entries for the layers that fill a loaded program's maps
(containers/filter.py), so only the runner reaches kernel/ for them."""

from __future__ import annotations

from ..kernel import libbpf

PERCPU_MAP_TYPES = {5, 6, 10, 21}  # percpu hash, array, lru hash, cgroup storage
BATCH_CHUNK = 4096


def percpu_value_size(value_size: int) -> int:
    """The per-CPU stride of a per-CPU map's values: rounded up to 8 bytes."""
    return (value_size + 7) & ~7


def read_entries(fd: int, map_type: int, key_size: int, value_size: int, max_entries: int) -> list[tuple[bytes, bytes]]:
    """Every (key, value) in the map; a per-CPU value holds one slot per CPU."""
    if map_type in PERCPU_MAP_TYPES:
        value_size = percpu_value_size(value_size) * libbpf.num_possible_cpus()
    batch = libbpf.map_lookup_all(fd, key_size, value_size, max(1, min(max_entries, BATCH_CHUNK)))
    if batch is not None:
        keys, values, n = batch
        return [(keys[i * key_size:(i + 1) * key_size], values[i * value_size:(i + 1) * value_size]) for i in range(n)]
    out = []
    for key in libbpf.map_keys(fd, key_size, max_entries):
        value = libbpf.map_lookup(fd, key, value_size)
        if value is not None:
            out.append((key, value))
    return out


def clear_entries(fd: int, keys: list[bytes]) -> None:
    for key in keys:
        libbpf.map_delete(fd, key)


def write_entry(fd: int, key: bytes, value: bytes) -> None:
    libbpf.map_update(fd, key, value)


def delete_entry(fd: int, key: bytes) -> None:
    libbpf.map_delete(fd, key)
