"""The VIPTel PBX client: one method per API operation, typed results, one error hierarchy.

Every request asks the budget first (a refused budget means nothing is sent) and goes through
one reused ``requests.Session``. There are no automatic retries anywhere: a retry would spend
budget behind the caller's back.

Each exchange keeps the budget's hold rule (``pbxapi.budget``): it asks for a slot held at most
``hold`` = send deadline + connect timeout + read timeout, sends within ``send_deadline`` of the
grant or not at all (``GrantExpired``: the process was descheduled), ends by the grant plus its
hold whatever the PBX does (the read timeout bounds the whole answer, not each read:
``pbxapi.transport``), and releases the slot when the response has been read or the request
failed.
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
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import requests
from urllib3.exceptions import ReadTimeoutError

from pbxapi import transport
from pbxapi import validation as check
from pbxapi.budget import (
    PBX_LIMIT,
    Budget,
    FileBlockStore,
    Grant,
    LocalBudget,
    RedisBudget,
)
from pbxapi.errors import (
    AuthenticationFailed,
    Blocked,
    GrantExpired,
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
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The PBX's own zone: its CDR times carry none. The default lives here, at the edge.
DEFAULT_TIME_ZONE = "Europe/Bratislava"
# How late after its grant a request may still be sent. Later, the process was descheduled or
# starved, and the request is not sent at all.
SEND_DEADLINE = 1.0
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
        send_deadline: float = SEND_DEADLINE,
        time_zone: str | tzinfo = DEFAULT_TIME_ZONE,
    ) -> None:
        """``read_timeout`` bounds the whole answer (headers and body, a streamed download
        too), not each read. ``budget`` None: a private ``LocalBudget``, which knows nothing of
        other processes. ``time_zone``: the PBX's, for the CDR's ``when``. A ``session`` given
        gets the client's adapter mounted (deadlines, no retries)."""
        if not base_url or not re.match(r"https?://", base_url):
            raise InvalidArgument("The PBX URL must start with http:// or https://")
        if connect_timeout <= 0 or read_timeout <= 0 or send_deadline <= 0:
            raise InvalidArgument("The PBX timeouts and the send deadline must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.send_deadline = send_deadline
        self.hold = exchange_hold(
            connect_timeout=connect_timeout, read_timeout=read_timeout, send_deadline=send_deadline
        )
        self.budget: Budget = budget if budget is not None else LocalBudget(max_hold=self.hold)
        if self.hold > self.budget.max_hold:
            raise InvalidArgument(
                f"An exchange may take {self.hold:g} s (send deadline {send_deadline:g} + connect "
                f"{connect_timeout:g} + read {read_timeout:g}), longer than the budget's longest "
                f"hold ({self.budget.max_hold:g} s): shorten the timeouts or raise max_hold"
            )
        self.time_zone = _time_zone(time_zone)
        self.max_wait = max_wait
        self.session = (
            transport.session_prepare(session) if session is not None else transport.new_session()
        )
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
        return parse_list(payload, "the CDR list", self._cdr_row)

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
        return self._cdr_row(_single(payload, "the CDR row"))

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
        return parse_list(payload, "the recordings list", self._cdr_row)

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
        exchange = self._exchange("GET", path, params=params, p=priority, w=max_wait, stream=True)
        with exchange as response:
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
        return self._cdr_row(_single(payload, "the CDR row"))

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
        with self._exchange(method, path, params=params, data=data, p=p, w=w) as response:
            self._raise_for_status(response, path)
            payload = _decode(response, path)
        result = ActionResult.from_payload(payload, http_status=200)
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
        with self._exchange(method, path, params=params, p=p, w=w) as response:
            self._raise_for_status(response, path)
            return _decode(response, path)

    def _cdr_row(self, payload: Any) -> CdrRow:
        return CdrRow.from_payload(payload, time_zone=self.time_zone)

    @contextlib.contextmanager
    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        p: str,
        w: float | None,
        stream: bool = False,
    ) -> Iterator[requests.Response]:
        """One request under one budget grant: the response, to be read inside the block.

        Sends only within ``send_deadline`` of the grant, ends the whole exchange (reading
        the body inside the block included) within connect + read timeout of sending it, so by
        the grant plus ``hold``, and releases the slot on the way out, whatever happened.
        """
        grant = self.budget.acquire(
            priority=p, max_wait=self.max_wait if w is None else w, hold=self.hold
        )
        try:
            late = time.monotonic() - grant.monotonic
            if late > self.send_deadline:
                raise GrantExpired(late=late, limit=self.send_deadline)
            started = time.monotonic()
            # Sent within the send deadline, so this ends by the grant plus the hold.
            with transport.ExchangeDeadline(sum(self.timeout)) as deadline:
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
                    if deadline.expired:
                        raise self._overran(method, path) from exc
                    raise _transport_error(exc, method, path) from exc
                # Path only: the query may name customers' numbers, and nothing here holds
                # credentials.
                logger.debug(
                    "PBX %s %s -> %s in %.3f s",
                    method,
                    path,
                    response.status_code,
                    time.monotonic() - started,
                )
                with contextlib.closing(response):
                    try:
                        yield response
                    except (ProtocolError, Unreachable) as exc:
                        # Reading the body failed because the watchdog ended the exchange.
                        if deadline.expired:
                            raise self._overran(method, path) from exc
                        raise
        finally:
            self._release(grant)

    def _overran(self, method: str, path: str) -> PBXTimeout:
        return PBXTimeout(
            f"The PBX did not finish answering {method} {path} within {sum(self.timeout):g} s"
        )

    def _release(self, grant: Grant) -> None:
        try:
            self.budget.release(grant)
        except PBXError:
            # Unreleased, the slot counts until its hold bound: later than needed, never early.
            logger.warning("Could not release a PBX budget slot; it counts until its bound")

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


