"""The call-history endpoints (reports per queue and per agent, raw call records) over days of
history the simulator wrote and the history app read: who may ask what, that the figures are
the KPI engine's, paging, and a clear 400 for every question that cannot be answered."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from wallboard.api import serializers
from wallboard.api.tokens import api_token_create
from wallboard.control.models import TeamLeadAssignment
from wallboard.history import selectors, services
from wallboard.history.intervals import local_today
from wallboard.history.models import CallRecord
from wallboard.live.services import source_fetch
from wallboard.live.store import SOURCE_QUEUES

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/reports/queues/", "/api/v1/reports/agents/", "/api/v1/calls/"]


@pytest.fixture(scope="module")
def days() -> list[date]:
    """The days of history: the simulator's two past days and today (the PBX's)."""
    today = local_today(timezone.now(), selectors.pbx_zone())
    return [today - timedelta(days=2), today - timedelta(days=1), today]


@pytest.fixture
def history(simulator_factory, days):
    """Three queues' call records of ``days``, read from the simulator as the history does."""
    sim = simulator_factory(queues=3, agents=6, history_days=3)
    source_fetch(SOURCE_QUEUES)
    known = set(sim.centre.queue_numbers())
    for day in days:
        services.cdr_day_read(day=day, now=timezone.now(), known=known)
    assert CallRecord.objects.filter(queue__isnull=False).count() > 100
    return sim


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("boss")


@pytest.fixture
def lead(history):
    """A team lead of the simulator's first queue."""
    user = get_user_model().objects.create_user("lead")
    TeamLeadAssignment.objects.create(user=user, queue=min(history.centre.queue_numbers()))
    return user


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user).secret}")
    return client


def queues_of(sim) -> list[int]:
    return sorted(sim.centre.queue_numbers())


