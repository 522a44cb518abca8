"""A stand-in PBX at the HTTP seam for the exact CDR shapes the simulator does not write: bad
rows, rows without ``complete_duration``, a list that shrinks or shifts, a row that changes.

It answers ``GET /api/cdr/`` like the PBX: the day's list (``days[date]``, edited by the test at
will) cut by ``offset`` and ``limit`` (at most 3000), and records every request's query.
(A uniquely named module, so test files can import it whatever other conftest.py files exist.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE_MAX = 3000


class CdrPBX:
    def __init__(self) -> None:
        self.days: dict[date, list[Any]] = {}
        self.requests: list[dict[str, str]] = []
        # time.monotonic() when each request arrived and when its answer had been written.
        self.arrived: list[float] = []
        self.answered: list[float] = []
        # True: every answer ends with a stray "" element, as the API document's examples do.
        self.artefacts = False
        # Called (in the server's thread) with the request's number before it is answered.
        self.before_answer: Callable[[int], None] | None = None
        pbx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {name: values[-1] for name, values in parse_qs(split.query).items()}
                pbx.requests.append(query)
                pbx.arrived.append(time.monotonic())
                if pbx.before_answer is not None:
                    pbx.before_answer(len(pbx.requests))
                if split.path.rstrip("/") != "/api/cdr":
                    self._send(404, {"detail": "Not found"})
                    return
                day = date.fromisoformat(query["date_from"])
                rows = pbx.days.get(day, [])
                offset = int(query.get("offset", 0))
                limit = min(int(query.get("limit", PAGE_MAX)), PAGE_MAX)
                page = rows[offset : offset + limit]
                self._send(200, [*page, ""] if pbx.artefacts else page)

            def _send(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                pbx.answered.append(time.monotonic())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def offsets(self, since: int = 0) -> list[int]:
        """The offsets asked for, in order (from request number ``since``)."""
        return [int(query.get("offset", 0)) for query in self.requests[since:]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
