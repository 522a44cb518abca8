"""What one CDR row says about a queue call, worked out by hand for each kind of row the PBX
writes (docs/kpi.md, "Which rows are queue calls")."""

from __future__ import annotations

from datetime import date

import pytest

from wallboard.history.records import (
    OUTCOME_ABANDONED,
    OUTCOME_ANSWERED,
    OUTCOME_BUSY,
    OUTCOME_TIMEOUT,
    OUTCOME_VOICEMAIL,
    outcome_of,
    page_rows,
    record_read,
    row_identity,
    when_read,
)

from .conftest import ZONE, cdr_row, local

KNOWN = {100, 101}


def read(row: dict) -> dict:
    return record_read(row, known=KNOWN, zone=ZONE)


def test_it_reads_an_answered_queue_call():
    record = read(cdr_row(7, "2026-11-20 10:03:30"))

    assert record["id"] == 7
    assert record["when"] == local("2026-11-20 10:03:30")
    assert (record["queue"], record["outcome"]) == (100, OUTCOME_ANSWERED)
    assert (record["wait"], record["talk"], record["agent"]) == (12, 60, "201")
    assert (record["day"], record["slot"]) == (date(2026, 11, 20), 40)  # 10:00-10:15
    assert record["caller_name"] == ""  # null names are stored empty
    assert record["raw"]["complete_duration"] == "72"


def test_it_takes_the_agent_who_finally_answered_a_transferred_call():
    # Offered to 201, transferred to 305: the row's destination is who finally took it.
    row = cdr_row(8, "2026-11-20 10:05:00", destination="305", destination_name="Peter Hruby")

    record = read(row)

    assert (record["outcome"], record["agent"], record["queue"]) == (OUTCOME_ANSWERED, "305", 100)


@pytest.mark.parametrize(
    ("application", "status", "duration", "complete", "outcome", "wait"),
    [
        ("queue", "missed", "0", "2", OUTCOME_ABANDONED, 2),  # hung up after 2 s (short)
        ("queue", "missed", "0", "40", OUTCOME_ABANDONED, 40),  # hung up after 40 s
        ("voicemail", "answered", "25", "505", OUTCOME_VOICEMAIL, 480),  # timeout + message
        ("hangup", "missed", "0", "480", OUTCOME_TIMEOUT, 480),  # cut off at the timeout
        ("queue", "busy", "0", "0", OUTCOME_BUSY, 0),  # the queue was full
    ],
)
def test_it_reads_each_way_a_queue_call_goes_unanswered(
    application, status, duration, complete, outcome, wait
):
    row = cdr_row(
        9,
        "2026-11-20 11:00:00",
        application=application,
        status=status,
        duration=duration,
        complete_duration=complete,
        destination="100",
        destination_name=None,
    )

    record = read(row)

    assert (record["queue"], record["outcome"], record["wait"]) == (100, outcome, wait)
    assert (record["talk"], record["agent"]) == (None, "")


def test_a_greeting_only_call_is_not_a_queue_call():
    record = read(cdr_row(10, "2026-11-20 11:00:00", application="playback", duration="7"))

    assert (record["outcome"], record["queue"], record["wait"]) == ("", None, None)


def test_an_agents_outgoing_call_is_never_a_queue_call():
    # Even dialled to a queue's number, with a queue's recording name.
    row = cdr_row(
        11,
        "2026-11-20 11:00:00",
        type="outgoing",
        caller="201",
        received="100",
        application="queue",
        recording_file="q-100-201-20261120-110000-1.mp3",
    )

    record = read(row)

    assert (record["outcome"], record["queue"], record["agent"]) == ("", None, "")


def test_a_call_belongs_to_the_queue_in_its_recording_when_received_is_not_a_queue():
    row = cdr_row(
        12,
        "2026-11-20 11:00:00",
        received="0233001100",  # the number dialled, not the queue
        recording_file="q-101-00421903123456-20261120-110000-1763632800.12.mp3",
    )

    record = read(row)

    assert (record["queue"], record["recording_queue"]) == (101, 101)


