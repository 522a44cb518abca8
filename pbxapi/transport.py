"""The HTTP session under the PBX client: no retries, and every exchange ends by a deadline.

``requests`` bounds each socket read, not a whole exchange: a PBX that answers a byte at a
time keeps a request open for as long as it likes. But the budget counts a slot as held only
until its holder releases it or its hold bound passes, so an exchange must end within its hold.
``ExchangeDeadline`` arms a watchdog over the calling thread's exchange: when the deadline
passes it shuts the connection's socket down, and whatever read is blocked on it returns at
once (the client reports the error as a timeout). The pools of ``new_session()`` tell the
watchdog which connection the thread is using, and take it back from the watchdog before the
connection returns to the pool for another thread.

A connection in use also closes with a reset (SO_LINGER 0): a request still queued in the
kernel when an exchange is given up is discarded, never delivered to the PBX after the client
has given its slot back. An idle pooled connection, its exchange complete, closes gracefully.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_RESET_ON_CLOSE = (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
_CLOSE_GRACEFULLY = (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 0, 0))
SOCKET_OPTIONS = [*HTTPConnection.default_socket_options, _RESET_ON_CLOSE]

# While the connection of an expired exchange has no socket yet (still connecting), look again
# this often.
_RECHECK_SECONDS = 0.05

_current = threading.local()


class ExchangeDeadline:
    """A watchdog over the calling thread's exchange, as a context manager: ``expired`` tells
    whether the deadline passed (and the connection was shut down)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)
        self.expired = False
        self._lock = threading.Lock()
        self._connection: Any = None
        self._timer: threading.Timer | None = None
        self._done = False
        self._outer: ExchangeDeadline | None = None

    def __enter__(self) -> ExchangeDeadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        with self._lock:
            self._arm(self.seconds)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.deadline = self._outer
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._connection is not None:
                self._connection._exchange_deadline = None
                self._connection = None

    def attach(self, connection: Any) -> None:
        """The thread's exchange runs on ``connection`` now."""
        with self._lock:
            if self._done:
                return
            self._connection = connection
            connection._exchange_deadline = self

    def detach(self, connection: Any) -> None:
        """``connection`` goes back to its pool: it is no longer this exchange's."""
        with self._lock:
            if self._connection is connection:
                connection._exchange_deadline = None
                self._connection = None

    def _arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if not _shut_down(self._connection):
                self._arm(_RECHECK_SECONDS)


def _shut_down(connection: Any) -> bool:
    """End every read on the connection's socket now; False if it has no socket (yet)."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return False
    with contextlib.suppress(OSError):  # closed meanwhile: nothing left to end
        sock.setsockopt(*_RESET_ON_CLOSE)
        # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would first drop its
        # TLS state under the reading thread's feet.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    return True


def _linger(connection: Any, option: tuple[int, int, bytes]) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # closed meanwhile
            sock.setsockopt(*option)


class _WatchedPool:
    """Hands each connection to the calling thread's watchdog, and takes it back from it before
    the connection is pooled again; a connection in use closes with a reset, a pooled one
    (new ones get the reset from ``SOCKET_OPTIONS`` when they connect) gracefully."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        _linger(connection, _RESET_ON_CLOSE)
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(connection)
        return connection

    def _put_conn(self, conn: Any) -> None:
        owner = getattr(conn, "_exchange_deadline", None)
        if owner is not None:
            owner.detach(conn)
        _linger(conn, _CLOSE_GRACEFULLY)
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs.setdefault("socket_options", SOCKET_OPTIONS)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def session_prepare(session: requests.Session) -> requests.Session:
    """Mount the watched, retry-free adapter on ``session`` for http:// and https://."""
    # No retries: every attempt would be a request the budget did not grant.
    adapter = _DeadlineAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def new_session() -> requests.Session:
    session = session_prepare(requests.Session())
    session.headers["Accept"] = "application/json"
    session.trust_env = False  # no ~/.netrc credentials or proxies sneaking in
    return session
