"""The simulated PBX's HTTP side: routes, Basic auth, the rate limit and injected faults.

Every request is first counted by the per-IP rate limiter (also unauthenticated ones, as the real
PBX sees them), then the injected fault (if any) applies, then Basic auth, then the route.
Error bodies for 401/403/404/405/5xx are small HTML pages (API_NOTES.md gives none for the live
service); a missing parameter is HTTP 400 with a JSON body.

Faults (`CallCentre.set_fault`): "html500" answers 500 with an HTML page, "html200" answers 200
with an HTML page (a maintenance or login page in front of the API), "timeout" stalls
`fault_delay` seconds before answering, "trickle" sends the whole answer (status line, headers
and body) one byte at a time, `fault_trickle_seconds` apart, so no single read ever times out,
"truncated" sends half of the body, "down" drops the connection without a word, "forbidden"
answers 403 as if the IP were blocked. A trickling answer goes on while the fault lasts and
the rest is sent at once when the fault is cleared (or the simulator stops), so a fault that
is over leaves no answer behind that takes minutes more.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.parser
import email.policy
import hmac
import io
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import wire
from .centre import CallCentre
from .config import SimulatorConfig

REALM = "VIPTel PBX REST API"


class LoggedRequest(NamedTuple):
    at: float  # time.monotonic() when the request arrived (what the rate limit counts)
    ip: str
    method: str
    path: str  # without the query string (it can carry customer data)
    status: int  # 0 = the connection was dropped without an answer ("down" fault)


class RequestLog:
    """Bounded, thread-safe record of every request that reached the server, oldest first."""

    def __init__(self, maxlen: int) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.snapshot())

    def __getitem__(self, index):  # int or slice, like a list
        return self.snapshot()[index]


class Params:
    """Request parameters from the query string and form data (form wins on conflicts)."""

    def __init__(self, query: dict[str, list[str]], form: dict[str, list[str]]) -> None:
        self.values: dict[str, list[str]] = {k: list(v) for k, v in query.items()}
        for key, values in form.items():
            self.values.setdefault(key, []).extend(values)

    def get(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[-1] if values else None

    def names(self) -> list[str]:
        return list(self.values)


class MissingParameter(Exception):
    """HTTP 400: a required parameter is absent."""


class NotFound(Exception):
    """HTTP 404."""


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, "application/json; charset=utf-8", body)


def html_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{phrase}</h1><p>{message}</p></body></html>\n"
    )
    return Response(status, "text/html; charset=utf-8", page.encode(), headers)


class PBXHandler(BaseHTTPRequestHandler):
    """One request: limiter → fault → auth → route. `server` is a SimulatorServer."""

    protocol_version = "HTTP/1.1"
    server_version = "VIPTelPBXSimulator/1.0"
    timeout = 60  # idle keep-alive connections end after this

    server: SimulatorServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.client_address[0]} {format % args}\n")

    def _handle(self, method: str) -> None:
        # Logged with its arrival time: a stalled answer ("timeout") must not look like a
        # request that came in when the answer went out.
        arrived = time.monotonic()
        ip = self.client_address[0]
        path = urlsplit(self.path).path
        body = self._read_body()
        response = self._answer(ip, method, body)
        if response is None:  # the "down" fault: drop the connection without a word
            self._log(arrived, ip, method, path, 0)
            self._drop_connection()
            return
        self._log(arrived, ip, method, path, response.status)
        if self.server.centre.fault == "trickle":
            self._send_trickled(response)
        else:
            self._send(response)

    def _answer(self, ip: str, method: str, body: bytes) -> Response | None:
        centre = self.server.centre
        if not centre.limiter.admit(ip):
            return html_response(403, "Too many requests from your IP address.")
        fault = centre.fault
        if fault == "down":
            return None
        if fault == "forbidden":
            return html_response(403, "Access to the REST API is blocked.")
        if fault == "html500":
            return html_response(500, "Internal server error.")
        if fault == "html200":
            return html_response(200, "The PBX is under maintenance. Please try again later.")
        if fault == "timeout":
            centre.stopping.wait(self.server.config.fault_delay)
        if not self._authorised():
            return html_response(
                401, "Authentication required.", (("WWW-Authenticate", f'Basic realm="{REALM}"'),)
            )
        response = self._route(method, body)
        if fault == "truncated" and len(response.body) > 1:
            cut = response.body[: len(response.body) // 2]
            response = response._replace(body=cut)
        return response

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.server.config.user}:{self.server.config.password}".encode()
        return hmac.compare_digest(given, expected)

    def _route(self, method: str, body: bytes) -> Response:
        split = urlsplit(self.path)
        allowed_methods: set[str] = set()
        for route_method, pattern, action in ROUTES:
            match = pattern.fullmatch(split.path)
            if match is None:
                continue
            if route_method != method:
                allowed_methods.add(route_method)
                continue
            params = Params(parse_qs(split.query, keep_blank_values=True), self._form(body))
            groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            try:
                return action(self.server.centre, params, **groups)
            except MissingParameter as missing:
                return json_response({"code": 400, "detail": f"Missing parameter: {missing}"}, 400)
            except NotFound as missing:
                return html_response(404, str(missing) or "Not found.")
        if allowed_methods:
            allow = ", ".join(sorted(allowed_methods))
            return html_response(405, "Method not allowed.", (("Allow", allow),))
        return html_response(404, "Not found.")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length or not length.isdigit():
            return b""
        return self.rfile.read(int(length))

    def _form(self, body: bytes) -> dict[str, list[str]]:
        if not body:
            return {}
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return _multipart(content_type, body)
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. after its read timeout)

    def _send_trickled(self, response: Response) -> None:
        """Send the answer a byte at a time while the "trickle" fault lasts, then the rest."""
        wire_out, self.wfile = self.wfile, io.BytesIO()
        try:
            self._send(response)
            data = self.wfile.getvalue()
        finally:
            self.wfile = wire_out
        centre = self.server.centre
        pause = self.server.config.fault_trickle_seconds
        try:
            sent = 0
            while sent < len(data) and centre.fault == "trickle":
                self.wfile.write(data[sent : sent + 1])
                sent += 1
                if centre.stopping.wait(pause):
                    break
            self.wfile.write(data[sent:])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. a time limit of its own)

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _log(self, at: float, ip: str, method: str, path: str, status: int) -> None:
        self.server.requests_log.append(LoggedRequest(at, ip, method, path, status))


def _multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    form: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True) or b""
            form.setdefault(str(name), []).append(payload.decode("utf-8", "replace"))
    return form


# --------------------------------------------------------------------------------- routes


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise MissingParameter(name)
    return value


def _int_param(params: Params, name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise MissingParameter(f"{name} (not a number)")
    return int(value)


def _date_param(params: Params, name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MissingParameter(f"{name} (expected YYYY-MM-DD)") from None


def _row_key(params: Params, id: str | None) -> dict[str, Any]:
    """Which CDR row: `unique_id` from the query, else `id` from the path."""
    unique_id = params.get("unique_id")
    if unique_id:
        return {"unique_id": unique_id}
    if id is not None and id.isdigit():
        return {"id": int(id)}
    if id is None:
        raise MissingParameter("id or unique_id")
    raise NotFound("No such call record.")


def call_create(centre: CallCentre, params: Params) -> Response:
    centre.click_to_call(_required(params, "caller"), _required(params, "destination"))
    return json_response(wire.call_body("Call queued"))


def call_advanced(centre: CallCentre, params: Params, profile: str | None = None) -> Response:
    centre.advanced_call(profile, dict(params.values))
    return json_response(wire.call_body("Call created"))


def call_statistics(centre: CallCentre, params: Params) -> Response:
    return json_response(centre.call_statistics())


def _cdr_page(centre: CallCentre, params: Params, *, recordings_only: bool) -> Response:
    rows = centre.cdr_rows(
        limit=_int_param(params, "limit", 3000),
        offset=_int_param(params, "offset", 0),
        date_from=_date_param(params, "date_from"),
        date_to=_date_param(params, "date_to"),
        recordings_only=recordings_only,
    )
    return json_response(_with_artefact(centre, rows))


def _with_artefact(centre: CallCentre, items: list[Any]) -> list[Any]:
    """The document's examples end arrays with a stray "" element; optionally imitate that."""
    return [*items, ""] if centre.config.document_artefacts else items