def exchange_hold(
    *, connect_timeout: float, read_timeout: float, send_deadline: float = SEND_DEADLINE
) -> float:
    """The longest one exchange holds its budget slot: sent within the send deadline, connected
    within the connect timeout, answered in full within the read timeout."""
    return send_deadline + connect_timeout + read_timeout


def client_from_env(environ: Mapping[str, str] = os.environ, **overrides: Any) -> PBXClient:
    """A client configured like the product: PBX_API_URL/USER/PASSWORD, the shared budget
    (``budget_from_env``), PBX_CONNECT_TIMEOUT/PBX_READ_TIMEOUT and PBX_TIME_ZONE.
    ``overrides`` replace any PBXClient argument."""
    url = overrides.pop("base_url", None) or environ.get("PBX_API_URL", "")
    user = overrides.pop("user", None) or environ.get("PBX_API_USER", "")
    password = overrides.pop("password", None) or environ.get("PBX_API_PASSWORD", "")
    if not url:
        raise InvalidArgument("PBX_API_URL is not set (the PBX base URL)")
    if not user or not password:
        raise InvalidArgument("PBX_API_USER and PBX_API_PASSWORD must both be set")
    for name, value in client_options_from_env(environ).items():
        overrides.setdefault(name, value)
    if "budget" not in overrides:
        overrides["budget"] = budget_from_env(environ)
    return PBXClient(url, user, password, **overrides)


def client_options_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """PBXClient's timeouts and time zone from PBX_CONNECT_TIMEOUT (3), PBX_READ_TIMEOUT (10,
    the whole answer) and PBX_TIME_ZONE (Europe/Bratislava)."""
    return {
        "connect_timeout": _env_float(environ, "PBX_CONNECT_TIMEOUT", 3.0, positive=True),
        "read_timeout": _env_float(environ, "PBX_READ_TIMEOUT", 10.0, positive=True),
        "time_zone": _env_time_zone(environ),
    }


def budget_from_env(environ: Mapping[str, str] = os.environ, *, private: bool = False) -> Budget:
    """The budget the product shares: a ``RedisBudget`` at REDIS_URL (default
    redis://127.0.0.1:6379/0) on PBX_BUDGET_KEY (default "<REDIS_KEY_PREFIX or wallboard>:
    pbx-budget"). ``private=True`` (and only that) gives an in-process ``LocalBudget`` instead,
    which knows nothing of what other processes send.

    Limits: PBX_BUDGET_REQUESTS (18) per PBX_BUDGET_WINDOW (5 s), PBX_ACTION_RESERVE (1),
    PBX_BLOCK_SECONDS (1800), within the PBX's PBX_RATE_LIMIT (20/5); the longest hold is the
    client's from PBX_CONNECT_TIMEOUT and PBX_READ_TIMEOUT (``exchange_hold``). PBX_BLOCK_FILE,
    when set, keeps a 403's block in that file too (``FileBlockStore``), so that it survives a
    loss of Redis's memory.
    Refuses a bad value with ``InvalidArgument`` naming its variable; builds no connection.
    """
    limits = budget_limits_from_env(environ)
    block_file = environ.get("PBX_BLOCK_FILE", "").strip()
    store = FileBlockStore(block_file) if block_file else None
    if private:
        return LocalBudget(**limits, block_store=store)
    url = redis_url_from_env(environ)
    try:
        connection = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
    except ValueError as exc:
        raise InvalidArgument(f"REDIS_URL is not a Redis URL: {exc}") from None
    return RedisBudget(connection, key=budget_key_from_env(environ), **limits, block_store=store)


