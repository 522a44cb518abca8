from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.boards.conftest import QUEUE_A, QUEUE_B, store_snapshot
from wallboard.boards.models import Board, QueueDisplay
from wallboard.boards.services import kiosk_token_create, kiosk_token_revoke
from wallboard.control.models import MemberAction

pytestmark = pytest.mark.django_db

LOGIN_REQUIRED = ["home", "console", "audit"]


def page_config(response) -> dict:
    match = re.search(
        r'<script id="page-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the page has no page-config"
    return json.loads(match.group(1))


def section(html: str, queue: int) -> str:
    """The HTML of one queue's panel."""
    start = html.index(f'data-queue="{queue}"')
    end = html.find("data-queue=", start + 10)
    return html[start : end if end != -1 else len(html)]


@pytest.mark.parametrize("name", LOGIN_REQUIRED)
def test_it_sends_anonymous_users_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_sends_anonymous_users_from_a_board_to_the_login_page(client):
    Board.objects.create(name="Sales floor", slug="sales", queues=[QUEUE_A])
    response = client.get(reverse("board_tv", args=["sales"]))
    assert response.status_code == 302


def test_home_lists_the_known_queues_and_boards(client_for, live_data):
    Board.objects.create(name="Sales floor", slug="sales", queues=[QUEUE_A])
    QueueDisplay.objects.create(queue=QUEUE_B, display_name="Helpdesk")
    html = client_for("viewer").get(reverse("home")).content.decode()
    assert "Sales" in html and "Helpdesk" in html
    assert reverse("board_tv", args=["sales"]) in html


def test_the_console_paints_the_cached_snapshot_on_the_server(client_for, live_data):
    response = client_for("admin").get(reverse("console"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Jana Kováčová" in html and "Mária Nováková" in html
    config = page_config(response)
    assert config["snapshots"][str(QUEUE_A)]["version"] == live_data[QUEUE_A]["version"]
    assert config["ws_path"] == "/ws/board/"
    assert {q["queue"] for q in config["queues"]} == {QUEUE_A, QUEUE_B}
    assert [e["extension"] for e in config["extensions"]] == [201, 202, 203]
    assert config["time_zone"] == "Europe/Bratislava"


def _with_todays_figures(data: dict) -> dict:
    """Queue A's snapshot with today's figures published (shapes of wallboard.live.shapes)."""
    snapshot = dict(data)
    snapshot["kpi"] = {
        **snapshot["kpi"],
        "answered_today": 41,
        "missed_today": 3,
        "service_level": 87.46,
        "service_level_met": True,
        "sl_target_seconds": 30,
        "asa": 13.5,
        "abandon_rate": 4.9,
    }
    snapshot["staffing"] = {
        "needed": 4, "capped": False, "max_agents": 200, "window_seconds": 1800, "calls": 24,
        "min_calls": 10, "arrivals_per_hour": 48.0, "aht": 185.5, "traffic": 2.47,
        "target_seconds": 30, "target_percent": 80, "service_level": 83.1, "asa": 9.9,
    }  # fmt: skip
    snapshot["members"] = [
        {**m, "answered": 7 if m["extension"] == 201 else 0,
         "talk_seconds": 1290 if m["extension"] == 201 else 0}
        for m in snapshot["members"]
    ]  # fmt: skip
    return store_snapshot(snapshot)


@pytest.mark.parametrize("page", ["console", "tv"])
def test_the_first_paint_shows_todays_figures_the_staffing_hint_and_each_agents_day(
    client_for, live_data, page
):
    _with_todays_figures(live_data[QUEUE_A])
    if page == "tv":
        Board.objects.create(name="Sales floor", slug="sales", queues=[QUEUE_A, QUEUE_B])
        response = client_for("admin").get(reverse("board_tv", args=["sales"]))
    else:
        response = client_for("admin").get(reverse("console"))
    html = response.content.decode().split("<template")[0]
    panel = section(html, QUEUE_A)

    def field(name: str) -> str:
        match = re.search(rf'data-f="{name}"[^>]*>([^<]*)<', panel)
        assert match, name
        return match.group(1)

    assert (field("answered"), field("missed"), field("sl")) == ("41", "3", "87 %")
    assert (field("sl-target"), field("asa"), field("abandon")) == ("30", "0:14", "5 %")
    assert 'data-f="sl" data-met="yes"' in panel
    assert (field("needed"), field("taking")) == ("4", "1")  # Jana available, Peter paused
    basis = "Erlang C: 24 calls in the last 30 min, average talk 3:06, goal 80 % within 30 s"
    assert f'title="{basis}"' in panel
    jana = panel[panel.index('data-ext="201"') :]
    assert re.search(r'data-f="calls"[^>]*>7<', jana)
    assert re.search(r'data-f="talk"[^>]*>21:30<', jana)
    # Queue B: nothing published yet.
    other = section(html, QUEUE_B)
    assert re.search(r'data-f="asa"[^>]*>—<', other) and 'data-f="sl-t" hidden' in other
    assert re.search(r'data-f="needed"[^>]*>—<', other)
    config = page_config(response)
    assert config["taking_calls"] == ["available", "ringing", "on_call"]
    assert "sl_target" not in config["thresholds"]  # the target comes with the figures


def test_a_viewer_gets_no_action_buttons(client_for, live_data):
    response = client_for("viewer").get(reverse("console"))
    html = response.content.decode()
    assert 'data-action="pause"' not in html.split('<template id="agent-tpl-act">')[0]
    assert "data-can-act" not in html
    assert page_config(response)["extensions"] == []
    assert not any(q["can_act"] for q in page_config(response)["queues"])


def test_a_team_lead_gets_buttons_only_for_their_queue(client_for, live_data):
    response = client_for("lead").get(reverse("console"))
    html = response.content.decode().split("<template")[0]
    own, other = section(html, QUEUE_A), section(html, QUEUE_B)
    assert 'data-action="unpause"' in own and 'data-action="remove"' in own
    assert "data-can-act" in own and 'name="extension"' in own
    assert "data-action" not in other and "data-can-act" not in other
    acts = {q["queue"]: q["can_act"] for q in page_config(response)["queues"]}
    assert acts == {QUEUE_A: True, QUEUE_B: False}


def test_an_admin_gets_buttons_for_every_queue(client_for, live_data):
    html = client_for("group_admin").get(reverse("console")).content.decode().split("<template")[0]
    assert "data-can-act" in section(html, QUEUE_A) and "data-can-act" in section(html, QUEUE_B)


def test_the_console_can_be_limited_to_chosen_queues(client_for, live_data):
    response = client_for("lead").get(reverse("console") + f"?queues={QUEUE_B}")
    config = page_config(response)
    assert [q["queue"] for q in config["queues"]] == [QUEUE_B]
    assert config["ws_path"] == f"/ws/board/?queues={QUEUE_B}"


def test_a_board_page_shows_its_queues_read_only(client_for, live_data):
    Board.objects.create(
        name="Sales floor", slug="sales", queues=[QUEUE_A], rotation_seconds=7, sound_alert=True
    )
    response = client_for("admin").get(reverse("board_tv", args=["sales"]))
    config = page_config(response)
    assert [q["queue"] for q in config["queues"]] == [QUEUE_A]
    assert config["board"]["rotation"] == 7 and config["board"]["sound"] is True
    assert "data-action" not in response.content.decode()


def test_an_unknown_board_is_404(client_for):
    assert client_for("admin").get(reverse("board_tv", args=["nope"])).status_code == 404


def test_a_kiosk_opens_without_login_scoped_to_its_queues(client, live_data):
    QueueDisplay.objects.create(queue=QUEUE_B, waiting_amber=1, waiting_red=2)
    issued = kiosk_token_create(name="Support TV", queues=[QUEUE_B])
    response = client.get(reverse("kiosk", args=[issued.secret]))
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    config = page_config(response)
    assert config["ws_path"] == f"/ws/kiosk/{issued.secret}/"
    assert [q["queue"] for q in config["queues"]] == [QUEUE_B]
    assert config["queues"][0]["thresholds"]["waiting_red"] == 2
    assert list(config["snapshots"]) == [str(QUEUE_B)]
    html = response.content.decode()
    assert "Mária Nováková" in html and "Jana Kováčová" not in html
    assert "data-action" not in html


def test_a_revoked_kiosk_url_stops_working(client, django_capture_on_commit_callbacks):
    issued = kiosk_token_create(name="Support TV")
    with django_capture_on_commit_callbacks(execute=True):
        kiosk_token_revoke(token=issued.token)
    response = client.get(reverse("kiosk", args=[issued.secret]))
    assert response.status_code == 404
    assert b"switched off" in response.content
    assert client.get(reverse("kiosk", args=["made-up"])).status_code == 404


def _action(user, queue: int, ext: int, action: str, ok: bool, *, days_ago: int = 0):
    row = MemberAction.objects.create(
        user=user,
        username=user.username,
        source="websocket",
        queue=queue,
        extension=ext,
        action=action,
        ok=ok,
        code=200 if ok else 400,
        detail="Paused" if ok else "Already there",
    )
    if days_ago:
        MemberAction.objects.filter(pk=row.pk).update(
            created=timezone.now() - timedelta(days=days_ago)
        )
    return row


@pytest.fixture
def actions(users):
    return [
        _action(users["lead"], QUEUE_A, 201, "pause", True),
        _action(users["admin"], QUEUE_B, 203, "add", False),
        _action(users["admin"], QUEUE_A, 202, "remove", True, days_ago=3),
    ]


def audit_rows(response) -> list[tuple[str, str]]:
    html = response.content.decode()
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', body)


def test_the_audit_page_is_closed_to_viewers(client_for, actions):
    client = client_for("viewer")
    assert client.get(reverse("audit")).status_code == 403
    assert f'href="{reverse("audit")}"' not in client.get(reverse("home")).content.decode()


def test_team_leads_get_a_link_to_the_audit_page(client_for):
    assert f'href="{reverse("audit")}"' in client_for("lead").get(reverse("home")).content.decode()


def test_a_team_lead_audits_only_their_queues(client_for, actions):
    rows = audit_rows(client_for("lead").get(reverse("audit")))
    assert rows == [(str(QUEUE_A), "201"), (str(QUEUE_A), "202")]


def test_an_admin_audits_everything(client_for, actions):
    assert len(audit_rows(client_for("admin").get(reverse("audit")))) == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=lead", [("100", "201")]),
        ("queue=101", [("101", "203")]),
        ("extension=202", [("100", "202")]),
        ("action=add", [("101", "203")]),
        ("ok=0", [("101", "203")]),
        ("ok=1", [("100", "201"), ("100", "202")]),
        ("date_to=" + (timezone.localdate() - timedelta(days=2)).isoformat(), [("100", "202")]),
        ("date_from=" + (timezone.localdate() - timedelta(days=1)).isoformat(),
         [("101", "203"), ("100", "201")]),
    ],
)  # fmt: skip
def test_the_audit_page_filters(client_for, actions, query, expected):
    assert audit_rows(client_for("admin").get(reverse("audit") + "?" + query)) == expected


def test_the_audit_page_paginates(client_for, users):
    for i in range(55):
        _action(users["admin"], QUEUE_A, 200 + i, "pause", True)
    client = client_for("admin")
    first = client.get(reverse("audit") + "?queue=100")
    assert len(audit_rows(first)) == 50
    assert "queue=100&amp;page=2" in first.content.decode()
    assert len(audit_rows(client.get(reverse("audit") + "?queue=100&page=2"))) == 5


def test_login_works_and_needs_a_csrf_token(users):
    strict = Client(enforce_csrf_checks=True)
    credentials = {"username": "viewer", "password": "pw-viewer-123"}
    assert strict.post(reverse("login"), credentials).status_code == 403
    page = strict.get(reverse("login"))
    token = page.cookies["csrftoken"].value
    response = strict.post(reverse("login"), {**credentials, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert strict.get(reverse("home")).status_code == 200


def test_logout_and_language_switch_need_a_csrf_token(users):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(users["viewer"])
    html = strict.get(reverse("home")).content.decode()
    assert html.count('name="csrfmiddlewaretoken"') >= 2
    assert strict.post(reverse("set_language"), {"language": "sk"}).status_code == 403
    assert strict.post(reverse("logout")).status_code == 403
    assert strict.get(reverse("home")).status_code == 200  # still logged in


def test_pages_speak_slovak_to_a_slovak_browser(client_for, live_data):
    client = client_for("admin")
    html = client.get(reverse("console"), HTTP_ACCEPT_LANGUAGE="sk").content.decode()
    assert 'lang="sk"' in html
    assert "Čakajúci" in html and "Odhlásiť" in html
    config_words = page_config(client.get(reverse("console"), HTTP_ACCEPT_LANGUAGE="sk"))
    assert ["paused", "Pozastavený"] in config_words["states"]
    english = client.get(reverse("console"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Waiting" in english and "Čakajúci" not in english


def test_the_language_switch_remembers_the_choice(client_for, live_data):
    client = client_for("viewer")
    client.post(reverse("set_language"), {"language": "sk", "next": "/"})
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="sk"' in html


def test_the_audit_page_shows_bratislava_time(client_for, users):
    from datetime import UTC, datetime

    row = _action(users["admin"], QUEUE_A, 201, "pause", True)
    MemberAction.objects.filter(pk=row.pk).update(created=datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    html = client_for("admin").get(reverse("audit")).content.decode()
    assert "2026-07-01 10:00:00" in html  # CEST = UTC+2


# --- login brute force -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_guessing_a_password_locks_the_pair_out_even_for_the_right_one(
    client, users, url, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        response = client.post(url, {"username": "admin", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(url, {"username": "admin", "password": "wrong"}).status_code == 429
    locked = client.post(url, {"username": "admin", "password": "pw-admin-123"})
    assert locked.status_code == 429
    # Another account from the same address is not locked.
    other = client.post("/login/", {"username": "viewer", "password": "pw-viewer-123"})
    assert other.status_code == 302


def test_a_successful_login_forgets_earlier_failures(client, users, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post("/login/", {"username": "viewer", "password": "wrong"})
    assert (
        client.post("/login/", {"username": "viewer", "password": "pw-viewer-123"}).status_code
        == 302
    )
    client.post("/logout/")
    for _ in range(2):
        client.post("/login/", {"username": "viewer", "password": "wrong"})
    assert (
        client.post("/login/", {"username": "viewer", "password": "pw-viewer-123"}).status_code
        == 302
    )


# --- the audit page: pending and unknown outcomes, bad filters --------------------------------


def test_the_audit_page_shows_pending_and_unknown_outcomes(client_for, users):
    def record(minutes_ago: int, ok) -> None:
        row = MemberAction.objects.create(
            user=users["admin"], username="admin", source="api", queue=QUEUE_A, extension=201,
            action="pause", ok=ok,
        )  # fmt: skip
        MemberAction.objects.filter(pk=row.pk).update(
            created=timezone.now() - timedelta(minutes=minutes_ago)
        )

    record(0, None)  # asking the PBX right now
    record(10, None)  # its process died before the PBX answered
    record(5, True)
    html = client_for("admin").get(reverse("audit")).content.decode()
    assert html.count('class="pill pending"') == 1
    assert html.count('class="pill unknown"') == 1
    assert html.count('class="pill ok"') == 1
    pending = client_for("admin").get(reverse("audit"), {"ok": "pending"}).content.decode()
    assert pending.count("<tr class=") == 2


@pytest.mark.parametrize(
    "query",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "2026-11-30", "date_to": "2026-11-01"},
        {"queue": "99999999999999999999"},
        {"date_from": "not-a-date"},
    ],
)
def test_bad_audit_filters_are_a_400_that_says_why(client_for, users, query):
    response = client_for("admin").get(reverse("audit"), query)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()


@pytest.mark.parametrize(
    "queues", ["99999999999999999999", "²", "1,abc", "-5", ",".join(map(str, range(1, 300)))]
)
def test_bad_console_queues_are_a_400(client_for, live_data, queues):
    response = client_for("admin").get(reverse("console"), {"queues": queues})
    assert response.status_code == 400
    assert "queues" in response.content.decode()


# --- Redis or the database away ----------------------------------------------------------------


def test_pages_are_a_retrying_503_while_redis_is_away(client_for, users):
    client = client_for("admin")
    issued = kiosk_token_create(name="Hall")
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
        for url in (reverse("console"), reverse("kiosk", kwargs={"token": issued.secret})):
            response = client.get(url)
            assert response.status_code == 503, url
            assert response["Retry-After"] == "10"
            html = response.content.decode()
            assert '<meta http-equiv="refresh" content="10">' in html
        api = client.get("/api/v1/queues/")
        assert api.status_code == 503 and "detail" in api.json()
    assert client.get(reverse("console")).status_code == 200  # back as soon as Redis is


def test_pages_are_a_retrying_503_while_the_database_is_away(client_for, live_data, monkeypatch):
    from django.db import OperationalError

    from wallboard.boards import selectors

    def database_gone(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(selectors, "page_data", database_gone)
    response = client_for("admin").get(reverse("console"))
    assert response.status_code == 503
    assert '<meta http-equiv="refresh"' in response.content.decode()


def test_a_failure_outside_a_view_is_a_503_too(rf):
    """A session saved while the database is away fails in a middleware, past the views."""
    import sys

    from django.db import OperationalError

    from wallboard.outage import server_error

    try:
        raise OperationalError("the database went away")
    except OperationalError:
        assert sys.exc_info()[0] is OperationalError
        response = server_error(rf.get("/console/"))
    assert response.status_code == 503
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(rf.get("/console/")).status_code == 500
