"""The websocket edges under abuse and change: bad input is answered, never a dead or leaking
socket; rights taken away close the sockets that had them within seconds.

The routed application in this process (``WebsocketCommunicator``), the real pub/sub channel
layer on Redis, snapshots in Redis from the real poller and simulator.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from tests.live.helpers import poll_until
from wallboard.asgi import application
from wallboard.boards import consumers as board_consumers
from wallboard.boards.models import Board
from wallboard.boards.services import board_delete, kiosk_scope_changed, kiosk_token_create
from wallboard.control.models import TeamLeadAssignment
from wallboard.live import selectors, store
from wallboard.live.consumers import MAX_MESSAGE_CHARS, MESSAGE_FLOOD_DROPS
from wallboard.live.hub import process_hub

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture
def polled(simulator):
    queues = simulator.centre.queue_numbers()
    poll_until(lambda: all(selectors.snapshot_get(queue=q) for q in queues))
    return simulator


def _login(user) -> tuple[Client, list[tuple[bytes, bytes]]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return client, [ORIGIN, (b"cookie", cookie)]


@pytest.fixture
def admin():
    return get_user_model().objects.create_superuser("edge-admin", password="pw-edge-admin-1")


@pytest.fixture
def lead(polled):
    user = get_user_model().objects.create_user("edge-lead", password="pw-edge-lead-1")
    TeamLeadAssignment.objects.create(user=user, queue=polled.centre.queue_numbers()[0])
    return user


async def _open(path: str, headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _drain(communicator) -> list[dict]:
    messages = []
    while not await communicator.receive_nothing(timeout=0.3):
        messages.append(json.loads(await communicator.receive_from()))
    return messages


async def _closed_with(communicator, *, timeout: float = 5.0) -> int:
    """The close code the server ends this socket with (skipping data frames)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        output = await communicator.receive_output(timeout=left)
        if output["type"] == "websocket.close":
            return output["code"]
    raise AssertionError(f"the socket was not closed within {timeout} s")


# --- bad input -------------------------------------------------------------------------------


async def test_deep_or_huge_json_is_an_error_and_the_socket_lives_on(polled, admin):
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    for text in ("[" * 100_000, "[" * 3000 + "]" * 3000, '{"type": "resync"' + " " * 9000 + "}"):
        await communicator.send_to(text_data=text)
        error = json.loads(await communicator.receive_from(timeout=5))
        assert (error["type"], error["code"]) == ("error", "invalid")
    assert len("[" * 3000 + "]" * 3000) < MAX_MESSAGE_CHARS  # deep, not big: parsed and refused
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    assert any(m["type"] == "pbx" for m in await _drain(communicator))
    await communicator.disconnect()


async def test_a_message_flood_is_rate_limited_then_closed(polled, admin):
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    for _ in range(15):
        await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    messages = await _drain(communicator)
    codes = {m.get("code") for m in messages if m["type"] == "error"}
    assert codes == {"rate_limited"}
    assert sum(m["type"] == "pbx" for m in messages) == 1  # one resync every 2 s at most
    for _ in range(MESSAGE_FLOOD_DROPS + 5):
        await communicator.send_to(text_data="{}")
    assert await _closed_with(communicator) == 4429
    assert not process_hub().consumers


async def test_after_closing_a_flooder_nothing_more_is_answered(polled, admin):
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    for _ in range(MESSAGE_FLOOD_DROPS + 30):
        await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    assert await _closed_with(communicator) == 4429
    # Frames already on their way are read but not answered: no error, no second close.
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
    assert not process_hub().consumers


@pytest.mark.parametrize("param", ["²", "9" * 5000, "-1,0,abc"])
async def test_junk_queue_numbers_are_ignored(polled, admin, param):
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open(f"/ws/board/?queues={param}", headers)
    hello = json.loads(await communicator.receive_from(timeout=5))
    assert hello["type"] == "hello" and hello["queues"] == []
    await communicator.disconnect()


async def test_too_many_queues_on_one_socket_is_refused(polled, admin):
    _client, headers = await sync_to_async(_login)(admin)
    many = ",".join(str(q) for q in range(1, board_consumers.MAX_SOCKET_QUEUES + 2))
    communicator = await _open(f"/ws/board/?queues={many}", headers)
    assert await _closed_with(communicator) == 4400


