"""Hypothesis against the websocket edges (docs/websocket.md): random text and binary frames,
random JSON, actions with values of every type, huge and deeply nested messages, unicode,
floods and resync floods, on logged-in boards (admin, team lead, viewer) and on a kiosk; and
connects with random paths, query strings, origins and cookies.

Every answer must be a documented frame (a JSON object of a documented type and shape, errors
with a documented code) or a close with a documented code, nothing after a close, and the
application never raises. After every example nothing is left behind: no connection in the
process hub, no watcher registration in Redis, and a fresh socket still gets hello, every
snapshot and the PBX state.

The routed application in this process (``WebsocketCommunicator``), the real channel layer on
Redis, snapshots in Redis built from the real simulator, actions through the real budget, and
heartbeats and re-checks ten times a second. One event loop for each test's examples (one
process hub, as in Daphne). Bounded: a fixed number of derandomised examples, and the frames of
one example are answered within seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pbxapi.simulator.centre import FIRST_AGENT, FIRST_QUEUE, RECEPTION
from wallboard.asgi import application
from wallboard.boards.services import kiosk_token_create
from wallboard.control.models import TeamLeadAssignment
from wallboard.control.services import ACTIONS
from wallboard.live import store
from wallboard.live.consumers import MAX_MESSAGE_CHARS, MESSAGE_BURST, MESSAGE_FLOOD_DROPS
from wallboard.live.hub import process_hub
from wallboard.live.services import queue_refresh, source_fetch
from wallboard.live.shapes import ServerMessage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fuzz, pytest.mark.integration]

MAX_EXAMPLES = 40
# The simulator's numbering (pbxapi.simulator.centre): its queues, and every extension it has.
SIM_QUEUES = 2
SIM_AGENTS = 4
KNOWN_QUEUES = list(range(FIRST_QUEUE, FIRST_QUEUE + SIM_QUEUES))
KNOWN_EXTENSIONS = [RECEPTION, *range(FIRST_AGENT, FIRST_AGENT + SIM_AGENTS)]
DOORS = ["admin", "team_lead", "viewer", "kiosk"]
ORIGIN = (b"origin", b"http://127.0.0.1")
# docs/websocket.md: the error codes and close codes a client can be given.
ERROR_CODES = {"forbidden", "invalid", "unknown_type", "throttled", "rate_limited"}
CLOSE_CODES = {4400, 4401, 4403, 4001, 4429}
# Each server message type and the keys its frame carries (wallboard.live.shapes).
SHAPES = {
    get_args(get_type_hints(shape)["type"])[0]: set(get_type_hints(shape))
    for shape in get_args(ServerMessage)
}
# An example's frames have been answered once the socket is quiet this long (an action waits
# for the PBX on a thread: the simulator answers in milliseconds, a budget slot within a second).
QUIET_SECONDS = 0.3
ANSWER_SECONDS = 15.0

# --- what a client may send ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
message_types = st.sampled_from(["action", "resync", "hello", "snapshot", "", "ACTION"]) | (
    json_values
)


@st.composite
def actions(draw, queues: list[int], extensions: list[int]) -> dict[str, Any]:
    """An action that looks valid: each field usually right, else missing or of any type."""
    fields = {
        "request_id": (st.text(max_size=10) | st.integers(), json_values),
        "action": (st.sampled_from(sorted(ACTIONS)), json_values),
        "queue": (st.sampled_from(queues), st.integers() | st.text(max_size=12) | json_values),
        "extension": (
            st.sampled_from(extensions),
            st.integers() | st.text(max_size=12) | json_values,
        ),
    }
    message = {"type": "action"}
    for name, (right, wrong) in fields.items():
        choice = draw(st.integers(0, 7))  # right six times in eight
        if choice == 6:
            continue  # missing
        message[name] = draw(wrong if choice == 7 else right)
    return message


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth  # never closed


def _resync_of_length(size: int) -> str:
    """A resync padded with non-ASCII characters to exactly ``size`` characters."""
    bare = '{"type":"resync","pad":""}'
    return bare[:-2] + "é" * (size - len(bare)) + bare[-2:]


@dataclass(frozen=True)
class Frame:
    text: str | None = None
    data: bytes | None = None
    repeat: int = 1

    def message(self) -> dict[str, Any]:
        if self.text is not None:
            return {"type": "websocket.receive", "text": self.text}
        return {"type": "websocket.receive", "bytes": self.data or b""}


def _json_frames(values: st.SearchStrategy) -> st.SearchStrategy[Frame]:
    """JSON text of these values, unicode escaped or as it is."""
    return st.builds(
        lambda value, ascii_only: Frame(json.dumps(value, ensure_ascii=ascii_only)),
        values,
        st.booleans(),
    )


def frames(queues: list[int], extensions: list[int]) -> st.SearchStrategy[list[Frame]]:
    """Lists of frames, weighted towards messages that get past the parser."""
    action_frames = _json_frames(actions(queues, extensions))
    typed_objects = _json_frames(
        st.dictionaries(st.text(max_size=8), json_values, max_size=4).flatmap(
            lambda extra: message_types.map(lambda kind: {**extra, "type": kind})
        )
    )
    single = st.one_of(
        action_frames,
        action_frames,
        action_frames,
        typed_objects,
        typed_objects,
        _json_frames(json_values),
        st.text(max_size=200).map(Frame),  # any unicode, rarely JSON
        st.just(Frame(json.dumps({"type": "resync"}))),
        # At the size limit, just over it, and far over it.
        st.sampled_from([MAX_MESSAGE_CHARS, MAX_MESSAGE_CHARS + 1, 100_000, 2_000_000]).map(
            lambda size: Frame(_resync_of_length(size))
        ),
        st.builds(
            _nested,
            st.sampled_from([10, 900, 1100, 3000, 100_000]),
            st.sampled_from(["list", "object", "open"]),
        ).map(Frame),
        st.one_of(st.binary(max_size=300), st.just(bytes(1_000_000))).map(
            lambda data: Frame(data=data)
        ),
    )
    # Floods: a burst just over the allowance, or enough to be closed for flooding.
    flood = st.builds(
        Frame,
        text=st.sampled_from([json.dumps({"type": "resync"}), "{}", "x"]),
        repeat=st.sampled_from(
            [MESSAGE_BURST + 1, MESSAGE_BURST + 30, MESSAGE_BURST + MESSAGE_FLOOD_DROPS + 5]
        ),
    )
    # A flood ends an example (one that is closed for it answers nothing more), in one of three.
    return st.builds(
        lambda singles, ending: [*singles, *ending],
        st.lists(single, min_size=1, max_size=8),
        st.one_of(st.just([]), st.just([]), flood.map(lambda frame: [frame])),
    )


# --- the application's side --------------------------------------------------------------------


@dataclass(frozen=True)
class Door:
    """How a socket is opened: its path and handshake headers."""

    name: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...]


@pytest.fixture
def live(simulator_factory) -> list[int]:
    """The simulator's queues, fetched once into real snapshots in Redis."""
    simulator = simulator_factory(queues=SIM_QUEUES, agents=SIM_AGENTS)
    assert simulator.centre.queue_numbers() == KNOWN_QUEUES
    source_fetch(store.SOURCE_QUEUES)
    for queue in KNOWN_QUEUES:
        queue_refresh(queue=queue, with_calls=True)
    return KNOWN_QUEUES


