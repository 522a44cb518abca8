from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from tests.boards.conftest import QUEUE_A, QUEUE_B
from wallboard.boards import kiosks
from wallboard.boards.models import Board, KioskToken
from wallboard.boards.services import kiosk_token_create, kiosk_token_revoke
from wallboard.control import access

pytestmark = pytest.mark.django_db


def test_it_lets_admins_act_on_every_queue(users):
    for name in ("admin", "group_admin"):
        user = users[name]
        assert access.visible_queues(user) is None
        assert access.can_act_on_queue(user, QUEUE_A)
        assert access.can_act_on_queue(user, 999)
        assert access.role_of(user) == "admin"


def test_it_lets_team_leads_act_only_on_their_queues(users):
    lead = users["lead"]
    assert access.can_view_queue(lead, QUEUE_B)
    assert access.can_act_on_queue(lead, QUEUE_A)
    assert not access.can_act_on_queue(lead, QUEUE_B)
    assert access.actionable_queues(lead) == {QUEUE_A}
    assert access.role_of(lead) == "team_lead"


def test_it_lets_viewers_see_but_not_act(users):
    viewer = users["viewer"]
    assert access.visible_queues(viewer) is None
    assert access.can_view_queue(viewer, QUEUE_A)
    assert not access.can_act_on_queue(viewer, QUEUE_A)
    assert access.role_of(viewer) == "viewer"


def test_it_gives_anonymous_and_inactive_users_nothing(users):
    for user in (AnonymousUser(), users["inactive"], None):
        assert access.visible_queues(user) == set()
        assert not access.can_view_queue(user, QUEUE_A)
        assert not access.can_act_on_queue(user, QUEUE_A)


def test_it_finds_a_live_kiosk_by_its_token():
    issued = kiosk_token_create(name="Wallroom", queues=[QUEUE_B, QUEUE_A])
    kiosk = kiosks.kiosk_from_token(issued.secret)
    assert kiosk == kiosks.Kiosk(
        id=issued.token.pk, name="Wallroom", queues=frozenset({QUEUE_A, QUEUE_B})
    )
    issued.token.refresh_from_db()
    assert issued.token.last_seen is not None


def test_it_stores_only_the_hash_of_a_kiosk_token():
    issued = kiosk_token_create(name="Wallroom")
    row = KioskToken.objects.get(pk=issued.token.pk)
    assert issued.secret not in row.token_hash
    assert len(row.token_hash) == 64


def test_it_scopes_a_kiosk_to_its_board_when_it_lists_no_queues():
    board = Board.objects.create(name="Sales floor", slug="sales", queues=[QUEUE_A])
    everything = kiosk_token_create(name="All")
    boarded = kiosk_token_create(name="Sales TV", board=board)
    assert kiosks.kiosk_from_token(everything.secret).queues is None
    kiosk = kiosks.kiosk_from_token(boarded.secret)
    assert kiosk.queues == frozenset({QUEUE_A})
    assert kiosk.board_id == board.pk


def test_it_refuses_revoked_and_unknown_kiosk_tokens(django_capture_on_commit_callbacks):
    issued = kiosk_token_create(name="Wallroom")
    with django_capture_on_commit_callbacks(execute=True):
        kiosk_token_revoke(token=issued.token)
    assert kiosks.kiosk_from_token(issued.secret) is None
    assert kiosks.kiosk_from_token("not-a-token") is None
    assert kiosks.kiosk_from_token("") is None


def test_it_notes_last_seen_at_most_once_a_minute():
    issued = kiosk_token_create(name="Wallroom")
    earlier = timezone.now() - timedelta(seconds=10)
    KioskToken.objects.filter(pk=issued.token.pk).update(last_seen=earlier)
    kiosks.kiosk_from_token(issued.secret)
    assert KioskToken.objects.get(pk=issued.token.pk).last_seen == earlier
    KioskToken.objects.filter(pk=issued.token.pk).update(last_seen=earlier - timedelta(minutes=5))
    kiosks.kiosk_from_token(issued.secret)
    assert KioskToken.objects.get(pk=issued.token.pk).last_seen > earlier


def test_it_rechecks_many_kiosk_tokens_in_one_query(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    hall, lobby, gone = (kiosk_token_create(name=n) for n in ("Hall", "Lobby", "Gone"))
    with django_capture_on_commit_callbacks(execute=True):
        kiosk_token_revoke(token=gone.token)
    asked = [hall.secret, lobby.secret, hall.secret, gone.secret, "not-a-token", ""]
    keys = [(secret, "all") for secret in asked]
    with django_assert_num_queries(2):  # the lookup, and one update noting both as seen
        verdicts = kiosks.kiosk_verdicts(keys, changed=4001, gone=4403)
    assert verdicts == {
        (hall.secret, "all"): None,
        (lobby.secret, "all"): None,
        (gone.secret, "all"): 4403,
        ("not-a-token", "all"): 4403,
        ("", "all"): 4403,
    }
    assert KioskToken.objects.get(pk=lobby.token.pk).last_seen is not None
    with django_assert_num_queries(1):  # seen a moment ago: no write
        assert kiosks.kiosk_verdicts([(lobby.secret, "100")], changed=4001, gone=4403) == {
            (lobby.secret, "100"): 4001
        }


def test_a_role_taken_away_applies_to_the_same_user_object_at_once(users):
    lead = users["lead"]
    assert access.can_act_on_queue(lead, QUEUE_A)
    lead.team_lead_assignments.all().delete()
    assert not access.can_act_on_queue(lead, QUEUE_A)
    group_admin = users["group_admin"]
    assert access.can_act_on_queue(group_admin, QUEUE_B)
    group_admin.groups.clear()
    assert not access.can_act_on_queue(group_admin, QUEUE_B)


def test_history_goes_to_admins_and_to_team_leads_for_their_queues(users):
    assert access.reportable_queues(users["admin"]) is None
    assert access.reportable_queues(users["lead"]) == {QUEUE_A}
    assert access.reportable_queues(users["viewer"]) == set()
    assert [access.can_report(users[n]) for n in ("admin", "lead", "viewer", "inactive")] == [
        True,
        True,
        False,
        False,
    ]