def budget_limits_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The budget's limits from the environment (see ``budget_from_env``), checked against
    the PBX's limit with the offending variable named."""
    pbx_limit = _env_rate_limit(environ, "PBX_RATE_LIMIT", PBX_LIMIT)
    requests_ = _env_int(environ, "PBX_BUDGET_REQUESTS", 18, minimum=1)
    window = _env_float(environ, "PBX_BUDGET_WINDOW", 5.0, positive=True)
    reserve = _env_int(environ, "PBX_ACTION_RESERVE", 1, minimum=0)
    block_seconds = _env_float(environ, "PBX_BLOCK_SECONDS", 1800.0, positive=True)
    limit_requests, limit_window = pbx_limit
    if requests_ > limit_requests:
        raise InvalidArgument(
            f"PBX_BUDGET_REQUESTS={requests_} is above the PBX's limit of {limit_requests} "
            f"requests per {limit_window:g} s (PBX_RATE_LIMIT): one more blocks the IP"
        )
    if window < limit_window:
        raise InvalidArgument(
            f"PBX_BUDGET_WINDOW={window:g} is shorter than the PBX's window of "
            f"{limit_window:g} s (PBX_RATE_LIMIT): the PBX would count more in its window"
        )
    if reserve >= requests_:
        raise InvalidArgument(
            f"PBX_ACTION_RESERVE={reserve} must be below PBX_BUDGET_REQUESTS={requests_}"
        )
    options = client_options_from_env(environ)
    hold = exchange_hold(
        connect_timeout=options["connect_timeout"], read_timeout=options["read_timeout"]
    )
    return {
        "requests": requests_,
        "window": window,
        "reserve": reserve,
        "block_seconds": block_seconds,
        "max_hold": hold,
        "pbx_limit": pbx_limit,
    }


def redis_url_from_env(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL


def budget_key_from_env(environ: Mapping[str, str] = os.environ) -> str:
    prefix = environ.get("REDIS_KEY_PREFIX", "").strip() or "wallboard"
    return environ.get("PBX_BUDGET_KEY", "").strip() or f"{prefix}:{DEFAULT_BUDGET_KEY_SUFFIX}"


def redacted_url(url: str) -> str:
    """``url`` without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _env_float(
    environ: Mapping[str, str], name: str, default: float, *, positive: bool = False
) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise InvalidArgument(f"{name}={text!r} is not a number") from None
    if positive and not number > 0:
        raise InvalidArgument(f"{name}={text} must be positive")
    return number


def _env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise InvalidArgument(f"{name}={text!r} is not a whole number") from None
    if number < minimum:
        raise InvalidArgument(f"{name}={number} must be at least {minimum}")
    return number


def _env_rate_limit(
    environ: Mapping[str, str], name: str, default: tuple[int, float]
) -> tuple[int, float]:
    text = environ.get(name, "").strip()
    if not text:
        return default
    count, slash, seconds = text.partition("/")
    try:
        limit = (int(count), float(seconds))
    except ValueError:
        limit = (0, 0.0)
    if not slash or limit[0] < 1 or not limit[1] > 0:
        raise InvalidArgument(
            f"{name}={text!r} must be REQUESTS/SECONDS, e.g. 20/5 (the PBX's limit)"
        )
    return limit


def _env_time_zone(environ: Mapping[str, str]) -> tzinfo:
    name = environ.get("PBX_TIME_ZONE", "").strip() or DEFAULT_TIME_ZONE
    try:
        return _time_zone(name)
    except InvalidArgument:
        raise InvalidArgument(
            f"PBX_TIME_ZONE={name!r} is not a known time zone (e.g. Europe/Bratislava)"
        ) from None


# --- helpers of the request path ---


def _time_zone(zone: str | tzinfo) -> tzinfo:
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"Unknown PBX time zone {zone!r}") from None


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
