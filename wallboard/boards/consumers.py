"""The websocket edges (docs/websocket.md): boards for logged-in users and kiosks for TVs.

Both decide who may connect and to which queues, and hand their verdict to the live machinery
(``wallboard.live.consumers``) as a ``Grant``. A user's board acts through the control services;
the PBX request of an action runs on a thread of its own, never on Channels' one database thread
that every socket's connect and re-check share in this process.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import close_old_connections
from django.utils.crypto import constant_time_compare

from wallboard.boards.kiosks import kiosk_from_token, kiosk_verdicts
from wallboard.boards.services import kiosk_group, user_group
from wallboard.control import access
from wallboard.control.services import (
    ActionForbidden,
    ActionInvalid,
    ActionThrottled,
    member_action,
)
from wallboard.live import push
from wallboard.live.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    Grant,
    LiveConsumer,
)

logger = logging.getLogger(__name__)

# A rights change the page must pick up: the client reloads at once (docs/websocket.md).
CLOSE_RIGHTS_CHANGED = 4001
# One socket shows at most this many queues (a PBX has dozens; thousands is a mistake or abuse).
MAX_SOCKET_QUEUES = 200
# Queue numbers are PositiveIntegerFields (PostgreSQL's int4).
_MAX_QUEUE_NUMBER = 2_147_483_647

# Actions wait on the PBX for up to the budget's wait plus the PBX timeouts: each runs on one of
# these threads, so a slow PBX holds only its own action, never another socket's connect.
_ACTION_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ws-action")


def _in_action_thread(func):
    """``func`` as a coroutine on an action thread, with Django's connection upkeep around it
    (what ``database_sync_to_async`` does on the shared thread)."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False, executor=_ACTION_THREADS)


def queues_param(query_string: bytes) -> list[int] | None:
    """The ``queues`` query parameter as numbers (None when absent); junk entries are ignored.

    Raises ValueError when it names more than MAX_SOCKET_QUEUES queues.
    """
    values = parse_qs(query_string.decode("latin-1")).get("queues")
    if not values:
        return None
    numbers = set()
    for part in ",".join(values).split(","):
        part = part.strip()
        # isdigit() alone admits "²" and other Unicode digits that int() refuses.
        if part.isascii() and part.isdigit() and len(part) <= 10:
            number = int(part)
            if 0 < number <= _MAX_QUEUE_NUMBER:
                numbers.add(number)
        if len(numbers) > MAX_SOCKET_QUEUES:
            raise ValueError(f"at most {MAX_SOCKET_QUEUES} queues per socket")
    return sorted(numbers)


class BoardConsumer(LiveConsumer):
    """``/ws/board/?queues=100,101`` for a logged-in user; actions per ``can_act_on_queue``.

    Closed within seconds when the user logs out, is deactivated or changes role (4401 when the
    session or user is gone, 4001 when the rights changed: the page reloads with the new ones).
    """

    async def authorise(self) -> Grant | int:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            return CLOSE_UNAUTHENTICATED
        try:
            requested = queues_param(self.scope.get("query_string", b""))
        except ValueError:
            return CLOSE_BAD_REQUEST
        grant, signature = await database_sync_to_async(_board_grant)(user, requested)
        self.signature = signature
        return grant

    async def actable(self, queues: list[int]) -> set[int]:
        return await database_sync_to_async(_actable)(self.scope["user"], queues)

    def recheck_seconds(self) -> float:
        return settings.WS_USER_RECHECK_SECONDS

    def recheck_key(self) -> object | None:
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        return (self.scope["user"].pk, session_key, self.signature)

    @staticmethod
    def recheck_verdicts(keys: list) -> dict:
        return user_socket_verdicts(keys)

    async def handle_action(self, message: dict) -> None:
        request_id = message.get("request_id")
        try:
            outcome = await _in_action_thread(member_action)(
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
        except ActionThrottled as error:
            await self._send_error(request_id, "throttled", str(error))
            return
        await self.send(
            text_data=push.frame(
                {
                    "type": "action_result",
                    "request_id": request_id,
                    "ok": outcome.ok,
                    "queue": outcome.queue,
                    "extension": outcome.extension,
                    "action": outcome.action,
                    "code": outcome.code,
                    "detail": outcome.detail,
                    "message": outcome.message,
                }
            )
        )


def _board_grant(user, requested: list[int] | None) -> tuple[Grant, str]:
    visible = access.visible_queues(user)
    if requested is not None:
        queues: list[int] | None = [q for q in requested if access.can_view_queue(user, q)]
    elif visible is None:
        queues = None
    else:
        queues = sorted(visible)
    return Grant(queues=queues, own_groups=(user_group(user.pk),)), rights_signature(user)


def _actable(user, queues: list[int]) -> set[int]:
    allowed = access.actionable_queues(user)
    return {q for q in queues if allowed is None or q in allowed}


def rights_signature(user) -> str:
    """What a board socket's rights rest on; a different signature means they changed."""
    actionable = access.actionable_queues(user)
    rights = "all" if actionable is None else ",".join(map(str, sorted(actionable)))
    return hashlib.sha256(f"{user.is_active}:{rights}".encode()).hexdigest()[:16]


def user_socket_verdicts(keys: list) -> dict:
    """For each (user id, session key, rights signature): None while the session is live and
    the rights unchanged, else the close code (4401 logged out/deactivated, 4001 rights changed).
    """
    users = get_user_model().objects.in_bulk({user_id for user_id, _s, _sig in keys})
    verdicts: dict = {}
    for key in keys:
        user_id, session_key, signature = key
        user = users.get(user_id)
        if user is None or not user.is_active or not _session_holds(session_key, user):
            verdicts[key] = CLOSE_UNAUTHENTICATED
        elif rights_signature(user) != signature:
            verdicts[key] = CLOSE_RIGHTS_CHANGED
        else:
            verdicts[key] = None
    return verdicts


def _session_holds(session_key: str | None, user) -> bool:
    """The session still exists and still logs this user in (as ``auth.get_user`` checks)."""
    if not session_key:
        return False
    store = _session_store(session_key)
    if not store.exists(session_key):
        return False
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user.pk) or not data.get(BACKEND_SESSION_KEY):
        return False
    stored_hash = data.get(HASH_SESSION_KEY)
    return bool(stored_hash) and constant_time_compare(stored_hash, user.get_session_auth_hash())


def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


class KioskConsumer(LiveConsumer):
    """``/ws/kiosk/<token>/`` for a TV: read-only, scoped to its token; closed with 4403 when
    revoked, with 4001 when its scope changed (the TV reloads with the new one)."""

    async def authorise(self) -> Grant | int:
        kiosk = await database_sync_to_async(kiosk_from_token)(self._token())
        if kiosk is None:
            return CLOSE_FORBIDDEN
        self.scope_signature = kiosk.scope_signature
        queues = sorted(kiosk.queues) if kiosk.queues is not None else None
        return Grant(queues=queues, own_groups=(kiosk_group(kiosk.id),))

    def recheck_key(self) -> object | None:
        return (self._token(), self.scope_signature)

    @staticmethod
    def recheck_verdicts(keys: list) -> dict:
        return kiosk_verdicts(keys, changed=CLOSE_RIGHTS_CHANGED, gone=CLOSE_FORBIDDEN)

    async def kiosk_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_FORBIDDEN)

    def _token(self) -> str:
        return self.scope["url_route"]["kwargs"].get("token", "")
