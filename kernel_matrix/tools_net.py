"""Kernel-matrix rows of the network tools (tcpconnect, tcpaccept, tcplife,
tcpstates, tcpconnlat, bindsnoop): one loopback IPv4 session or bind on the
row's free port, and the exact events it must give.

Standard library only: the guest imports this too.
"""

from __future__ import annotations

import os
import socket

from .actions import Ctx
from .checks import event
from .matrix import Program, row

V4 = str([127, 0, 0, 1] + [0] * 12)  # the events' raw 16-byte address field, as checks.normal shows it
V6 = str([0] * 15 + [1])
SENT, ANSWERED = 1000, 3000
IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT = 15, 19, 24


def cgroup_id() -> int:
    """This process's cgroup v2 id (the inode of its directory; the guests
    mount cgroup2 alone at /sys/fs/cgroup), which its sockets carry."""
    with open("/proc/self/cgroup") as f:
        rel = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    return os.stat("/sys/fs/cgroup" + rel).st_ino


def net_session(ctx: Ctx, family: socket.AddressFamily = socket.AF_INET) -> None:
    """Listen on the row's port, connect, send SENT bytes, answer ANSWERED,
    close the client, then the server end after its EOF, then the listener."""
    port, host = ctx["port"], "::1" if family == socket.AF_INET6 else "127.0.0.1"
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(1)
    client = socket.create_connection((host, port), timeout=5)
    conn, _ = server.accept()
    conn.settimeout(5)
    client.sendall(b"x" * SENT)
    got = 0
    while got < SENT:
        got += len(conn.recv(4096))
    conn.sendall(b"y" * ANSWERED)
    got = 0
    while got < ANSWERED:
        got += len(client.recv(4096))
    cport, fd = client.getsockname()[1], conn.fileno()
    client.close()
    while conn.recv(4096):
        pass
    conn.close()
    server.close()
    ctx.update(pid=os.getpid(), cport=cport, fd=fd, cgid=cgroup_id())


def net_session6(ctx: Ctx) -> None:
    """net_session over ::1."""
    net_session(ctx, socket.AF_INET6)


def net_bind(ctx: Ctx) -> None:
    """bind(2) a TCP socket with every option bindsnoop shows to the row's port:
    the IP_ ones are inet_sock bitfields before 6.6, inet_flags bits after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for option in (IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT):
        sock.setsockopt(socket.SOL_IP, option, 1)
    try:
        sock.bind(("127.0.0.1", ctx["port"]))
        ctx.update(pid=os.getpid(), fd=sock.fileno())
    finally:
        sock.close()


ROWS: tuple[Program, ...] = (
    row("tool/tcpconnect", None, "ecli run -j tcpconnect -P {port}", net_session,
        [event(pid="{pid}", af=2, saddr=V4, daddr=V4, dport="{port}")]),
    row("tool/tcpaccept", None, "ecli run -j tcpaccept -P {port}", net_session,
        [event(pid="{pid}", af=2, saddr=V4, sport="{port}", daddr=V4, dport="{cport}", fd="{fd}")]),
    # bytes_acked counts the SYN and FIN too: the server's FIN, the client's SYN and FIN
    row("tool/tcpaccept-6", None, "ecli run -j tcpaccept -6 -P {port}", net_session6,
        [event(pid="{pid}", af=10, saddr=V6, sport="{port}", daddr=V6, dport="{cport}", fd="{fd}")]),
    row("tool/tcplife", None, "ecli run -j tcplife -L {port}", net_session,
        [event(pid="{pid}", af=2, sport="{port}", dport="{cport}", tx_b=ANSWERED + 1, rx_b=SENT + 1,
               cgroup_id="{cgid}")]),
    row("tool/tcplife-6", None, "ecli run -j tcplife -6 -L {port}", net_session6,
        [event(pid="{pid}", af=10, saddr=V6, sport="{port}", daddr=V6, dport="{cport}", tx_b=ANSWERED + 1,
               rx_b=SENT + 1)]),
    row("tool/tcpstates", None, "ecli run -j tcpstates -L {port}", net_session,
        [event(pid="{pid}", oldstate=7, newstate=10, sport="{port}", saddr=V4),
         # the socket's cgroup (sock_cgroup.bpf.h): 5.10.223's sk_cgrp_data is still the u64 'val' layout
         event(oldstate=1, newstate=8, sport="{port}", dport="{cport}", daddr=V4, cgroup_id="{cgid}"),
         event(pid="{pid}", oldstate=10, newstate=7, sport="{port}")]),
    row("tool/tcpconnect-6", None, "ecli run -j tcpconnect -P {port}", net_session6,
        [event(pid="{pid}", af=10, saddr=V6, daddr=V6, dport="{port}")]),
    row("tool/tcpconnlat", None, "ecli run -j tcpconnlat", net_session,
        [event(pid="{pid}", af=2, lport="{cport}", dport="{port}", daddr=V4)]),
    # opts: 1 FREEBIND + 2 TRANSPARENT + 4 BIND_ADDRESS_NO_PORT + 8 REUSEADDR + 16 REUSEPORT
    row("tool/bindsnoop", None, "ecli run -j bindsnoop -P {port}", net_bind,
        [event(pid="{pid}", ret=0, proto=6, opts=31, port="{port}", af=2, addr=V4, fd="{fd}")]),
)
