"""Building a client from the environment, as the CLI and scripts do."""

from __future__ import annotations

import pytest

from pbxapi.budget import LocalBudget, RedisBudget
from pbxapi.client import PBXClient, budget_from_env, client_from_env
from pbxapi.errors import InvalidArgument

BASE = {"PBX_API_URL": "http://127.0.0.1:9/", "PBX_API_USER": "u", "PBX_API_PASSWORD": "pw"}


def test_without_redis_the_budget_is_local():
    client = client_from_env({**BASE, "PBX_BUDGET_REQUESTS": "10", "PBX_READ_TIMEOUT": "4"})
    assert isinstance(client.budget, LocalBudget)
    assert client.budget.requests == 10
    assert client.timeout == (3.0, 4.0)
    assert "pw" not in repr(client)


def test_with_redis_the_budget_is_shared_under_the_products_key():
    budget = budget_from_env({**BASE, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert isinstance(budget, RedisBudget)
    assert budget.key == "wallboard:pbx-budget"  # the Django settings' default
    assert (budget.requests, budget.window, budget.reserve) == (18, 5.0, 1)
    prefixed = budget_from_env({"REDIS_URL": "redis://x", "REDIS_KEY_PREFIX": "site2"})
    assert prefixed.key == "site2:pbx-budget"
    explicit = budget_from_env({"REDIS_URL": "redis://x", "PBX_BUDGET_KEY": "shared:ip"})
    assert explicit.key == "shared:ip"


@pytest.mark.parametrize(
    "environ",
    [
        {"PBX_API_USER": "u", "PBX_API_PASSWORD": "p"},
        {"PBX_API_URL": "http://x/", "PBX_API_USER": "u"},
        {**BASE, "PBX_BUDGET_WINDOW": "soon"},
        {**BASE, "PBX_API_URL": "ftp://x/"},
    ],
)
def test_incomplete_configuration_is_refused(environ):
    with pytest.raises(InvalidArgument):
        client_from_env(environ)


def test_a_budget_is_always_asked_even_when_none_is_given():
    assert isinstance(PBXClient("http://x/", "u", "p").budget, LocalBudget)