def _board_door(user, name: str) -> Door:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return Door(name, "/ws/board/", (ORIGIN, (b"cookie", cookie)))


@pytest.fixture
def doors(live) -> dict[str, Door]:
    """A board for each persona and a kiosk for every queue."""
    users = get_user_model().objects
    lead = users.create_user("fuzz-lead")
    TeamLeadAssignment.objects.create(user=lead, queue=live[0])
    kiosk = kiosk_token_create(name="Fuzz TV")
    return {
        "admin": _board_door(users.create_superuser("fuzz-admin"), "admin"),
        "team_lead": _board_door(lead, "team_lead"),
        "viewer": _board_door(users.create_user("fuzz-viewer"), "viewer"),
        "kiosk": Door("kiosk", f"/ws/kiosk/{kiosk.secret}/", (ORIGIN,)),
    }


@pytest.fixture(autouse=True)
def beats_all_the_time(settings):
    """Heartbeats and rights re-checks many times an example, so that they run into the frames,
    floods and closes being fuzzed (with the defaults most examples would see none)."""
    settings.WS_HEARTBEAT_SECONDS = 0.1
    settings.WS_USER_RECHECK_SECONDS = 0.2
    settings.WS_RECHECK_SECONDS = 0.2


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    """One event loop for all the examples of a test, as Daphne has one per process."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def no_errors_logged(caplog) -> Iterator[Callable[[], None]]:
    """Each example may log no error, and the live machinery (hub, consumers) no warning."""

    def check() -> None:
        bad = [
            record
            for record in caplog.records
            if record.levelno >= logging.ERROR
            or (record.levelno >= logging.WARNING and record.name.startswith("wallboard.live"))
        ]
        caplog.clear()
        assert not bad, [record.getMessage() for record in bad]

    caplog.set_level(logging.WARNING)
    yield check


# --- checking the answers ----------------------------------------------------------------------


def _check_answers(outputs: list[dict[str, Any]], *, accepted: bool) -> int | None:
    """Every output documented, nothing after a close; returns the close code, if any."""
    closed: int | None = None
    for index, output in enumerate(outputs):
        assert closed is None, f"sent after the close {closed}: {output}"
        if output["type"] == "websocket.close":
            closed = output.get("code", 1000)
            assert closed in CLOSE_CODES, output
            continue
        assert output["type"] == "websocket.send", output
        assert output.get("bytes") is None, "binary frames are never sent"
        message = json.loads(output["text"])
        assert isinstance(message, dict) and message.get("type") in SHAPES, message
        assert set(message) == SHAPES[message["type"]], message
        if index == 0:
            assert accepted and message["type"] == "hello", message
        if message["type"] == "error":
            assert message["code"] in ERROR_CODES, message
        if message["type"] in {"error", "action_result"}:
            request_id = message["request_id"]
            assert request_id is None or type(request_id) in (str, int), message
        if message["type"] == "snapshot":
            assert message["data"]["queue"] == message["queue"]
    return closed


def _is_heartbeat(output: dict[str, Any]) -> bool:
    return output["type"] == "websocket.send" and output["text"].startswith('{"type":"heartbeat"')


async def _answers(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    """What the application sends until it has said nothing but heartbeats for a moment."""
    outputs = []
    deadline = time.monotonic() + ANSWER_SECONDS
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        if await communicator.receive_nothing(timeout=0.02, interval=0.005):
            continue
        output = await communicator.receive_output()
        outputs.append(output)
        if not _is_heartbeat(output):
            quiet_since = time.monotonic()
        assert time.monotonic() < deadline, "the socket kept talking"
    return outputs


async def _hang_up(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Disconnect (raising whatever the application raised) and return what it sent last."""
    await communicator.disconnect(timeout=ANSWER_SECONDS)
    rest = []
    while not communicator.output_queue.empty():
        rest.append(communicator.output_queue.get_nowait())
    return rest