async def test_an_exception_in_a_handler_leaves_nothing_behind(polled, admin, monkeypatch):
    async def broken(self, message):
        raise RuntimeError("a bug")

    monkeypatch.setattr(board_consumers.BoardConsumer, "handle_action", broken)
    queues = polled.centre.queue_numbers()
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    assert await sync_to_async(store.watched_queues)(queues) == set(queues)
    await communicator.send_to(text_data=json.dumps({"type": "action"}))
    with pytest.raises(RuntimeError, match="a bug"):
        await communicator.receive_output(timeout=5)
    assert not process_hub().consumers
    assert not process_hub().members
    assert await sync_to_async(store.watched_queues)(queues) == set()
    assert await sync_to_async(store.clients_count)() == 0


@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/kiosk/a/b/", "/ws/board", "/other/"])
async def test_a_path_with_no_socket_is_refused_without_an_application_error(path):
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, _code = await communicator.connect(timeout=5)
    assert not connected  # the handshake is refused, as for a foreign Origin
    await communicator.disconnect()  # raises what the application raised, if anything
    assert not process_hub().consumers


# --- rights withdrawn ------------------------------------------------------------------------


async def test_logging_out_closes_the_users_boards(polled, admin):
    client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    await sync_to_async(client.logout)()
    assert await _closed_with(communicator) == 4401


async def test_deactivating_a_user_closes_their_boards(polled, admin):
    _client, headers = await sync_to_async(_login)(admin)
    communicator = await _open("/ws/board/", headers)
    await _drain(communicator)
    admin.is_active = False
    await sync_to_async(admin.save)()
    assert await _closed_with(communicator) == 4401


async def test_a_team_lead_who_loses_a_queue_reloads_with_the_new_rights(polled, lead):
    _client, headers = await sync_to_async(_login)(lead)
    communicator = await _open("/ws/board/", headers)
    hello = (await _drain(communicator))[0]
    assert hello["can_act"] == [polled.centre.queue_numbers()[0]]
    await sync_to_async(TeamLeadAssignment.objects.filter(user=lead).delete)()
    assert await _closed_with(communicator) == board_consumers.CLOSE_RIGHTS_CHANGED


async def test_a_change_made_around_the_orm_is_caught_by_the_periodic_recheck(
    polled, lead, settings
):
    settings.WS_USER_RECHECK_SECONDS = 0.2
    settings.WS_HEARTBEAT_SECONDS = 0.2
    _client, headers = await sync_to_async(_login)(lead)
    communicator = await _open("/ws/board/", headers)
    while json.loads(await communicator.receive_from(timeout=5))["type"] != "pbx":
        pass  # the first state ends with the PBX state; heartbeats follow all the time
    # A queryset update sends no signal: only the re-check can notice.
    await sync_to_async(get_user_model().objects.filter(pk=lead.pk).update)(is_active=False)
    assert await _closed_with(communicator, timeout=5) == 4401


async def test_narrowing_a_kiosk_reloads_its_tvs(polled):
    first, second = polled.centre.queue_numbers()
    issued = await sync_to_async(kiosk_token_create)(name="Hall", queues=[first, second])
    communicator = await _open(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    await _drain(communicator)
    issued.token.queues = [first]
    await sync_to_async(issued.token.save)()
    await sync_to_async(kiosk_scope_changed)(kiosk_ids=[issued.token.pk])
    assert await _closed_with(communicator) == board_consumers.CLOSE_RIGHTS_CHANGED


async def test_deleting_a_board_never_widens_its_tvs(polled):
    first = polled.centre.queue_numbers()[0]
    board = await sync_to_async(Board.objects.create)(name="Sales", slug="sales", queues=[first])
    issued = await sync_to_async(kiosk_token_create)(name="Sales TV", board=board)
    communicator = await _open(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    hello = (await _drain(communicator))[0]
    assert hello["queues"] == [first]
    await sync_to_async(board_delete)(board=board)
    assert await _closed_with(communicator) == 4403
    again = await _open(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    assert await _closed_with(again) == 4403
