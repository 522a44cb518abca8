"""A stand-in PBX at the HTTP seam that gives one canned answer to every request: for the
answers the simulator never gives (a call/create the PBX refuses with an error code).
(A uniquely named module, so test files can import it whatever other conftest.py files exist.)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class CannedPBX:
    def __init__(self, *, status: int = 200, body: Any = None) -> None:
        self.status = status
        self.body = body if body is not None else {"code": "200", "message": "Call queued"}
        self.requests: list[tuple[str, dict[str, str]]] = []
        pbx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {name: values[-1] for name, values in parse_qs(split.query).items()}
                pbx.requests.append((split.path, query))
                payload = json.dumps(pbx.body).encode()
                self.send_response(pbx.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