async def _nothing_left_behind() -> None:
    hub = process_hub()
    assert not hub.consumers, hub.consumers
    assert not hub.members, hub.members
    assert await sync_to_async(_registrations)() == {}


def _registrations() -> dict[str, int]:
    """Every watcher or client registration in this test's Redis keys."""
    connection = store.redis_connection()
    keys = [
        *connection.scan_iter(match=store.key("watchers", "*")),
        *connection.scan_iter(match=store.key("clients")),
    ]
    counts = {key: connection.zcard(key) for key in keys}
    return {key: count for key, count in counts.items() if count}


async def _fresh_socket_works(door: Door, queues: list[int]) -> None:
    """A new socket through the same door gets hello, every snapshot and the PBX state."""
    communicator = WebsocketCommunicator(application, door.path, headers=list(door.headers))
    connected, _ = await communicator.connect(timeout=5)
    try:
        assert connected
        hello = json.loads(await communicator.receive_from(timeout=5))
        assert hello["type"] == "hello" and hello["queues"] == queues
        state = [json.loads(await communicator.receive_from(timeout=5)) for _ in queues]
        state.append(json.loads(await communicator.receive_from(timeout=5)))
        assert [m["type"] for m in state] == ["snapshot"] * len(queues) + ["pbx"]
        assert [m["queue"] for m in state[:-1]] == queues
        # While it is open it is registered (so no registration afterwards means something).
        registered = await sync_to_async(_registrations)()
        watchers = {store.key("watchers", queue) for queue in queues}
        assert set(registered) == {store.key("clients"), *watchers}
    finally:
        await _hang_up(communicator)
    await _nothing_left_behind()


