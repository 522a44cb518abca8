"""Calling missed callers back (pure): which numbers may be dialled, how a number is written for
reading, and when a call back's claim on a number has ended (docs/architecture.md, "Missed
callers and call back").

A *claim* says "this number is being called back by this user from this extension since then":
one at a time per number (``number_key``), so two team leads never ring the same customer at
once. It ends when the call records show the call back's outcome -- an outgoing row from that
extension to that number, stored after the claim -- or after a timeout. A click-to-call the
PBX could not place (an extension that does not pick up, a number it cannot dial) leaves no
row: only the timeout ends those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from wallboard.history.callers import EXTERNAL_MIN_DIGITS, number_key

# A dialable outside number has at least as many digits as the history's outside numbers and
# at most what any international number has with its 00 prefix (E.164: 15, plus slack for
# carriers' prefixes); more is not a phone number.
DIAL_MIN_DIGITS = EXTERNAL_MIN_DIGITS
DIAL_MAX_DIGITS = 20

# The PBX writes a click-to-call's ``when`` by its own clock when the request arrives; ours
# wrote the claim's start just before sending it. A row up to this long before the claim's
# start is still the claim's, so a PBX clock a little behind ours cannot keep a claim open.
CLAIM_CLOCK_SLACK = timedelta(seconds=120)

# Why a claim ended (stored on the claim row).
END_ANSWERED = "answered"  # the records show the call back answered
END_NOT_ANSWERED = "not_answered"  # the records show it missed, busy or refused
END_EXPIRED = "expired"  # no outcome in the records within the claim's time
END_NOT_SENT = "not_sent"  # the PBX was not asked, refused, or could not be reached
END_REASONS = (END_ANSWERED, END_NOT_ANSWERED, END_EXPIRED, END_NOT_SENT)

_SEPARATORS = re.compile(r"[\s\-./()]")
SLOVAKIA = "421"
# ITU country codes of one and two digits; every other code has three.
_ONE_DIGIT_CODES = frozenset({"1", "7"})
_TWO_DIGIT_CODES = frozenset(
    {20, 27, *range(30, 35), 36, 39, 40, 41, *range(43, 50), *range(51, 59), *range(60, 67)}
    | {81, 82, 84, 86, *range(90, 96), 98}
)


def _digits_of(number: str) -> tuple[str, str] | None:
    """(``"+"`` or ``""``, the digits) of a number written with spaces, dashes, dots, slashes or
    brackets between its digits; None when anything else is in it."""
    text = _SEPARATORS.sub("", number or "")
    plus = ""
    if text.startswith("+"):
        plus, text = "+", text[1:]
    if not text or not (text.isascii() and text.isdigit()):
        return None
    return plus, text


def number_dialable(number: str) -> str | None:
    """The digits to send the PBX for an outside number (``+`` written as ``00``), or None
    when it is not one: too short (an extension), too long, or not a number at all."""
    found = _digits_of(number)
    if found is None:
        return None
    plus, digits = found
    dial = ("00" if plus else "") + digits
    if not DIAL_MIN_DIGITS <= len(dial) <= DIAL_MAX_DIGITS:
        return None
    return dial


def number_display(number: str) -> str:
    """A phone number written for reading: ``00421905123456`` -> ``00421 905 123 456``,
    ``0905123456`` -> ``0905 123 456``, ``+43 6641234567`` -> ``+43 664 123 4567``.

    Slovak numbers are grouped as Slovaks write them (mobiles 3-3-3, Bratislava 2 + 4-4, other
    landlines area + 3-4); other countries' numbers after their country code in threes.
    Anything that is not a number is returned as it came."""
    found = _digits_of(number)
    if found is None:
        return (number or "").strip()
    plus, digits = found
    if plus or digits.startswith("00"):
        prefix, rest = (plus, digits) if plus else ("00", digits[2:])
        code = _country_code(rest)
        if not code or len(rest) == len(code):
            return prefix + rest
        national = rest[len(code) :]
        groups = _slovak_groups(national) if code == SLOVAKIA else _groups(national)
        return " ".join([prefix + code, *groups])
    if digits.startswith("0") and len(digits) == 10:
        groups = _slovak_groups(digits[1:])
        return " ".join(["0" + groups[0], *groups[1:]])
    return " ".join(_groups(digits))


def _country_code(digits: str) -> str:
    if digits[:1] in _ONE_DIGIT_CODES:
        return digits[:1]
    if len(digits) >= 2 and int(digits[:2]) in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


def _slovak_groups(national: str) -> list[str]:
    """A Slovak number without its prefix (0 or 00421): nine digits in the usual groups."""
    if len(national) != 9:
        return _groups(national)
    if national.startswith("9"):  # mobile: 905 123 456
        return [national[:3], national[3:6], national[6:]]
    if national.startswith("2"):  # Bratislava: 2 1234 5678
        return [national[:1], national[1:5], national[5:]]
    return [national[:2], national[2:5], national[5:]]  # other landlines: 33 123 4567


def _groups(digits: str) -> list[str]:
    """Threes from the left; a last group of one joins the one before (123 456 7890). Five
    digits or fewer (an extension, a short service number) stay together."""
    if len(digits) <= 5:
        return [digits] if digits else []
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    if len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return groups


@dataclass(frozen=True)
class OutgoingRow:
    """What the claim's end is judged from: one outgoing call record."""

    when: datetime  # when the call started (the PBX's clock)
    stored: datetime  # when the wallboard stored the row (ours)
    caller: str  # the extension that dialled
    destination: str
    status: str


def claim_end(
    *,
    started: datetime,
    extension: int,
    key: str,
    rows: Iterable[OutgoingRow],
    now: datetime,
    timeout: timedelta,
) -> str | None:
    """Why a claim that started at ``started`` on the number with ``key``, calling from
    ``extension``, has ended by ``now`` (one of ``END_REASONS``), or None while it holds.

    The records end it: an outgoing row from that extension to that number that started no
    earlier than ``CLAIM_CLOCK_SLACK`` before the claim and was stored after it began (a row
    the wallboard already had when the claim began belongs to an earlier call). Answered when
    such a row is answered, not answered when they all say missed, busy or refused. Otherwise
    it expires ``timeout`` after it began."""
    outcomes = {
        (row.status or "").strip().lower() == "answered"
        for row in rows
        if (row.caller or "").strip() == str(extension)
        and number_key(row.destination) == key
        and row.when >= started - CLAIM_CLOCK_SLACK
        and row.stored >= started
    }
    if outcomes:
        return END_ANSWERED if True in outcomes else END_NOT_ANSWERED
    if now >= started + timeout:
        return END_EXPIRED
    return None
