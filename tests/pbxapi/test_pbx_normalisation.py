"""The client survives the live service's awkward payloads, fed through a real HTTP boundary."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pbx_testing import Canned

from pbxapi.errors import (
    AuthenticationFailed,
    Blocked,
    InvalidArgument,
    MissingParameter,
    NotFound,
    PBXTimeout,
    ProtocolError,
    QueueActionRefused,
    ServerError,
    Unreachable,
)
from pbxapi.models import CdrRow, Extension, QueueStatus

HTML_500 = b"<!DOCTYPE html><html><body><h1>Internal Server Error</h1></body></html>"


def test_it_normalises_the_live_queue_status(canned, client):
    # As seen live: strings and numbers mixed, no current_calls_count, extra "dynamic", a stray "".
    canned.answer(
        "/api/queue/status",
        {
            "queue": "601",
            "members": [
                {
                    "extension": "201",
                    "calls_taken": 3,
                    "last_call_taken_ago": None,
                    "paused": False,
                    "in_use": "true",
                    "dynamic": True,
                },
                "",
            ],
            "waiting_calls": [
                {"wait_time": "42", "unique_id": "1453373466.289", "caller": 905123456},
                {"wait_time": 7, "unique_id": "1453373466.290", "caller_name": ""},
            ],
        },
    )
    status = client.queue_status("601")
    assert status.queue == 601
    assert status.current_calls_count == 2  # derived from waiting_calls
    (member,) = status.members
    assert (member.extension, member.calls_taken, member.last_call_taken_ago) == (201, 3, None)
    assert (member.paused, member.in_use) == (False, True)
    assert member.extra == {"dynamic": True}
    first, second = status.waiting_calls
    assert (first.wait_time, first.caller, first.caller_name) == (42, "905123456", None)
    assert (second.wait_time, second.caller, second.caller_name) == (7, None, None)
    assert status.raw["queue"] == "601"
    assert canned.seen[-1].query == {"queue": ["601"]}


def test_it_keeps_a_documented_current_calls_count():
    status = QueueStatus.from_payload(
        {"queue": 100, "current_calls_count": "3", "members": [], "waiting_calls": []}
    )
    assert status.current_calls_count == 3


def test_it_skips_stray_elements_with_a_warning(canned, client, caplog):
    canned.answer("/api/queue/", [{"queue": "100", "nazov": "Predaj", "color": "red"}, "", None])
    with caplog.at_level(logging.WARNING, logger="pbxapi.models"):
        queues = client.queues()
    assert [(q.queue, q.name, q.extra) for q in queues] == [(100, "Predaj", {"color": "red"})]
    assert sum("odd element" in record.message for record in caplog.records) == 2


def test_it_normalises_an_extension():
    extension = Extension.from_payload(
        {
            "extension": "200",
            "name": "Ján Novák",
            "outboundcid": "",
            "is_viptel_phone_active": 0,
            "call_forwarding": False,
            "is_registered": True,
            "allowed_changes": ["call_forwarding", "name", ""],
            "dnd": False,
        }
    )
    assert extension.extension == 200
    assert extension.outboundcid is None
    assert extension.call_forwarding is None
    assert extension.is_viptel_phone_active is False
    assert extension.allowed_changes == ["call_forwarding", "name"]
    assert extension.extra == {"dnd": False}
    forwarded = Extension.from_payload({"extension": 201, "call_forwarding": "0905123456"})
    assert forwarded.call_forwarding == "0905123456"
    assert forwarded.allowed_changes == [] and forwarded.is_registered is False


def test_it_makes_cdr_times_aware_in_bratislava(canned, client):
    row = {
        "id": "1163",
        "type": "outgoing",
        "when": "2016-01-13 15:27:35",
        "caller": "3",
        "caller_name": None,
        "received": 16,
        "received_name": "",
        "destination": "16",
        "destination_name": "Robert",
        "duration": "5",
        "status": "answered",
        "application": "call",
        "recording_file": "",
        "unique_id": "1452705290.1427",
    }
    canned.answer("/api/cdr/", [row, ""])
    (cdr,) = client.cdr(limit=100, offset=100)
    assert cdr.id == 1163 and cdr.duration == 5
    assert cdr.when == datetime(2016, 1, 13, 15, 27, 35, tzinfo=ZoneInfo("Europe/Bratislava"))
    assert cdr.when.utcoffset().total_seconds() == 3600
    assert (cdr.received, cdr.received_name, cdr.recording_file) == ("16", None, None)
    assert cdr.complete_duration is None  # absent unless requested
    as_json = json.loads(json.dumps(cdr.to_dict()))
    assert as_json["when"] == "2016-01-13T15:27:35+01:00"
    assert "raw" not in as_json


def test_summer_time_is_respected():
    bratislava = ZoneInfo("Europe/Bratislava")
    row = CdrRow.from_payload({"id": 1, "when": "2026-07-01 12:00:00"}, time_zone=bratislava)
    assert row.when.utcoffset().total_seconds() == 7200


def test_call_statistics_count_is_derived_when_missing(canned, client):
    canned.answer(
        "/api/call/statistics",
        {
            "calls": [
                {
                    "caller": "00421910818189",
                    "callee": 100,
                    "duration": "10",
                    "unique_id": "1.1",
                    "status": "answered",
                },
                {
                    "caller": "00421910818189",
                    "callee": "201",
                    "duration": 0,
                    "unique_id": "1.2",
                    "from_queue_unique_id": "1.1",
                },
            ]
        },
    )
    stats = client.call_statistics()
    assert stats.calls_active == 2
    assert stats.calls[0].callee == "100"
    assert stats.calls[1].from_queue_unique_id == "1.1"


@pytest.mark.parametrize(
    ("path", "call", "body", "field_name"),
    [
        ("/api/queue/", lambda c: c.queues(), {"queue": "100"}, "list"),
        ("/api/queue/status", lambda c: c.queue_status(1), {"members": []}, "queue"),
        ("/api/queue/status", lambda c: c.queue_status(1), {"queue": "abc"}, "queue"),
        (
            "/api/queue/status",
            lambda c: c.queue_status(1),
            {"queue": 1, "members": {"extension": 1}},
            "members",
        ),
        ("/api/cdr/", lambda c: c.cdr(), [{"id": "5", "when": "yesterday"}], "when"),
        ("/api/cdr/", lambda c: c.cdr(), [{"id": "x1", "when": "2020-01-01 00:00:00"}], "id"),
        ("/api/call/statistics", lambda c: c.call_statistics(), ["a"], "object"),
        ("/api/extension", lambda c: c.extensions(), [{"name": "No Number"}], "extension"),
        ("/api/data/list", lambda c: c.data_list(), ["a", "b"], "object"),
    ],
)
def test_wrong_shapes_are_protocol_errors_naming_the_field(
    canned, client, path, call, body, field_name
):
    canned.answer(path, body)
    with pytest.raises(ProtocolError) as raised:
        call(client)
    assert field_name in str(raised.value)


def test_empty_customer_data_may_be_an_empty_list(canned, client):
    canned.answer("/api/data/list", [])
    assert client.data_list() == {}
    canned.answer("/api/data/list", {"a": "1", "b": 2, "c": None})
    assert client.data_list() == {"a": "1", "b": "2", "c": ""}


def test_an_html_error_page_is_a_server_error(canned, client):
    canned.answer("/api/queue/", HTML_500, status=500, content_type="text/html")
    with pytest.raises(ServerError) as raised:
        client.queues()
    assert raised.value.status == 500


def test_an_html_page_with_200_is_a_protocol_error(canned, client):
    canned.answer("/api/queue/", HTML_500, content_type="text/html")
    with pytest.raises(ProtocolError, match="HTML"):
        client.queues()


def test_truncated_json_is_a_protocol_error(canned, client):
    canned.answer("/api/queue/", b'[{"queue": "100", "nazov": "Pre')
    with pytest.raises(ProtocolError, match="not JSON"):
        client.queues()


def test_a_slow_answer_is_a_timeout(canned, client):
    canned.answer("/api/queue/", [], delay=1.5)  # read timeout is 0.5 s
    with pytest.raises(PBXTimeout):
        client.queues()


def test_a_body_that_stalls_midway_is_a_timeout(canned, client):
    canned.answer("/api/queue/", [{"queue": "100", "nazov": "Predaj"}] * 50, body_delay=1.5)
    with pytest.raises(PBXTimeout):
        client.queues()


def test_a_cut_off_body_is_a_protocol_error(canned, client):
    # Content-Length promises more than arrives before the connection closes.
    canned.answer("/api/queue/", b"[1, 2", headers={"Content-Length": "50", "Connection": "close"})
    with pytest.raises(ProtocolError):
        client.queues()


def test_a_closed_port_is_unreachable(canned, client):
    canned.stop()
    with pytest.raises(Unreachable):
        client.queues()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationFailed), (404, NotFound), (400, MissingParameter), (505, ServerError)],
)
def test_http_statuses_map_to_errors(canned, client, status, error):
    canned.answer("/api/extension/7", b"<html>nope</html>", status=status, content_type="text/html")
    with pytest.raises(error):
        client.extension(7)


def test_a_403_blocks_the_budget_and_nothing_more_is_sent(canned, client, budget):
    canned.answer("/api/queue/", b"<html>Forbidden</html>", status=403, content_type="text/html")
    with pytest.raises(Blocked) as raised:
        client.queues()
    assert raised.value.until == pytest.approx(budget.blocked_until())
    assert budget.blocked_until() > 0
    with pytest.raises(Blocked):
        client.queue_pause(100, 201)
    assert len(canned.seen) == 1  # the second call never left the process


@pytest.mark.parametrize(("code", "detail"), [("400", "Already there"), (401, "No such queue")])
def test_queue_body_codes_are_refusals(canned, client, code, detail):
    canned.answer("/api/queue/add", {"code": code, "detail": detail})
    with pytest.raises(QueueActionRefused) as raised:
        client.queue_add(100, 201)
    assert (raised.value.code, raised.value.detail) == (int(code), detail)


def test_string_and_number_body_codes_both_succeed(canned, client):
    canned.answer("/api/queue/pause", {"code": "200", "detail": "Paused"})
    assert client.queue_pause(100, 201).code == 200
    canned.answer("/api/call/create", {"code": "200", "message": "Call queued"})
    result = client.call_create(201, "0905123456")
    assert (result.code, result.detail) == (200, "Call queued")
    assert canned.seen[-1].query == {"caller": ["201"], "destination": ["0905123456"]}


def test_invalid_arguments_spend_no_request(canned, client, budget):
    bad_calls = [
        lambda: client.queue_status("10a"),
        lambda: client.queue_pause(100, "-1"),
        lambda: client.extension(True),
        lambda: client.data_create("k" * 251, "v"),
        lambda: client.data_create("", "v"),
        lambda: client.extension_update(201, call_forwarding="abc"),
        lambda: client.extension_update(201, name="Ján_Novák"),
        lambda: client.extension_update(201),
        lambda: client.cdr(date_from="2026-13-01"),
        lambda: client.cdr(date_from="2026-11-02", date_to="2026-11-01"),
        lambda: client.cdr(limit=-1),
        lambda: client.cdr_get(),
        lambda: client.cdr_get(5, unique_id="1.2"),
        lambda: client.call_create(201, "09 05"),
        lambda: client.queues(priority="urgent"),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidArgument):
            call()
    assert canned.seen == []
    assert budget.used() == 0


def test_slovak_names_and_forwarding_off_are_sent_as_documented(canned, client):
    answer = {"code": 200, "detail": "ok", "name": "Ľubo Šťastný"}
    canned.answer("/api/extension/update/201", answer)
    result = client.extension_update(201, name="Ľubo Šťastný 2", call_forwarding=False)
    assert result.extra == {"name": "Ľubo Šťastný"}
    assert canned.seen[-1].form == {"name": ["Ľubo Šťastný 2"], "call_forwarding": ["false"]}


def test_credentials_never_reach_the_logs(canned, client, caplog):
    canned.answer("/api/queue/", [])
    canned.answer("/api/extension", b"<html>", status=401, content_type="text/html")
    with caplog.at_level(logging.DEBUG):
        client.queues()
        with pytest.raises(AuthenticationFailed) as raised:
            client.extensions()
    token = base64.b64encode(f"apiuser:{'s3cret-Pa55'}".encode()).decode()
    assert canned.seen[0].authorization == f"Basic {token}"
    text = caplog.text + str(raised.value) + repr(client)
    assert "s3cret-Pa55" not in text and token not in text


def test_cdr_all_pages_past_the_cap(canned, client):
    rows = [{"id": str(n), "when": "2026-11-01 08:00:00"} for n in range(1, 6)]

    pages = iter([rows[:2], rows[2:4], rows[4:]])
    original = canned.routes

    class Paged(dict):
        def get(self, path, default=None):
            if path == "/api/cdr/":
                return Canned(next(pages))
            return original.get(path, default)

    canned.routes = Paged()
    got = list(client.cdr_all(date_from="2026-11-01", date_to="2026-11-28", page_size=2))
    assert [row.id for row in got] == [1, 2, 3, 4, 5]
    assert [seen.query["offset"] for seen in canned.seen] == [["0"], ["2"], ["4"]]
    assert all(seen.query["limit"] == ["2"] for seen in canned.seen)
    assert canned.seen[0].query["date_from"] == ["2026-11-01"]


def test_a_recording_is_streamed_to_a_file(canned, client, tmp_path):
    audio = bytes(range(256)) * 1000
    canned.answer(
        "/api/cdr/download/9",
        audio,
        content_type="audio/mpeg",
        headers={"Content-Disposition": 'attachment; filename="q-100-1.mp3"'},
    )
    target = tmp_path / "call.mp3"
    download = client.download_recording(9, dest=target)
    assert target.read_bytes() == audio
    assert (download.size, download.filename) == (len(audio), "q-100-1.mp3")
    assert download.path == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["call.mp3"]  # no temporary left behind


def test_a_failed_download_leaves_no_file(canned, client, tmp_path):
    canned.answer("/api/cdr/download/", b"<html>404</html>", status=404, content_type="text/html")
    with pytest.raises(NotFound):
        client.download_recording(unique_id="1.2", dest=tmp_path / "x.mp3")
    assert list(tmp_path.iterdir()) == []
    assert canned.seen[-1].query == {"unique_id": ["1.2"]}


def test_an_unreachable_shared_budget_sends_nothing(canned):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from pbxapi.budget import RedisBudget
    from pbxapi.client import PBXClient
    from pbxapi.errors import BudgetUnavailable

    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    budget = RedisBudget(dead, key="test-pbxapi:unreachable")
    canned.answer("/api/queue/", [])
    pbx = PBXClient(canned.url, "apiuser", "s3cret-Pa55", budget=budget)
    with pbx, pytest.raises(BudgetUnavailable) as raised:
        pbx.queues()
    assert "s3cret" not in str(raised.value)
    assert canned.seen == []
