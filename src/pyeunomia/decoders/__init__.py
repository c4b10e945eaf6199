"""Small decoders that turn kernel numbers into the names people read:
errno values, open(2) flags, cgroup ids. Shared by tool output and exporter
labels; each is pure (or reads only /sys/fs/cgroup) and tested on its own."""
