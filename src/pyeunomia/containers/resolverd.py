"""The container resolver as a process of its own, for an exporter that
drops its privileges (containers/proxy.py starts it and asks it).

    python -I -m pyeunomia.cli.resolverd FD PARENT_PID [PARENT_UID]   (its entry point: cli/resolverd.py)

The runtimes' metadata is root's: the shims' working directories and mount
namespaces (/proc/PID/cwd, /proc/PID/ns/mnt) and the bundles under /run and
/var/lib. So the exporter, which serves the network as `nobody` with no
capability, leaves the reading to this process: it stays uid 0 (a uid-0
process owns every root-owned file and may connect to root's sockets without
any capability) but keeps only CAP_SYS_PTRACE, since a shim's
/proc/PID/cwd and /proc/PID/ns/mnt answer a caller whose capabilities are not
a superset of the shim's only with it (measured here: EACCES with no
capability, the bundle's path with CAP_SYS_PTRACE alone;
tests/e2e/test_containers_exporter.py::test_the_resolver_needs_only_cap_sys_ptrace).
It also sets no-new-privs (an exec of `ctr` gains nothing), dies with its
parent (EOF on its socket; PR_SET_PDEATHSIG for a parent killed while this
one is busy, for which its saved uid is the one the parent becomes,
PARENT_UID: see kernel/process.py die_with_parent), and holds no descriptor
but its end of a SOCK_SEQPACKET socketpair (and /dev/null on 0-2).

It answers one question, one message each way:

- request: a cgroup v2 id, 8 bytes little-endian; anything else ends it;
- reply: the id again (8 bytes), a status byte (NONE: no container, final;
  PENDING: not final yet; FOUND: a container), and for FOUND the
  Container's 8 fields, each a 2-byte length and at most MAX_FIELD bytes of
  UTF-8 (longer ones cut): at most MAX_REPLY bytes in all.

On start it sends HELLO, its effective capability mask (8 bytes) and the
reason it cannot name anything (UTF-8, empty when it can).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

from .metadata import Container

if TYPE_CHECKING:
    from .resolver import ContainerResolver

KEEP = {"CAP_SYS_PTRACE"}
HELLO = b"RSLV"
NONE, PENDING, FOUND = 0, 1, 2
MAX_FIELD = 1024
REPLY_HEAD = struct.Struct("<QB")
REQUEST = struct.Struct("<Q")
FIELD_LEN = struct.Struct("<H")
MAX_REPLY = REPLY_HEAD.size + len(Container._fields) * (FIELD_LEN.size + MAX_FIELD)
MAX_HELLO = len(HELLO) + 8 + 512


def encode_reply(cgroup_id: int, found: Container | None, final: bool) -> bytes:
    if found is None:
        return REPLY_HEAD.pack(cgroup_id, NONE if final else PENDING)
    out = [REPLY_HEAD.pack(cgroup_id, FOUND)]
    for value in found:
        data = str(value).encode("utf-8", "surrogatepass")[:MAX_FIELD]
        out += [FIELD_LEN.pack(len(data)), data]
    return b"".join(out)


def decode_reply(data: bytes) -> tuple[int, Container | None, bool]:
    """(cgroup id, container or None, final) from a reply; ValueError when it
    is not one."""
    if not REPLY_HEAD.size <= len(data) <= MAX_REPLY:
        raise ValueError(f"a reply of {len(data)} bytes")
    cgroup_id, status = REPLY_HEAD.unpack_from(data)
    if status in (NONE, PENDING):
        if len(data) != REPLY_HEAD.size:
            raise ValueError("a reply with bytes after its status")
        return cgroup_id, None, status == NONE
    if status != FOUND:
        raise ValueError(f"status {status}")
    fields = []
    at = REPLY_HEAD.size
    for _ in Container._fields:
        if at + FIELD_LEN.size > len(data):
            raise ValueError("a reply cut short")
        (n,) = FIELD_LEN.unpack_from(data, at)
        at += FIELD_LEN.size
        if n > MAX_FIELD or at + n > len(data):
            raise ValueError("a field cut short or too long")
        fields.append(data[at:at + n].decode("utf-8", "replace"))
        at += n
    if at != len(data):
        raise ValueError("a reply with bytes after its fields")
    return cgroup_id, Container(*fields), True


def serve(sock: socket.socket, lookup: ContainerResolver | None) -> int:
    """Answer until EOF (the exporter has gone): 0; 1 for anything that is
    not an 8-byte question. Without a resolver every answer is "none"."""
    while True:
        try:
            data = sock.recv(REQUEST.size + 1)
        except OSError:
            return 0
        if not data:
            return 0
        if len(data) != REQUEST.size:
            return 1
        (cgroup_id,) = REQUEST.unpack(data)
        found: Container | None = None
        final = True
        if lookup is not None:
            try:
                found, final = lookup.lookup(cgroup_id)
            except Exception:  # noqa: BLE001 - a bug here must cost one answer, never the exporter's labels
                found, final = None, False
        try:
            sock.send(encode_reply(cgroup_id, found, final))
        except OSError:
            return 0
