"""The history endpoints' query parameters, read into typed values with a clear message for each
mistake: every one raises ``QueryInvalid`` (the API's 400), never anything a view would turn
into a 500 (a date the calendar cannot shift by a day, a number the database cannot hold)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext

from wallboard.history.intervals import INTERVAL_DAY, INTERVALS, QueryInvalid
from wallboard.history.records import OUTCOMES
from wallboard.history.selectors import RECORDS_PAGE_SIZE_MAX

# Dates a question may name: far beyond any call record, near enough that a day before or after
# is still a date in every time zone (date.max + 1 day would overflow).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
# Queue numbers are PositiveIntegerFields (PostgreSQL's int4); a longer list is not a question.
MAX_QUEUE_NUMBER = 2_147_483_647
MAX_QUEUES = 500
# Agents and callers are short numbers; anything longer matches nothing anyway.
MAX_TEXT = 64
# Pages past this are not paged through by anyone (and the offset stays a small number).
MAX_PAGE = 1_000_000
DEFAULT_PAGE_SIZE = 50

# What each endpoint reads (``format`` is DRF's own: ?format=json).
REPORT_PARAMETERS = ("from", "to", "queues", "interval")
AGENT_PARAMETERS = ("from", "to", "queues")
CALL_PARAMETERS = ("from", "to", "queues", "agent", "outcome", "caller", "page", "page_size")
_ALWAYS_ALLOWED = ("format",)
# Parameters whose values the schema types (a date, a number, one of a list).
_TYPED = ("from", "to", "interval", "outcome", "page", "page_size")


@dataclass(frozen=True)
class HistoryQuery:
    """One question to the call history, as the URL asked it."""

    date_from: date
    date_to: date
    queues: list[int] | None  # None: every queue the caller may read
    interval: str = INTERVAL_DAY
    agent: str | None = None
    outcome: str | None = None
    caller: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


def history_query(
    params: Mapping[str, str], *, allowed: Sequence[str], today: date
) -> HistoryQuery:
    """Read ``params`` (a request's GET) for an endpoint that takes the ``allowed`` parameters.

    ``from`` defaults to ``today`` (the PBX's), ``to`` to ``from``; ``interval`` to ``day``.
    An unknown parameter is refused rather than ignored: a misspelt ``intervall`` would
    otherwise answer another question than the one asked.
    """
    unknown = sorted(set(params) - set(allowed) - set(_ALWAYS_ALLOWED))
    if unknown:
        raise QueryInvalid(
            gettext("Unknown parameter(s) %(unknown)s; this endpoint takes %(allowed)s")
            % {"unknown": ", ".join(unknown), "allowed": ", ".join(allowed)}
        )
    repeated = sorted(name for name in params if len(_values(params, name)) > 1)
    if repeated:
        raise QueryInvalid(
            gettext("%(names)s given more than once") % {"names": ", ".join(repeated)}
        )
    empty = sorted(name for name in _TYPED if params.get(name) == "")
    if empty:
        # A date, number or choice given empty is a mistake, not "the default": say so.
        raise QueryInvalid(
            gettext("%(names)s given empty: leave a parameter out or give it a value")
            % {"names": ", ".join(empty)}
        )
    date_from = _date(params, "from", default=today)
    date_to = _date(params, "to", default=date_from)
    interval = params.get("interval") or INTERVAL_DAY
    if interval not in INTERVALS:
        raise QueryInvalid(
            gettext("Unknown interval %(interval)r; use one of %(intervals)s")
            % {"interval": interval, "intervals": ", ".join(INTERVALS)}
        )
    outcome = params.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise QueryInvalid(
            gettext("Unknown outcome %(outcome)r; use one of %(outcomes)s")
            % {"outcome": outcome, "outcomes": ", ".join(OUTCOMES)}
        )
    return HistoryQuery(
        date_from=date_from,
        date_to=date_to,
        queues=_queues(params.get("queues")),
        interval=interval,
        agent=_text(params, "agent"),
        outcome=outcome,
        caller=_text(params, "caller"),
        page=_number(params, "page", default=1, low=1, high=MAX_PAGE),
        page_size=_number(
            params, "page_size", default=DEFAULT_PAGE_SIZE, low=1, high=RECORDS_PAGE_SIZE_MAX
        ),
    )


def _values(params: Mapping[str, str], name: str) -> list[str]:
    """Every value given for ``name`` (a QueryDict keeps them all; a plain mapping one)."""
    getlist = getattr(params, "getlist", None)
    return getlist(name) if getlist is not None else [params[name]]


def _date(params: Mapping[str, str], name: str, *, default: date) -> date:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = date.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or len(text) != 10:
        raise QueryInvalid(
            gettext("%(name)s must be a date written YYYY-MM-DD, not %(text)r")
            % {"name": name, "text": text}
        )
    if not FIRST_DAY <= value <= LAST_DAY:
        raise QueryInvalid(
            gettext("%(name)s must be between %(first)s and %(last)s, not %(value)s")
            % {"name": name, "first": FIRST_DAY, "last": LAST_DAY, "value": value}
        )
    return value


def _queues(text: str | None) -> list[int] | None:
    """ "100,101" -> [100, 101] in the order given, without repeats; "" or absent -> None."""
    if not text:
        return None
    queues: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not _digits(part, longest=10) or int(part) > MAX_QUEUE_NUMBER:
            raise QueryInvalid(
                gettext("queues must be queue numbers separated by commas, not %(text)r")
                % {"text": text}
            )
        if int(part) not in queues:
            queues.append(int(part))
    if len(queues) > MAX_QUEUES:
        raise QueryInvalid(gettext("At most %(max)d queues at a time") % {"max": MAX_QUEUES})
    return queues or None


def _digits(text: str, *, longest: int) -> bool:
    """Plain ASCII digits, short enough to be a number we take (and for ``int`` to read)."""
    return text.isascii() and text.isdigit() and len(text) <= longest


def _text(params: Mapping[str, str], name: str) -> str | None:
    text = (params.get(name) or "").strip()
    if len(text) > MAX_TEXT:
        raise QueryInvalid(
            gettext("%(name)s is at most %(max)d characters") % {"name": name, "max": MAX_TEXT}
        )
    return text or None


def _number(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not _digits(text, longest=len(str(high))) or not low <= int(text) <= high:
        raise QueryInvalid(
            gettext("%(name)s must be a whole number from %(low)d to %(high)d, not %(text)r")
            % {"name": name, "low": low, "high": high, "text": text}
        )
    return int(text)
