"""The machinery every live board socket shares (docs/websocket.md); who may connect and to
which queues is decided by the subclass at the edge (``wallboard.boards.consumers``), which hands
its verdict in as a ``Grant``.

On connect a consumer registers with the process hub for its groups, accepts, then sends
``hello``, every subscribed snapshot and the PBX state, all straight from Redis (never a PBX
request). After that it forwards the pre-serialised frames the hub relays. Each heartbeat
renews its watcher registration (which tells the poller which queues are on screen), follows new
queues, sends any snapshot newer than the last one it sent (a push the pub/sub layer lost) and,
only on a link that was quiet for a while or once a minute, the heartbeat frame itself.

Whatever ends a connection (a close, a lost peer, an exception in a handler) ends in the same
clean-up: out of the hub and its groups, watcher registration removed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from wallboard.live import push, selectors, store
from wallboard.live.hub import process_hub
from wallboard.live.shapes import SCHEMA
from wallboard.live.snapshots import iso

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
# A heartbeat frame goes to a link that sent nothing for this share of the heartbeat period (the
# client gives up after 2.5 silent periods), and to every link at least every FULL_BEAT_EVERY
# periods so that its server clock and fresh_at stay current.
QUIET_SHARE = 0.5
FULL_BEAT_EVERY = 12
# Client messages are small commands; anything larger is refused unread.
MAX_MESSAGE_CHARS = 8192
# Client messages per socket: a burst of this many, then one per MESSAGE_REFILL_SECONDS. Beyond
# it a message is answered with a rate_limited error (at most one a second) and dropped; a client
# that keeps flooding after MESSAGE_FLOOD_DROPS dropped messages is closed.
MESSAGE_BURST = 10
MESSAGE_REFILL_SECONDS = 1.0
MESSAGE_FLOOD_DROPS = 100
# A resync sends every snapshot again: at most one per this many seconds per socket.
RESYNC_MIN_SECONDS = 2.0


def _redis(func):
    """Run a blocking Redis call off the event loop, on any thread (no DB involved)."""
    return sync_to_async(func, thread_sensitive=False)


@dataclass(frozen=True)
class Grant:
    """What a connection may see: ``queues`` None means every queue the PBX has (followed as
    new ones appear); ``own_groups`` are groups for this connection's own events (a kiosk's
    revocation, a user's changed rights)."""

    queues: list[int] | None
    own_groups: tuple[str, ...] = ()


