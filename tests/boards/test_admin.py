from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.boards.conftest import QUEUE_A
from wallboard.boards import kiosks
from wallboard.boards.models import Board, KioskToken

pytestmark = pytest.mark.django_db


def test_adding_a_kiosk_token_in_the_admin_shows_its_url_once(client_for, settings):
    settings.SITE_URL = "https://board.example.sk"
    client = client_for("admin")
    response = client.post(
        reverse("admin:boards_kiosktoken_add"),
        {"name": "Lobby", "queues": f"{QUEUE_A}", "board": ""},
        follow=True,
    )
    html = response.content.decode()
    match = re.search(r"https://board\.example\.sk/kiosk/([\w-]+)/", html)
    assert match, html
    kiosk = kiosks.kiosk_from_token(match.group(1))
    assert kiosk.name == "Lobby" and kiosk.queues == frozenset({QUEUE_A})
    change = client.get(reverse("admin:boards_kiosktoken_change", args=[kiosk.id]))
    assert match.group(1) not in change.content.decode()


def test_the_admin_revoke_action_revokes(client_for, django_capture_on_commit_callbacks):
    client = client_for("admin")
    client.post(
        reverse("admin:boards_kiosktoken_add"), {"name": "Lobby", "queues": "", "board": ""}
    )
    token = KioskToken.objects.get(name="Lobby")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:boards_kiosktoken_changelist"),
            {"action": "revoke", "_selected_action": [token.pk]},
        )
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_viewers_and_team_leads_cannot_open_the_admin(client_for):
    for name in ("viewer", "lead"):
        response = client_for(name).get(reverse("admin:boards_queuedisplay_changelist"))
        assert response.status_code == 302


def test_a_board_takes_queues_as_comma_separated_numbers(client_for):
    client = client_for("admin")
    data = {
        "name": "Sales floor",
        "slug": "sales",
        "queues": "101, 100",
        "queues_per_page": 3,
        "rotation_seconds": 15,
    }
    client.post(reverse("admin:boards_board_add"), data)
    board = Board.objects.get(slug="sales")
    assert board.queues == [101, 100]
    page = client.get(reverse("admin:boards_board_change", args=[board.pk])).content.decode()
    assert 'value="101, 100"' in page
    bad = client.post(reverse("admin:boards_board_add"), {**data, "slug": "x", "queues": "1,a"})
    assert bad.status_code == 200 and not Board.objects.filter(slug="x").exists()
