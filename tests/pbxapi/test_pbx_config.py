"""Building a client from the environment, as the CLI and scripts do: the product's shared
budget by default, limits checked against the PBX's, the PBX's time zone handed in."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from pbxapi.budget import FileBlockStore, LocalBudget, RedisBudget
from pbxapi.client import PBXClient, budget_from_env, client_from_env
from pbxapi.errors import InvalidArgument

BASE = {"PBX_API_URL": "http://127.0.0.1:9/", "PBX_API_USER": "u", "PBX_API_PASSWORD": "pw"}


def test_the_budget_is_the_products_shared_one_by_default():
    """No REDIS_URL is no reason to count alone: the product's Redis and key are the default."""
    client = client_from_env({**BASE, "PBX_READ_TIMEOUT": "4"})
    budget = client.budget
    assert isinstance(budget, RedisBudget)
    assert budget.key == "wallboard:pbx-budget"  # the Django settings' default
    connection = budget.redis.connection_pool.connection_kwargs
    assert (connection["host"], connection["port"], connection["db"]) == ("127.0.0.1", 6379, 0)
    assert (budget.requests, budget.window, budget.reserve) == (18, 5.0, 1)
    assert client.timeout == (3.0, 4.0)
    assert "pw" not in repr(client)


def test_the_key_follows_the_products_settings():
    prefixed = budget_from_env({"REDIS_URL": "redis://x", "REDIS_KEY_PREFIX": "site2"})
    assert prefixed.key == "site2:pbx-budget"
    explicit = budget_from_env({"REDIS_URL": "redis://x", "PBX_BUDGET_KEY": "shared:ip"})
    assert explicit.key == "shared:ip"


def test_a_private_budget_only_when_asked(tmp_path):
    private = budget_from_env(
        {"PBX_BUDGET_REQUESTS": "10", "PBX_BLOCK_FILE": str(tmp_path / "block")}, private=True
    )
    assert isinstance(private, LocalBudget)
    assert private.requests == 10
    assert isinstance(private.block_store, FileBlockStore)
    assert budget_from_env({}).block_store is None


def test_the_longest_hold_covers_the_clients_timeouts():
    budget = budget_from_env({"PBX_CONNECT_TIMEOUT": "5", "PBX_READ_TIMEOUT": "30"})
    assert budget.max_hold == 1.0 + 5 + 30
    assert budget_from_env({}).max_hold == 14.0  # the default timeouts' worst case
    client_from_env({**BASE, "PBX_CONNECT_TIMEOUT": "5", "PBX_READ_TIMEOUT": "30"})


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"PBX_BUDGET_REQUESTS": "21"}, "PBX_BUDGET_REQUESTS=21"),
        ({"PBX_BUDGET_WINDOW": "1"}, "PBX_BUDGET_WINDOW=1"),
        ({"PBX_RATE_LIMIT": "20/1", "PBX_BUDGET_REQUESTS": "25"}, "PBX_BUDGET_REQUESTS=25"),
        ({"PBX_RATE_LIMIT": "fast"}, "PBX_RATE_LIMIT='fast'"),
        ({"PBX_RATE_LIMIT": "0/5"}, "PBX_RATE_LIMIT='0/5'"),
        ({"PBX_BUDGET_REQUESTS": "18.5"}, "PBX_BUDGET_REQUESTS='18.5'"),
        ({"PBX_ACTION_RESERVE": "-1"}, "PBX_ACTION_RESERVE=-1"),
        ({"PBX_BLOCK_SECONDS": "0"}, "PBX_BLOCK_SECONDS=0"),
        ({"PBX_READ_TIMEOUT": "0"}, "PBX_READ_TIMEOUT=0"),
        ({"PBX_TIME_ZONE": "Bratislava"}, "PBX_TIME_ZONE='Bratislava'"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ],
)
def test_bad_budget_settings_are_refused_naming_the_variable(environ, names):
    with pytest.raises(InvalidArgument) as raised:
        client_from_env({**BASE, **environ})
    assert str(raised.value).startswith(names)


def test_a_simulator_with_another_limit_allows_its_budget():
    budget = budget_from_env(
        {"PBX_RATE_LIMIT": "20/1", "PBX_BUDGET_WINDOW": "1", "PBX_BUDGET_REQUESTS": "18"}
    )
    assert (budget.requests, budget.window, budget.pbx_limit) == (18, 1.0, (20, 1.0))


def test_the_pbx_time_zone_is_handed_to_the_client():
    assert client_from_env(BASE).time_zone == ZoneInfo("Europe/Bratislava")
    assert client_from_env({**BASE, "PBX_TIME_ZONE": "UTC"}).time_zone == ZoneInfo("UTC")


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
