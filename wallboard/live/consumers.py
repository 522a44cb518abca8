"""Websocket consumers (docs/websocket.md): boards for logged-in users and kiosks for TVs.

On connect a consumer checks permission, joins its groups, accepts, then sends ``hello``, every
subscribed snapshot and the PBX state, all straight from Redis (never a PBX request). After
that it forwards the pre-serialised frames the poller publishes. A heartbeat tells the client
the link and the data are alive, and each heartbeat also re-joins the groups (a TV connected
for weeks must survive a layer's group expiry), renews the watcher registration that tells the
poller which queues are on screen, sends any snapshot newer than the last one it sent (a push
the pub/sub layer lost) and, now and then, re-validates a kiosk's token. The heartbeat *frame*
goes only to a link that has been quiet for a while (any frame proves the link alive), plus one
a minute for the clock and ``fresh_at``: on a busy centre a thousand TVs would otherwise get a
thousand extra frames every few seconds, each burst delaying the board updates behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import weakref
from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from wallboard.live import push, selectors, store
from wallboard.live.snapshots import iso

logger = logging.getLogger(__name__)

SCHEMA = 1
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# A heartbeat frame goes to a link that sent nothing for this share of the heartbeat period (the
# client gives up after 2.5 silent periods), and to every link at least every FULL_BEAT_EVERY
# periods so that its server clock and fresh_at stay current.
QUIET_SHARE = 0.5
FULL_BEAT_EVERY = 12
# The heartbeat hub lets the event loop run (board updates, other sockets) after this many.
_BEAT_BATCH = 50


def _redis(func):
    """Run a blocking Redis call off the event loop, on any thread (no DB involved)."""
    return sync_to_async(func, thread_sensitive=False)


@dataclass
class Grant:
    """What a connection may see: ``queues`` None means every queue the PBX has (followed as
    new ones appear)."""

    queues: list[int] | None
    extra_groups: tuple[str, ...] = ()


def queues_param(query_string: bytes) -> list[int] | None:
    """The ``queues`` query parameter as numbers; None when absent. Junk entries are ignored."""
    values = parse_qs(query_string.decode("latin-1")).get("queues")
    if not values:
        return None
    numbers = []
    for part in ",".join(values).split(","):
        part = part.strip()
        if part.isdigit():
            numbers.append(int(part))
    return sorted(set(numbers))


class LiveConsumer(AsyncWebsocketConsumer):
    """The shared machinery; subclasses decide who may connect and to which queues."""

    grant: Grant | None = None

    async def authorise(self) -> Grant | int:
        """A Grant, or the close code that refuses the connection."""
        raise NotImplementedError

    def recheck_key(self) -> str | None:
        """What the re-check every WS_RECHECK_SECONDS looks up for this connection; None: none."""
        return None

    @staticmethod
    def allowed_keys(keys: list[str]) -> set[str]:
        """Of these recheck keys, those still allowed (sync, in a database thread; one call for
        every connection of the class that is due). A connection whose key is not returned is
        closed with 4403."""
        return set(keys)

    async def actable(self, queues: list[int]) -> set[int]:
        """The queues among these that this connection may act on (hello's ``can_act``)."""
        return set()

    # --- connection lifecycle ------------------------------------------------------------

    async def connect(self) -> None:
        self.queues: list[int] = []
        self.groups_joined: set[str] = set()
        # Pushes the hub relays before this connection has sent its first state wait here, so
        # that none is lost between joining the groups and reading the snapshots from Redis.
        self.ready = False
        self.pending: list[dict] = []
        # The highest snapshot version sent per queue, to catch up on pushes the pub/sub
        # layer lost (Redis away for a moment) and to skip duplicates.
        self.sent_versions: dict[int, int] = {}
        self.recheck_at = time.monotonic() + settings.WS_RECHECK_SECONDS
        self.last_sent = time.monotonic()
        # A random phase spreads the once-a-minute frames of a thousand busy links over the
        # minute instead of sending them all in one heartbeat.
        full_period = settings.WS_HEARTBEAT_SECONDS * FULL_BEAT_EVERY
        self.full_beat_at = time.monotonic() + random.uniform(0, full_period)
        verdict = await self.authorise()
        if not isinstance(verdict, Grant):
            # Accept first: a close before accept is an HTTP 403 that hides the reason code.
            await self.accept()
            await self.close(code=verdict)
            return
        self.grant = verdict
        self.queues = await self._subscribed_queues()
        await self._join_groups()
        try:
            await self.accept()
            ttl = settings.WS_HEARTBEAT_SECONDS * settings.WS_WATCHER_TTL_HEARTBEATS
            await _redis(store.watch_register)(self.channel_name, self.queues, ttl=ttl)
            await self._send_hello()
            await self._send_state()
        except BaseException:
            # Redis failed us mid-connect: the application ends without a disconnect, so the
            # hub must not keep this connection (and its growing pending list) for ever.
            await _hub().leave(self)
            raise
        self.ready = True
        for event in self.pending:
            await self.board_message(event)
        self.pending = []
        _hub().add(self)

    async def disconnect(self, code: int) -> None:
        hub = _hub()
        hub.remove(self)
        await hub.leave(self)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()
        if self.grant is not None:
            await _redis(store.watch_unregister)(self.channel_name, self.queues)

    # --- layer events ----------------------------------------------------------------------

    async def board_message(self, event: dict) -> None:
        """A frame serialised once by the publisher: forward it as it is.

        Called by the process hub directly, not through Channels' dispatch, which would run a
        database-connection cleanup (a thread hop) before every push (docs/benchmarks.md).
        """
        if not self.ready:
            self.pending.append(event)
            return
        queue, version = event.get("queue"), event.get("version")
        if queue is not None and version is not None:
            if version <= self.sent_versions.get(queue, 0):
                return  # already sent from Redis by a heartbeat catch-up
            self.sent_versions[queue] = version
        await self.send(text_data=event["text"])

    async def kiosk_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_FORBIDDEN)

    # --- client messages ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            await self._send_error(None, "invalid", "Messages must be JSON objects.")
            return
        if not isinstance(message, dict):
            await self._send_error(None, "invalid", "Messages must be JSON objects.")
            return
        kind = message.get("type")
        if kind == "resync":
            await self._send_state()
        elif kind == "action":
            await self.handle_action(message)
        else:
            await self._send_error(
                message.get("request_id"), "unknown_type", f"Unknown message type {kind!r}."
            )

    async def handle_action(self, message: dict) -> None:
        await self._send_error(message.get("request_id"), "forbidden", "This board is read-only.")

    # --- sending -----------------------------------------------------------------------------

    async def send(self, text_data=None, bytes_data=None, close=False):
        self.last_sent = time.monotonic()
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def _send_hello(self) -> None:
        await self.send(
            text_data=push.frame(
                {
                    "type": "hello",
                    "schema": SCHEMA,
                    "server_time": iso(time.time()),
                    "heartbeat": settings.WS_HEARTBEAT_SECONDS,
                    "queues": self.queues,
                    "can_act": sorted(await self.actable(self.queues)),
                }
            )
        )

    async def _send_queues(self) -> None:
        await self.send(
            text_data=push.frame(
                {
                    "type": "queues",
                    "queues": self.queues,
                    "can_act": sorted(await self.actable(self.queues)),
                }
            )
        )

    async def _send_state(self) -> None:
        await self._send_snapshots(self.queues)
        state = await _redis(selectors.pbx_state_get)()
        await self.send(text_data=push.pbx_frame(state))

    async def _send_snapshots(self, queues: list[int]) -> None:
        snapshots = await _redis(selectors.snapshots_get)(queues=queues)
        for queue in queues:
            if queue in snapshots:
                snapshot = snapshots[queue]
                self.sent_versions[queue] = max(
                    self.sent_versions.get(queue, 0), int(snapshot["version"] or 0)
                )
                await self.send(text_data=push.snapshot_frame(snapshot))

    async def _send_error(self, request_id: object, code: str, text: str) -> None:
        await self.send(
            text_data=push.frame(
                {"type": "error", "request_id": request_id, "code": code, "message": text}
            )
        )

    # --- groups and heartbeat ----------------------------------------------------------------

    async def _subscribed_queues(self) -> list[int]:
        if self.grant.queues is not None:
            return list(self.grant.queues)
        return await _redis(selectors.known_queue_numbers)()

    def _relayed_groups(self) -> list[str]:
        """The broadcast groups, which the process hub joins once for all its connections."""
        return [push.GROUP_PBX, *map(push.queue_group, self.queues)]

    async def _join_groups(self) -> None:
        await _hub().join(self, self._relayed_groups())
        await self._join_own_groups()

    async def _join_own_groups(self) -> None:
        # This connection's own events (a kiosk's revocation) come to its own channel.
        # group_add is idempotent; repeating it renews a membership the layer may expire.
        for group in self.grant.extra_groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def beat(self, frame: str, versions: dict[int, int], known: list[int], rejoin: bool):
        """One heartbeat, driven by the process's ``_ProcessHub`` with what it read for all."""
        new = []
        if self.grant.queues is None:
            new = [q for q in known if q not in self.queues]
            self.queues = sorted(set(self.queues) | set(new))
        if new:
            # Say so before the first push of a new queue can arrive, so the page builds its
            # panel with the right controls (a console may act on it) rather than read-only.
            await self._send_queues()
            await _hub().join(self, [push.queue_group(q) for q in new])
        if rejoin:
            await self._join_own_groups()
        behind = [q for q in self.queues if versions.get(q, 0) > self.sent_versions.get(q, 0)]
        missing = sorted(set(new) | set(behind))
        if missing:
            await self._send_snapshots(missing)
        now = time.monotonic()
        period = settings.WS_HEARTBEAT_SECONDS
        if now - self.last_sent >= period * QUIET_SHARE or now >= self.full_beat_at:
            self.full_beat_at = now + period * FULL_BEAT_EVERY
            await self.send(text_data=frame)


