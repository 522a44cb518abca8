"""The VIPTel PBX client: one method per API operation, typed results, one error hierarchy.

Every request asks the budget first (a refused budget means nothing is sent), carries a
(connect, read) timeout, and goes through one reused ``requests.Session``. There are no
automatic retries anywhere: a retry would spend budget behind the caller's back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from pbxapi import validation as check
from pbxapi.budget import Budget, LocalBudget, RedisBudget
from pbxapi.errors import (
    AuthenticationFailed,
    Blocked,
    InvalidArgument,
    MissingParameter,
    NotFound,
    PBXError,
    PBXTimeout,
    ProtocolError,
    QueueActionRefused,
    ServerError,
    Unreachable,
)
from pbxapi.models import (
    ActionResult,
    CallStatistics,
    CdrRow,
    Extension,
    Queue,
    QueueStatus,
    RecordingDownload,
    expect_dict,
    parse_list,
    string_list,
    string_map,
)

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_KEY_SUFFIX = "pbx-budget"
_CHUNK = 64 * 1024
# Queue member actions answer HTTP 200 with the outcome as a body code.
_QUEUE_REFUSALS = {400, 401, 402}


class PBXClient:
    """A client for one PBX account. Thread-safe as far as ``requests.Session`` is."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        budget: Budget | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        session: requests.Session | None = None,
        max_wait: float = 2.0,
    ) -> None:
        if not base_url or not re.match(r"https?://", base_url):
            raise InvalidArgument("The PBX URL must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.budget: Budget = budget if budget is not None else LocalBudget()
        self.timeout = (connect_timeout, read_timeout)
        self.max_wait = max_wait
        self.session = session if session is not None else _new_session()
        self.session.auth = (user, password)

    def __repr__(self) -> str:  # never shows the credentials
        return f"PBXClient({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PBXClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- calls ---

    def call_create(
        self,
        caller: Any,
        destination: Any,
        *,
        priority: str = "action",
        max_wait: float | None = None,
    ) -> ActionResult:
        """Click-to-call: ring ``caller`` (an extension), then dial ``destination``."""
        params = {
            "caller": str(check.extension(caller)),
            "destination": check.phone(destination, "destination"),
        }
        return self._action("GET", "/api/call/create", params=params, p=priority, w=max_wait)

    def call_advanced(
        self,
        profile: str | None = None,
        *,
        priority: str = "action",
        max_wait: float | None = None,
        **fields: Any,
    ) -> ActionResult:
        """A call from an agreed profile with agreed form fields (accepted, not done)."""
        name = check.call_profile(profile)
        path = "/api/call/advanced" + (f"/{quote(name, safe='')}" if name else "")
        return self._action("POST", path, data=check.form_fields(fields), p=priority, w=max_wait)

    def call_statistics(
        self, *, priority: str = "poll", max_wait: float | None = None
    ) -> CallStatistics:
        """Active calls (ringing ones too); an answered queue call may show two legs."""
        payload = self._json("GET", "/api/call/statistics", p=priority, w=max_wait)
        return CallStatistics.from_payload(payload)

    # --- CDR and recordings ---

    def cdr(
        self,
        *,
        date_from: Any = None,
        date_to: Any = None,
        limit: Any = None,
        offset: Any = None,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> list[CdrRow]:
        """One page of call records (the PBX returns at most 3000); dates inclusive."""
        params = check.cdr_filters(date_from=date_from, date_to=date_to, limit=limit, offset=offset)
        payload = self._json("GET", "/api/cdr/", params=params, p=priority, w=max_wait)
        return parse_list(payload, "the CDR list", CdrRow.from_payload)

    def cdr_raw(
        self,
        *,
        date_from: Any = None,
        date_to: Any = None,
        limit: Any = None,
        offset: Any = None,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> list[Any]:
        """One page of call records exactly as the PBX sent them, element by element.

        For callers that count positions in the PBX's list (``offset``) and must see every
        element, odd ones included, to skip unreadable rows themselves; ``cdr()`` refuses a page
        with a bad row and drops odd elements. Raises ProtocolError if the answer is not a list.
        """
        params = check.cdr_filters(date_from=date_from, date_to=date_to, limit=limit, offset=offset)
        payload = self._json("GET", "/api/cdr/", params=params, p=priority, w=max_wait)
        if not isinstance(payload, list):
            raise ProtocolError(f"The PBX sent {type(payload).__name__} for the CDR, not a list")
        return payload

    def cdr_all(
        self,
        *,
        date_from: Any = None,
        date_to: Any = None,
        page_size: int = check.CDR_PAGE_MAX,
        start: int = 0,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> Iterator[CdrRow]:
        """Every call record matching the dates, paging past the 3000 cap with ``offset``."""
        yield from self._paged(
            self.cdr, date_from, date_to, page_size, start, priority=priority, max_wait=max_wait
        )

    def cdr_get(
        self,
        id: Any = None,
        *,
        unique_id: Any = None,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> CdrRow:
        path, params = _record_route("/api/cdr", id, unique_id)
        payload = self._json("GET", path, params=params, p=priority, w=max_wait)
        return CdrRow.from_payload(_single(payload, "the CDR row"))

    def recordings(
        self,
        *,
        date_from: Any = None,
        date_to: Any = None,
        limit: Any = None,
        offset: Any = None,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> list[CdrRow]:
        """One page of call records that have a recording (at most 3000)."""
        params = check.cdr_filters(date_from=date_from, date_to=date_to, limit=limit, offset=offset)
        payload = self._json("GET", "/api/cdr/recordings", params=params, p=priority, w=max_wait)
        return parse_list(payload, "the recordings list", CdrRow.from_payload)

    def recordings_all(
        self,
        *,
        date_from: Any = None,
        date_to: Any = None,
        page_size: int = check.CDR_PAGE_MAX,
        start: int = 0,
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> Iterator[CdrRow]:
        yield from self._paged(
            self.recordings,
            date_from,
            date_to,
            page_size,
            start,
            priority=priority,
            max_wait=max_wait,
        )

    def download_recording(
        self,
        id: Any = None,
        *,
        unique_id: Any = None,
        dest: str | os.PathLike[str] | IO[bytes],
        priority: str = "poll",
        max_wait: float | None = None,
    ) -> RecordingDownload:
        """Stream a recording to ``dest`` (a path, written atomically, or a binary file object)."""
        path, params = _record_route("/api/cdr/download", id, unique_id)
        response = self._send("GET", path, params=params, p=priority, w=max_wait, stream=True)
        with contextlib.closing(response):
            self._raise_for_status(response, path)
            _refuse_non_recording(response)
            filename = _attachment_name(response.headers.get("Content-Disposition", ""))
            content_type = response.headers.get("Content-Type")
            if isinstance(dest, str | os.PathLike):
                size = _stream_to_path(response, Path(dest), path)
                target: str | None = str(dest)
            else:
                size = _stream_to(response, dest, path)
                target = None
        return RecordingDownload(
            path=target, size=size, content_type=content_type, filename=filename
        )

    def delete_recording(
        self,
        id: Any = None,
        *,
        unique_id: Any = None,
        priority: str = "action",
        max_wait: float | None = None,
    ) -> CdrRow:
        """Delete a call's recording (the call record stays); returns the record."""
        path, params = _record_route("/api/cdr/delete", id, unique_id)
        payload = self._json("GET", path, params=params, p=priority, w=max_wait)
        return CdrRow.from_payload(_single(payload, "the CDR row"))

    # --- queues ---

    def queues(self, *, priority: str = "poll", max_wait: float | None = None) -> list[Queue]:
        payload = self._json("GET", "/api/queue/", p=priority, w=max_wait)
        return parse_list(payload, "the queue list", Queue.from_payload)

    def queue_status(
        self, queue: Any, *, priority: str = "poll", max_wait: float | None = None
    ) -> QueueStatus:
        params = {"queue": str(check.queue(queue))}
        payload = self._json("GET", "/api/queue/status", params=params, p=priority, w=max_wait)
        return QueueStatus.from_payload(payload)

    def queue_add(
        self, queue: Any, extension: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        return self._member_action("add", queue, extension, priority, max_wait)

    def queue_remove(
        self, queue: Any, extension: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        return self._member_action("remove", queue, extension, priority, max_wait)

    def queue_pause(
        self, queue: Any, extension: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        return self._member_action("pause", queue, extension, priority, max_wait)

    def queue_unpause(
        self, queue: Any, extension: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        return self._member_action("unpause", queue, extension, priority, max_wait)

    # --- extensions ---

    def extensions(
        self, *, priority: str = "poll", max_wait: float | None = None
    ) -> list[Extension]:
        payload = self._json("GET", "/api/extension", p=priority, w=max_wait)
        return parse_list(payload, "the extension list", Extension.from_payload)

    def extension(
        self, ext: Any, *, priority: str = "poll", max_wait: float | None = None
    ) -> Extension:
        path = f"/api/extension/{check.extension(ext)}"
        payload = self._json("GET", path, p=priority, w=max_wait)
        return Extension.from_payload(_single(payload, "the extension"))

    def outbounds(self, *, priority: str = "poll", max_wait: float | None = None) -> list[str]:
        """The outbound caller-ID numbers an extension may be given."""
        payload = self._json("GET", "/api/extension/outbounds", p=priority, w=max_wait)
        return string_list(payload, "the outbound numbers")

    def extension_update(
        self,
        ext: Any,
        *,
        name: str | None = None,
        call_forwarding: Any = None,
        outboundcid: Any = None,
        priority: str = "action",
        max_wait: float | None = None,
    ) -> ActionResult:
        """Change an extension; ``call_forwarding=False`` switches forwarding off, None = as is."""
        path = f"/api/extension/update/{check.extension(ext)}"
        form: dict[str, str] = {}
        if name is not None:
            form["name"] = check.extension_name(name)
        if call_forwarding is not None:
            form["call_forwarding"] = check.call_forwarding(call_forwarding)
        if outboundcid is not None:
            form["outboundcid"] = check.outbound_cid(outboundcid)
        if not form:
            raise InvalidArgument("Nothing to change: give a name, call_forwarding or outboundcid")
        return self._action("POST", path, data=form, p=priority, w=max_wait)

    def viptel_phone_activate(
        self, ext: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        path = f"/api/viptel-phone/activate/{check.extension(ext)}"
        return self._action("POST", path, p=priority, w=max_wait)

    def viptel_phone_deactivate(
        self, ext: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        path = f"/api/viptel-phone/deactivate/{check.extension(ext)}"
        return self._action("POST", path, p=priority, w=max_wait)

    # --- customer data ---

    def data_list(self, *, priority: str = "poll", max_wait: float | None = None) -> dict[str, str]:
        payload = self._json("GET", "/api/data/list", p=priority, w=max_wait)
        return string_map(payload, "the customer data")

    def data_create(
        self, key: str, value: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        form = {"key": check.data_key(key), "value": check.data_value(value)}
        return self._action("POST", "/api/data", data=form, p=priority, w=max_wait)

    def data_update(
        self, key: str, value: Any, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        path = f"/api/data/{_path_key(key)}"
        form = {"value": check.data_value(value)}
        return self._action("POST", path, data=form, p=priority, w=max_wait)

    def data_delete(
        self, key: str, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        return self._action("GET", f"/api/data/{_path_key(key)}/delete", p=priority, w=max_wait)

    def data_bulk(
        self,
        mapping: Mapping[str, Any],
        *,
        priority: str = "action",
        max_wait: float | None = None,
    ) -> ActionResult:
        """Create or update many keys in one request (existing keys are updated)."""
        items = check.data_mapping(mapping)
        # Indexed pairs (key[1]/value[1]) as the document recommends, so pairing cannot slip.
        form: list[tuple[str, str]] = []
        for index, (key, value) in enumerate(items.items(), start=1):
            form.append((f"key[{index}]", key))
            form.append((f"value[{index}]", value))
        return self._action("POST", "/api/data", data=form, p=priority, w=max_wait)

    def data_flush(
        self, *, priority: str = "action", max_wait: float | None = None
    ) -> ActionResult:
        """Remove all customer data."""
        return self._action("GET", "/api/data/flush", p=priority, w=max_wait)

    def _paged(
        self,
        fetch: Any,
        date_from: Any,
        date_to: Any,
        page_size: int,
        start: int,
        *,
        priority: str,
        max_wait: float | None,
    ) -> Iterator[CdrRow]:
        size = check.non_negative(page_size, "page size")
        if not 1 <= size <= check.CDR_PAGE_MAX:
            raise InvalidArgument(f"The page size must be 1 to {check.CDR_PAGE_MAX}")
        offset = check.non_negative(start, "start offset")
        check.cdr_filters(date_from=date_from, date_to=date_to)  # refuse bad dates up front
        while True:
            page = fetch(
                date_from=date_from,
                date_to=date_to,
                limit=size,
                offset=offset,
                priority=priority,
                max_wait=max_wait,
            )
            yield from page
            # A short page is the last one; the PBX never returns more than it was asked for.
            if len(page) < size:
                return
            offset += len(page)

    # --- the request path ---

    def _member_action(
        self, action: str, queue: Any, extension: Any, priority: str, max_wait: float | None
    ) -> ActionResult:
        params = {"queue": str(check.queue(queue)), "extension": str(check.extension(extension))}
        result = self._action("GET", f"/api/queue/{action}", params=params, p=priority, w=max_wait)
        if result.code in _QUEUE_REFUSALS:
            raise QueueActionRefused(result.code, result.detail or "refused")
        if result.code != 200:
            raise ProtocolError(
                f"The PBX answered the queue action with unknown code {result.code}"
            )
        return result

    def _action(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        p: str,
        w: float | None,
    ) -> ActionResult:
        response = self._send(method, path, params=params, data=data, p=p, w=w)
        self._raise_for_status(response, path)
        result = ActionResult.from_payload(_decode(response, path), http_status=200)
        if path.startswith("/api/queue/"):
            return result  # the caller interprets queue body codes
        _raise_for_body_code(result, path)
        return result

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        p: str,
        w: float | None,
    ) -> Any:
        response = self._send(method, path, params=params, p=p, w=w)
        self._raise_for_status(response, path)
        return _decode(response, path)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        p: str,
        w: float | None,
        stream: bool = False,
    ) -> requests.Response:
        self.budget.acquire(priority=p, max_wait=self.max_wait if w is None else w)
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                timeout=self.timeout,
                stream=stream,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, method, path) from exc
        # Path only: the query may name customers' numbers, and nothing here holds credentials.
        logger.debug(
            "PBX %s %s -> %s in %.3f s",
            method,
            path,
            response.status_code,
            time.monotonic() - started,
        )
        return response

    def _report_blocked(self) -> float:
        try:
            return self.budget.report_blocked()
        except PBXError:
            # The shared budget is unreachable: still raise Blocked with the full block time,
            # so this caller at least stays silent.
            logger.exception("Could not record the PBX block in the shared budget")
            return time.time() + getattr(self.budget, "block_seconds", 1800.0)

    def _raise_for_status(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = _error_detail(response)
        response.close()
        if status == 401:
            raise AuthenticationFailed(
                "The PBX refused the API user or password (or the API is not activated)"
            )
        if status == 403:
            logger.error("The PBX answered 403 on %s: blocked, all requests stop", path)
            raise Blocked(until=self._report_blocked())
        if status == 404:
            raise NotFound(f"Not found: {detail or path}")
        if status == 400:
            raise MissingParameter(f"The PBX says a parameter is missing: {detail or path}")
        if status >= 500:
            raise ServerError(f"The PBX failed ({status}): {detail or path}", status=status)
        raise PBXError(f"The PBX answered HTTP {status} on {path}", status=status)


# --- building a client from the environment ---


def client_from_env(environ: Mapping[str, str] = os.environ, **overrides: Any) -> PBXClient:
    """A client configured like the product: PBX_API_URL/USER/PASSWORD, a shared budget when
    REDIS_URL is set (key PBX_BUDGET_KEY, default "<REDIS_KEY_PREFIX>:pbx-budget"), and the
    PBX_BUDGET_*/PBX_*_TIMEOUT settings. ``overrides`` replace any PBXClient argument."""
    url = overrides.pop("base_url", None) or environ.get("PBX_API_URL", "")
    user = overrides.pop("user", None) or environ.get("PBX_API_USER", "")
    password = overrides.pop("password", None) or environ.get("PBX_API_PASSWORD", "")
    if not url:
        raise InvalidArgument("PBX_API_URL is not set (the PBX base URL)")
    if not user or not password:
        raise InvalidArgument("PBX_API_USER and PBX_API_PASSWORD must both be set")
    if "budget" not in overrides:
        overrides["budget"] = budget_from_env(environ)
    overrides.setdefault("connect_timeout", _env_float(environ, "PBX_CONNECT_TIMEOUT", 3.0))
    overrides.setdefault("read_timeout", _env_float(environ, "PBX_READ_TIMEOUT", 10.0))
    return PBXClient(url, user, password, **overrides)


def budget_from_env(environ: Mapping[str, str] = os.environ) -> Budget:
    """RedisBudget when REDIS_URL is set (shared with the product), else a LocalBudget."""
    limits = {
        "requests": int(_env_float(environ, "PBX_BUDGET_REQUESTS", 18)),
        "window": _env_float(environ, "PBX_BUDGET_WINDOW", 5.0),
        "reserve": int(_env_float(environ, "PBX_ACTION_RESERVE", 1)),
        "block_seconds": _env_float(environ, "PBX_BLOCK_SECONDS", 1800.0),
    }
    redis_url = environ.get("REDIS_URL", "")
    if not redis_url:
        return LocalBudget(**limits)
    import redis  # only needed for the shared budget

    prefix = environ.get("REDIS_KEY_PREFIX") or "wallboard"
    key = environ.get("PBX_BUDGET_KEY") or f"{prefix}:{DEFAULT_BUDGET_KEY_SUFFIX}"
    connection = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
    return RedisBudget(connection, key=key, **limits)


def _env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument(f"{name} must be a number, not {text!r}") from None


# --- helpers of the request path ---


def _new_session() -> requests.Session:
    session = requests.Session()
    # No retries: every attempt would be a request the budget did not grant.
    adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/json"
    session.trust_env = False  # no ~/.netrc credentials or proxies sneaking in
    return session


def _transport_error(exc: requests.RequestException, method: str, path: str) -> PBXError:
    if isinstance(exc, requests.Timeout) or _is_read_timeout(exc):
        return PBXTimeout(f"The PBX did not answer {method} {path} in time")
    garbled = (
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | requests.exceptions.InvalidHeader
    )
    if isinstance(exc, garbled):
        return ProtocolError(f"The PBX's answer to {method} {path} was cut off or garbled")
    if isinstance(exc, requests.ConnectionError):
        return Unreachable(f"The PBX could not be reached for {method} {path}")
    return PBXError(f"The request {method} {path} failed: {exc.__class__.__name__}")


def _is_read_timeout(exc: BaseException) -> bool:
    # requests wraps a read timeout *while reading the body* as a ConnectionError.
    from urllib3.exceptions import ReadTimeoutError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ReadTimeoutError | TimeoutError):
            return True
        if any(isinstance(arg, ReadTimeoutError) for arg in getattr(current, "args", ())):
            return True
        current = current.__cause__ or current.__context__
    return False


def _read_body(response: requests.Response, path: str) -> bytes:
    try:
        return response.content
    except requests.RequestException as exc:
        raise _transport_error(exc, response.request.method or "GET", path) from exc


def _decode(response: requests.Response, path: str) -> Any:
    body = _read_body(response, path)
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or body.lstrip()[:1] == b"<":
        raise ProtocolError(f"The PBX answered {path} with an HTML page instead of JSON")
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(
            f"The PBX answered {path} with something that is not JSON (truncated or garbled)"
        ) from None


def _error_detail(response: requests.Response) -> str:
    """The PBX's own words from an error body, if it sent JSON; HTML bodies say nothing useful."""
    try:
        payload = json.loads(response.content.decode("utf-8"))
    except (requests.RequestException, UnicodeDecodeError, json.JSONDecodeError, ValueError):
        return ""
    if isinstance(payload, dict):
        for name in ("detail", "message", "error"):
            if isinstance(payload.get(name), str) and payload[name].strip():
                return payload[name].strip()
    return ""


def _raise_for_body_code(result: ActionResult, path: str) -> None:
    """Some answers are HTTP 200 with an error code in the body; treat them like the status."""
    code = result.code
    if code == 1 or 200 <= code < 300:  # call/create documents code 1 as "queued"
        return
    detail = result.detail or path
    if code == 404:
        raise NotFound(f"Not found: {detail}")
    if code == 400:
        raise MissingParameter(f"The PBX says a parameter is missing: {detail}")
    if code >= 500:
        raise ServerError(f"The PBX failed ({code}): {detail}", status=code)
    raise PBXError(f"The PBX refused {path}: {detail} (code {code})")


def _single(payload: Any, where: str) -> Any:
    """One object; tolerate it wrapped in a one-element list (plus stray odd elements)."""
    if isinstance(payload, list):
        objects = [item for item in payload if isinstance(item, dict)]
        if len(objects) == 1:
            return objects[0]
    return expect_dict(payload, where)


def _record_route(prefix: str, id: Any, unique_id: Any) -> tuple[str, dict[str, str] | None]:
    record_id, uid = check.record_ref(id, unique_id)
    if record_id is not None:
        return f"{prefix}/{record_id}", None
    # By unique_id the document puts it in the query; the path then has no id.
    return f"{prefix}/", {"unique_id": uid or ""}


def _path_key(key: str) -> str:
    return quote(check.data_key(key), safe="")


def _refuse_non_recording(response: requests.Response) -> None:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type:
        raise ProtocolError("The PBX answered the download with an HTML page, not a recording")
    if "json" in content_type:
        result = ActionResult.from_payload(_decode(response, "the download"))
        _raise_for_body_code(result, "the download")
        raise ProtocolError("The PBX answered the download with JSON, not a recording")


def _attachment_name(disposition: str) -> str | None:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition, re.IGNORECASE)
    return Path(match.group(1)).name if match else None


def _stream_to(response: requests.Response, out: IO[bytes], path: str) -> int:
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            out.write(chunk)
            size += len(chunk)
    except requests.RequestException as exc:
        raise _transport_error(exc, "GET", path) from exc
    return size


def _stream_to_path(response: requests.Response, dest: Path, path: str) -> int:
    # Into a temporary file beside the target, renamed at the end: no half-written recordings.
    handle, temporary = tempfile.mkstemp(prefix=".download-", dir=dest.parent or Path("."))
    try:
        with os.fdopen(handle, "wb") as out:
            size = _stream_to(response, out, path)
        os.replace(temporary, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return size
