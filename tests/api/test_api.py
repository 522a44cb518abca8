"""The JSON API over real snapshots (built from the simulator) and real actions: every endpoint
for the anonymous, token, session-without-CSRF, allowed and forbidden callers."""

from __future__ import annotations

import json
import secrets

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from rest_framework.test import APIClient
from werkzeug.test import Client as WsgiClient

from wallboard.api.tokens import api_token_create
from wallboard.control.models import MemberAction
from wallboard.live import selectors
from wallboard.live.services import queue_refresh, source_fetch
from wallboard.live.store import SOURCE_QUEUES

pytestmark = pytest.mark.django_db

ACTIONS = ["pause", "unpause", "add", "remove"]


def first_queue(sim) -> int:
    return min(sim.centre.queue_numbers())


def last_queue(sim) -> int:
    return max(sim.centre.queue_numbers())


def a_member(sim, queue: int) -> int:
    return min(sim.centre.members(queue))


def is_paused(sim, queue: int, extension: int) -> bool | None:
    if extension not in sim.centre.members(queue):
        return None
    return sim.centre.member_state(queue, extension)["paused"]


def pbx_requests(sim) -> int:
    return len(sim.requests_log)


def action_url(queue: int, extension: int, action: str) -> str:
    return f"/api/v1/queues/{queue}/members/{extension}/{action}"


def as_json(value):
    """What a JSON client receives for ``value``."""
    return json.loads(json.dumps(value))


def served_schema():
    """The OpenAPI schema as /api/v1/schema/ serves it, bound to the application in this process
    (schemathesis validates answers against it)."""
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture
def snapshots(pbx):
    """The queue list and every simulated queue fetched once: real snapshots to serve."""
    source_fetch(SOURCE_QUEUES)
    for queue in pbx.centre.queue_numbers():
        queue_refresh(queue=queue, with_calls=True)
    return pbx


def token_client(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user).secret}")
    return client


def session_client(user) -> APIClient:
    """A logged-in browser that has not sent the CSRF token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def browser_client(user) -> APIClient:
    """A logged-in browser that echoes its CSRF cookie in X-CSRFToken, as the board's JS does."""
    client = session_client(user)
    secret = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret
    client.cookies["csrftoken"] = secret
    client.credentials(HTTP_X_CSRFTOKEN=secret)
    return client


# --- reading -----------------------------------------------------------------------------------


