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
