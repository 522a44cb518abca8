"""The call back's pure rules: numbers for dialling and for reading, and when a claim ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wallboard.control.callbacks import (
    CLAIM_CLOCK_SLACK,
    END_ANSWERED,
    END_EXPIRED,
    END_NOT_ANSWERED,
    OutgoingRow,
    claim_end,
    number_dialable,
    number_display,
)
from wallboard.history.callers import number_key


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("00421905123456", "00421 905 123 456"),  # a Slovak mobile, as the PBX writes callers
        ("0905123456", "0905 123 456"),  # the same, as an agent dials it
        ("+421905123456", "+421 905 123 456"),
        ("+421 905 123 456", "+421 905 123 456"),
        ("00421212345678", "00421 2 1234 5678"),  # Bratislava
        ("0212345678", "02 1234 5678"),
        ("00421331234567", "00421 33 123 4567"),  # Trnava and the other landlines
        ("0331234567", "033 123 4567"),
        ("00420603123456", "00420 603 123 456"),  # Czechia: a three-digit country code
        ("00436641234567", "0043 664 123 4567"),  # Austria: two digits, a last group of four
        ("0012125551234", "001 212 555 1234"),  # one-digit code
        ("004219051234", "00421 905 1234"),  # too short for a Slovak number: threes
        ("201", "201"),  # an extension
        ("12345", "12345"),
        ("123456", "123 456"),
        ("anonymous", "anonymous"),
        ("", ""),
    ],
)
def test_numbers_are_written_for_reading(number, shown):
    assert number_display(number) == shown


@pytest.mark.parametrize(
    ("number", "dialled"),
    [
        ("00421905123456", "00421905123456"),
        ("+421 905 123 456", "00421905123456"),
        ("0905/123-456", "0905123456"),
        ("(02) 1234 5678", "0212345678"),
        ("123456", "123456"),
        ("12345", None),  # an extension, not an outside number
        ("1" * 21, None),
        ("0905123456#12", None),
        ("0905 123 456 ext 12", None),
        ("anonymous", None),
        ("", None),
        ("+", None),
        ("٠٩٠٥١٢٣٤٥٦", None),  # digits, but not ASCII ones
    ],
)
def test_only_outside_numbers_are_dialled(number, dialled):
    assert number_dialable(number) == dialled


START = datetime(2026, 11, 20, 9, 42, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)
KEY = number_key("00421905123456")


def row(*, status="answered", when=START, stored=START + timedelta(minutes=2), **fields):
    return OutgoingRow(
        when=when,
        stored=stored,
        caller=fields.get("caller", "201"),
        destination=fields.get("destination", "0905123456"),
        status=status,
    )


def ended(*rows: OutgoingRow, now: datetime = START + timedelta(minutes=3)) -> str | None:
    return claim_end(started=START, extension=201, key=KEY, rows=rows, now=now, timeout=TIMEOUT)


def test_a_claim_holds_until_a_row_of_its_call_or_its_time_is_up():
    assert ended() is None
    assert ended(now=START + TIMEOUT - timedelta(seconds=1)) is None
    assert ended(now=START + TIMEOUT) == END_EXPIRED


def test_its_calls_row_ends_it_with_the_outcome_whatever_the_numbers_spelling():
    assert ended(row()) == END_ANSWERED
    assert ended(row(destination="00421905123456", status="ANSWERED ")) == END_ANSWERED
    for status in ("missed", "busy", "unauthorized", ""):
        assert ended(row(status=status)) == END_NOT_ANSWERED
    # Two rows of the extension to the number (the PBX retried): any answer counts.
    assert ended(row(status="missed"), row(status="answered")) == END_ANSWERED


def test_rows_of_other_calls_do_not_end_it():
    assert ended(row(caller="202")) is None
    assert ended(row(destination="0905999999")) is None
    assert ended(row(when=START - CLAIM_CLOCK_SLACK - timedelta(seconds=1))) is None


def test_a_pbx_clock_a_little_behind_ours_still_ends_it():
    assert ended(row(when=START - CLAIM_CLOCK_SLACK)) == END_ANSWERED
    assert ended(row(when=START - timedelta(seconds=30), status="busy")) == END_NOT_ANSWERED


def test_a_row_the_wallboard_had_before_the_claim_is_an_earlier_calls():
    """Called back a minute ago from the same desk, not answered: that row does not end the
    new call back, though it started within the clock's slack."""
    earlier = row(
        status="missed",
        when=START - timedelta(seconds=60),
        stored=START - timedelta(seconds=5),
    )
    assert ended(earlier) is None
    assert ended(earlier, row(status="answered")) == END_ANSWERED
