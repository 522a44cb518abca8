"""Argument checks done before a request is spent.

A request refused by the PBX still costs one of the 20 requests per 5 seconds, so everything
the document constrains is checked here first and refused with ``InvalidArgument``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from pbxapi.errors import InvalidArgument

DATA_KEY_MAX = 250
CDR_PAGE_MAX = 3000  # the PBX returns at most this many CDR rows per call

_DIGITS = re.compile(r"[0-9]{1,15}")
_PHONE = re.compile(r"\+?[0-9*#]{1,32}")
_UNIQUE_ID = re.compile(r"[0-9A-Za-z._-]{1,64}")
_PROFILE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OFF_WORDS = frozenset({"off", "false", "no", "none"})


def number(value: Any, what: str) -> int:
    """A queue, extension or record number: digits (an int or a string of digits)."""
    if isinstance(value, bool):
        raise InvalidArgument(f"The {what} must be a number, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgument(f"The {what} must not be negative")
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise InvalidArgument(f"The {what} must be digits, not {value!r}")


def extension(value: Any) -> int:
    return number(value, "extension")


def queue(value: Any) -> int:
    return number(value, "queue")


def phone(value: Any, what: str) -> str:
    """An extension or phone number to dial: digits, optionally with a leading + (or * / #)."""
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    if not _PHONE.fullmatch(text):
        raise InvalidArgument(f"The {what} must be a phone number or extension, not {value!r}")
    return text


def data_key(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidArgument("The data key must be non-empty text")
    if len(value) > DATA_KEY_MAX:
        raise InvalidArgument(f"The data key is {len(value)} characters; at most 250 are allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidArgument("The data key must not contain control characters")
    return value


def data_value(value: Any) -> str:
    """Any text, may be empty; numbers are accepted and sent as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidArgument(f"The data value must be text, not {type(value).__name__}")


def data_mapping(mapping: Any) -> dict[str, str]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise InvalidArgument("Bulk data must be a non-empty mapping of key to value")
    return {data_key(key): data_value(value) for key, value in mapping.items()}


def extension_name(value: Any) -> str:
    """Letters (Slovak ones too), digits and spaces only, as the PBX allows."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument("The extension name must be non-empty text")
    if not all(char.isalnum() or char == " " for char in value):
        raise InvalidArgument(
            f"The extension name {value!r} may contain only letters, digits and spaces"
        )
    return value


def call_forwarding(value: Any) -> str:
    """A number to forward to, or off (False / "off" / "false") → the form value ``"false"``."""
    if value is False or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS):
        return "false"
    if value is True:
        raise InvalidArgument("call_forwarding must be a number to forward to, or off")
    return phone(value, "call forwarding number")


def outbound_cid(value: Any) -> str:
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    if not re.fullmatch(r"\+?[0-9]{1,32}", text):
        raise InvalidArgument(f"The outbound caller ID must be a number, not {value!r}")
    return text


def iso_date(value: Any, what: str) -> str:
    """YYYY-MM-DD (a ``date`` or such a string), as the CDR filters expect."""
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip()).strftime("%Y-%m-%d")
        except ValueError:
            pass
    raise InvalidArgument(f"The {what} must be a date as YYYY-MM-DD, not {value!r}")


def non_negative(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgument(f"The {what} must be a whole number, not {value!r}")
    try:
        number_ = int(value)
    except ValueError:
        raise InvalidArgument(f"The {what} must be a whole number, not {value!r}") from None
    if number_ < 0:
        raise InvalidArgument(f"The {what} must not be negative")
    return number_


def cdr_filters(
    *,
    date_from: Any = None,
    date_to: Any = None,
    limit: Any = None,
    offset: Any = None,
) -> dict[str, str]:
    """Query parameters for /api/cdr/ and /api/cdr/recordings (only those given)."""
    params: dict[str, str] = {}
    if date_from is not None:
        params["date_from"] = iso_date(date_from, "start date")
    if date_to is not None:
        params["date_to"] = iso_date(date_to, "end date")
    if "date_from" in params and "date_to" in params and params["date_from"] > params["date_to"]:
        raise InvalidArgument("The start date is after the end date")
    if limit is not None:
        params["limit"] = str(non_negative(limit, "limit"))
    if offset is not None:
        params["offset"] = str(non_negative(offset, "offset"))
    return params


def record_ref(id: Any = None, unique_id: Any = None) -> tuple[int | None, str | None]:
    """A CDR record by exactly one of its id or its unique_id."""
    if (id is None) == (unique_id is None):
        raise InvalidArgument("Give exactly one of a record id or a unique_id")
    if id is not None:
        return number(id, "record id"), None
    text = str(unique_id).strip() if isinstance(unique_id, str | int | float) else ""
    if not _UNIQUE_ID.fullmatch(text):
        raise InvalidArgument(f"The unique_id {unique_id!r} is not a call identifier")
    return None, text


def call_profile(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _PROFILE.fullmatch(value):
        raise InvalidArgument(f"The call profile {value!r} may contain only letters, digits, _ -")
    return value


def form_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """Agreed form fields for an advanced call: names and text/number values."""
    result: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgument("Advanced call field names must be non-empty text")
        if isinstance(value, bool):
            result[name] = "true" if value else "false"
        else:
            result[name] = data_value(value)
    return result
