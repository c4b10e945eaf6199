"""Hostile inputs several tests share: an HTTP server on 127.0.0.1 that drips
its answer (each byte well inside a per-read timeout, so only a deadline on
the whole download ends it), and a FIFO where a file is expected (opening
one for reading waits for a writer: forever)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HEADERS_THEN_DRIPPED_BODY = (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"{" + b" " * 99999)
DRIPPED_HEADERS = (b"", b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 100000 + b"\r\n\r\n")


@contextmanager
def dripping_server(prefix: bytes, rest: bytes, interval: float = 0.2) -> Iterator[str]:
    """Its base URL (http://127.0.0.1:PORT) while it serves; every connection
    gets `prefix`, then `rest` byte by byte, until it ends or the client goes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    port = listener.getsockname()[1]

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)  # the request
                conn.sendall(prefix)
                for i in range(len(rest)):
                    if stop.wait(interval):
                        return
                    conn.sendall(rest[i:i + 1])
            except OSError:
                return  # the client gave up

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def returns_promptly(fn: Callable[[], Any], fifos: list[Path], seconds: float = 5) -> Any:
    """fn()'s value (or the exception it raised, returned), asserting it took
    under `seconds`. Code that blocks on one of `fifos` is released (a writer
    opens and closes it) so the test fails instead of hanging."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as e:  # noqa: BLE001 - returned to the test
            outcome.append(e)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    blocked = thread.is_alive()
    while thread.is_alive() and time.monotonic() - start < seconds + 10:
        for path in fifos:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # the blocked reader sees EOF
            except OSError:
                pass
        thread.join(0.1)
    assert not blocked, f"blocked for {seconds} s (on a FIFO?)"
    return outcome[0]