class LiveConsumer(AsyncWebsocketConsumer):
    """A live board socket; subclasses decide who may connect and to which queues."""

    grant: Grant | None = None

    async def authorise(self) -> Grant | int:
        """A Grant, or the close code that refuses the connection."""
        raise NotImplementedError

    def recheck_key(self) -> object | None:
        """What the periodic re-check looks up for this connection; None: nothing to check."""
        return None

    def recheck_seconds(self) -> float:
        """How often this connection is re-checked."""
        return settings.WS_RECHECK_SECONDS

    @staticmethod
    def recheck_verdicts(keys: list) -> dict:
        """For each of these recheck keys, None while the connection may stay, else the close
        code that ends it (sync, in a database thread; one call for every connection of the
        class that is due)."""
        return dict.fromkeys(keys)

    async def actable(self, queues: list[int]) -> set[int]:
        """The queues among these that this connection may act on (hello's ``can_act``)."""
        return set()

    async def handle_action(self, message: dict) -> None:
        await self._send_error(message.get("request_id"), "forbidden", "This board is read-only.")

    # --- connection lifecycle ------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # An exception in a handler ends the application without a disconnect event: the
            # connection must still leave the hub, its groups and the watcher registrations.
            await self._release()

    async def connect(self) -> None:
        self.queues: list[int] = []
        self.own_groups: set[str] = set()
        self.released = False
        # Pushes the hub relays before this connection has sent its first state wait here, so
        # that none is lost between joining the groups and reading the snapshots from Redis.
        self.ready = False
        self.pending: list[dict] = []
        # The highest snapshot version sent per queue, to catch up on pushes the pub/sub
        # layer lost (Redis away for a moment) and to skip duplicates.
        self.sent_versions: dict[int, int] = {}
        now = time.monotonic()
        self.recheck_at = now + self.recheck_seconds()
        self.last_sent = now
        self.tokens = float(MESSAGE_BURST)
        self.tokens_at = now
        self.dropped = 0
        self.limited_said_at = 0.0
        self.resync_at = 0.0
        # A random phase spreads the once-a-minute frames of a thousand busy links over the
        # minute instead of sending them all in one heartbeat.
        full_period = settings.WS_HEARTBEAT_SECONDS * FULL_BEAT_EVERY
        self.full_beat_at = now + random.uniform(0, full_period)
        verdict = await self.authorise()
        if not isinstance(verdict, Grant):
            # Accept first: a close before accept is an HTTP 403 that hides the reason code.
            await self.accept()
            await self.close(code=verdict)
            return
        self.grant = verdict
        self.queues = await self._subscribed_queues()
        await process_hub().join(self, self._relayed_groups())
        await self._join_own_groups()
        await self.accept()
        ttl = settings.WS_HEARTBEAT_SECONDS * settings.WS_WATCHER_TTL_HEARTBEATS
        await _redis(store.watch_register)(self.channel_name, self.queues, ttl=ttl)
        await self._send_hello()
        await self._send_state()
        self.ready = True
        for event in self.pending:
            await self.board_message(event)
        self.pending = []
        process_hub().add(self)

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        if getattr(self, "released", True):
            return  # never connected, or already released
        self.released = True
        hub = process_hub()
        hub.remove(self)
        try:
            await hub.leave(self)
            for group in self.own_groups:
                await self.channel_layer.group_discard(group, self.channel_name)
            if self.grant is not None:
                await _redis(store.watch_unregister)(self.channel_name, self.queues)
        except Exception as error:
            # Redis is away: the watcher registration expires by itself after a few heartbeats.
            logger.warning("Websocket clean-up incomplete: %r", error)
        self.own_groups = set()

    # --- layer events ----------------------------------------------------------------------

    async def board_message(self, event: dict) -> None:
        """A frame serialised once by the publisher: forward it as it is (called by the hub)."""
        if not self.ready:
            self.pending.append(event)
            return
        queue, version = event.get("queue"), event.get("version")
        if queue is not None and version is not None:
            if version <= self.sent_versions.get(queue, 0):
                return  # already sent from Redis by a heartbeat catch-up
            self.sent_versions[queue] = version
        await self.send(text_data=event["text"])

    async def access_changed(self, event: dict) -> None:
        """This connection's rights may have changed (logout, role, kiosk scope): check now."""
        await process_hub().recheck_now([self])

    # --- client messages ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._message_allowed():
            return
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self._send_error(
                None, "invalid", f"Messages must be JSON text of at most {MAX_MESSAGE_CHARS} chars."
            )
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            await self._send_error(None, "invalid", "Messages must be JSON objects.")
            return
        if not isinstance(message, dict):
            await self._send_error(None, "invalid", "Messages must be JSON objects.")
            return
        kind = message.get("type")
        request_id = message.get("request_id")
        if not isinstance(request_id, str | int | None) or isinstance(request_id, bool):
            request_id = None
        if kind == "resync":
            await self._resync(request_id)
        elif kind == "action":
            await self.handle_action({**message, "request_id": request_id})
        else:
            shown = kind if isinstance(kind, str) and len(kind) <= 40 else "?"
            await self._send_error(request_id, "unknown_type", f"Unknown message type {shown!r}.")

    def _message_allowed(self) -> bool:
        """A token bucket per socket: a flood of messages cannot keep the process busy."""
        now = time.monotonic()
        self.tokens = min(
            float(MESSAGE_BURST), self.tokens + (now - self.tokens_at) / MESSAGE_REFILL_SECONDS
        )
        self.tokens_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False

    async def websocket_receive(self, message):
        if self.released:
            # Closed by us: frames the peer sent before it heard the close get no answer (a
            # flood would otherwise be closed again for every frame still on its way).
            return
        before = self.dropped
        await super().websocket_receive(message)
        if self.dropped > before:
            if self.dropped >= MESSAGE_FLOOD_DROPS:
                await self.close(code=CLOSE_TOO_MANY)
                return
            now = time.monotonic()
            if now - self.limited_said_at >= 1.0:
                self.limited_said_at = now
                await self._send_error(None, "rate_limited", "Too many messages; slow down.")

    async def _resync(self, request_id: object) -> None:
        now = time.monotonic()
        if now - self.resync_at < RESYNC_MIN_SECONDS:
            await self._send_error(request_id, "rate_limited", "Resync at most every 2 seconds.")
            return
        self.resync_at = now
        await self._send_state()

    # --- sending -----------------------------------------------------------------------------

    async def send(self, text_data=None, bytes_data=None, close=False):
        self.last_sent = time.monotonic()
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def close(self, code=None, reason=None):
        await super().close(code=code, reason=reason)
        # Closed by us: nothing more goes to it, whenever the peer acknowledges.
        await self._release()

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

    async def _join_own_groups(self) -> None:
        # This connection's own events come to its own channel. group_add is idempotent;
        # repeating it renews a membership the layer may expire.
        for group in self.grant.own_groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.own_groups.add(group)

    async def beat(self, frame: str, versions: dict[int, int], known: list[int], rejoin: bool):
        """One heartbeat, driven by the process hub with what it read for all."""
        new = []
        if self.grant.queues is None:
            new = [q for q in known if q not in self.queues]
            self.queues = sorted(set(self.queues) | set(new))
        if new:
            # Say so before the first push of a new queue can arrive, so the page builds its
            # panel with the right controls (a console may act on it) rather than read-only.
            await self._send_queues()
            await process_hub().join(self, [push.queue_group(q) for q in new])
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