def cdr_list(centre: CallCentre, params: Params) -> Response:
    if params.get("unique_id"):
        return cdr_get(centre, params)
    return _cdr_page(centre, params, recordings_only=False)


def cdr_recordings(centre: CallCentre, params: Params) -> Response:
    return _cdr_page(centre, params, recordings_only=True)


def cdr_get(centre: CallCentre, params: Params, id: str | None = None) -> Response:
    row = centre.cdr_find(**_row_key(params, id))
    if row is None:
        raise NotFound("No such call record.")
    return json_response(row)


def cdr_download(centre: CallCentre, params: Params, id: str | None = None) -> Response:
    found = centre.recording(**_row_key(params, id))
    if found is None:
        raise NotFound("No such recording.")
    name, data = found
    disposition = ("Content-Disposition", f'attachment; filename="{name}"')
    return Response(200, "audio/mpeg", data, (disposition,))


def cdr_delete(centre: CallCentre, params: Params, id: str | None = None) -> Response:
    row = centre.delete_recording(**_row_key(params, id))
    if row is None:
        raise NotFound("No such call record.")
    return json_response(row)


def queue_list(centre: CallCentre, params: Params) -> Response:
    return json_response(centre.queue_list())


def queue_action(centre: CallCentre, params: Params, action: str) -> Response:
    queue, extension = _required(params, "queue"), _required(params, "extension")
    code, detail = centre.queue_action(action, queue, extension)
    return json_response(wire.body(code, detail))