def test_a_call_of_a_queue_not_known_yet_keeps_its_outcome_and_waits_for_its_queue():
    record = read(cdr_row(13, "2026-11-20 11:00:00", received="102"))

    assert (record["queue"], record["outcome"]) == (None, OUTCOME_ANSWERED)
    assert (
        record_read(cdr_row(13, "2026-11-20 11:00:00", received="102"), known={102}, zone=ZONE)[
            "queue"
        ]
        == 102
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"complete_duration": None},  # the PBX sends it only on request
        {"complete_duration": ""},
        {"duration": None},
        {"duration": "90", "complete_duration": "60"},  # talk longer than the call: broken
    ],
)
def test_the_wait_is_unknown_when_the_row_cannot_say(fields):
    row = cdr_row(14, "2026-11-20 11:00:00", **fields)
    if fields.get("complete_duration", "x") is None:
        del row["complete_duration"]

    record = read(row)

    assert record["outcome"] == OUTCOME_ANSWERED
    assert record["wait"] is None


def test_a_call_that_starts_before_midnight_belongs_to_the_day_it_started():
    # Entered at 23:58:20, talked past midnight: the PBX lists it under the 20th.
    row = cdr_row(15, "2026-11-20 23:58:20", duration="300", complete_duration="340")

    record = read(row)

    assert (record["day"], record["slot"]) == (date(2026, 11, 20), 95)
    assert record["wait"] == 40


def test_the_repeated_hour_of_the_autumn_change_is_told_apart_by_the_unique_id():
    first = local("2026-10-25 02:10:00", fold=0)  # 02:10 summer time (+02:00)
    second = local("2026-10-25 02:10:00", fold=1)  # an hour later, 02:10 winter time (+01:00)
    text = "2026-10-25 02:10:00"

    early = read(cdr_row(16, text, unique_id=f"{int(first.timestamp())}.1"))
    late = read(cdr_row(17, text, unique_id=f"{int(second.timestamp())}.2"))

    assert late["when"].timestamp() - early["when"].timestamp() == 3600
    assert (early["day"], early["slot"]) == (date(2026, 10, 25), 8)
    assert (late["day"], late["slot"]) == (date(2026, 10, 25), 12)
    # Without a readable unique_id the first pass is taken.
    assert when_read(text, unique_id=None, zone=ZONE) == first


def test_after_the_spring_change_slots_count_real_time():
    # 2026-03-29: 02:00 does not exist; 03:00 summer time is two hours after midnight.
    record = read(cdr_row(18, "2026-03-29 03:00:00"))

    assert (record["day"], record["slot"]) == (date(2026, 3, 29), 8)


@pytest.mark.parametrize(
    "row",
    [
        {"type": "incoming", "when": "2026-11-20 11:00:00"},  # no id
        {"id": "19"},  # no when
        {"id": "19", "when": "yesterday"},
        {"id": "x19", "when": "2026-11-20 11:00:00"},
        {"id": "19", "when": "2026-11-20 11:00:00", "duration": "long"},
        "",
    ],
)
def test_an_unreadable_row_is_refused_with_the_reason(row):
    with pytest.raises(ValueError, match=r"\w"):
        read(row)


@pytest.mark.parametrize(
    ("type_", "application", "status", "outcome"),
    [
        ("incoming", "queue", "answered", OUTCOME_ANSWERED),
        (None, "queue", "missed", OUTCOME_ABANDONED),
        ("INCOMING", "Queue", "Busy", OUTCOME_BUSY),
        ("incoming", None, "missed", OUTCOME_ABANDONED),
        ("incoming", "voicemail", "missed", OUTCOME_VOICEMAIL),
        ("incoming", "hangup", "answered", OUTCOME_TIMEOUT),
        ("incoming", "queue", "unauthorized", None),
        ("incoming", "call", "answered", None),
        ("incoming", "conference", "answered", None),
        ("incoming", "playback", "answered", None),
        ("outgoing", "queue", "answered", None),
    ],
)
def test_outcomes_follow_application_then_status(type_, application, status, outcome):
    assert outcome_of(type=type_, application=application, status=status) == outcome


def test_a_page_holds_its_objects_and_a_row_is_known_by_id_unique_id_and_when():
    row = cdr_row(7, "2026-11-20 10:00:00", recording_file="q-100-x.mp3")
    # The API document's lists end with a stray "": not a row, no position in the list.
    assert page_rows([row, "", None, 5, cdr_row(8, "2026-11-20 10:01:00")]) == [
        row,
        cdr_row(8, "2026-11-20 10:01:00"),
    ]
    identity = row_identity(row)
    assert identity == ["7", row["unique_id"], "2026-11-20 10:00:00"]
    # A deleted recording rewrites the row but not who it is.
    assert row_identity({**row, "recording_file": ""}) == identity
    assert row_identity({**row, "id": 7}) == identity  # a number or a string: the same row
    assert row_identity({"id": "9"}) == ["9", None, None]
