"""Immediate socket writes for Daphne's TCP connections (the fan-out's hot path).

Twisted's ``FileDescriptor.write`` never writes: it buffers the bytes and registers the socket
for writability, and the reactor sends them on its next turn, then unregisters it. Under Daphne's
asyncio reactor that is an ``add_writer``/``remove_writer`` pair (two ``epoll_ctl`` calls, a
handle, an extra loop turn) for every frame. When one board update goes to a thousand TVs, that
bookkeeping is repeated for every socket, and because no frame leaves before every consumer has
queued its own, even the first TV waits for the whole fan-out (docs/benchmarks.md, "Fan-out",
measures it).

``install()`` makes a write on an idle connection try the socket at once, the way asyncio's own
transports do, and hands anything the kernel did not take (or any error) to Twisted's normal
buffered path, which keeps the order and reports a lost connection as Twisted does. Connections with
queued bytes, a pull producer or a paused push producer (flow control relies on the buffered
path) or a pending close take the normal path unchanged.
"""

from __future__ import annotations

import logging
import socket

try:
    from twisted.internet import _newtls, protocol, tcp
except ImportError:  # no Daphne, so no Twisted: nothing to speed up
    tcp = None

logger = logging.getLogger(__name__)

_installed = False


# Every name the fast path reads on a connection, whether Twisted defines it on the class or
# sets it per instance. ``install`` checks them on a real connection before patching anything.
RELIED_ON = (
    "TLS",
    "SEND_LIMIT",
    "connected",
    "disconnecting",
    "_writeDisconnected",
    "producer",
    "streamingProducer",
    "producerPaused",
    "_tempDataLen",
    "offset",
    "dataBuffer",
    "socket",
)


class _ProbeReactor:
    """Enough of a reactor to build a connection that is never used."""

    def addReader(self, selectable) -> None: ...
    def removeReader(self, selectable) -> None: ...
    def addWriter(self, selectable) -> None: ...
    def removeWriter(self, selectable) -> None: ...


def missing_names() -> list[str]:
    """The names of RELIED_ON that a real Twisted TCP connection lacks (empty: all there)."""
    ours, peer = socket.socketpair()
    try:
        ours.setblocking(False)
        connection = tcp.Connection(ours, protocol.Protocol(), reactor=_ProbeReactor())
        return [name for name in RELIED_ON if not hasattr(connection, name)]
    finally:
        ours.close()
        peer.close()


def install() -> bool:
    """Patch Twisted's TCP connections once per process; False if Twisted is not installed or
    is not the Twisted this was written for (writes then stay on Twisted's own path)."""
    global _installed
    if _installed:
        return True
    if tcp is None:
        return False

    buffered_write = tcp.Connection.write
    missing = missing_names()
    if buffered_write is not _newtls.ConnectionMixin.write or missing:
        logger.warning(
            "Twisted's TCP write path is not the known one (missing: %s); writes stay buffered",
            ", ".join(missing) or "ConnectionMixin.write",
        )
        return False

    def write(self, data: bytes) -> None:
        try:
            direct = (
                type(data) is bytes
                and not self.TLS  # startTLS: the bytes must go through the TLS layer first
                and 0 < len(data) <= self.SEND_LIMIT
                and self.connected
                and not self.disconnecting
                and not self._writeDisconnected
                # A pull producer is asked for more only by the buffered path's drain; a push
                # producer (Twisted's HTTPChannel registers itself on every connection,
                # websockets included) only needs pausing when bytes pile up, which the
                # buffered path handles.
                and (self.producer is None or (self.streamingProducer and not self.producerPaused))
                and not self._tempDataLen
                and self.offset == len(self.dataBuffer)
            )
        except AttributeError:
            direct = False  # a connection unlike the one probed: Twisted's own path
        if direct:
            try:
                sent = self.socket.send(data)
            except OSError:
                # Would block, interrupted, or the peer is gone: the buffered path retries
                # or notices the loss and closes the connection the usual way.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        buffered_write(self, data)

    write.__doc__ = "Send at once when nothing is queued; otherwise Twisted's buffered write."
    tcp.Connection.write = write
    _installed = True
    logger.debug("Twisted TCP writes go straight to the socket when the buffer is empty")
    return True
