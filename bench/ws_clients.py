"""Websocket client processes for the fan-out benchmark.

Each process opens many websockets with asyncio + `websockets`, parses every frame as a real board
would, and for frames that carry a publish timestamp (`bench_sent_at`, anywhere at the top level or
in `data`) records the latency from publish to receipt. Processes are started with the `spawn`
method so they inherit nothing from the parent's event loop or Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass, field

SENT_AT = "bench_sent_at"
PHASE = "bench_phase"  # "warmup" frames are received but not counted


@dataclass
class ClientResult:
    connected: int = 0
    connect_failures: int = 0
    closed_early: int = 0
    frames: int = 0
    timed_frames: int = 0
    duplicates: int = 0  # a version this socket already had (e.g. a heartbeat's catch-up resend)
    latencies_ms: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def note_error(self, text: str) -> None:
        if len(self.first_errors) < 5:
            self.first_errors.append(text)


def frame_sent_at(message: dict) -> tuple[float | None, str | None]:
    """The publish timestamp and phase a benchmark frame carries, or (None, None)."""
    for holder in (message, message.get("data")):
        if isinstance(holder, dict) and SENT_AT in holder:
            return float(holder[SENT_AT]), holder.get(PHASE)
    return None, None


async def _one_client(
    url: str,
    origin: str,
    result: ClientResult,
    gate: asyncio.Semaphore,
    stop: asyncio.Event,
    opened: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    import websockets

    try:
        async with gate:
            ws = await websockets.connect(
                url,
                origin=origin,
                open_timeout=60,
                ping_interval=None,
                max_size=None,
                compression=None,
                close_timeout=2,
            )
    except Exception as exc:  # every failure to connect is counted and shown
        result.connect_failures += 1
        result.note_error(f"connect: {exc!r}")
        counter[0] += 1
        if counter[0] >= total:
            opened.set()
        return
    result.connected += 1
    counter[0] += 1
    if counter[0] >= total:
        opened.set()
    seen_versions: set[tuple[object, object]] = set()
    try:
        async for raw in ws:
            received = time.time()
            result.frames += 1
            message = json.loads(raw)
            sent_at, phase = frame_sent_at(message)
            if sent_at is None or phase == "warmup":
                continue
            # Like a real board, the first copy of a version counts; later copies are ignored.
            version = (message.get("queue"), message.get("version"))
            if version in seen_versions:
                result.duplicates += 1
                continue
            seen_versions.add(version)
            result.timed_frames += 1
            result.latencies_ms.append((received - sent_at) * 1000.0)
        if not stop.is_set():
            result.closed_early += 1
            result.note_error(f"closed by server: {ws.close_code} {ws.close_reason!r}")
    except Exception as exc:  # a dropped socket is a result, not a crash
        result.closed_early += 1
        result.note_error(f"recv: {exc!r}")
    finally:
        # Cancellation at the end of the run lands here too: the socket is closed either way.
        with contextlib.suppress(Exception):
            await ws.close()


async def _run(
    url: str, origin: str, count: int, concurrency: int, status: mp.Queue, stop_flag
) -> ClientResult:
    result = ClientResult()
    stop, opened = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(concurrency)
    counter = [0]
    tasks = [
        asyncio.create_task(_one_client(url, origin, result, gate, stop, opened, counter, count))
        for _ in range(count)
    ]
    await opened.wait()
    status.put(("connected", result.connected, result.connect_failures))
    while not stop_flag.is_set():
        await asyncio.sleep(0.2)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def client_process(
    url: str,
    origin: str,
    count: int,
    concurrency: int,
    status: mp.Queue,
    results: mp.Queue,
    stop_flag,
) -> None:
    """Entry point of one client process: connect `count` sockets, receive until told to stop."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count * 2 + 256)), hard))
    result = asyncio.run(_run(url, origin, count, concurrency, status, stop_flag))
    results.put(result)
