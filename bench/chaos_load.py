"""The chaos run's load and eyes: kiosk TVs on websockets, a supervisor acting through the API,
and what the simulated PBX saw (every request's arrival, the rate limiter's refusals).

TVs behave like static/js/lib/connection.js: reconnect with exponential backoff and jitter
(1 s doubling to 30 s, reset by "hello"), treat 2.5 heartbeats of silence as a dead link, stop
for good on 4400/4401/4403.

Each TV records when it got *fresh data*: a snapshot whose `fetched.queue_status` it had not
seen (the poller fetched that queue again), while the PBX simulator answered a `queue/status` of
that queue less than BOARD_NOTICE_SECONDS before. Both on this process's monotonic clock, so
no server clock, stepped or not, takes part. The server pushes a snapshot only when something on
it changed, so every TV also asks for a resync (a message of the protocol: every snapshot again,
from Redis, no PBX request) every RESYNC_SECONDS; then a quiet queue's new poll shows too.

Some TVs are *plain* instead: they never resync, exactly like the page, and record when the
page's own age banner would call the data fresh (`shown`, sampled every half second): the
newest of the heartbeat's `fresh_at` and the snapshots' `fetched.queue_status`, less than
BOARD_NOTICE_SECONDS old by the server's clock (static/js/lib/board-page.js, `dataTime`). Their
resyncs would hide what the page sees (a link that gets frames gets no heartbeats), so plain TVs
measure the banner and the others the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import psutil
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

FINAL_CODES = frozenset({4400, 4401, 4403})
BASE_DELAY = 1.0
MAX_DELAY = 30.0
RESYNC_SECONDS = 2.5  # the server refuses resyncs closer than 2 s
POLL_PATHS = ("/api/queue/status", "/api/call/statistics")
ACTION_PATHS = ("/api/queue/pause", "/api/queue/unpause")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


# --- TVs -------------------------------------------------------------------------------------


@dataclass
class TvRecord:
    """What one TV lived through, on the chaos process's monotonic clock."""

    name: str
    plain: bool = False  # behaves exactly like the page (no resyncs): measures the banner
    opens: list[float] = field(default_factory=list)  # "hello" received
    closes: list[tuple[float, int | None]] = field(default_factory=list)
    # Fresh data received: (when, the PBX's last answer for that queue before it), monotonic.
    fresh: list[tuple[float, float]] = field(default_factory=list)
    # Plain TVs: when (sampled) the page's age banner called the data fresh.
    shown: list[float] = field(default_factory=list)
    pbx_states: list[tuple[float, str]] = field(default_factory=list)
    final_code: int | None = None
    connected: bool = False


class TvState:
    """A TV's view of the data: which poll results it has seen, the server's clock offset.

    Pure bookkeeping (no I/O), so the freshness rule is tested without a server.
    """

    def __init__(self, record: TvRecord, *, notice_seconds: float,
                 polled: Callable[[int, float], float | None]) -> None:  # fmt: skip
        """`polled(queue, at)`: when the PBX last answered that queue's status up to `at`."""
        self.record = record
        self.notice = notice_seconds
        self.polled = polled
        self.offset = 0.0  # server wall clock - our wall clock
        self.fresh_at: str | None = None
        self.fetched: dict[int, str] = {}
        self.page_fresh_at: float | None = None  # the page's freshAt (server clock)
        self.page_fetched: dict[int, float] = {}  # the page's panels' fetched.queue_status
        self.pbx_state: str | None = None

    def note(self, message: dict, *, mono: float, wall: float) -> None:
        kind = message.get("type")
        server_time = parse_time(message.get("server_time"))
        if server_time is not None:
            self.offset = server_time - wall
        if kind == "hello":
            self.record.connected = True
            self.record.opens.append(mono)
        elif kind == "heartbeat":
            # As the page: null keeps what it knew.
            self.page_fresh_at = parse_time(message.get("fresh_at")) or self.page_fresh_at
        elif kind == "snapshot":
            queue = message.get("queue")
            fetched = ((message.get("data") or {}).get("fetched") or {}).get("queue_status")
            data_time = parse_time(fetched)
            if data_time is not None:
                self.page_fetched[queue] = data_time
            if fetched and fetched != self.fetched.get(queue):
                self.fetched[queue] = fetched
                polled = self.polled(queue, mono)
                if polled is not None and mono - polled < self.notice:
                    self.record.fresh.append((mono, polled))
        elif kind == "pbx":
            state = (message.get("data") or {}).get("state")
            if state and state != self.pbx_state:
                self.pbx_state = state
                self.record.pbx_states.append((mono, state))

    def _recent(self, data_time: float | None, *, wall: float) -> bool:
        return data_time is not None and (wall + self.offset) - data_time < self.notice

    def page_shows_fresh(self, *, wall: float) -> bool:
        """Whether the page's age banner calls the data fresh now (board-page.js `dataTime`)."""
        times = [t for t in (self.page_fresh_at, *self.page_fetched.values()) if t is not None]
        return bool(times) and self._recent(max(times), wall=wall)