# --- who may ask ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
def test_anonymous_callers_get_401(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_viewer_reads_no_history(url):
    viewer = get_user_model().objects.create_user("viewer")
    response = client_of(viewer).get(url)
    assert response.status_code == 403
    assert "admins and team leads" in response.json()["detail"]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_team_lead_asking_for_another_teams_queue_is_refused(history, lead, url):
    own, other, _third = queues_of(history)
    response = client_of(lead).get(url, {"queues": f"{own},{other}"})
    assert response.status_code == 403
    assert response.json()["detail"] == (f"You may not read the call history of queue(s) {other}.")
    assert client_of(lead).get(url, {"queues": str(own)}).status_code == 200


def test_a_session_reads_like_a_token(history, admin_user, days):
    client = APIClient()
    client.force_login(admin_user)
    response = client.get("/api/v1/reports/queues/", {"from": days[0].isoformat()})
    assert response.status_code == 200


# --- queue reports ----------------------------------------------------------------------------


def test_an_admin_gets_every_queue_with_the_engines_figures(history, admin_user, days):
    response = client_of(admin_user).get(
        "/api/v1/reports/queues/",
        {"from": days[0].isoformat(), "to": days[-1].isoformat(), "interval": "day"},
    )
    assert response.status_code == 200
    body = response.json()
    queues = queues_of(history)
    engine = selectors.queue_figures(
        queues=queues, date_from=days[0], date_to=days[-1], interval="day"
    )
    assert (body["date_from"], body["date_to"], body["interval"]) == (
        days[0].isoformat(),
        days[-1].isoformat(),
        "day",
    )
    assert body["time_zone"] == "Europe/Bratislava"
    assert [p["start"] for p in body["periods"]] == [p.start.isoformat() for p in engine.periods]
    assert [row["queue"] for row in body["queues"]] == queues
    for row in body["queues"]:
        queue = row["queue"]
        assert row["totals"] == serializers.figures_data(engine.totals[queue])
        assert row["periods"] == [serializers.figures_data(f) for f in engine.figures[queue]]
        assert row["rules"]["target_seconds"] == 20
        # And counted by hand from the stored records: answered queue calls of the range.
        stored = CallRecord.objects.filter(queue=queue, day__in=days, outcome="answered")
        assert row["totals"]["answered"] == stored.count()
        assert sum(p["answered"] for p in row["periods"]) == stored.count()
    assert set(body["queues"][0]["totals"]) == set(serializers.FiguresSerializer().fields)
    assert set(body["queues"][0]["rules"]) == set(serializers.KpiRulesSerializer().fields)


def test_the_interval_cuts_the_range_into_periods(history, admin_user, days):
    day, queue = days[1].isoformat(), queues_of(history)[1]
    body = (
        client_of(admin_user)
        .get("/api/v1/reports/queues/", {"from": day, "interval": "hour", "queues": str(queue)})
        .json()
    )
    assert len(body["periods"]) == 24  # no clock change in these days
    assert body["periods"][10]["start"].startswith(f"{day}T10:00:00")
    assert [row["queue"] for row in body["queues"]] == [queue]
    assert len(body["queues"][0]["periods"]) == 24


def test_a_team_lead_without_queues_gets_theirs(history, lead, days):
    body = client_of(lead).get("/api/v1/reports/queues/", {"from": days[0].isoformat()}).json()
    assert [row["queue"] for row in body["queues"]] == [min(queues_of(history))]


def test_today_is_the_default_range(history, admin_user, days):
    body = client_of(admin_user).get("/api/v1/reports/queues/").json()
    assert (body["date_from"], body["date_to"], body["interval"]) == (
        days[-1].isoformat(),
        days[-1].isoformat(),
        "day",
    )


# --- agent reports ------------------------------------------------------------------------------


def test_agents_are_counted_in_the_callers_queues_only(history, lead, admin_user, days):
    own = min(queues_of(history))
    params = {"from": days[0].isoformat(), "to": days[-1].isoformat()}
    body = client_of(lead).get("/api/v1/reports/agents/", params).json()
    assert body["queues"] == [own]
    answered = CallRecord.objects.filter(queue=own, day__in=days, outcome="answered").count()
    assert sum(agent["calls"] for agent in body["agents"]) == answered
    assert {q for agent in body["agents"] for q in agent["calls_by_queue"]} == {str(own)}
    calls = [agent["calls"] for agent in body["agents"]]
    assert calls == sorted(calls, reverse=True)
    assert set(body["agents"][0]) == set(serializers.AgentFiguresSerializer().fields)

    everyone = client_of(admin_user).get("/api/v1/reports/agents/", params).json()
    assert everyone["queues"] is None
    total = CallRecord.objects.filter(day__in=days, outcome="answered", queue__isnull=False)
    assert sum(agent["calls"] for agent in everyone["agents"]) == total.count()


# --- call records ---------------------------------------------------------------------------


def test_records_come_newest_first_a_page_at_a_time(history, lead, days):
    own = min(queues_of(history))
    client = client_of(lead)
    params = {"from": days[0].isoformat(), "to": days[-1].isoformat(), "page_size": 40}
    first = client.get("/api/v1/calls/", params).json()
    expected = CallRecord.objects.filter(queue=own, day__in=days).count()
    assert first["count"] == expected > 80
    assert first["pages"] == -(-expected // 40)
    assert first["previous"] is None and len(first["results"]) == 40
    assert {r["queue"] for r in first["results"]} == {own}
    whens = [r["when"] for r in first["results"]]
    assert whens == sorted(whens, reverse=True)
    assert set(first["results"][0]) == set(serializers.CallRecordSerializer().fields)
    assert first["results"][0]["when"].endswith(("+01:00", "+02:00"))  # the PBX's time

    second = client.get(first["next"]).json()
    assert second["page"] == 2 and second["previous"] is not None
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    assert second["results"][0]["when"] <= first["results"][-1]["when"]

    last = client.get("/api/v1/calls/", {**params, "page": first["pages"]}).json()
    assert last["next"] is None
    past = client.get("/api/v1/calls/", {**params, "page": first["pages"] + 1})
    assert past.status_code == 400
    assert f"fill {first['pages']} page(s)" in past.json()["detail"]


def test_records_are_filtered_by_outcome_agent_and_caller(history, admin_user, days):
    client = client_of(admin_user)
    day = days[1]
    some = CallRecord.objects.filter(day=day, outcome="answered").first()
    by_agent = client.get(
        "/api/v1/calls/", {"from": day.isoformat(), "agent": some.agent, "page_size": 500}
    ).json()
    assert by_agent["count"] == CallRecord.objects.filter(day=day, agent=some.agent).count()
    abandoned = client.get("/api/v1/calls/", {"from": day.isoformat(), "outcome": "abandoned"})
    assert {r["outcome"] for r in abandoned.json()["results"]} <= {"abandoned"}
    caller = some.caller[-6:]
    found = client.get("/api/v1/calls/", {"from": day.isoformat(), "caller": caller}).json()
    assert found["count"] >= 1
    assert all(caller in r["caller"] for r in found["results"])


# --- questions that cannot be answered: a clear 400, never a 500 -----------------------------

BAD = [
    ("/api/v1/reports/queues/", {"from": "2026-13-01"}, "from must be a date written YYYY-MM-DD"),
    ("/api/v1/reports/queues/", {"from": "yesterday"}, "from must be a date written YYYY-MM-DD"),
    ("/api/v1/reports/queues/", {"from": "20261101"}, "from must be a date written YYYY-MM-DD"),
    ("/api/v1/reports/queues/", {"to": "2026-02-30"}, "to must be a date written YYYY-MM-DD"),
    ("/api/v1/reports/queues/", {"from": "9999-12-31"}, "between 2000-01-01 and 2100-12-31"),
    ("/api/v1/calls/", {"from": "0001-01-01"}, "between 2000-01-01 and 2100-12-31"),
    (
        "/api/v1/reports/queues/",
        {"from": "2026-11-10", "to": "2026-11-01"},
        "ends (2026-11-01) before it starts (2026-11-10)",
    ),
    ("/api/v1/reports/queues/", {"interval": "fortnight"}, "Unknown interval 'fortnight'"),
    (
        "/api/v1/reports/queues/",
        {"from": "2026-01-01", "to": "2026-02-15", "interval": "15min"},
        "46 days is too long a range for the interval '15min'",
    ),
    (
        "/api/v1/reports/queues/",
        {"from": "2000-01-01", "to": "2100-12-31", "interval": "month"},
        "too long a range for the interval 'month'",
    ),
    (
        "/api/v1/reports/agents/",
        {"from": "2024-01-01", "to": "2026-01-01"},
        "too long a range for the interval 'day'",
    ),
    (
        "/api/v1/calls/",
        {"from": "2025-01-01", "to": "2026-11-01"},
        "too long a range for the interval 'day'",
    ),
    (
        "/api/v1/reports/queues/",
        {
            "from": "2026-10-01",
            "to": "2026-10-31",
            "interval": "15min",
            "queues": ",".join(str(q) for q in range(100, 140)),
        },
        "(at most 100,000)",
    ),
    ("/api/v1/reports/queues/", {"queues": "100,sales"}, "queues must be queue numbers"),
    ("/api/v1/reports/queues/", {"queues": "9" * 5000}, "queues must be queue numbers"),
    ("/api/v1/reports/queues/", {"queues": "-100"}, "queues must be queue numbers"),
    ("/api/v1/reports/queues/", {"intervall": "hour"}, "Unknown parameter(s) intervall"),
    ("/api/v1/reports/agents/", {"interval": "hour"}, "Unknown parameter(s) interval"),
    ("/api/v1/calls/", {"outcome": "lost"}, "Unknown outcome 'lost'"),
    ("/api/v1/calls/", {"page": "0"}, "page must be a whole number from 1 to 1000000"),
    ("/api/v1/calls/", {"page": "two"}, "page must be a whole number"),
    ("/api/v1/calls/", {"page": "9" * 30}, "page must be a whole number"),
    ("/api/v1/calls/", {"page_size": "501"}, "page_size must be a whole number from 1 to 500"),
    ("/api/v1/calls/", {"caller": "1" * 65}, "caller is at most 64 characters"),
]


@pytest.mark.parametrize(("url", "params", "words"), BAD)
def test_questions_that_cannot_be_answered_are_a_clear_400(admin_user, url, params, words):
    response = client_of(admin_user).get(url, params)
    assert response.status_code == 400, response.content
    assert words in response.json()["detail"]