def test_anonymous_callers_read_nothing(snapshots):
    client = APIClient()
    for url in ("/api/v1/queues/", f"/api/v1/queues/{first_queue(snapshots)}/"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("make_client", [token_client, session_client])
def test_the_queue_list_has_every_visible_queue_with_its_summary(
    snapshots, admin_user, make_client
):
    response = make_client(admin_user).get("/api/v1/queues/")
    assert response.status_code == 200
    body = response.json()
    assert [row["queue"] for row in body] == sorted(snapshots.centre.queue_numbers())
    assert body == as_json(selectors.queue_summaries())
    first = body[0]
    assert set(first["counts"]) >= {"waiting", "members", "available", "paused", "offline"}
    assert first["counts"]["members"] == len(snapshots.centre.members(first["queue"]))


def test_a_viewer_reads_but_spends_no_pbx_request(snapshots, viewer):
    spent = pbx_requests(snapshots)
    client = token_client(viewer)
    assert client.get("/api/v1/queues/").status_code == 200
    assert client.get(f"/api/v1/queues/{first_queue(snapshots)}/").status_code == 200
    assert pbx_requests(snapshots) == spent


@pytest.mark.parametrize("make_client", [token_client, session_client])
def test_the_queue_detail_is_the_full_snapshot(snapshots, admin_user, make_client):
    queue = first_queue(snapshots)
    response = make_client(admin_user).get(f"/api/v1/queues/{queue}/")
    assert response.status_code == 200
    assert response.json() == as_json(selectors.snapshot_get(queue=queue))
    assert {m["extension"] for m in response.json()["members"]} == set(
        snapshots.centre.members(queue)
    )


def test_an_unknown_queue_is_404(snapshots, admin_user):
    response = token_client(admin_user).get(f"/api/v1/queues/{last_queue(snapshots) + 100}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such queue."}


# --- acting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_callers_cannot_act(snapshots, action):
    queue = first_queue(snapshots)
    spent = pbx_requests(snapshots)
    response = APIClient().post(action_url(queue, a_member(snapshots, queue), action))
    assert response.status_code == 401
    assert pbx_requests(snapshots) == spent
    assert not MemberAction.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_a_session_without_csrf_token_cannot_act(snapshots, admin_user, action):
    queue = first_queue(snapshots)
    spent = pbx_requests(snapshots)
    response = session_client(admin_user).post(
        action_url(queue, a_member(snapshots, queue), action)
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert pbx_requests(snapshots) == spent
    assert not MemberAction.objects.exists()


def test_a_browser_with_csrf_token_pauses(snapshots, admin_user):
    queue = first_queue(snapshots)
    extension = a_member(snapshots, queue)
    response = browser_client(admin_user).post(action_url(queue, extension, "pause"))
    assert response.status_code == 200, response.content
    assert is_paused(snapshots, queue, extension) is True
    assert MemberAction.objects.get().source == "api"


def test_a_token_pauses_and_gets_the_pbx_words(snapshots, admin_user):
    queue = first_queue(snapshots)
    extension = a_member(snapshots, queue)
    response = token_client(admin_user).post(action_url(queue, extension, "pause"))
    assert response.status_code == 200
    assert response.json() == {
        "queue": queue,
        "extension": extension,
        "action": "pause",
        "ok": True,
        "reason": "accepted",
        "code": 200,
        "detail": "Paused",
        "message": "Paused",
        "retry_after": None,
    }
    assert is_paused(snapshots, queue, extension) is True
    row = MemberAction.objects.get()
    assert (row.username, row.source, row.ok) == ("boss", "api", True)
    member = next(
        m for m in selectors.snapshot_get(queue=queue)["members"] if m["extension"] == extension
    )
    assert member["paused"] is True


def test_unpause_add_and_remove(snapshots, admin_user):
    queue, other = first_queue(snapshots), last_queue(snapshots)
    member = a_member(snapshots, queue)
    outsider = min(set(snapshots.centre.members(other)) - set(snapshots.centre.members(queue)))
    snapshots.centre.set_paused(queue, member, True)
    client = token_client(admin_user)
    answers = [
        client.post(action_url(queue, member, "unpause")).json()["message"],
        client.post(action_url(queue, outsider, "add")).json()["message"],
        client.post(action_url(queue, outsider, "remove")).json()["message"],
    ]
    assert answers == ["Unpaused", "Added to queue", "Removed from queue"]


def test_a_team_lead_acts_on_their_queue_only(snapshots, team_lead):
    allowed, other = first_queue(snapshots), last_queue(snapshots)
    client = token_client(team_lead)
    assert (
        client.post(action_url(allowed, a_member(snapshots, allowed), "pause")).status_code == 200
    )
    spent = pbx_requests(snapshots)
    response = client.post(action_url(other, a_member(snapshots, other), "pause"))
    assert response.status_code == 403
    assert str(other) in response.json()["detail"]
    assert pbx_requests(snapshots) == spent
    assert MemberAction.objects.count() == 1


@pytest.mark.parametrize("action", ACTIONS)
def test_a_viewer_may_not_act(snapshots, viewer, action):
    queue = first_queue(snapshots)
    spent = pbx_requests(snapshots)
    response = browser_client(viewer).post(action_url(queue, a_member(snapshots, queue), action))
    assert response.status_code == 403
    assert pbx_requests(snapshots) == spent
    assert not MemberAction.objects.exists()


def test_invalid_numbers_are_400_without_a_pbx_request(snapshots, admin_user):
    spent = pbx_requests(snapshots)
    client = token_client(admin_user)
    assert client.post(action_url(0, 201, "pause")).status_code == 400
    assert client.post(action_url(100, 2**31, "pause")).status_code == 400
    assert pbx_requests(snapshots) == spent
    assert not MemberAction.objects.exists()


@pytest.mark.parametrize(
    ("queue", "extension"),
    [("abc", 201), (100, "-5"), ("1.5", 201), (100, "%D9%A3"), ("%201", 201)],
)
def test_anything_but_a_number_in_an_action_path_is_a_json_400(
    snapshots, admin_user, queue, extension
):
    spent = pbx_requests(snapshots)
    response = token_client(admin_user).post(action_url(queue, extension, "pause"))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "positive whole number" in response.json()["detail"]
    assert pbx_requests(snapshots) == spent
    assert not MemberAction.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nothing-here/"),
        ("get", "/api/v1/queues/abc/"),
        ("get", "/api/v1/queues/1/2/"),
        ("post", "/api/v1/queues/100/members/201/dance"),
        ("delete", "/api/v2/queues/"),
    ],
)
def test_a_path_the_api_does_not_have_is_a_json_404(snapshots, admin_user, method, path):
    response = getattr(token_client(admin_user), method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_that_does_not_exist_is_still_the_sites_page(db):
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_user_looping_on_actions_is_throttled_before_the_pbx(snapshots, admin_user, settings):
    settings.ACTIONS_PER_USER_PER_MINUTE = 2
    queue = first_queue(snapshots)
    extension = a_member(snapshots, queue)
    client = token_client(admin_user)
    assert client.post(action_url(queue, extension, "pause")).status_code == 200
    assert client.post(action_url(queue, extension, "unpause")).status_code == 200
    spent = pbx_requests(snapshots)
    response = client.post(action_url(queue, extension, "pause"))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert pbx_requests(snapshots) == spent
    assert MemberAction.objects.count() == 2


def test_get_on_an_action_is_not_allowed(snapshots, admin_user):
    queue = first_queue(snapshots)
    response = token_client(admin_user).get(action_url(queue, a_member(snapshots, queue), "pause"))
    assert response.status_code == 405


# --- the PBX's failures as HTTP statuses -------------------------------------------------------


def test_a_refusal_is_409_with_the_pbx_words(snapshots, admin_user):
    queue = first_queue(snapshots)
    response = token_client(admin_user).post(action_url(queue, a_member(snapshots, queue), "add"))
    assert response.status_code == 409
    body = response.json()
    assert (body["ok"], body["reason"], body["code"], body["message"]) == (
        False,
        "refused",
        400,
        "Already there",
    )


def test_the_words_come_in_the_callers_language(snapshots, admin_user):
    queue = first_queue(snapshots)
    client = token_client(admin_user)
    response = client.post(
        action_url(queue, a_member(snapshots, queue), "add"), HTTP_ACCEPT_LANGUAGE="sk"
    )
    assert response.status_code == 409
    # The PBX's own words stay as it said them; the message is for the person.
    assert (response.json()["detail"], response.json()["message"]) == ("Already there", "Už tam je")


def test_no_such_queue_is_409(snapshots, admin_user):
    missing = last_queue(snapshots) + 100
    response = token_client(admin_user).post(action_url(missing, 201, "pause"))
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["message"]) == (401, "No such queue")


