"""One wall-clock deadline over an outbound call: connect, TLS, request, headers, body.

A socket timeout bounds each read, not the call: a receiver that sends one header
byte every half second holds a call with a 1 s timeout for as long as it likes.
Here each call gets a `Deadline`; the connections of the adapters built below attach
their socket to the calling thread's deadline, and one watchdog thread per process
shuts those sockets down (`shutdown(SHUT_RDWR)`, which wakes a blocked read or write
in another thread; the socket is closed by its owner as usual) once the deadline has
passed. The caller sees a failed read and asks `expired` to call it a timeout.
Name resolution (`getaddrinfo`) cannot be interrupted this way and is not covered.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class Deadline:
    """The end of one call; the sockets it used are shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self._sockets = []


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, for TLS sockets too


class _Watchdog:
    """One thread expiring deadlines in the order they fall due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._due, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # first call, or a forked child
                self._thread = threading.Thread(target=self._run, name="couponsvc-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._due and (self._due[0][0] <= now or self._due[0][2].finished):
                    heapq.heappop(self._due)[2].expire()
                self._wake.wait(self._due[0][0] - now if self._due else None)


_WATCHDOG = _Watchdog()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """The calling thread's outbound call must end within `seconds` from now."""
    current = Deadline(seconds)
    previous, _local.deadline = getattr(_local, "deadline", None), current
    _WATCHDOG.watch(current)
    try:
        yield current
    finally:
        current.finish()
        _local.deadline = previous


def _attach(sock: socket.socket | None) -> None:
    current = getattr(_local, "deadline", None)
    if current is not None:
        current.attach(sock)


class Watched:
    """Connection mixin: every socket it connects or uses joins the thread's deadline."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)
        return sock

    def request(self, *args, **kwargs):
        _attach(getattr(self, "sock", None))  # a kept-alive connection
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):
        _attach(getattr(self, "sock", None))
        return super().getresponse(*args, **kwargs)


class _WatchedConnection(Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(Watched, HTTPSConnection):
    pass


def pool_classes(http_connection: type, https_connection: type) -> dict[str, type]:
    """urllib3 pool classes (for `PoolManager.pool_classes_by_scheme`) using these connections."""
    return {"http": type("Pool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
            "https": type("HTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection})}


class WatchedAdapter(HTTPAdapter):
    """A requests transport whose connections keep to the calling thread's deadline."""

    connections: tuple[type, type] = (_WatchedConnection, _WatchedHTTPSConnection)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = pool_classes(*self.connections)
