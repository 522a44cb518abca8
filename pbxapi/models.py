"""Typed, normalised results of the VIPTel PBX API.

The live service is loose with types: numbers arrive as strings in most places and as JSON
numbers in others, "none" is sometimes ``null`` and sometimes ``""``, optional fields go missing
and unknown ones appear. Every model here is built by a ``from_payload`` classmethod that
tolerates all of that, keeps unknown fields in ``extra`` and the untouched payload in ``raw``.
A payload whose *shape* is wrong (a dict where a list belongs, a number that is not a number, a
missing identifier) raises ``ProtocolError`` naming the field, because guessing there would put
wrong numbers on a wallboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from pbxapi.errors import ProtocolError

logger = logging.getLogger(__name__)

WHEN_FORMAT = "%Y-%m-%d %H:%M:%S"

_MISSING = object()
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})

T = TypeVar("T")


# --- field readers: each takes the payload, the field name and where it sits (for messages) ---


def _field(payload: Mapping[str, Any], name: str, where: str, *, required: bool) -> Any:
    value = payload.get(name, _MISSING)
    if value is _MISSING and required:
        raise ProtocolError(f"The PBX answer has no '{name}' in {where}")
    return value


def _to_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"The PBX sent a true/false for '{name}' in {where}, expected a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
    raise ProtocolError(f"The PBX sent {value!r} for '{name}' in {where}, expected a number")


def req_int(payload: Mapping[str, Any], name: str, where: str) -> int:
    """A number that must be there (an identifier): missing or null is a protocol error."""
    value = _field(payload, name, where, required=True)
    if value is None or value == "":
        raise ProtocolError(f"The PBX answer has an empty '{name}' in {where}")
    return _to_int(value, name, where)


def opt_int(payload: Mapping[str, Any], name: str, where: str) -> int | None:
    """A number that may be missing, null or "" (all meaning "none")."""
    value = _field(payload, name, where, required=False)
    if value is _MISSING or value is None or value == "":
        return None
    return _to_int(value, name, where)


def count_int(payload: Mapping[str, Any], name: str, where: str, default: int = 0) -> int:
    """A count or duration: "none" means zero."""
    value = opt_int(payload, name, where)
    return default if value is None else value


def opt_str(payload: Mapping[str, Any], name: str, where: str) -> str | None:
    """Text (names, phone numbers): numbers become strings, null and "" become None."""
    value = _field(payload, name, where, required=False)
    if value is _MISSING or value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ProtocolError(f"The PBX sent {value!r} for '{name}' in {where}, expected text")
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise ProtocolError(f"The PBX sent a {type(value).__name__} for '{name}' in {where}")


def req_str(payload: Mapping[str, Any], name: str, where: str) -> str:
    value = opt_str(payload, name, where)
    if value is None:
        raise ProtocolError(f"The PBX answer has no '{name}' in {where}")
    return value


def opt_bool(payload: Mapping[str, Any], name: str, where: str, default: bool = False) -> bool:
    """true/false, also as 1/0 or "true"/"false"; missing or null means ``default``."""
    value = _field(payload, name, where, required=False)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ProtocolError(f"The PBX sent {value!r} for '{name}' in {where}, expected true or false")


def req_datetime(
    payload: Mapping[str, Any], name: str, where: str, *, time_zone: tzinfo | None
) -> datetime:
    """PBX local time without a zone ("YYYY-MM-DD HH:MM:SS") as an aware datetime in the PBX's
    ``time_zone``; without one, as the PBX sent it (naive unless it carried an offset)."""
    text = req_str(payload, name, where).strip()
    try:
        parsed = datetime.strptime(text, WHEN_FORMAT)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ProtocolError(
                f"The PBX sent {text!r} for '{name}' in {where}, expected YYYY-MM-DD HH:MM:SS"
            ) from None
    if time_zone is None:
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=time_zone)
    return parsed.astimezone(time_zone)


def call_forwarding_value(payload: Mapping[str, Any], where: str) -> str | None:
    """``call_forwarding`` is a number (string or int) when on and ``false`` when off."""
    value = _field(payload, "call_forwarding", where, required=False)
    if isinstance(value, str) and value.strip().lower() in ("false", "0"):
        return None
    return opt_str(payload, "call_forwarding", where)


def expect_dict(payload: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"The PBX sent {_kind(payload)} for {where}, expected an object")
    return payload


def expect_list(payload: Any, where: str) -> list[Any]:
    if not isinstance(payload, list):
        raise ProtocolError(f"The PBX sent {_kind(payload)} for {where}, expected a list")
    return payload


def parse_list(payload: Any, where: str, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """Parse a list of objects; odd elements (the document's stray ``""``) are skipped, logged."""
    items: list[T] = []
    for index, element in enumerate(expect_list(payload, where)):
        if not isinstance(element, Mapping):
            logger.warning("Skipping an odd element %r at %s[%d]", element, where, index)
            continue
        items.append(parse(element))
    return items


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


def _extra(payload: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    known_set = set(known)
    return {key: value for key, value in payload.items() if key not in known_set}


def _plain(value: Any) -> Any:
    if isinstance(value, PBXModel):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


class PBXModel:
    """``extra`` (unknown fields) and ``raw`` (the payload) are outside equality and repr.

    Shared behaviour: ``to_dict()`` for JSON (the CLI, caches), without the raw payload."""

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for item in fields(self):  # type: ignore[arg-type]
            if item.name == "raw":
                continue
            result[item.name] = _plain(getattr(self, item.name))
        return result


# --- the models ---


@dataclass(frozen=True)
class Queue(PBXModel):
    queue: int
    name: str | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_payload(cls, payload: Any) -> Queue:
        where = "a queue"
        data = expect_dict(payload, where)
        name = opt_str(data, "nazov", where)
        if name is None:
            name = opt_str(data, "name", where)
        return cls(
            queue=req_int(data, "queue", where),
            name=name,
            extra=_extra(data, ("queue", "nazov", "name")),
            raw=payload,
        )


@dataclass(frozen=True)
class QueueMember(PBXModel):
    extension: int
    calls_taken: int
    last_call_taken_ago: int | None
    paused: bool
    in_use: bool
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _KNOWN = ("extension", "calls_taken", "last_call_taken_ago", "paused", "in_use")

    @classmethod
    def from_payload(cls, payload: Any) -> QueueMember:
        where = "a queue member"
        data = expect_dict(payload, where)
        return cls(
            extension=req_int(data, "extension", where),
            calls_taken=count_int(data, "calls_taken", where),
            last_call_taken_ago=opt_int(data, "last_call_taken_ago", where),
            paused=opt_bool(data, "paused", where),
            in_use=opt_bool(data, "in_use", where),
            extra=_extra(data, cls._KNOWN),
            raw=payload,
        )


@dataclass(frozen=True)
class WaitingCall(PBXModel):
    wait_time: int
    unique_id: str
    caller: str | None
    caller_name: str | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _KNOWN = ("wait_time", "unique_id", "caller", "caller_name")

    @classmethod
    def from_payload(cls, payload: Any) -> WaitingCall:
        where = "a waiting call"
        data = expect_dict(payload, where)
        return cls(
            wait_time=count_int(data, "wait_time", where),
            unique_id=req_str(data, "unique_id", where),
            caller=opt_str(data, "caller", where),
            caller_name=opt_str(data, "caller_name", where),
            extra=_extra(data, cls._KNOWN),
            raw=payload,
        )


@dataclass(frozen=True)
class QueueStatus(PBXModel):
    queue: int
    current_calls_count: int
    members: list[QueueMember]
    waiting_calls: list[WaitingCall]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _KNOWN = ("queue", "current_calls_count", "members", "waiting_calls")

    @classmethod
    def from_payload(cls, payload: Any) -> QueueStatus:
        where = "the queue status"
        data = expect_dict(payload, where)
        members = parse_list(data.get("members") or [], "members", QueueMember.from_payload)
        waiting = parse_list(
            data.get("waiting_calls") or [], "waiting_calls", WaitingCall.from_payload
        )
        # The live service omits current_calls_count; it is the number of waiting calls.
        count = opt_int(data, "current_calls_count", where)
        return cls(
            queue=req_int(data, "queue", where),
            current_calls_count=len(waiting) if count is None else count,
            members=members,
            waiting_calls=waiting,
            extra=_extra(data, cls._KNOWN),
            raw=payload,
        )


@dataclass(frozen=True)
class ActiveCall(PBXModel):
    caller: str | None
    caller_name: str | None
    callee: str | None
    duration: int
    unique_id: str
    status: str | None
    from_queue_unique_id: str | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _KNOWN = (
        "caller",
        "caller_name",
        "callee",
        "duration",
        "unique_id",
        "status",
        "from_queue_unique_id",
    )

    @classmethod
    def from_payload(cls, payload: Any) -> ActiveCall:
        where = "an active call"
        data = expect_dict(payload, where)
        return cls(
            caller=opt_str(data, "caller", where),
            caller_name=opt_str(data, "caller_name", where),
            callee=opt_str(data, "callee", where),
            duration=count_int(data, "duration", where),
            unique_id=req_str(data, "unique_id", where),
            status=opt_str(data, "status", where),
            from_queue_unique_id=opt_str(data, "from_queue_unique_id", where),
            extra=_extra(data, cls._KNOWN),
            raw=payload,
        )


@dataclass(frozen=True)
class CallStatistics(PBXModel):
    calls_active: int
    calls: list[ActiveCall]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_payload(cls, payload: Any) -> CallStatistics:
        where = "the call statistics"
        data = expect_dict(payload, where)
        calls = parse_list(data.get("calls") or [], "calls", ActiveCall.from_payload)
        active = opt_int(data, "calls_active", where)
        return cls(
            calls_active=len(calls) if active is None else active,
            calls=calls,
            extra=_extra(data, ("calls_active", "calls")),
            raw=payload,
        )


@dataclass(frozen=True)
class Extension(PBXModel):
    extension: int
    name: str | None
    outboundcid: str | None
    is_viptel_phone_active: bool
    call_forwarding: str | None
    is_registered: bool
    allowed_changes: list[str]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _KNOWN = (
        "extension",
        "name",
        "outboundcid",
        "is_viptel_phone_active",
        "call_forwarding",
        "is_registered",
        "allowed_changes",
    )

    @classmethod
    def from_payload(cls, payload: Any) -> Extension:
        where = "an extension"
        data = expect_dict(payload, where)
        return cls(
            extension=req_int(data, "extension", where),
            name=opt_str(data, "name", where),
            outboundcid=opt_str(data, "outboundcid", where),
            is_viptel_phone_active=opt_bool(data, "is_viptel_phone_active", where),
            call_forwarding=call_forwarding_value(data, where),
            is_registered=opt_bool(data, "is_registered", where),
            allowed_changes=string_list(data.get("allowed_changes") or [], "allowed_changes"),
            extra=_extra(data, cls._KNOWN),
            raw=payload,
        )


@dataclass(frozen=True)
class CdrRow(PBXModel):
    id: int
    type: str | None
    when: datetime
    caller: str | None
    caller_name: str | None
    received: str | None
    received_name: str | None
    destination: str | None
    destination_name: str | None
    duration: int
    application: str | None
    status: str | None
    recording_file: str | None
    unique_id: str | None
    complete_duration: int | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    _TEXT = (
        "type",
        "caller",
        "caller_name",
        "received",
        "received_name",
        "destination",
        "destination_name",
        "application",
        "status",
        "recording_file",
        "unique_id",
    )
    _KNOWN = (*_TEXT, "id", "when", "duration", "complete_duration")

    @classmethod
    def from_payload(cls, payload: Any, *, time_zone: tzinfo | None = None) -> CdrRow:
        """``time_zone``: the PBX's, which its ``when`` is in (the client passes its own);
        without it ``when`` stays as sent, naive."""
        where = "a CDR row"
        data = expect_dict(payload, where)
        text = {name: opt_str(data, name, where) for name in cls._TEXT}
        return cls(
            id=req_int(data, "id", where),
            when=req_datetime(data, "when", where, time_zone=time_zone),
            duration=count_int(data, "duration", where),
            complete_duration=opt_int(data, "complete_duration", where),
            extra=_extra(data, cls._KNOWN),
            raw=payload,
            **text,
        )


@dataclass(frozen=True)
class ActionResult(PBXModel):
    """The body of a successful action: ``{"code": 200, "detail": "Paused"}`` or with ``message``.

    Anything else in the body (e.g. the changed values of an extension update) is in ``extra``.
    """

    code: int
    detail: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_payload(cls, payload: Any, *, http_status: int = 200) -> ActionResult:
        where = "the action result"
        if isinstance(payload, str):  # a bare confirmation text
            return cls(code=http_status, detail=payload, raw=payload)
        data = expect_dict(payload, where)
        code = opt_int(data, "code", where)
        detail = opt_str(data, "detail", where) or opt_str(data, "message", where) or ""
        return cls(
            code=http_status if code is None else code,
            detail=detail,
            extra=_extra(data, ("code", "detail", "message")),
            raw=payload,
        )


@dataclass(frozen=True)
class RecordingDownload(PBXModel):
    """Where a downloaded recording went: the file (None for a file object), size and type."""

    path: str | None
    size: int
    content_type: str | None
    filename: str | None


def string_list(payload: Any, where: str) -> list[str]:
    """A list of strings (numbers become strings); empty and odd elements are skipped."""
    result: list[str] = []
    for index, element in enumerate(expect_list(payload, where)):
        if isinstance(element, bool) or not isinstance(element, str | int):
            logger.warning("Skipping an odd element %r at %s[%d]", element, where, index)
            continue
        text = str(element).strip()
        if not text:
            logger.warning("Skipping an empty element at %s[%d]", where, index)
            continue
        result.append(text)
    return result


def string_map(payload: Any, where: str) -> dict[str, str]:
    """Customer data: an object of key → text. An empty PHP array (``[]``) means no data."""
    if isinstance(payload, list) and not payload:
        return {}
    data = expect_dict(payload, where)
    result: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            result[str(key)] = ""
        elif isinstance(value, str):
            result[str(key)] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            result[str(key)] = str(value)
        else:
            raise ProtocolError(f"The PBX sent {_kind(value)} as the value of '{key}' in {where}")
    return result