class TvFleet:
    """N kiosk TVs through nginx, on one asyncio loop in a thread of their own."""

    def __init__(self, *, base_url: str, tokens: list[str], plain: int, heartbeat: float,
                 notice_seconds: float, seed: int,
                 polled: Callable[[int, float], float | None]) -> None:  # fmt: skip
        self.base_url = base_url
        self.polled = polled
        self.tokens = tokens
        self.heartbeat = heartbeat
        self.notice = notice_seconds
        self.records = [
            TvRecord(f"tv-{n}", plain=n > len(tokens) - plain) for n in range(1, len(tokens) + 1)
        ]
        self.rng = random.Random(seed)
        self.errors: deque[str] = deque(maxlen=50)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="chaos-tvs", daemon=True)
        self._ready = threading.Event()

    def start(self) -> TvFleet:
        # A TV first loads its page (nginx's access log must not show the token either).
        for token in self.tokens:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{self.base_url}/kiosk/{token}/", timeout=10)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=15)

    def _main(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        ws_base = self.base_url.replace("http://", "ws://")
        tasks = [
            asyncio.create_task(self._tv(record, f"{ws_base}/ws/kiosk/{token}/"))
            for record, token in zip(self.records, self.tokens, strict=True)
        ]
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _tv(self, record: TvRecord, url: str) -> None:
        assert self._stopping is not None
        state = TvState(record, notice_seconds=self.notice, polled=self.polled)
        helpers: set[asyncio.Task] = set()
        attempt = 0
        while not self._stopping.is_set():
            code: int | None = None
            try:
                async with connect(
                    url, origin=self.base_url, open_timeout=10, ping_interval=None,
                    close_timeout=2, max_size=2**22,
                ) as ws:  # fmt: skip
                    helper = (
                        _banner_every(state, 0.5) if record.plain
                        else _resync_every(ws, RESYNC_SECONDS)
                    )  # fmt: skip
                    task = asyncio.create_task(helper)
                    helpers.add(task)
                    task.add_done_callback(helpers.discard)
                    while True:
                        # A silent link is a dead one (no close ever comes on a half-open TCP).
                        raw = await asyncio.wait_for(ws.recv(), timeout=2.5 * self.heartbeat)
                        message = _json(raw)
                        if message is None:
                            continue
                        if message.get("type") == "hello":
                            attempt = 0
                        state.note(message, mono=time.monotonic(), wall=time.time())
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
            except (TimeoutError, OSError, InvalidStatus, WebSocketException) as exc:
                self.errors.append(f"{record.name}: {type(exc).__name__}: {exc}"[:200])
            for task in list(helpers):
                task.cancel()
            if record.connected:
                record.connected = False
                record.closes.append((time.monotonic(), code))
            if code in FINAL_CODES:
                record.final_code = code
                return
            ceiling = min(MAX_DELAY, BASE_DELAY * 2**attempt)
            attempt += 1
            delay = ceiling / 2 + self.rng.random() * ceiling / 2
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)


async def _resync_every(ws, seconds: float) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.sleep(seconds)
            await ws.send('{"type": "resync"}')


async def _banner_every(state: TvState, seconds: float) -> None:
    while True:
        if state.page_shows_fresh(wall=time.time()):
            state.record.shown.append(time.monotonic())
        await asyncio.sleep(seconds)


def _json(raw: str | bytes) -> dict | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


# --- the supervisor --------------------------------------------------------------------------


@dataclass
class ActionRecord:
    phase: str
    queue: int
    extension: int
    action: str
    sent: float  # monotonic
    sent_wall: float
    answered: float | None = None
    answered_wall: float | None = None
    status: int | None = None  # HTTP status; None: no answer (connection error, timeout)
    reason: str | None = None  # the outcome's reason when the product answered with one
    ok: bool | None = None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.answered is None else self.answered - self.sent