def queue_status(centre: CallCentre, params: Params) -> Response:
    queue = _required(params, "queue")
    status = centre.queue_status(int(queue)) if queue.isdigit() else None
    if status is None:
        raise NotFound("No such queue.")
    return json_response(status)


def extension_list(centre: CallCentre, params: Params) -> Response:
    return json_response(_with_artefact(centre, centre.extension_list()))


def outbounds(centre: CallCentre, params: Params) -> Response:
    return json_response(centre.outbounds())


def _extension_number(centre: CallCentre, ext: str) -> int:
    if not ext.isdigit() or centre.extension_info(int(ext)) is None:
        raise NotFound("No such extension.")
    return int(ext)


def extension_get(centre: CallCentre, params: Params, ext: str) -> Response:
    return json_response(centre.extension_info(_extension_number(centre, ext)))


def phone(centre: CallCentre, params: Params, action: str, ext: str) -> Response:
    active = action == "activate"
    if not ext.isdigit() or not centre.phone_set(int(ext), active):
        return html_response(500, f"VIPTel phone could not be {action}d.")
    return json_response(wire.body(200, f"VIPTel phone {action}d"))


def extension_update(centre: CallCentre, params: Params, ext: str) -> Response:
    number = _extension_number(centre, ext)
    changes = {f: v for f in ("name", "call_forwarding", "outboundcid") if (v := params.get(f))}
    if params.get("outboundcid") == "":
        changes["outboundcid"] = ""
    result = centre.extension_update(number, changes)
    if isinstance(result, str):
        return html_response(505, f"Saving failed: {result}.")
    return json_response({**wire.body(200, "Extension updated"), **result})


_INDEXED = re.compile(r"^(key|value)\[(\d*)\]$")


def _bulk_pairs(params: Params) -> list[tuple[str, str]] | None:
    """key[]/value[] paired by position and key[N]/value[N] by index; None if not a bulk call."""
    positional: dict[str, list[str]] = {"key": [], "value": []}
    indexed: dict[str, dict[str, str]] = {"key": {}, "value": {}}
    for name in params.names():
        match = _INDEXED.match(name)
        if match is None:
            continue
        kind, index = match.groups()
        if index == "":
            positional[kind].extend(params.values[name])
        else:
            indexed[kind][index] = params.values[name][-1]
    if not positional["key"] and not indexed["key"]:
        return None
    if len(positional["value"]) < len(positional["key"]):
        raise MissingParameter("value[]")
    pairs = list(zip(positional["key"], positional["value"], strict=False))
    for index, key in sorted(indexed["key"].items(), key=lambda item: int(item[0])):
        if index not in indexed["value"]:
            raise MissingParameter(f"value[{index}]")
        pairs.append((key, indexed["value"][index]))
    return pairs


