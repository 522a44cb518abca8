"""GET /api/v1/missed-callers/ and POST /api/v1/missed-callers/{id}/call-back over the real
simulator and the call history it fills: who sees and calls back which callers, and every
documented answer (400, 403, 404, 409, 429, 503, 504), for tokens and browsers alike."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.control.canned_pbx import CannedPBX
from tests.control.missed_calls import (
    DESK,
    NUMBER,
    SHOWN,
    answered_in_queue,
    gave_up,
    live_cache_filled,
    placed,
)
from wallboard.api import serializers
from wallboard.control.models import CallBackClaim, MemberAction, TeamLeadAssignment

from .test_api import browser_client, session_client, token_client

pytestmark = pytest.mark.django_db

LIST = "/api/v1/missed-callers/"
OTHER = "00421905654321"


@pytest.fixture
def pbx(simulator_factory):
    """The simulated PBX without callers of its own: every call is the test's."""
    return simulator_factory(queues=2, agents=4, fault_delay=2.0, call_rate=0)


@pytest.fixture
def centre(pbx):
    live_cache_filled()
    return pbx


@pytest.fixture
def callers(centre):
    """A caller who gave up in each queue: NUMBER in the first (twice), OTHER in the last."""
    first, last = min(centre.centre.queue_numbers()), max(centre.centre.queue_numbers())
    gave_up(centre, first, waited=40)
    other = gave_up(centre, last, OTHER, waited=12)
    return {NUMBER: gave_up(centre, first, waited=25), OTHER: other}


def call_back_url(entry: int) -> str:
    return f"/api/v1/missed-callers/{entry}/call-back"


def post(client, entry, body=None, **extra):
    return client.post(
        call_back_url(entry), body if body is not None else {}, format="json", **extra
    )


# --- the list ------------------------------------------------------------------------------------


def test_anonymous_callers_see_no_missed_callers(callers):
    response = APIClient().get(LIST)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_admin_sees_every_queues_missed_callers_newest_first(callers, admin_user, centre):
    response = token_client(admin_user).get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(serializers.MissedCallerListSerializer().fields)
    assert body["time_zone"] == "Europe/Bratislava"
    assert body["default_extension"] is None
    assert [c["number"] for c in body["callers"]] == [NUMBER, OTHER]
    first = body["callers"][0]
    assert set(first) == set(serializers.MissedCallerSerializer().fields)
    assert first == {
        **first,
        "id": callers[NUMBER],
        "number_display": SHOWN,
        "queue": min(centre.centre.queue_numbers()),
        "wait": 25,
        "outcome": "abandoned",
        "attempts": 2,
        "can_call_back": True,
        "call_back": None,
    }
    assert first["first_when"] < first["when"]
    assert first["when"].endswith(("+01:00", "+02:00"))


def test_a_team_lead_sees_their_queues_and_a_viewer_none(callers, team_lead, viewer, centre):
    last = max(centre.centre.queue_numbers())
    response = token_client(team_lead).get(LIST)
    assert [c["number"] for c in response.json()["callers"]] == [NUMBER]

    refused = token_client(team_lead).get(LIST, {"queue": last})
    assert refused.status_code == 403
    assert refused.json() == {"detail": f"You may not see the missed callers of queue {last}."}
    assert token_client(viewer).get(LIST).status_code == 403


def test_the_list_can_be_narrowed_to_one_queue(callers, admin_user, centre):
    client = token_client(admin_user)
    last = max(centre.centre.queue_numbers())
    narrowed = client.get(LIST, {"queue": last}).json()["callers"]
    assert [c["number"] for c in narrowed] == [OTHER]
    for bad in ("abc", "0", "-1", "99999999999", "1.5"):
        response = client.get(LIST, {"queue": bad})
        assert response.status_code == 400, bad
        assert "queue must be a queue number" in response.json()["detail"]
    unknown = client.get(LIST, {"queues": last})
    assert unknown.status_code == 400
    assert unknown.json()["detail"].startswith("Unknown parameter(s) queues")


def test_the_list_says_who_is_calling_back(callers, team_lead, admin_user):
    assert post(browser_client(team_lead), callers[NUMBER], {"extension": DESK}).status_code == 200

    mine = session_client(team_lead).get(LIST).json()
    theirs = token_client(admin_user).get(LIST).json()

    assert mine["default_extension"] == DESK
    assert theirs["default_extension"] is None
    in_progress = mine["callers"][0]["call_back"]
    assert set(in_progress) == set(serializers.CallBackInProgressSerializer().fields)
    assert (in_progress["by"], in_progress["by_you"], in_progress["extension"]) == (
        "lead",
        True,
        DESK,
    )
    assert theirs["callers"][0]["call_back"] == {**in_progress, "by_you": False}
    assert theirs["callers"][1]["call_back"] is None


# --- calling back ------------------------------------------------------------------------------


def test_a_browser_calls_back_with_its_csrf_token(callers, team_lead, centre):
    response = post(browser_client(team_lead), callers[NUMBER], {"extension": DESK})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == set(serializers.CallBackOutcomeSerializer().fields)
    assert body == {
        "entry": callers[NUMBER],
        "queue": min(centre.centre.queue_numbers()),
        "extension": DESK,
        "number": NUMBER,
        "number_display": SHOWN,
        "ok": True,
        "reason": "accepted",
        "code": 200,
        "detail": "Call queued",
        "message": f"Call queued: extension {DESK} rings first; when it is picked up, the PBX "
        f"dials {SHOWN}.",
        "retry_after": None,
    }
    assert placed(centre) == [(str(DESK), NUMBER)]
    audit = MemberAction.objects.get()
    assert (audit.action, audit.source, audit.number) == ("call_back", "console", NUMBER)


