"""Every route of the simulated PBX: documented shapes, live quirks and error paths."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from .conftest import TZ, url

UNIQUE_ID = re.compile(r"^\d{10}\.\d+$")
CDR_FIELDS = {
    "id", "type", "when", "caller", "caller_name", "received", "received_name", "destination",
    "destination_name", "duration", "application", "status", "recording_file", "unique_id",
    "complete_duration",
}  # fmt: skip


def is_html(response) -> bool:
    return response.headers["Content-Type"].startswith("text/html") and "<html>" in response.text


# ------------------------------------------------------------------------------ queues


def test_it_lists_queues_with_slovak_names(sim, http):
    response = http.get(url(sim, "/api/queue/"))
    assert response.status_code == 200
    assert response.json() == [
        {"queue": "100", "nazov": "Predaj"},
        {"queue": "101", "nazov": "Zákaznícka podpora"},
        {"queue": "102", "nazov": "Technická podpora"},
    ]
    assert http.get(url(sim, "/api/queue")).json() == response.json()


def test_it_generates_queue_names_past_the_named_ones(sim_factory, http):
    sim = sim_factory(queues=14)
    names = [q["nazov"] for q in http.get(url(sim, "/api/queue/")).json()]
    assert len(set(names)) == 14
    assert names[-1] == "Linka 14"


def test_queue_status_has_the_live_shape(sim, http):
    sim.centre.add_waiting_caller(
        100, caller="00421905111222", caller_name="Eva Nová", wait_time=42
    )
    body = http.get(url(sim, "/api/queue/status"), params={"queue": 100}).json()
    assert set(body) == {"queue", "members", "waiting_calls"}  # no current_calls_count, as live
    assert body["queue"] == "100"
    member = body["members"][0]
    assert set(member) == {
        "extension", "calls_taken", "last_call_taken_ago", "paused", "in_use", "dynamic",
    }  # fmt: skip
    assert isinstance(member["calls_taken"], int)
    assert member["dynamic"] is True
    assert isinstance(member["paused"], bool) and isinstance(member["in_use"], bool)
    [waiting] = body["waiting_calls"]
    assert waiting["wait_time"] == "42"
    assert waiting["caller"] == "00421905111222"
    assert waiting["caller_name"] == "Eva Nová"
    assert UNIQUE_ID.match(waiting["unique_id"])


def test_queue_status_can_carry_the_documented_count(sim_factory, http):
    sim = sim_factory(current_calls_count=True)
    sim.centre.add_waiting_caller(101)
    body = http.get(url(sim, "/api/queue/status"), params={"queue": 101}).json()
    assert body["current_calls_count"] == "1"


def test_a_member_who_never_took_a_call_has_null_last_call(sim, http):
    http.get(url(sim, "/api/queue/add"), params={"queue": 100, "extension": 200})
    body = http.get(url(sim, "/api/queue/status"), params={"queue": 100}).json()
    [reception] = [m for m in body["members"] if m["extension"] == "200"]
    assert reception["calls_taken"] == 0
    assert reception["last_call_taken_ago"] is None


def test_queue_status_errors(sim, http):
    assert http.get(url(sim, "/api/queue/status")).status_code == 400
    missing = http.get(url(sim, "/api/queue/status"), params={"queue": 999})
    assert missing.status_code == 404 and is_html(missing)
    assert http.get(url(sim, "/api/queue/status"), params={"queue": "abc"}).status_code == 404


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("add", {"queue": 100, "extension": 200}, {"code": 200, "detail": "Added to queue"}),
        ("add", {"queue": 100, "extension": "MEMBER"}, {"code": 400, "detail": "Already there"}),
        ("remove", {"queue": 100, "extension": 200}, {"code": 400, "detail": "Not there"}),
        ("pause", {"queue": 100, "extension": 200}, {"code": 400, "detail": "Not there"}),
        ("unpause", {"queue": 100, "extension": 200}, {"code": 400, "detail": "Not there"}),
        ("add", {"queue": 999, "extension": 201}, {"code": 401, "detail": "No such queue"}),
        ("pause", {"queue": 999, "extension": 201}, {"code": 401, "detail": "No such queue"}),
        ("add", {"queue": 100, "extension": 999}, {"code": 402, "detail": "Unknown status"}),
        ("remove", {"queue": 100, "extension": 999}, {"code": 402, "detail": "Unknown status"}),
    ],
)
def test_queue_action_body_codes(sim, http, action, params, expected):
    if params["extension"] == "MEMBER":
        params = {**params, "extension": sim.centre.members(100)[0]}
    response = http.get(url(sim, f"/api/queue/{action}"), params=params)
    assert response.status_code == 200
    assert response.json() == expected


def test_queue_actions_change_the_centre(sim, http):
    member = sim.centre.members(101)[0]
    params = {"queue": 101, "extension": member}
    assert http.get(url(sim, "/api/queue/pause"), params=params).json()["detail"] == "Paused"
    assert sim.centre.member_state(101, member)["paused"] is True
    assert http.get(url(sim, "/api/queue/unpause"), params=params).json()["detail"] == "Unpaused"
    assert sim.centre.member_state(101, member)["paused"] is False
    removed = http.get(url(sim, "/api/queue/remove"), params=params).json()
    assert removed == {"code": 200, "detail": "Removed from queue"}
    assert member not in sim.centre.members(101)
    http.get(url(sim, "/api/queue/add"), params=params)
    assert member in sim.centre.members(101)
    assert sim.centre.member_state(101, member)["calls_taken"] == 0  # reset on remove + add


@pytest.mark.parametrize("action", ["add", "remove", "pause", "unpause"])
def test_queue_actions_need_both_parameters(sim, http, action):
    assert http.get(url(sim, f"/api/queue/{action}"), params={"queue": 100}).status_code == 400
    assert http.get(url(sim, f"/api/queue/{action}"), params={"extension": 201}).status_code == 400


# ------------------------------------------------------------------------------ calls


def test_click_to_call_is_queued_and_rings_the_extension(sim, http):
    extension = next(e for e in sim.centre.extensions() if e != 200)
    sim.centre.set_registered(extension, True)
    response = http.get(
        url(sim, "/api/call/create"), params={"caller": extension, "destination": "0905123456"}
    )
    assert response.json() == {"code": "200", "message": "Call queued"}
    calls = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    assert [(c["caller"], c["callee"], c["status"]) for c in calls] == [
        (str(extension), "0905123456", "ringing")
    ]


def test_click_to_call_always_says_queued(sim, http):
    response = http.get(url(sim, "/api/call/create"), params={"caller": 999, "destination": "1"})
    assert response.json() == {"code": "200", "message": "Call queued"}
    assert http.get(url(sim, "/api/call/create"), params={"caller": 201}).status_code == 400


def test_advanced_call_is_accepted_with_or_without_profile(sim, http):
    with_profile = http.post(url(sim, "/api/call/advanced/crm"), data={"number": "0905123456"})
    without = http.post(url(sim, "/api/call/advanced"), params={"number": "0911000000"})
    assert with_profile.json() == without.json() == {"code": "200", "message": "Call created"}
    assert sim.centre.advanced_calls() == [
        ("crm", {"number": ["0905123456"]}),
        (None, {"number": ["0911000000"]}),
    ]
    assert http.get(url(sim, "/api/call/advanced")).status_code == 405


def test_call_statistics_shows_two_legs_for_an_answered_queue_call(sim, http):
    assert http.get(url(sim, "/api/call/statistics")).json() == {"calls_active": "0", "calls": []}
    caller_leg = sim.centre.start_call(100, sim.centre.members(100)[0], caller="00421948000111")
    sim.centre.advance(7, live=False)
    body = http.get(url(sim, "/api/call/statistics")).json()
    assert body["calls_active"] == "2"
    into_queue, agent_leg = body["calls"]
    assert into_queue == {
        "caller": "00421948000111",
        "caller_name": "",
        "callee": "100",
        "duration": "7",
        "unique_id": caller_leg,
        "status": "answered",
    }
    assert agent_leg["callee"] == str(sim.centre.members(100)[0])
    assert agent_leg["from_queue_unique_id"] == caller_leg
    assert agent_leg["unique_id"] != caller_leg and UNIQUE_ID.match(agent_leg["unique_id"])
    assert agent_leg["status"] == "answered" and agent_leg["duration"] == "7"


# ------------------------------------------------------------------------------ CDR


def test_cdr_rows_have_the_documented_fields_and_live_quirks(sim, http):
    rows = http.get(url(sim, "/api/cdr/")).json()
    assert rows, "today's history is pre-populated"
    assert all(set(row) == CDR_FIELDS for row in rows)
    assert all(isinstance(row["id"], str) and isinstance(row["duration"], str) for row in rows)
    assert [int(r["id"]) for r in rows] == list(range(1, len(rows) + 1))
    incoming = [r for r in rows if r["type"] == "incoming"]
    assert all(r["caller"].startswith("00") and r["caller_name"] is None for r in incoming)
    assert {r["status"] for r in rows} >= {"answered", "missed"}
    assert {r["application"] for r in rows} >= {"queue", "call", "playback"}
    recorded = [r for r in rows if r["recording_file"]]
    assert recorded
    for row in recorded:
        when = datetime.strptime(row["when"], "%Y-%m-%d %H:%M:%S")
        stamp = when.strftime("%Y%m%d-%H%M%S")
        assert row["recording_file"] == (
            f"q-{row['received']}-{row['caller']}-{stamp}-{row['unique_id']}.mp3"
        )
        # `when` is Bratislava local time, consistent with the epoch in unique_id.
        epoch = int(row["unique_id"].split(".")[0])
        assert datetime.fromtimestamp(epoch, TZ).replace(tzinfo=None) == when


def test_cdr_paging_and_the_3000_cap(sim_factory, http):
    sim = sim_factory(queues=2, call_rate=2.0, history_days=2)
    total = sim.centre.cdr_count()
    assert total > 3000
    first = http.get(url(sim, "/api/cdr/")).json()
    assert len(first) == 3000 and first[0]["id"] == "1"
    page = http.get(url(sim, "/api/cdr/"), params={"limit": 5, "offset": 3000}).json()
    assert [r["id"] for r in page] == ["3001", "3002", "3003", "3004", "3005"]
    assert len(http.get(url(sim, "/api/cdr/"), params={"limit": 5000}).json()) == 3000
    assert http.get(url(sim, "/api/cdr/"), params={"offset": total}).json() == []


def test_cdr_date_filters_are_inclusive_local_dates(sim_factory, http):
    sim = sim_factory(queues=1, history_days=3)
    rows = http.get(url(sim, "/api/cdr/"), params={"date_from": "2026-11-26"}).json()
    days = {r["when"][:10] for r in rows}
    assert days == {"2026-11-26", "2026-11-27"}
    one = http.get(
        url(sim, "/api/cdr/"), params={"date_from": "2026-11-26", "date_to": "2026-11-26"}
    ).json()
    assert one and {r["when"][:10] for r in one} == {"2026-11-26"}
    none = http.get(url(sim, "/api/cdr/"), params={"date_from": "2026-12-01"})
    assert none.status_code == 200 and none.json() == []
    bad = http.get(url(sim, "/api/cdr/"), params={"date_from": "27.11.2026"})
    assert bad.status_code == 400


def test_one_cdr_row_by_id_or_unique_id(sim, http):
    row = http.get(url(sim, "/api/cdr/"), params={"limit": 1, "offset": 4}).json()[0]
    assert http.get(url(sim, f"/api/cdr/{row['id']}")).json() == row
    by_unique = http.get(url(sim, "/api/cdr/"), params={"unique_id": row["unique_id"]})
    assert by_unique.json() == row
    assert http.get(url(sim, "/api/cdr/0"), params={"unique_id": row["unique_id"]}).json() == row
    for missing in ("/api/cdr/999999", "/api/cdr/abc", "/api/cdr/?unique_id=1.1"):
        response = http.get(url(sim, missing))
        assert response.status_code == 404 and is_html(response)


def test_recordings_download_and_delete(sim, http):
    recorded = http.get(url(sim, "/api/cdr/recordings")).json()
    assert recorded and all(r["recording_file"] for r in recorded)
    row = recorded[0]
    download = http.get(url(sim, f"/api/cdr/download/{row['id']}"))
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "audio/mpeg"
    assert row["recording_file"] in download.headers["Content-Disposition"]
    assert download.content.startswith(b"ID3")
    assert len(download.content) >= 2000 * int(row["duration"]) - 1
    again = http.get(url(sim, "/api/cdr/download"), params={"unique_id": row["unique_id"]})
    assert again.content == download.content  # deterministic for the call

    deleted = http.get(url(sim, f"/api/cdr/delete/{row['id']}"))
    assert deleted.status_code == 200
    assert deleted.json() == {**row, "recording_file": ""}
    assert http.get(url(sim, f"/api/cdr/download/{row['id']}")).status_code == 404
    assert row["id"] not in [r["id"] for r in http.get(url(sim, "/api/cdr/recordings")).json()]
    assert http.get(url(sim, "/api/cdr/delete/999999")).status_code == 404
    assert http.get(url(sim, "/api/cdr/delete"), params={"unique_id": "1.1"}).status_code == 404
    assert http.get(url(sim, "/api/cdr/download/999999")).status_code == 404


def test_recordings_filter_and_page_like_the_cdr(sim, http):
    recorded = http.get(url(sim, "/api/cdr/recordings")).json()
    page = http.get(url(sim, "/api/cdr/recordings"), params={"limit": 2, "offset": 1}).json()
    assert page == recorded[1:3]
    later = http.get(url(sim, "/api/cdr/recordings"), params={"date_from": "2026-11-28"}).json()
    assert later == []


# ------------------------------------------------------------------------------ extensions


def test_extensions_have_the_live_shape(sim, http):
    extensions = http.get(url(sim, "/api/extension")).json()
    assert [e["extension"] for e in extensions] == ["200", *[str(201 + i) for i in range(8)]]
    for extension in extensions:
        assert set(extension) == {
            "extension", "name", "outboundcid", "is_viptel_phone_active", "call_forwarding",
            "is_registered", "allowed_changes", "dnd",
        }  # fmt: skip
        assert extension["dnd"] is False
        assert extension["call_forwarding"] is False or extension["call_forwarding"].isdigit()
        assert set(extension["allowed_changes"]) <= {"name", "call_forwarding", "outboundcid"}
    one = http.get(url(sim, "/api/extension/203"))
    assert one.json() == extensions[3]
    assert http.get(url(sim, "/api/extension/299")).status_code == 404
    assert http.get(url(sim, "/api/extension/")).json() == extensions


def test_outbound_numbers(sim, http):
    numbers = http.get(url(sim, "/api/extension/outbounds")).json()
    assert numbers and all(isinstance(n, str) and n.isdigit() for n in numbers)


def test_extension_update_changes_and_refusals(sim, http):
    outbound = http.get(url(sim, "/api/extension/outbounds")).json()[1]
    sim.centre.agents[202].allowed_changes = ["call_forwarding", "name", "outboundcid"]
    response = http.post(
        url(sim, "/api/extension/update/202"),
        data={"name": "Ján Kováč 2", "call_forwarding": "0905123456", "outboundcid": outbound},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    assert (body["name"], body["call_forwarding"], body["outboundcid"]) == (
        "Ján Kováč 2",
        "0905123456",
        outbound,
    )
    extension = http.get(url(sim, "/api/extension/202")).json()
    assert extension["name"] == "Ján Kováč 2" and extension["call_forwarding"] == "0905123456"
    off = http.post(url(sim, "/api/extension/update/202"), params={"call_forwarding": "false"})
    assert off.json()["call_forwarding"] is False
    assert http.get(url(sim, "/api/extension/202")).json()["call_forwarding"] is False

    refused = [
        ("202", {"name": "Ján_Kováč!"}),
        ("202", {"outboundcid": "0999999999"}),
        ("202", {"call_forwarding": "abc"}),
        ("200", {"call_forwarding": "0905123456"}),  # reception may only change its name
    ]
    for ext, form in refused:
        response = http.post(url(sim, f"/api/extension/update/{ext}"), data=form)
        assert response.status_code == 505, form
        assert is_html(response)
    assert http.post(url(sim, "/api/extension/update/299"), data={"name": "X"}).status_code == 404


def test_viptel_phone_activate_and_deactivate(sim, http):
    ok = http.post(url(sim, "/api/viptel-phone/activate/204"))
    assert ok.status_code == 200 and ok.json()["code"] == 200
    assert http.get(url(sim, "/api/extension/204")).json()["is_viptel_phone_active"] is True
    assert http.post(url(sim, "/api/viptel-phone/deactivate/204")).status_code == 200
    assert http.get(url(sim, "/api/extension/204")).json()["is_viptel_phone_active"] is False
    # The reception desk phone cannot run VIPTel Phone; unknown extensions fail the same way.
    for path in ("activate/200", "deactivate/200", "activate/299"):
        failed = http.post(url(sim, f"/api/viptel-phone/{path}"))
        assert failed.status_code == 500 and is_html(failed)
    assert http.get(url(sim, "/api/viptel-phone/activate/204")).status_code == 405


# ------------------------------------------------------------------------------ customer data


def test_customer_data_lifecycle(sim, http):
    assert http.get(url(sim, "/api/data/list")).json() == {}
    created = http.post(url(sim, "/api/data"), data={"key": "Zakaznik1", "value": "VIP"})
    assert created.status_code == 200 and created.json()["code"] == 200
    assert http.post(url(sim, "/api/data"), data={"key": "zakaznik1", "value": ""}).ok
    duplicate = http.post(url(sim, "/api/data"), data={"key": "Zakaznik1", "value": "x"})
    assert duplicate.status_code == 505
    too_long = http.post(url(sim, "/api/data"), data={"key": "k" * 251, "value": "x"})
    assert too_long.status_code == 505
    assert http.post(url(sim, "/api/data"), data={"key": "k" * 250, "value": "x"}).ok
    assert http.post(url(sim, "/api/data"), data={"value": "x"}).status_code == 400
    assert http.post(url(sim, "/api/data"), data={"key": "nov"}).status_code == 400

    assert http.post(url(sim, "/api/data/Zakaznik1"), data={"value": "Gold"}).ok
    assert http.post(url(sim, "/api/data/nikto"), data={"value": "x"}).status_code == 404
    assert http.post(url(sim, "/api/data/Zakaznik1")).status_code == 400
    listed = http.get(url(sim, "/api/data/list")).json()
    assert listed == {"Zakaznik1": "Gold", "zakaznik1": "", "k" * 250: "x"}

    assert http.get(url(sim, "/api/data/zakaznik1/delete")).json()["code"] == 200
    assert "zakaznik1" not in http.get(url(sim, "/api/data/list")).json()
    assert http.get(url(sim, "/api/data/flush")).json()["code"] == 200
    assert http.get(url(sim, "/api/data/list")).json() == {}


def test_customer_data_keys_with_odd_characters(sim, http):
    key = "list"  # a key that looks like a route on update
    assert http.post(url(sim, "/api/data"), data={"key": key, "value": "1"}).ok
    assert http.post(url(sim, "/api/data/list"), data={"value": "2"}).ok
    assert http.post(url(sim, "/api/data"), data={"key": "a/b c", "value": "3"}).ok
    assert http.get(url(sim, "/api/data/a%2Fb%20c/delete")).ok
    assert http.get(url(sim, "/api/data/list")).json() == {"list": "2"}


def test_customer_data_bulk_by_position_and_by_index(sim, http):
    http.post(url(sim, "/api/data"), data={"key": "a", "value": "old"})
    positional = http.post(
        url(sim, "/api/data"),
        data=[("key[]", "a"), ("key[]", "b"), ("value[]", "1"), ("value[]", "2")],
    )
    assert positional.status_code == 200
    indexed = http.post(
        url(sim, "/api/data"),
        data=[("key[2]", "d"), ("value[1]", "3"), ("key[1]", "c"), ("value[2]", "4")],
    )
    assert indexed.status_code == 200
    assert http.get(url(sim, "/api/data/list")).json() == {"a": "1", "b": "2", "c": "3", "d": "4"}
    unpaired = http.post(url(sim, "/api/data"), data=[("key[]", "e")])
    assert unpaired.status_code == 400


def test_post_parameters_from_query_string_and_multipart(sim, http):
    assert http.post(url(sim, "/api/data"), params={"key": "q"}, data={"value": "form"}).ok
    multipart = http.post(url(sim, "/api/data"), files={"key": (None, "m"), "value": (None, "čaj")})
    assert multipart.ok
    assert http.get(url(sim, "/api/data/list")).json() == {"q": "form", "m": "čaj"}


# ------------------------------------------------------------------------------ the rest


def test_unknown_paths_and_methods(sim, http):
    unknown = http.get(url(sim, "/api/nothing"))
    assert unknown.status_code == 404 and is_html(unknown)
    wrong_method = http.post(url(sim, "/api/queue/"))
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET"
    assert http.get(url(sim, "/api/data")).status_code == 405


def test_document_artefacts_can_be_imitated(sim_factory, http):
    sim = sim_factory(document_artefacts=True)
    extensions = http.get(url(sim, "/api/extension")).json()
    assert extensions[-1] == "" and extensions[0]["extension"] == "200"
    assert http.get(url(sim, "/api/cdr/"), params={"limit": 2}).json()[-1] == ""


def test_head_requests_get_a_bodiless_refusal(sim, http):
    response = http.head(url(sim, "/api/queue/"))
    assert response.status_code == 405 and response.content == b""
    assert http.get(url(sim, "/api/queue/")).ok  # the keep-alive connection is still in step
