"""The product's shared budget when Redis loses its memory: it starts full, and a block the PBX
imposed before is remembered in the database."""

from __future__ import annotations

import time

import pytest

from pbxapi.errors import Blocked, BudgetExhausted
from wallboard.live.models import PBXBlock
from wallboard.live.pbx import pbx_budget, redis_connection

pytestmark = pytest.mark.django_db


def _forget_everything(settings) -> None:
    """What a Redis restart, FLUSHALL or failover does to the budget's keys."""
    connection = redis_connection()
    keys = list(connection.scan_iter(match=f"{settings.PBX_BUDGET_KEY}*"))
    if keys:
        connection.delete(*keys)


def test_a_block_survives_redis_losing_its_memory(live_settings):
    budget = pbx_budget()
    until = budget.report_blocked(60)
    assert PBXBlock.objects.get(budget_key=live_settings.PBX_BUDGET_KEY).until == until
    _forget_everything(live_settings)
    with pytest.raises(Blocked) as blocked:
        budget.acquire(priority="poll")
    assert blocked.value.until == pytest.approx(until)
    assert budget.blocked_until() == pytest.approx(until)


def test_a_budget_that_lost_its_memory_starts_full(live_settings):
    budget = pbx_budget()
    budget.release(budget.acquire(priority="poll"))
    _forget_everything(live_settings)
    started = time.monotonic()
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(priority="action")
    # Nothing until a window and the longest hold have passed: the PBX may still be counting.
    assert refused.value.retry_after >= live_settings.PBX_BUDGET_WINDOW
    assert time.monotonic() - started < 1


def test_a_longer_block_is_never_shortened_in_the_database(live_settings):
    budget = pbx_budget()
    long = budget.report_blocked(120)
    budget.report_blocked(10)
    assert PBXBlock.objects.get().until == pytest.approx(long)