def test_blocked_is_503_with_retry_after(snapshots, admin_user, settings):
    queue = first_queue(snapshots)
    snapshots.centre.set_fault("forbidden")
    response = token_client(admin_user).post(action_url(queue, a_member(snapshots, queue), "pause"))
    assert response.status_code == 503
    body = response.json()
    assert body["reason"] == "blocked"
    assert body["message"].startswith("PBX blocked until ")
    assert int(response["Retry-After"]) == body["retry_after"]
    assert 1 <= body["retry_after"] <= settings.PBX_BLOCK_SECONDS + 1


def test_a_silent_pbx_is_504(snapshots, admin_user):
    queue = first_queue(snapshots)
    snapshots.centre.set_fault("timeout")
    response = token_client(admin_user).post(action_url(queue, a_member(snapshots, queue), "pause"))
    assert response.status_code == 504
    assert response.json()["reason"] == "timeout"


def test_a_pbx_that_is_down_is_502(snapshots, admin_user):
    queue = first_queue(snapshots)
    snapshots.centre.set_fault("down")
    response = token_client(admin_user).post(action_url(queue, a_member(snapshots, queue), "pause"))
    assert response.status_code == 502
    assert response.json()["message"] == "The PBX is unreachable."


# --- health and schema -------------------------------------------------------------------------