def test_a_token_names_the_extension_and_the_list_remembers_it(callers, team_lead, centre):
    client = token_client(team_lead)
    no_extension = post(client, callers[NUMBER])
    assert no_extension.status_code == 400
    assert no_extension.json() == {"detail": "Choose the extension to call back from."}

    assert post(client, callers[NUMBER], {"extension": DESK}).status_code == 200
    assert client.get("/api/v1/missed-callers/").json()["default_extension"] == DESK
    assert placed(centre) == [(str(DESK), NUMBER)]
    assert set(MemberAction.objects.values_list("source", flat=True)) == {"api"}


def test_a_session_without_csrf_token_cannot_call_back(callers, team_lead, centre):
    response = post(session_client(team_lead), callers[NUMBER], {"extension": DESK})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert placed(centre) == []


def test_anonymous_callers_cannot_call_back(callers, centre):
    assert post(APIClient(), callers[NUMBER], {"extension": DESK}).status_code == 401
    assert placed(centre) == []


def test_a_team_lead_calling_back_another_teams_caller_is_403(callers, team_lead, centre):
    response = post(token_client(team_lead), callers[OTHER], {"extension": DESK})
    assert response.status_code == 403
    last = max(centre.centre.queue_numbers())
    assert response.json() == {
        "detail": f"You may not call back the missed callers of queue {last}."
    }
    assert placed(centre) == [] and not MemberAction.objects.exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"extension": 999}, "Extension 999 is not one of the PBX's extensions."),
        ({"extension": "201"}, "extension must be an extension number, not '201'"),
        ({"extension": True}, "extension must be an extension number, not True"),
        ({"extension": 0}, "The extension must be a positive whole number, not 0."),
        ({"extension": 2**31}, "The extension must be a positive whole number"),
        ([DESK], 'Send a JSON object such as {"extension": 201}.'),
    ],
)
def test_a_bad_extension_is_400_and_sends_nothing(callers, admin_user, centre, body, words):
    response = post(token_client(admin_user), callers[NUMBER], body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(words)
    assert placed(centre) == []


def test_a_body_that_is_not_json_is_400(callers, admin_user, centre):
    response = token_client(admin_user).post(
        call_back_url(callers[NUMBER]), "{extension", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert placed(centre) == []


def test_a_number_the_pbx_refuses_is_400_with_its_words(callers, admin_user, live_settings):
    refusing = CannedPBX(body={"code": 400, "message": "Invalid destination"})
    live_settings.PBX_BASE_URL = refusing.url
    try:
        response = post(token_client(admin_user), callers[NUMBER], {"extension": DESK})
    finally:
        refusing.stop()
    assert response.status_code == 400
    body = response.json()
    assert (body["ok"], body["reason"], body["code"]) == (False, "refused", 400)
    assert "Invalid destination" in body["message"]
    assert len(refusing.requests) == 1


@pytest.mark.parametrize("entry", [123456789, 2**63 + 5])
def test_an_unknown_entry_is_404(callers, admin_user, entry):
    response = post(token_client(admin_user), entry, {"extension": DESK})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("There is no missed call")


def test_a_second_click_and_a_second_team_lead_are_409_with_who_calls(callers, team_lead, centre):
    jana = get_user_model().objects.create_user("jana", first_name="Jana", last_name="Nováková")
    TeamLeadAssignment.objects.create(user=jana, queue=min(centre.centre.queue_numbers()))
    lead = browser_client(team_lead)
    assert post(lead, callers[NUMBER], {"extension": DESK}).status_code == 200

    again = post(lead, callers[NUMBER], {"extension": DESK})
    other = post(token_client(jana), callers[NUMBER], {"extension": DESK})

    assert (again.status_code, other.status_code) == (409, 409)
    assert again.json()["detail"].startswith(f"{SHOWN} is already being called back by you")
    assert again.json()["call_back"]["by_you"] is True
    assert other.json()["detail"].startswith(f"{SHOWN} is being called back by lead since ")
    assert other.json()["call_back"] == {**again.json()["call_back"], "by_you": False}
    assert placed(centre) == [(str(DESK), NUMBER)]


def test_a_caller_served_since_is_409(callers, admin_user, centre):
    answered_in_queue(centre, min(centre.centre.queue_numbers()))
    response = post(token_client(admin_user), callers[NUMBER], {"extension": DESK})
    assert response.status_code == 409
    assert "has been answered or called back since" in response.json()["detail"]
    assert "call_back" not in response.json()


def test_too_many_actions_are_429_with_retry_after(callers, admin_user, settings):
    settings.ACTIONS_PER_USER_PER_MINUTE = 1
    client = token_client(admin_user)
    assert post(client, callers[NUMBER], {"extension": DESK}).status_code == 200
    response = post(client, callers[OTHER], {"extension": DESK})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert CallBackClaim.objects.count() == 1


def test_a_blocked_pbx_is_503_with_retry_after(callers, admin_user, centre):
    centre.centre.set_fault("forbidden")
    response = post(token_client(admin_user), callers[NUMBER], {"extension": DESK})
    assert response.status_code == 503
    assert response.json()["reason"] == "blocked"
    assert int(response["Retry-After"]) >= 1


def test_a_silent_pbx_is_504(callers, admin_user, centre):
    centre.centre.set_fault("timeout")
    response = post(token_client(admin_user), callers[NUMBER], {"extension": DESK})
    assert response.status_code == 504
    assert response.json()["reason"] == "timeout"
    assert "stays yours" in response.json()["message"]
