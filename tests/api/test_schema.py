"""The OpenAPI schema: served, valid, warning-free, and describing every endpoint."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/v1/queues/": {"get"},
    "/api/v1/queues/{queue}/": {"get"},
    "/api/v1/queues/{queue}/members/{extension}/pause": {"post"},
    "/api/v1/queues/{queue}/members/{extension}/unpause": {"post"},
    "/api/v1/queues/{queue}/members/{extension}/add": {"post"},
    "/api/v1/queues/{queue}/members/{extension}/remove": {"post"},
    "/api/v1/reports/queues/": {"get"},
    "/api/v1/reports/agents/": {"get"},
    "/api/v1/calls/": {"get"},
    "/api/v1/missed-callers/": {"get"},
    "/api/v1/missed-callers/{id}/call-back": {"post"},
    "/api/v1/health/": {"get"},
}


def test_the_schema_generates_valid_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    err = StringIO()
    # --fail-on-warn turns any warning (an undocumented response, a guessed type) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=err)
    assert err.getvalue() == ""
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")


def test_the_schema_is_served_to_anyone_and_lists_every_endpoint():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {path: set(ops) & {"get", "post"} for path, ops in schema["paths"].items()} == ENDPOINTS
    operation_ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_action_documents_its_answers():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    pause = schema["paths"]["/api/v1/queues/{queue}/members/{extension}/pause"]["post"]
    assert set(pause["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "409",
        "429",
        "502",
        "503",
        "504",
    }
    assert "Retry-After" in pause["responses"]["503"]["headers"]
    outcome = schema["components"]["schemas"]["ActionOutcome"]["properties"]
    assert {"ok", "reason", "code", "detail", "message", "retry_after"} <= set(outcome)
    health = schema["paths"]["/api/v1/health/"]["get"]
    # No security requirement: the one endpoint anyone (a load balancer) may read.
    assert health.get("security", []) in ([], [{}])
    assert pause["security"]  # the others require the session or a token
    snapshot = schema["components"]["schemas"]["QueueSnapshot"]["properties"]
    assert {"members", "waiting", "counts", "fetched", "version"} <= set(snapshot)


def test_a_call_back_documents_every_answer():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    call_back = schema["paths"]["/api/v1/missed-callers/{id}/call-back"]["post"]
    assert set(call_back["responses"]) == {
        "200", "400", "401", "403", "404", "409", "429", "502", "503", "504",
    }  # fmt: skip
    assert "Retry-After" in call_back["responses"]["503"]["headers"]
    body = call_back["requestBody"]["content"]
    assert set(body) == {"application/json"}
    request = schema["components"]["schemas"]["CallBackRequest"]["properties"]["extension"]
    assert (request["type"], request["minimum"]) == ("integer", 1)
    problem = schema["components"]["schemas"]["CallBackProblem"]
    assert problem["required"] == ["detail"]  # DRF's own errors (a parse error) fit it too
    listing = schema["paths"]["/api/v1/missed-callers/"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"queue"}
    assert set(listing["responses"]) == {"200", "400", "401", "403", "503"}
    caller = schema["components"]["schemas"]["MissedCaller"]["properties"]
    assert {"id", "number_display", "attempts", "wait", "call_back"} <= set(caller)


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        ("/api/v1/reports/queues/", {"from", "to", "queues", "interval"}),
        ("/api/v1/reports/agents/", {"from", "to", "queues"}),
        (
            "/api/v1/calls/",
            {"from", "to", "queues", "agent", "outcome", "caller", "page", "page_size"},
        ),
    ],
)
def test_every_history_endpoint_documents_its_parameters_and_answers(path, parameters):
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"][path]["get"]
    assert {p["name"] for p in operation["parameters"]} == parameters
    assert all(p.get("description") for p in operation["parameters"])
    assert set(operation["responses"]) == {"200", "400", "401", "403", "503"}
    assert all(r.get("description") for code, r in operation["responses"].items() if code != "200")
    assert operation["security"]


def test_the_snapshot_schema_has_todays_figures_and_the_staffing_hint():
    components = APIClient().get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    kpi = components["Kpi"]["properties"]
    assert {"answered_today", "missed_today", "service_level", "sl_target_seconds"} <= set(kpi)
    assert {"asa", "abandon_rate", "computed_at"} <= set(kpi)
    assert {"answered", "talk_seconds"} <= set(components["Member"]["properties"])
    assert "needed" in components["Staffing"]["properties"]
    assert "staffing" in components["QueueSnapshot"]["properties"]


def test_queue_and_extension_numbers_are_documented_with_the_bounds_the_api_accepts():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    bounded = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in {"queue", "extension"}:
                    assert parameter["schema"] == bounded, (path, parameter)
    pause = schema["paths"]["/api/v1/queues/{queue}/members/{extension}/pause"]["post"]
    assert {p["name"] for p in pause["parameters"]} >= {"queue", "extension"}
