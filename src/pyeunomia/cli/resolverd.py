"""The container resolver process's entry point (containers/resolverd.py
serves; containers/proxy.py starts this with `python -I -m
pyeunomia.cli.resolverd FD PARENT_PID [PARENT_UID]` while the exporter is
still root): die with the exporter, keep no descriptor but the socket, drop
every capability but those KEEP names, then answer until EOF."""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys

from ..containers.resolver import ContainerResolver
from ..containers.resolverd import HELLO, KEEP, serve
from ..kernel import libbpf, process


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    parent_uid = int(argv[2]) if len(argv) > 2 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the exporter's to handle; EOF ends this one
    if not process.die_with_parent(parent, parent_uid):
        return 0
    process.close_fds_but(fd)
    os.setgroups([])  # uid 0 owns root's files: no group of the exporter's starter is needed
    process.drop_privileges(set(KEEP))
    sock = socket.socket(fileno=fd)
    reason = ""
    resolver = None
    try:
        resolver = ContainerResolver()
    except (OSError, ValueError) as e:
        reason = str(e)
    effective = libbpf.capget()[0]
    sock.send(HELLO + struct.pack("<Q", effective) + reason.encode("utf-8", "replace")[:512])
    return serve(sock, resolver)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
