"""Twisted TCP writes go straight to the socket when nothing is queued (live.writethrough).

A real Twisted ``tcp.Connection`` on one end of a real socket pair; the reactor is a recorder, so
the tests see whether a write asked to be registered for writability (the buffered path) or went
out at once, and they drive the buffered path's ``doWrite`` by hand.
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet import _newtls, protocol, tcp

from wallboard.live import writethrough


class RecordingReactor:
    """What a FileDescriptor asks of its reactor."""

    def __init__(self) -> None:
        self.writers: set[object] = set()
        self.registrations = 0

    def addWriter(self, selectable) -> None:
        self.writers.add(selectable)
        self.registrations += 1

    def removeWriter(self, selectable) -> None:
        self.writers.discard(selectable)

    def addReader(self, selectable) -> None:
        pass

    def removeReader(self, selectable) -> None:
        pass


class PullProducer:
    resumed = 0

    def resumeProducing(self) -> None:
        self.resumed += 1

    def stopProducing(self) -> None:
        pass


class PushProducer(PullProducer):
    def pauseProducing(self) -> None:
        pass


@pytest.fixture
def pair():
    """(connection, reactor, peer socket): a Twisted connection wired to a real socket."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(2)
    reactor = RecordingReactor()
    connection = tcp.Connection(ours, protocol.Protocol(), reactor)
    connection.connected = 1
    yield connection, reactor, peer
    ours.close()
    peer.close()


def _read(peer: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = peer.recv(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _fill_socket(connection: tcp.Connection) -> None:
    """Fill the kernel's send buffer (the peer does not read), so the next send is partial."""
    while True:
        try:
            connection.socket.send(b"x" * 65536)
        except BlockingIOError:
            return


def test_a_write_on_an_idle_connection_leaves_at_once_without_the_reactor(pair):
    writethrough.install()
    connection, reactor, peer = pair
    connection.write(b"frame-1")
    connection.write(b"frame-2")
    assert reactor.registrations == 0
    assert not connection._tempDataBuffer
    assert _read(peer, 14) == b"frame-1frame-2"


def test_what_the_kernel_does_not_take_is_buffered_and_sent_in_order(pair):
    writethrough.install()
    connection, reactor, peer = pair
    _fill_socket(connection)
    connection.write(b"A" * 1000)
    connection.write(b"B" * 1000)  # queued behind A: must not overtake it
    assert connection in reactor.writers
    # The peer drains; the reactor would now call doWrite until the buffer is empty.
    drained = b""
    while connection in reactor.writers:
        drained += peer.recv(1 << 20)
        connection.doWrite()
    peer.setblocking(False)
    try:
        while chunk := peer.recv(1 << 20):
            drained += chunk
    except BlockingIOError:
        pass
    assert drained.endswith(b"A" * 1000 + b"B" * 1000)
    assert drained.rstrip(b"AB").strip(b"x") == b""


def test_a_pull_producer_keeps_the_buffered_path_that_resumes_it(pair):
    writethrough.install()
    connection, reactor, peer = pair
    producer = PullProducer()
    connection.registerProducer(producer, False)
    producer.resumed = 0
    connection.write(b"chunk")
    assert connection in reactor.writers
    connection.doWrite()
    assert producer.resumed == 1
    assert _read(peer, 5) == b"chunk"


def test_a_push_producer_such_as_twisted_http_does_not_stop_the_fast_path(pair):
    # Twisted's HTTPChannel registers itself as a push producer on every connection, the
    # websockets Daphne upgrades included: the fast path must still apply.
    writethrough.install()
    connection, reactor, peer = pair
    connection.registerProducer(PushProducer(), True)
    connection.write(b"frame")
    assert reactor.registrations == 0
    assert _read(peer, 5) == b"frame"


def test_a_connection_being_closed_keeps_the_buffered_path(pair):
    writethrough.install()
    connection, reactor, _peer = pair
    connection.disconnecting = True
    connection.write(b"late")
    assert connection in reactor.writers


def test_a_lost_peer_is_left_to_the_buffered_path_to_report(pair):
    writethrough.install()
    connection, reactor, peer = pair
    peer.close()
    connection.write(b"into the void")  # EPIPE/ECONNRESET: no exception here
    assert connection in reactor.writers
    assert connection.doWrite() is not None  # the buffered path reports the loss


def test_the_twisted_we_run_has_every_name_the_fast_path_reads():
    """Fails loudly when a Twisted upgrade moves what the write-through relies on: the product
    would then fall back to Twisted's buffered writes (correct, but slower for a thousand TVs)."""
    assert writethrough.missing_names() == []
    assert writethrough.install() is True


def test_a_twisted_without_a_relied_on_name_keeps_its_own_writes(monkeypatch):
    monkeypatch.setattr(writethrough, "_installed", False)
    monkeypatch.setattr(tcp.Connection, "write", _newtls.ConnectionMixin.write)
    monkeypatch.setattr(writethrough, "RELIED_ON", (*writethrough.RELIED_ON, "_movedAway"))
    assert writethrough.missing_names() == ["_movedAway"]
    assert writethrough.install() is False
    assert tcp.Connection.write is _newtls.ConnectionMixin.write