# --- the tests ---------------------------------------------------------------------------------


def _action(request_id: str | int, action: str, queue: int, extension: int) -> Frame:
    message = {"type": "action", "request_id": request_id, "action": action}
    return Frame(json.dumps({**message, "queue": queue, "extension": extension}))


@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The simulator, snapshots, users and event loop are shared by the examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(door_name=st.sampled_from(DOORS), sent=frames(KNOWN_QUEUES, KNOWN_EXTENSIONS))
# Besides what Hypothesis makes up, every run tries these: actions the PBX does (201 is a
# member of 100 in the seeded simulator), one the team lead may not do, a read-only kiosk's, a
# flood that ends in a close, and messages at and over the limits.
@example(door_name="admin", sent=[_action("p", "pause", 100, 201), _action(7, "unpause", 100, 201)])
@example(door_name="team_lead", sent=[_action("a", "add", 100, 202), _action("b", "add", 101, 203)])
@example(door_name="kiosk", sent=[_action("k", "pause", 100, 201)])
@example(door_name="viewer", sent=[Frame(json.dumps({"type": "resync"}), repeat=150)])
@example(
    door_name="admin",
    sent=[
        Frame(_resync_of_length(MAX_MESSAGE_CHARS)),
        Frame(_resync_of_length(MAX_MESSAGE_CHARS + 1)),
        Frame(_nested(100_000, "list")),
        Frame(data=b"\x00" * 10),
    ],
)
def test_it_answers_any_frames_as_documented_and_leaves_nothing_behind(
    door_name, sent, live, doors, loop, no_errors_logged
):
    door = doors[door_name]

    async def example() -> None:
        communicator = WebsocketCommunicator(application, door.path, headers=list(door.headers))
        connected, _ = await communicator.connect(timeout=5)
        outputs = []
        try:
            assert connected
            for frame in sent:
                for _ in range(frame.repeat):
                    await communicator.send_input(frame.message())
            outputs += await _answers(communicator)
        finally:
            outputs += await _hang_up(communicator)
        _check_answers(outputs, accepted=True)
        await _nothing_left_behind()
        await _fresh_socket_works(door, live)

    loop.run(example())
    no_errors_logged()


query_parts = st.one_of(
    st.text(max_size=30),
    st.lists(st.text(max_size=6) | st.integers(-5, 2**40).map(str), max_size=6).map(
        lambda parts: "queues=" + ",".join(parts)
    ),
    st.integers(0, 250).map(lambda count: "queues=" + ",".join(map(str, range(1, count + 1)))),
)