def data_create(centre: CallCentre, params: Params) -> Response:
    pairs = _bulk_pairs(params)
    if pairs is not None:
        problem = centre.data_bulk(pairs)
    else:
        key = _required(params, "key")
        value = params.get("value")
        if value is None:
            raise MissingParameter("value")
        problem = centre.data_create(key, value)
    if problem is not None:
        return html_response(505, f"Saving data failed: {problem}.")
    return json_response(wire.body(200, "Data saved"))


def data_update(centre: CallCentre, params: Params, key: str) -> Response:
    value = params.get("value")
    if value is None:
        raise MissingParameter("value")
    if not centre.data_update(key, value):
        raise NotFound("No such key.")
    return json_response(wire.body(200, "Data saved"))


def data_delete(centre: CallCentre, params: Params, key: str) -> Response:
    centre.data_delete(key)
    return json_response(wire.body(200, "Data deleted"))


def data_list(centre: CallCentre, params: Params) -> Response:
    return json_response(centre.data_list())


def data_flush(centre: CallCentre, params: Params) -> Response:
    centre.data_flush()
    return json_response(wire.body(200, "All data deleted"))


Action = Callable[..., Response]

# Order matters: fixed paths before the ones with a variable segment.
ROUTES: list[tuple[str, re.Pattern[str], Action]] = [
    (method, re.compile(pattern), action)
    for method, pattern, action in (
        ("GET", r"/api/call/create/?", call_create),
        ("POST", r"/api/call/advanced(?:/(?P<profile>[^/]+))?/?", call_advanced),
        ("GET", r"/api/call/statistics/?", call_statistics),
        ("GET", r"/api/cdr/recordings/?", cdr_recordings),
        ("GET", r"/api/cdr/download(?:/(?P<id>[^/]+))?/?", cdr_download),
        ("GET", r"/api/cdr/delete(?:/(?P<id>[^/]+))?/?", cdr_delete),
        ("GET", r"/api/cdr/?", cdr_list),
        ("GET", r"/api/cdr/(?P<id>[^/]+)/?", cdr_get),
        ("GET", r"/api/queue/?", queue_list),
        ("GET", r"/api/queue/(?P<action>add|remove|pause|unpause)/?", queue_action),
        ("GET", r"/api/queue/status/?", queue_status),
        ("GET", r"/api/extension/?", extension_list),
        ("GET", r"/api/extension/outbounds/?", outbounds),
        ("POST", r"/api/extension/update/(?P<ext>[^/]+)/?", extension_update),
        ("GET", r"/api/extension/(?P<ext>[^/]+)/?", extension_get),
        ("POST", r"/api/viptel-phone/(?P<action>activate|deactivate)/(?P<ext>[^/]+)/?", phone),
        ("GET", r"/api/data/list/?", data_list),
        ("GET", r"/api/data/flush/?", data_flush),
        ("GET", r"/api/data/(?P<key>.+)/delete/?", data_delete),
        ("POST", r"/api/data/?", data_create),
        ("POST", r"/api/data/(?P<key>.+?)/?", data_update),
    )
]


# --------------------------------------------------------------------------------- server


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: SimulatorConfig, centre: CallCentre, verbose: bool = False) -> None:
        self.config = config
        self.centre = centre
        self.verbose = verbose
        self.requests_log = RequestLog(config.request_log_size)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((config.host, config.port), PBXHandler)

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        # Named after the port, so that a test (or a thread dump) can tell this simulator's
        # connections from another's in the same process.
        threading.current_thread().name = f"pbx-sim-{self.server_address[1]}-request"
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their handler threads finish with the server."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SimulatorHandle:
    """A running simulator: `.url`, `.centre`, `.requests_log`, `.stop()`; a context manager."""

    def __init__(self, server: SimulatorServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.config = server.config
        self.centre = server.centre
        self.requests_log = server.requests_log
        self.host, self.port = server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.centre.stop()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    config: SimulatorConfig | None = None, *, verbose: bool = False
) -> SimulatorHandle:
    """Build the call centre, start its ticker and an HTTP server thread; return the handle."""
    config = config or SimulatorConfig()
    centre = CallCentre(config)
    server = SimulatorServer(config, centre, verbose=verbose)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="pbx-sim-http", daemon=True
    )
    thread.start()
    centre.start()
    return SimulatorHandle(server, thread)
