"""The websocket consumers on the full routed application (wallboard.asgi.application) with the
real pub/sub channel layer on Redis, the real poller and the real simulator."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from wallboard.asgi import application
from wallboard.boards.models import KioskToken
from wallboard.boards.services import kiosk_sockets_close, kiosk_token_create
from wallboard.history import services as history
from wallboard.live import push, selectors, store

from .helpers import poll_until, ticks

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


def _in_thread(func, *args, **kwargs):
    """Run blocking code (the poller, the simulator's script) off the event loop."""
    return asyncio.to_thread(func, *args, **kwargs)


async def _receive(communicator, *, timeout: float = 5.0) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def _receive_until(communicator, predicate, *, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the expected message did not arrive")
        message = await _receive(communicator, timeout=left)
        if predicate(message):
            return message


def _session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


@pytest.fixture
def admin_headers():
    user = get_user_model().objects.create_superuser("live-admin", password="pw-live-admin-1")
    return _session_headers(user)


@pytest.fixture
def polled(simulator):
    """The simulator with every queue's snapshot, today's figures published, in Redis."""
    queues = simulator.centre.queue_numbers()
    poll_until(lambda: all(selectors.snapshot_get(queue=q) for q in queues))
    history.cdr_poll_tick(now=_simulated_now(simulator))

    def counted(queue: int) -> bool:
        return selectors.snapshot_get(queue=queue)["kpi"]["answered_today"] is not None

    assert all(counted(q) for q in queues)
    return simulator


def _simulated_now(sim) -> datetime:
    """The simulator's clock: the day its call records are written under."""
    return datetime.fromtimestamp(sim.centre.now(), UTC)


async def _connect(path: str, headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _initial(communicator, queues: int) -> list[dict]:
    """hello, one snapshot per queue, pbx — in that order."""
    return [await _receive(communicator) for _ in range(queues + 2)]


async def test_an_anonymous_board_is_closed_with_4401():
    communicator = await _connect("/ws/board/", [ORIGIN])
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused(admin_headers):
    headers = [(b"origin", b"http://evil.example"), *admin_headers[1:]]
    communicator = WebsocketCommunicator(application, "/ws/board/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_a_new_client_gets_everything_from_redis_without_a_pbx_request(polled, admin_headers):
    queues = polled.centre.queue_numbers()
    requests_before = len(polled.requests_log)
    communicator = await _connect("/ws/board/", admin_headers)
    hello, *snapshots, pbx = await _initial(communicator, len(queues))
    assert hello["type"] == "hello" and hello["schema"] == 1
    assert hello["queues"] == queues and hello["can_act"] == queues
    assert [(s["type"], s["queue"], s["version"]) for s in snapshots] == [
        ("snapshot", q, selectors.snapshot_get(queue=q)["version"]) for q in queues
    ]
    assert snapshots[0]["data"] == selectors.snapshot_get(queue=queues[0])
    assert pbx["type"] == "pbx" and pbx["data"]["state"] == "ok"
    assert len(polled.requests_log) == requests_before  # never a PBX request on connect

    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    again = await _initial(communicator, len(queues) - 1)
    assert [m["type"] for m in again] == ["snapshot"] * len(queues) + ["pbx"]
    await communicator.send_to(text_data=json.dumps({"type": "dance", "request_id": "r9"}))
    error = await _receive(communicator)
    assert (error["type"], error["code"], error["request_id"]) == ("error", "unknown_type", "r9")
    await communicator.disconnect()


async def test_the_queues_parameter_narrows_the_board(polled, admin_headers):
    _first, second = polled.centre.queue_numbers()
    communicator = await _connect(f"/ws/board/?queues={second},junk", admin_headers)
    hello, snapshot, _pbx = await _initial(communicator, 1)
    assert hello["queues"] == [second]
    assert snapshot["queue"] == second
    await communicator.disconnect()


async def test_a_change_in_the_simulator_reaches_a_connected_client(polled, admin_headers):
    queue = polled.centre.queue_numbers()[0]
    communicator = await _connect(f"/ws/board/?queues={queue}", admin_headers)
    initial = await _initial(communicator, 1)
    first_version = initial[1]["version"]
    assert await _in_thread(store.watched_queues, [queue]) == {queue}

    await _in_thread(polled.centre.add_waiting_caller, queue, caller="00421905000009")
    poller_done = asyncio.create_task(
        _in_thread(
            poll_until, lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 1
        )
    )
    message = await _receive_until(communicator, lambda m: m["type"] == "snapshot")
    await poller_done
    assert message["version"] > first_version
    assert message["data"]["waiting"][0]["caller"] == "00421905000009"

    # The caller keeps waiting and the poller keeps polling: nothing new to push.
    requests_before = len(polled.requests_log)
    await _in_thread(ticks, 3)
    assert len(polled.requests_log) > requests_before
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_published_figure_reaches_a_connected_board(polled, admin_headers):
    """An answered call in the simulator's call records, read by the call history's poll and
    published: the board shows it without a reconnect, in the queue's figures and the agent's
    row."""
    queue = polled.centre.queue_numbers()[0]
    agent = polled.centre.members(queue)[0]
    communicator = await _connect(f"/ws/board/?queues={queue}", admin_headers)
    _hello, first, _pbx = await _initial(communicator, 1)
    answered = first["data"]["kpi"]["answered_today"]

    def call_answered_and_published() -> None:
        polled.centre.add_waiting_caller(queue, caller="00421905000031", wait_time=6)
        polled.centre.start_call(queue, agent)
        polled.centre.advance(40, live=False)
        polled.centre.end_call(agent)
        history.cdr_poll_tick(now=_simulated_now(polled))

    await _in_thread(call_answered_and_published)
    message = await _receive_until(
        communicator, lambda m: m["type"] == "snapshot" and m["data"]["kpi"]["answered_today"]
    )
    assert message["data"]["kpi"]["answered_today"] == answered + 1
    row = next(m for m in message["data"]["members"] if m["extension"] == agent)
    assert row["answered"] >= 1 and row["talk_seconds"] >= 40
    assert message["data"]["kpi"]["asa"] is not None

    # The next poll of the history finds nothing new: nothing is pushed.
    await _in_thread(history.cdr_poll_tick, now=_simulated_now(polled))
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_403_puts_blocked_until_on_the_board(polled, admin_headers):
    communicator = await _connect("/ws/board/", admin_headers)
    await _initial(communicator, len(polled.centre.queue_numbers()))
    await _in_thread(polled.centre.set_fault, "forbidden")
    await _in_thread(poll_until, lambda: selectors.pbx_state_get()["state"] == "blocked")
    message = await _receive_until(communicator, lambda m: m["type"] == "pbx")
    assert message["data"]["state"] == "blocked"
    assert message["data"]["blocked_until"]
    await communicator.disconnect()


async def test_no_group_membership_or_watcher_leaks_after_disconnect(polled, admin_headers):
    queues = polled.centre.queue_numbers()
    communicator = await _connect("/ws/board/", admin_headers)
    await _initial(communicator, len(queues))
    layer = get_channel_layer()._get_layer()
    group_names = {layer._get_group_channel_name(push.queue_group(q)) for q in queues}
    assert group_names <= set(layer.groups)
    assert await _in_thread(store.clients_count) == 1
    await communicator.disconnect()
    assert not group_names & set(layer.groups)
    assert layer._get_group_channel_name(push.GROUP_PBX) not in layer.groups
    assert await _in_thread(store.watched_queues, queues) == set()
    assert await _in_thread(store.clients_count) == 0


async def test_a_process_takes_each_push_once_and_writes_it_to_every_board(polled, admin_headers):
    queue = polled.centre.queue_numbers()[0]
    boards = [await _connect(f"/ws/board/?queues={queue}", admin_headers) for _ in range(3)]
    for board in boards:
        await _initial(board, 1)
    layer = get_channel_layer()._get_layer()
    # One member per process (its hub), not one per board: a push crosses the layer once.
    assert len(layer.groups[layer._get_group_channel_name(push.queue_group(queue))]) == 1
    await _in_thread(polled.centre.add_waiting_caller, queue, caller="00421905000012")
    await _in_thread(
        poll_until, lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 1
    )
    for board in boards:
        message = await _receive_until(
            board, lambda m: m["type"] == "snapshot" and m["data"]["counts"]["waiting"] == 1
        )
        assert message["queue"] == queue
    await boards[0].disconnect()
    # The others still get pushes after one board left.
    await _in_thread(polled.centre.add_waiting_caller, queue, caller="00421905000013")
    await _in_thread(
        poll_until, lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 2
    )
    for board in boards[1:]:
        await _receive_until(
            board, lambda m: m["type"] == "snapshot" and m["data"]["counts"]["waiting"] == 2
        )
        await board.disconnect()
    assert layer._get_group_channel_name(push.queue_group(queue)) not in layer.groups


async def test_a_connection_that_fails_while_connecting_leaves_no_group_behind(
    polled, admin_headers, monkeypatch
):
    queue = polled.centre.queue_numbers()[0]

    def redis_gone(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(store, "watch_register", redis_gone)
    communicator = WebsocketCommunicator(
        application, f"/ws/board/?queues={queue}", headers=admin_headers
    )
    await communicator.connect(timeout=5)  # accepted just before Redis failed
    with pytest.raises(redis.ConnectionError):
        await communicator.receive_from(timeout=5)  # the application ended with the error
    layer = get_channel_layer()._get_layer()
    assert layer._get_group_channel_name(push.queue_group(queue)) not in layer.groups


async def test_heartbeat_frames_go_to_quiet_links_only(polled, admin_headers, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.3
    busy_queue, quiet_queue = polled.centre.queue_numbers()[:2]
    busy = await _connect(f"/ws/board/?queues={busy_queue}", admin_headers)
    quiet = await _connect(f"/ws/board/?queues={quiet_queue}", admin_headers)
    version = (await _initial(busy, 1))[1]["version"]
    await _initial(quiet, 1)

    async def keep_busy() -> None:
        nonlocal version
        while True:
            version += 1
            snapshot = {**selectors.snapshot_get(queue=busy_queue), "version": version}
            await _in_thread(push.snapshot_publish, snapshot)
            await asyncio.sleep(0.05)

    async def heartbeats(communicator, seconds: float) -> int:
        # Both links hear something at least every 0.3 s: a receive that timed out would
        # cancel the application (asgiref's communicator), so none is allowed to.
        count, until = 0, time.monotonic() + seconds
        while time.monotonic() < until:
            message = await _receive(communicator, timeout=2)
            count += message["type"] == "heartbeat"
        return count

    pushing = asyncio.create_task(keep_busy())
    try:
        on_busy, on_quiet = await asyncio.gather(heartbeats(busy, 2.4), heartbeats(quiet, 2.4))
    finally:
        pushing.cancel()
    # A busy link gets at most its once-per-12-beats frame (clock, fresh_at); a quiet one, about
    # one per beat (8 beats in 2.4 s).
    assert on_busy <= 1
    assert on_quiet >= 4
    await busy.disconnect()
    await quiet.disconnect()


async def test_a_connection_held_past_the_group_expiry_still_gets_updates(
    polled, admin_headers, settings, redis_prefix
):
    # The core layer forgets group members after group_expiry; a TV stays for weeks. With a
    # 1 s expiry and a 0.3 s heartbeat, the heartbeat's re-join must keep the board subscribed.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [settings.REDIS_URL],
                "prefix": f"{redis_prefix}:core",
                "group_expiry": 1,
            },
        }
    }
    settings.WS_HEARTBEAT_SECONDS = 0.3
    queue = polled.centre.queue_numbers()[0]
    communicator = await _connect(f"/ws/board/?queues={queue}", admin_headers)
    await _initial(communicator, 1)
    heartbeats = 0
    held_until = time.monotonic() + 3.0
    while time.monotonic() < held_until:
        message = await _receive(communicator)
        if message["type"] == "heartbeat":
            heartbeats += 1
            assert message["fresh_at"] == await _in_thread(selectors.fresh_at_get)
    assert heartbeats >= 5
    # Still a member: the heartbeat renewed the membership the layer would have dropped.
    group_key = f"{redis_prefix}:core:group:{push.queue_group(queue)}"
    connection = redis.Redis.from_url(settings.REDIS_URL)
    members = connection.zrange(group_key, 0, -1, withscores=True)
    connection.close()
    assert members and max(score for _member, score in members) > time.time() - 1

    await _in_thread(polled.centre.add_waiting_caller, queue, caller="00421905000010")
    await _in_thread(
        poll_until, lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 1
    )
    message = await _receive_until(communicator, lambda m: m["type"] == "snapshot")
    assert message["data"]["counts"]["waiting"] == 1
    await communicator.disconnect()


async def test_a_kiosk_is_read_only_scoped_and_closed_when_revoked(polled):
    queue = polled.centre.queue_numbers()[1]
    issued = await sync_to_async(kiosk_token_create)(name="Hall TV", queues=[queue])
    communicator = await _connect(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    hello, snapshot, _pbx = await _initial(communicator, 1)
    assert (hello["queues"], hello["can_act"], snapshot["queue"]) == ([queue], [], queue)

    action = {"type": "action", "request_id": "k1", "action": "pause", "queue": queue,
              "extension": polled.centre.members(queue)[0]}  # fmt: skip
    await communicator.send_to(text_data=json.dumps(action))
    error = await _receive(communicator)
    assert (error["type"], error["code"], error["request_id"]) == ("error", "forbidden", "k1")

    await sync_to_async(kiosk_sockets_close)(kiosk_id=issued.token.pk)
    output = await _receive_output_until_close(communicator)
    assert output["code"] == 4403
    await communicator.disconnect()


async def test_a_revoked_kiosk_token_is_refused_and_found_out_on_the_heartbeat(polled, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.2
    settings.WS_RECHECK_SECONDS = 0.1
    issued = await sync_to_async(kiosk_token_create)(name="Lobby TV")
    communicator = await _connect(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    await _initial(communicator, len(polled.centre.queue_numbers()))
    # Revoked behind the consumer's back (no layer event): the heartbeat re-validates.
    await sync_to_async(KioskToken.objects.filter(pk=issued.token.pk).update)(
        revoked_at=issued.token.created
    )
    output = await _receive_output_until_close(communicator)
    assert output["code"] == 4403
    await communicator.disconnect()

    refused = await _connect(f"/ws/kiosk/{issued.secret}/", [ORIGIN])
    assert (await refused.receive_output(timeout=5))["code"] == 4403
    await refused.disconnect()


async def _receive_output_until_close(communicator, *, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        output = await communicator.receive_output(timeout=max(0.1, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return output


async def test_an_action_reaches_the_pbx_and_its_result_the_board(polled, admin_headers):
    queue = polled.centre.queue_numbers()[0]
    extension = polled.centre.members(queue)[0]
    communicator = await _connect(f"/ws/board/?queues={queue}", admin_headers)
    await _initial(communicator, 1)
    action = {"type": "action", "request_id": "r1", "action": "pause", "queue": queue,
              "extension": extension}  # fmt: skip
    await communicator.send_to(text_data=json.dumps(action))
    # The refresh's push and the answer travel separately (the push through the process's hub):
    # either may arrive first.
    seen: dict[str, dict] = {}
    while len(seen) < 2:
        message = await _receive(communicator, timeout=5)
        if message["type"] in ("action_result", "snapshot"):
            seen[message["type"]] = message
    result = seen["action_result"]
    assert result["ok"] and result["request_id"] == "r1" and result["detail"] == "Paused"
    assert polled.centre.member_state(queue, extension)["paused"]
    member = next(m for m in seen["snapshot"]["data"]["members"] if m["extension"] == extension)
    assert member["state"] == "paused"

    bad = {**action, "request_id": "r2", "action": "explode"}
    await communicator.send_to(text_data=json.dumps(bad))
    error = await _receive_until(communicator, lambda m: m["type"] == "error")
    assert (error["code"], error["request_id"]) == ("invalid", "r2")
    await communicator.disconnect()


async def test_a_push_lost_by_the_layer_is_caught_up_on_the_next_heartbeat(
    polled, admin_headers, settings, monkeypatch
):
    settings.WS_HEARTBEAT_SECONDS = 0.3
    queue = polled.centre.queue_numbers()[0]
    communicator = await _connect(f"/ws/board/?queues={queue}", admin_headers)
    first_version = (await _initial(communicator, 1))[1]["version"]
    # Pub/sub forgets what it could not deliver (Redis away for a moment): no push at all.
    monkeypatch.setattr(push, "snapshot_publish", lambda snapshot: None)
    await _in_thread(polled.centre.add_waiting_caller, queue, caller="00421905000011")
    await _in_thread(
        poll_until, lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 1
    )
    message = await _receive_until(communicator, lambda m: m["type"] == "snapshot", timeout=3)
    assert message["version"] > first_version
    assert message["data"]["counts"]["waiting"] == 1
    await communicator.disconnect()


async def test_a_viewer_sees_every_queue_but_may_not_act(polled):
    viewer = await sync_to_async(get_user_model().objects.create_user)(
        "live-viewer", password="pw-live-viewer-1"
    )
    headers = await sync_to_async(_session_headers)(viewer)
    queues = polled.centre.queue_numbers()
    communicator = await _connect("/ws/board/", headers)
    hello, *_rest = await _initial(communicator, len(queues))
    assert (hello["queues"], hello["can_act"]) == (queues, [])
    requests_before = len(polled.requests_log)
    action = {"type": "action", "request_id": "v1", "action": "pause", "queue": queues[0],
              "extension": polled.centre.members(queues[0])[0]}  # fmt: skip
    await communicator.send_to(text_data=json.dumps(action))
    error = await _receive(communicator)
    assert (error["type"], error["code"], error["request_id"]) == ("error", "forbidden", "v1")
    assert len(polled.requests_log) == requests_before
    await communicator.disconnect()