class _ProcessHub:
    """Every live connection of this process (one hub per event loop): fan-out and heartbeat.

    Fan-out: the hub, not each connection, is the member of the queue and PBX groups, through
    one channel of its own. An update crosses the channel layer once per process and is written
    to every local socket in one loop. With each connection a group member, each of a thousand
    TVs took its own queue put, task wake-up and ``asyncio.wait`` round before its socket was
    written, and no frame left before nearly all had been scheduled (docs/benchmarks.md).

    Heartbeat: one Redis round trip per beat serves every socket: it renews all watcher
    registrations, reads the snapshot versions and ``fresh_at`` once, and the heartbeat frame is
    serialised once. Groups are re-joined only on a layer that expires them (the core layer's
    ``group_expiry``); the pub/sub layer has none.
    """

    def __init__(self) -> None:
        self.consumers: set[LiveConsumer] = set()  # connected: heartbeat
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

    async def leave(self, consumer: LiveConsumer) -> None:
        async with self.groups_lock:
            for group in [g for g, members in self.members.items() if consumer in members]:
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
        """Write one relayed event to every local connection in its group."""
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
            versions, fresh_at, known = await _redis(store.heartbeat_round)(registrations, ttl=ttl)
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

    def _recheck_due(self, consumers: list[LiveConsumer]) -> None:
        # Revocations arrive as layer events at once; this is the backstop for a missed one.
        # One query per class for every connection that is due, off the heartbeat's path so a
        # slow database does not delay every board's heartbeat.
        if self.recheck_task is not None:
            return  # the last one is still running; those due are picked up next beat
        now = time.monotonic()
        due = [c for c in consumers if now >= c.recheck_at and c.recheck_key() is not None]
        if not due:
            return
        for consumer in due:
            consumer.recheck_at = now + settings.WS_RECHECK_SECONDS
        self.recheck_task = asyncio.create_task(self._recheck(due))

    async def _recheck(self, due: list[LiveConsumer]) -> None:
        try:
            by_class: dict[type[LiveConsumer], list[LiveConsumer]] = {}
            for consumer in due:
                by_class.setdefault(type(consumer), []).append(consumer)
            for cls, group in by_class.items():
                keys = [c.recheck_key() for c in group]
                allowed = await database_sync_to_async(cls.allowed_keys)(keys)
                for consumer, key in zip(group, keys, strict=True):
                    if key not in allowed and consumer in self.consumers:
                        await consumer.close(code=CLOSE_FORBIDDEN)
        except Exception as error:
            logger.warning("Websocket permission re-check failed: %r", error)
        finally:
            self.recheck_task = None


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ProcessHub] = (
    weakref.WeakKeyDictionary()
)


