"""Fixtures for the API tests: the real simulator (tests/conftest.py points the settings and
a unique Redis prefix at it) and the named personas of wallboard.control.access."""

from __future__ import annotations

import pytest
from django.core.cache import cache

# The same simulator and personas as the control tests.
from tests.control.conftest import admin_user, pbx, team_lead, viewer  # noqa: F401


@pytest.fixture(autouse=True)
def throttle_history_forgotten():
    """The action throttle counts in the process's cache; user ids repeat between tests."""
    cache.clear()
    yield
    cache.clear()
