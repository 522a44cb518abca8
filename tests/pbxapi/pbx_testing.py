"""Test helpers for the pbxapi tests: a canned-response HTTP server standing in for the PBX.

(A uniquely named module, so test files can import it whatever other conftest.py files exist.)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

USER = "apiuser"
PASSWORD = "s3cret-Pa55"


@dataclass
class Canned:
    """One canned answer: status, body (bytes, or anything JSON-able) and an optional stall."""

    body: Any = b""
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0
    body_delay: float = 0.0  # stall after the headers and half the body
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # send the body a byte at a time, this many seconds apart
    trickle_headers: bool = False  # ... the status line and headers too

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str


class CannedPBX:
    """A tiny HTTP server answering each path with a canned response; records what it saw."""

    def __init__(self) -> None:
        self.routes: dict[str, Canned] = {}
        self.seen: list[Seen] = []
        self.given_up = 0  # trickled answers the client hung up on
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                canned.seen.append(
                    Seen(
                        method,
                        split.path,
                        parse_qs(split.query, keep_blank_values=True),
                        parse_qs(body, keep_blank_values=True),
                        self.headers.get("Authorization", ""),
                    )
                )
                answer = canned.routes.get(split.path, Canned({"detail": "none"}, status=404))
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.payload()
                if answer.trickle:
                    self._trickle(answer, payload)
                    return
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    if "Content-Length" not in answer.headers:
                        self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if answer.body_delay:
                        self.wfile.write(payload[: len(payload) // 2])
                        self.wfile.flush()
                        time.sleep(answer.body_delay)
                    self.wfile.write(payload[len(payload) // 2 if answer.body_delay else 0 :])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _trickle(self, answer: Canned, payload: bytes) -> None:
                head = (
                    f"HTTP/1.1 {answer.status} Slow\r\nContent-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n"
                ).encode()
                slow = head + payload if answer.trickle_headers else payload
                self.close_connection = True
                try:
                    if not answer.trickle_headers:
                        self.wfile.write(head)
                    for index in range(len(slow)):
                        self.wfile.write(slow[index : index + 1])
                        time.sleep(answer.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    canned.given_up += 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, path: str, body: Any = b"", **options: Any) -> None:
        self.routes[path] = Canned(body, **options)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SIM_USER = "u"
SIM_PASSWORD = "p"

# The canned server and the contract tests' simulator enforce no limit that matters: the
# budgets in front of them only have to stay out of the way.
GENEROUS_LIMIT = (100_000, 1.0)