def _hub() -> _ProcessHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _ProcessHub()
    return hub


class BoardConsumer(LiveConsumer):
    """``/ws/board/?queues=100,101`` for a logged-in user; actions per ``can_act_on_queue``."""

    async def authorise(self) -> Grant | int:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            return CLOSE_UNAUTHENTICATED
        requested = queues_param(self.scope.get("query_string", b""))
        return await database_sync_to_async(_board_grant)(user, requested)

    async def actable(self, queues: list[int]) -> set[int]:
        return await database_sync_to_async(_actable)(self.scope["user"], queues)

    async def handle_action(self, message: dict) -> None:
        from wallboard.control.services import ActionForbidden, ActionInvalid, member_action

        request_id = message.get("request_id")
        try:
            outcome = await database_sync_to_async(member_action)(
                user=self.scope["user"],
                queue=message.get("queue"),
                extension=message.get("extension"),
                action=message.get("action"),
                source="websocket",
            )
        except ActionForbidden as error:
            await self._send_error(request_id, "forbidden", str(error))
            return
        except ActionInvalid as error:
            await self._send_error(request_id, "invalid", str(error))
            return
        await self.send(
            text_data=push.frame(
                {
                    "type": "action_result",
                    "request_id": request_id,
                    "ok": outcome.ok,
                    "queue": message.get("queue"),
                    "extension": message.get("extension"),
                    "action": message.get("action"),
                    "code": outcome.code,
                    "detail": outcome.detail,
                    "message": outcome.message,
                }
            )
        )


