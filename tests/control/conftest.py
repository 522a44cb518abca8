"""Fixtures for the control tests: the real simulator (tests/conftest.py points the settings
and a unique Redis prefix at it) and the named personas of wallboard.control.access."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from wallboard.control.models import TeamLeadAssignment


@pytest.fixture
def pbx(simulator_factory):
    """The simulated PBX, its call centre frozen; a stalled answer ("timeout" fault) lasts 2 s."""
    return simulator_factory(queues=2, agents=4, fault_delay=2.0)


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("boss")


@pytest.fixture
def viewer(db):
    return get_user_model().objects.create_user("viewer")


@pytest.fixture
def team_lead(db, pbx):
    """May act on the simulator's first queue only."""
    user = get_user_model().objects.create_user("lead")
    TeamLeadAssignment.objects.create(user=user, queue=min(pbx.centre.queue_numbers()))
    return user