@dataclass(frozen=True)
class Handshake:
    """A door's handshake with its path, query string, Origin or cookie changed."""

    door: str
    path: str | None = None  # None: the door's own
    query: str = ""
    origin: bytes | None = None  # replaces the door's Origin; b"-" drops it
    cookie: bytes | None = None  # replaces the door's cookie

    def resolve(self, doors: dict[str, Door]) -> Door:
        door = doors[self.door]
        headers = dict(door.headers)
        if self.origin == b"-":
            del headers[b"origin"]
        elif self.origin is not None:
            headers[b"origin"] = self.origin
        if self.cookie is not None:
            headers[b"cookie"] = self.cookie
        path = door.path if self.path is None else self.path
        return Door(
            door.name, f"{path}?{self.query}" if self.query else path, tuple(headers.items())
        )


handshakes = st.builds(
    Handshake,
    door=st.sampled_from(DOORS),
    path=st.one_of(
        st.none(),
        st.none(),
        st.just("/ws/board/"),
        st.text(min_size=1, max_size=300).map(lambda t: f"/ws/kiosk/{quote(t, safe='')}/"),
        st.text(max_size=40).map(lambda t: "/" + quote(t, safe="/")),
    ),
    query=st.lists(query_parts, max_size=3).map("&".join),
    origin=st.none() | st.sampled_from([b"-", b"http://evil.example", b"null", b""]),
    cookie=st.none() | st.text(max_size=40).map(lambda t: b"sessionid=" + quote(t).encode()),
)
MANY_QUEUES = "queues=" + ",".join(str(q) for q in range(1, 202))


@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(handshake=handshakes)
# Besides what Hypothesis makes up, every run tries each documented refusal.
@example(handshake=Handshake("admin", query=MANY_QUEUES))  # 4400
@example(handshake=Handshake("admin", cookie=b"sessionid=nobody"))  # 4401
@example(handshake=Handshake("kiosk", path="/ws/kiosk/not-a-token/"))  # 4403
@example(handshake=Handshake("admin", origin=b"http://evil.example"))  # refused handshake
@example(handshake=Handshake("kiosk", path="/ws/nowhere/"))  # refused handshake
def test_it_refuses_or_serves_any_handshake_as_documented(
    handshake, live, doors, loop, no_errors_logged
):
    door = handshake.resolve(doors)

    async def example() -> None:
        communicator = WebsocketCommunicator(application, door.path, headers=list(door.headers))
        connected, _ = await communicator.connect(timeout=5)
        outputs = []
        try:
            if connected:
                outputs += await _answers(communicator)
        finally:
            outputs += await _hang_up(communicator)
        _check_answers(outputs, accepted=connected)
        await _nothing_left_behind()
        await _fresh_socket_works(doors["admin"], live)

    loop.run(example())
    no_errors_logged()


# --- the checks themselves -------------------------------------------------------------------


def _sent(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "websocket.send", "text": json.dumps(message)}


ERROR = {"type": "error", "request_id": None, "code": "invalid", "message": "No."}


@pytest.mark.parametrize(
    "outputs",
    [
        [_sent({"type": "gossip"})],
        [_sent({**ERROR, "code": "oops"})],
        [_sent({**ERROR, "extra": 1})],
        [_sent({**ERROR, "request_id": True})],
        [{"type": "websocket.send", "bytes": b"{}"}],
        [{"type": "websocket.close", "code": 1011}],
        [{"type": "websocket.close", "code": 4429}, _sent(ERROR)],
    ],
    ids=["type", "error-code", "shape", "request-id", "binary", "close-code", "after-close"],
)
def test_it_refuses_what_docs_websocket_md_does_not_document(outputs):
    with pytest.raises(AssertionError):
        _check_answers(outputs, accepted=False)


def test_it_takes_documented_answers():
    hello = {"type": "hello", "schema": 1, "server_time": "T", "heartbeat": 5}
    outputs = [
        _sent({**hello, "queues": [100], "can_act": []}),
        _sent({**ERROR, "request_id": "r1"}),
        {"type": "websocket.close", "code": 4429},
    ]
    assert _check_answers(outputs, accepted=True) == 4429
    assert _check_answers([{"type": "websocket.close", "code": 4401}], accepted=True) == 4401