def test_health_needs_no_login_and_says_only_the_status(snapshots, settings):
    client = APIClient(enforce_csrf_checks=True)
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "up"}


def test_health_details_need_a_login_or_a_token(snapshots, settings, admin_user):
    for client in (token_client(admin_user), session_client(admin_user)):
        response = client.get("/api/v1/health/")
        body = response.json()
        assert body["status"] == "up" and body["pbx"]["state"] == "ok"
        text = response.content.decode()
        for secret in (settings.PBX_SECRET, settings.PBX_USER, settings.PBX_BUDGET_KEY):
            assert secret not in text
        assert body == as_json(selectors.health_get())


def test_each_health_answer_matches_exactly_one_documented_shape(
    snapshots, admin_user, connection_kept
):
    schema = served_schema()
    health = schema["/api/v1/health/"]["GET"]
    client = WsgiClient(schema.app)
    token = api_token_create(user=admin_user).secret
    for headers in ({}, {"Authorization": f"Token {token}"}):
        response = client.get("/api/v1/health/", headers=headers)
        assert response.status_code == 200
        health.validate_response(response)


def test_health_says_blocked(snapshots, admin_user):
    queue = first_queue(snapshots)
    snapshots.centre.set_fault("forbidden")
    token_client(admin_user).post(action_url(queue, a_member(snapshots, queue), "pause"))
    assert APIClient().get("/api/v1/health/").json() == {"status": "blocked"}
    body = token_client(admin_user).get("/api/v1/health/").json()
    assert body["pbx"]["state"] == "blocked"
    assert body["pbx"]["blocked_until"] is not None


def test_health_says_degraded_when_the_data_is_stale(snapshots, settings):
    settings.BOARD_STALE_SECONDS = 0.001
    assert APIClient().get("/api/v1/health/").json() == {"status": "degraded"}


def test_reads_are_503_when_redis_is_away(admin_user):
    client = token_client(admin_user)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
        for url in ("/api/v1/health/", "/api/v1/queues/", "/api/v1/queues/100/"):
            response = client.get(url)
            assert response.status_code == 503, url
            assert response.json() == {"detail": "The wallboard's Redis is unavailable."}
            assert response["Retry-After"] == "5"


def test_health_ignores_a_broken_session_or_token(snapshots, admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/health/").status_code == 200


def test_a_token_of_an_inactive_user_is_refused(snapshots):
    user = get_user_model().objects.create_superuser("former", password=None)
    client = token_client(user)
    user.is_active = False
    user.save()
    assert client.get("/api/v1/queues/").status_code == 401


def test_the_api_is_503_while_the_database_is_away(snapshots, admin_user, monkeypatch):
    """A token's authentication needs the database: without it, a temporary 503, not a 500."""
    from django.db import OperationalError

    from wallboard.api import tokens

    client = token_client(admin_user)

    def database_gone(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(tokens.ApiToken.objects, "active", database_gone)
    for url in ("/api/v1/queues/", "/api/v1/calls/"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.json() == {"detail": "The wallboard's database is unavailable."}
        assert response["Retry-After"]