def _board_grant(user, requested: list[int] | None) -> Grant:
    from wallboard.boards import access

    visible = access.visible_queues(user)
    if requested is not None:
        queues: list[int] | None = [q for q in requested if access.can_view_queue(user, q)]
    elif visible is None:
        queues = None
    else:
        queues = sorted(visible)
    return Grant(queues=queues)


def _actable(user, queues: list[int]) -> set[int]:
    from wallboard.boards import access

    return {q for q in queues if access.can_act_on_queue(user, q)}


class KioskConsumer(LiveConsumer):
    """``/ws/kiosk/<token>/`` for a TV: read-only, scoped to its token, closed when revoked."""

    async def authorise(self) -> Grant | int:
        kiosk = await database_sync_to_async(_kiosk)(self._token())
        if kiosk is None:
            return CLOSE_FORBIDDEN
        queues = sorted(kiosk.queues) if kiosk.queues is not None else None
        return Grant(queues=queues, extra_groups=(push.kiosk_group(kiosk.id),))

    def recheck_key(self) -> str | None:
        return self._token()

    @staticmethod
    def allowed_keys(keys: list[str]) -> set[str]:
        from wallboard.boards import access

        return access.live_kiosk_tokens(keys)

    def _token(self) -> str:
        return self.scope["url_route"]["kwargs"].get("token", "")


def _kiosk(token: str):
    from wallboard.boards import access

    return access.kiosk_from_token(token)
