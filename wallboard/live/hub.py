"""Every live websocket connection of one process (one hub per event loop): fan-out, heartbeat
and the periodic re-check of each connection's right to stay open.

Fan-out: the hub, not each connection, is the member of the queue and PBX groups, through one
channel of its own. An update crosses the channel layer once per process and is written to
every local socket in one loop (docs/architecture.md, "Push").

Heartbeat: one Redis round trip per beat serves every socket: it renews all watcher
registrations, reads the snapshot versions and ``fresh_at`` once, and the heartbeat frame is
serialised once. Groups are re-joined only on a layer that expires them (the core layer's
``group_expiry``); the pub/sub layer has none.

Re-check: every connection whose ``recheck_key()`` is not None is re-validated every
``recheck_seconds()`` in one call per consumer class for all that are due, off the beat's
path, and closed with the code its class gives when it may no longer stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from wallboard.live import push, store
from wallboard.live.snapshots import iso

if TYPE_CHECKING:
    from wallboard.live.consumers import LiveConsumer

logger = logging.getLogger(__name__)

# The heartbeat lets the event loop run (board updates, other sockets) after this many sockets.
_BEAT_BATCH = 50


class ProcessHub:
    def __init__(self) -> None:
        self.consumers: set[LiveConsumer] = set()  # connected: heartbeat and re-check
        self.members: dict[str, set[LiveConsumer]] = {}  # relayed group -> local connections
        self.layer = None
        self.channel: str | None = None
        self.receiver: asyncio.Task | None = None
        self.groups_lock = asyncio.Lock()
        self.task: asyncio.Task | None = None
        self.recheck_task: asyncio.Task | None = None

    def add(self, consumer: LiveConsumer) -> None:
        self.consumers.add(consumer)
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    def remove(self, consumer: LiveConsumer) -> None:
        self.consumers.discard(consumer)

    # --- fan-out -------------------------------------------------------------------------

    async def join(self, consumer: LiveConsumer, groups: list[str]) -> None:
        if consumer.channel_layer is None:
            return  # no channel layer configured: nothing can be pushed
        async with self.groups_lock:
            if self.channel is None:
                self.layer = consumer.channel_layer
                self.channel = await self.layer.new_channel("hub.")
                self.receiver = asyncio.create_task(self._receive())
            for group in groups:
                members = self.members.setdefault(group, set())
                if not members:
                    await self.layer.group_add(group, self.channel)
                members.add(consumer)

    async def leave(self, consumer: LiveConsumer, groups: list[str] | None = None) -> None:
        """Take the connection out of these relayed groups (all of them by default)."""
        async with self.groups_lock:
            for group in [g for g, members in self.members.items() if consumer in members]:
                if groups is not None and group not in groups:
                    continue
                members = self.members[group]
                members.discard(consumer)
                if not members:
                    del self.members[group]
                    await self.layer.group_discard(group, self.channel)
            if not self.members and self.receiver is not None:
                # The last connection left: stop listening (the layer unsubscribes).
                self.receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.receiver
                self.receiver = self.channel = None

    async def _rejoin(self) -> None:
        async with self.groups_lock:
            for group in list(self.members):
                await self.layer.group_add(group, self.channel)

    async def _receive(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The layer lost Redis: keep listening; boards catch up on the heartbeat.
                logger.warning("Websocket fan-out could not receive: %r", error)
                await asyncio.sleep(1.0)
                continue
            await self.deliver(event)

    async def deliver(self, event: dict) -> None:
        """Write one relayed event to every local connection in its group.

        ``board_message`` is called directly, not through Channels' dispatch, which would run a
        database-connection cleanup (a hop to the shared database thread) before every push.
        """
        for consumer in list(self.members.get(event.get("group"), ())):
            try:
                await consumer.board_message(event)
            except Exception as error:
                logger.warning("Websocket push failed: %r", error)

    # --- heartbeat -----------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self.consumers:
                await asyncio.sleep(settings.WS_HEARTBEAT_SECONDS)
                consumers = list(self.consumers)
                if consumers:
                    await self._beat(consumers)
        finally:
            self.task = None

    async def _beat(self, consumers: list[LiveConsumer]) -> None:
        ttl = settings.WS_HEARTBEAT_SECONDS * settings.WS_WATCHER_TTL_HEARTBEATS
        registrations = {c.channel_name: c.queues for c in consumers}
        try:
            versions, fresh_at, known = await sync_to_async(
                store.heartbeat_round, thread_sensitive=False
            )(registrations, ttl=ttl)
        except Exception as error:
            # Redis hiccuped: keep the connections, try again next beat. One line, not a
            # traceback per socket: a thousand boards notice the same outage.
            logger.warning("Websocket heartbeat could not reach Redis: %r", error)
            return
        frame = push.frame(
            {"type": "heartbeat", "server_time": iso(time.time()), "fresh_at": iso(fresh_at)}
        )
        rejoin = getattr(consumers[0].channel_layer, "group_expiry", None) is not None
        if rejoin and self.channel is not None:
            await self._rejoin()
        for index, consumer in enumerate(consumers):
            if index and not index % _BEAT_BATCH:
                await asyncio.sleep(0)  # let a board update that arrived meanwhile go out
            if consumer not in self.consumers:
                continue  # disconnected meanwhile
            try:
                await consumer.beat(frame, versions, known, rejoin)
            except Exception as error:
                logger.warning("Websocket heartbeat failed: %r", error)
        self._recheck_due(consumers)

    # --- re-check ------------------------------------------------------------------------

    def _recheck_due(self, consumers: list[LiveConsumer]) -> None:
        # One query per class for every connection that is due, off the heartbeat's path so a
        # slow database does not delay every board's heartbeat.
        if self.recheck_task is not None:
            return  # the last one is still running; those due are picked up next beat
        now = time.monotonic()
        due = [c for c in consumers if now >= c.recheck_at and c.recheck_key() is not None]
        if not due:
            return
        for consumer in due:
            consumer.recheck_at = now + consumer.recheck_seconds()
        self.recheck_task = asyncio.create_task(self._recheck(due))

    async def recheck_now(self, consumers: list[LiveConsumer]) -> None:
        """Re-check these connections at once (their rights were just changed)."""
        await self._recheck(consumers)

    async def _recheck(self, due: list[LiveConsumer]) -> None:
        try:
            by_class: dict[type[LiveConsumer], list[LiveConsumer]] = {}
            for consumer in due:
                by_class.setdefault(type(consumer), []).append(consumer)
            for cls, group in by_class.items():
                keys = [c.recheck_key() for c in group]
                verdicts = await database_sync_to_async(cls.recheck_verdicts)(keys)
                for consumer, key in zip(group, keys, strict=True):
                    code = verdicts.get(key)
                    if code is not None and consumer in self.consumers:
                        await consumer.close(code=code)
        except Exception as error:
            logger.warning("Websocket permission re-check failed: %r", error)
        finally:
            if asyncio.current_task() is self.recheck_task:
                self.recheck_task = None


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessHub] = (
    weakref.WeakKeyDictionary()
)


def process_hub() -> ProcessHub:
    """This event loop's hub (Daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = ProcessHub()
    return hub