class Supervisor:
    """Pauses and unpauses random agents through the JSON API at a steady rate.

    Each action runs on a thread of its own (up to `parallel`), so one that hangs does not stop
    the steady rate. Whether an agent is paused is read from the simulator, so every action is
    one the PBX would carry out.
    """

    def __init__(self, *, base_url: str, token: str, centre, per_minute: float, seed: int,
                 timeout: float, parallel: int = 16) -> None:  # fmt: skip
        self.base_url = base_url
        self.token = token
        self.centre = centre
        self.period = 60.0 / per_minute
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.phase = "start"
        self.records: list[ActionRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="chaos-action")
        self._thread = threading.Thread(target=self._run, name="chaos-supervisor", daemon=True)
        self._local = threading.local()

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self._stopping.wait(max(0.0, next_at - time.monotonic()))
            if self._stopping.is_set():
                return
            next_at += self.period
            choice = self._choose()
            if choice is not None:
                record = ActionRecord(self.phase, *choice, sent=0.0, sent_wall=0.0)
                with self._lock:
                    self.records.append(record)
                self._pool.submit(self._act, record)

    def _choose(self) -> tuple[int, int, str] | None:
        queues = self.centre.queue_numbers()
        queue = self.rng.choice(queues)
        members = self.centre.members(queue)
        if not members:
            return None
        extension = self.rng.choice(members)
        paused = self.centre.member_state(queue, extension)["paused"]
        return queue, extension, "unpause" if paused else "pause"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {self.token}"
            self._local.session = session
        return session

    def _act(self, record: ActionRecord) -> None:
        url = (
            f"{self.base_url}/api/v1/queues/{record.queue}/members/{record.extension}/"
            f"{record.action}"
        )
        record.sent, record.sent_wall = time.monotonic(), time.time()
        try:
            response = self._session().post(url, timeout=self.timeout)
        except requests.RequestException as exc:
            record.error = type(exc).__name__
            return
        record.answered, record.answered_wall = time.monotonic(), time.time()
        record.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and "reason" in body:
            record.reason = body.get("reason")
            record.ok = bool(body.get("ok"))

    def snapshot(self) -> list[ActionRecord]:
        with self._lock:
            return list(self.records)


# --- what the PBX saw ------------------------------------------------------------------------


class PbxWatch:
    """The simulator's side: limiter refusals, and a trigger that kills a worker mid-poll.

    The simulator runs in this process, so its request handler is wrapped for this run only:
    every request first tells `on_request` where it comes from. Armed with `kill_on_next_poll`,
    the next poll request from a worker SIGKILLs that worker's whole process group before the
    PBX answers: the worker dies with the request in flight.
    """

    def __init__(self, sim) -> None:  # type: ignore[no-untyped-def]
        self.sim = sim
        self.refusals: list[float] = []
        self._polls: dict[int, list[float]] = defaultdict(list)  # queue -> status answers
        self.killed: list[tuple[float, str, str]] = []  # (when, worker, path)
        self._armed: dict[str, object] | None = None
        self._lock = threading.Lock()
        limiter = sim.centre.limiter
        admit = limiter.admit

        def admit_watched(ip: str) -> bool:
            admitted = admit(ip)
            if not admitted:
                self.refusals.append(time.monotonic())
            return admitted

        limiter.admit = admit_watched
        centre = sim.centre
        queue_status = centre.queue_status

        def queue_status_watched(queue: int):  # type: ignore[no-untyped-def]
            self._polls[queue].append(time.monotonic())
            return queue_status(queue)

        centre.queue_status = queue_status_watched
        watch = self
        server = sim._server  # the wrapped handler class is this run's alone
        base = server.RequestHandlerClass

        class WatchedHandler(base):  # type: ignore[misc, valid-type]
            def _handle(self, method: str) -> None:
                watch.on_request(self.client_address[1], self.path.split("?", 1)[0])
                super()._handle(method)

        server.RequestHandlerClass = WatchedHandler

    def polled(self, queue: int, at: float) -> float | None:
        """When the PBX last answered `queue`'s status, at or before `at` (monotonic)."""
        times = self._polls.get(queue)
        if not times:
            return None
        index = bisect_right(times, at)
        return times[index - 1] if index else None

    def kill_on_next_poll(self, workers: dict[str, object]) -> None:
        """workers: name -> Service. The next poll request from one of them kills it."""
        with self._lock:
            self._armed = workers

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def on_request(self, client_port: int, path: str) -> None:
        if self._armed is None or not path.startswith(POLL_PATHS):
            return
        with self._lock:
            workers = self._armed
            if workers is None:
                return
            pid = _pid_of_client(client_port, self.sim.port)
            for name, service in workers.items():
                if pid is not None and pid in service.pids():  # type: ignore[attr-defined]
                    service.kill9()  # type: ignore[attr-defined]
                    self.killed.append((time.monotonic(), name, path))
                    self._armed = None
                    return


def _pid_of_client(client_port: int, server_port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        local, remote = conn.laddr, conn.raddr
        if local and remote and local.port == client_port and remote.port == server_port:
            return conn.pid
    return None
