"""Schemathesis against the served OpenAPI schema: every operation /api/v1/schema/ lists (an
endpoint added later is fuzzed without an edit here), for each persona, with valid and invalid
data. Every answer must be documented: no server error (no 5xx at all), a documented status,
content type, headers and body; valid data is not refused as invalid, invalid data is refused;
credentials are really enforced; undocumented methods are refused.

The real application in this process (Django's WSGI handler: the views Daphne serves), snapshots
in Redis built from the real simulator, actions through the real budget to the simulator. The
run is bounded and reproducible: a fixed number of examples per operation, derandomised, no
example database. The action throttle's 429 is a documented answer; the budget must pace the
actions so that none is refused for want of a slot (a 503) and the simulator never blocks us.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.errors import FailureGroup
from werkzeug.test import Client as WsgiClient

from pbxapi.simulator.centre import FIRST_AGENT, FIRST_QUEUE, RECEPTION
from wallboard.api.tokens import api_token_create
from wallboard.control.models import TeamLeadAssignment
from wallboard.live import selectors
from wallboard.live.services import queue_refresh, source_fetch
from wallboard.live.store import SOURCE_QUEUES

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz, pytest.mark.integration]

# Examples per operation and persona in the fuzzing phase (the examples and coverage phases add
# their own deterministic cases). Bounded for `make test` on a 2-core machine.
MAX_EXAMPLES = 50
SIM_QUEUES = 2
SIM_AGENTS = 4
# Numbers the simulator knows, mixed into half of the valid queue and extension values so that
# actions also reach real members (accepted, refused, throttled) rather than only unknown queues.
KNOWN_QUEUES = list(range(FIRST_QUEUE, FIRST_QUEUE + SIM_QUEUES))
KNOWN_EXTENSIONS = [RECEPTION, *range(FIRST_AGENT, FIRST_AGENT + SIM_AGENTS)]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261128,
        "generation": {"mode": "all"},
        "dictionaries": {
            "queues": {"values": KNOWN_QUEUES},
            "extensions": {"values": KNOWN_EXTENSIONS},
        },
        "parameters": {
            "path.queue": {"dictionary": "queues", "probability": 0.5},
            "path.extension": {"dictionary": "extensions", "probability": 0.5},
        },
        "operations": [
            {
                # Call history: a range that ends before it starts, or is too long for its
                # interval, or a page past the last, is a question no single field rules out:
                # its 400 (with the reason) is documented, and the schema cannot say more.
                "include-tag": "history",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "429", "5xx"]
                    }
                },
            }
        ],
        "checks": {
            name: {"enabled": True}
            for name in (
                "not_a_server_error",
                "status_code_conformance",
                "content_type_conformance",
                "response_headers_conformance",
                "response_schema_conformance",
                "positive_data_acceptance",
                "negative_data_rejection",
                "ignored_auth",
                "unsupported_method",
            )
        },
    }
)

# Loaded at collection from the application itself, so the schema fuzzed is the one served.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/schema/?format=json", get_wsgi_application(), config=CONFIG
)

PERSONAS = ["admin", "team_lead", "viewer", "anonymous"]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Undocumented methods a client could send; OPTIONS and HEAD are answered for every path.
HTTP_METHODS_SENT = {"GET", "PUT", "POST", "DELETE", "PATCH"}


@dataclass(frozen=True)
class Credentials:
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def pbx(simulator_factory):
    """The simulator, its call centre frozen, its queues fetched once into real snapshots."""
    sim = simulator_factory(queues=SIM_QUEUES, agents=SIM_AGENTS)
    assert sim.centre.queue_numbers() == KNOWN_QUEUES
    source_fetch(SOURCE_QUEUES)
    for queue in KNOWN_QUEUES:
        queue_refresh(queue=queue, with_calls=True)
    return sim


@pytest.fixture
def admin_token(db) -> str:
    return api_token_create(user=get_user_model().objects.create_superuser("fuzz-boss")).secret


@pytest.fixture
def never_blocked(pbx):
    """After the run: the simulator never answered 403 (blocked) and is not blocking us."""
    yield
    assert [entry for entry in pbx.requests_log if entry.status == 403] == []
    assert pbx.centre.limiter.blocked_until("127.0.0.1") is None
    assert selectors.health_get()["pbx"]["state"] == "ok"


# The persona whose credentials the test in progress sends (empty: no credentials of ours).
_signed_in: list[Credentials] = []


@schema.auth(refresh_interval=None)
class PersonaAuth:
    """The persona's credentials as schemathesis' own authentication, so that its credential
    checks know them and send their probes without them (read afresh for every case)."""

    def get(self, case, context) -> Credentials | None:
        return _signed_in[-1] if _signed_in else None

    def set(self, case, data: Credentials, context) -> None:
        case.headers = {**(case.headers or {}), **data.headers}
        case.cookies = {**(case.cookies or {}), **data.cookies}


def _persona_credentials(persona: str) -> Credentials | None:
    users = get_user_model().objects
    if persona == "admin":
        user = users.create_superuser("fuzz-admin")
    elif persona == "team_lead":
        user = users.create_user("fuzz-lead")
        TeamLeadAssignment.objects.create(user=user, queue=KNOWN_QUEUES[0])
        # A browser: the session cookie, and the CSRF token echoed as the board's script does.
        client = Client()
        client.force_login(user)
        csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret
        return Credentials(
            headers={"X-CSRFToken": csrf},
            cookies={"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
        )
    elif persona == "viewer":
        user = users.create_user("fuzz-viewer")
    else:
        return None
    return Credentials(headers={"Authorization": f"Token {api_token_create(user=user).secret}"})


@pytest.fixture
def answers(db, persona) -> Iterator[list[int]]:
    """Signs the persona in for the run and collects the statuses it was answered with.

    Admin and viewer use API tokens, the team lead (of the first queue) is a browser (session
    cookie and CSRF token); anonymous sends only the credentials schemathesis makes up. A signed-in
    persona must have been recognised at least once: a run of nothing but 401s tested nothing.
    """
    credentials = _persona_credentials(persona)
    if credentials is not None:
        _signed_in.append(credentials)
    statuses: list[int] = []
    try:
        yield statuses
    finally:
        _signed_in.clear()
    if credentials is not None:
        assert set(statuses) - {401}, f"{persona} was never let in: {sorted(set(statuses))}"


@pytest.mark.parametrize("persona", PERSONAS)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # One simulator, set of snapshots and user per operation and persona: the examples share
    # them on purpose (the PBX's state moves on with the actions, as it would in production).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_it_answers_every_operation_as_its_schema_says(
    case, persona, connection_kept, answers, never_blocked
):
    answers.append(case.call_and_validate().status_code)


def test_it_refuses_every_undocumented_method_of_every_path_with_a_405(
    connection_kept, admin_token
):
    """Schemathesis tries other methods without credentials (a 401); signed in, each is a 405
    that names the methods the path has."""
    client = WsgiClient(schema.app)
    headers = {"Authorization": f"Token {admin_token}"}
    for template, operations in schema.raw_schema["paths"].items():
        path = re.sub(r"\{\w+\}", "1", template)  # any path parameter: the method comes first
        documented = {method.upper() for method in operations if method in HTTP_METHODS}
        for method in sorted(HTTP_METHODS_SENT - documented):
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.mimetype == "application/json", (method, path)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert documented <= allowed, (method, path, allowed)


# --- the checks themselves -------------------------------------------------------------------


def _health_case():
    return schema["/api/v1/health/"]["GET"].Case()


def test_it_fails_on_a_server_error(monkeypatch, connection_kept):
    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "health_get", broken)
    with pytest.raises(FailureGroup, match="Server error"):
        _health_case().call_and_validate()


def test_it_fails_on_an_answer_the_schema_does_not_describe(monkeypatch, connection_kept):
    monkeypatch.setattr(selectors, "health_get", lambda: {"status": "sideways"})
    with pytest.raises(FailureGroup, match="Response violates schema"):
        _health_case().call_and_validate()
