"""missed_caller_call_back against the real simulator: a caller gives up, the history reads the
records, a team lead calls back -- the PBX's call/create is asked once, the attempt is audited,
the number is claimed until the records show the call's outcome or the claim times out; and
every way it can be refused or fail."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from pbxapi.errors import BudgetExhausted
from wallboard.control import services
from wallboard.control.callbacks import END_ANSWERED, END_NOT_ANSWERED
from wallboard.control.models import CallBackClaim, MemberAction, TeamLeadAssignment
from wallboard.control.selectors import (
    call_back_default_get,
    claims_judged,
    missed_caller_queues,
    missed_callers_list,
)
from wallboard.control.services import (
    ActionForbidden,
    ActionInvalid,
    ActionThrottled,
    CallBackClaimed,
    CallBackNotFound,
    CallBackServed,
    Reason,
    missed_caller_call_back,
)
from wallboard.history.models import CallRecord
from wallboard.history.services import call_records_upsert
from wallboard.live import store
from wallboard.live.pbx import pbx_budget

from .canned_pbx import CannedPBX
from .missed_calls import (
    DESK,
    NUMBER,
    SHOWN,
    answered_in_queue,
    gave_up,
    history_read,
    live_cache_filled,
    missed_numbers,
    placed,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pbx(simulator_factory):
    """The simulated PBX without callers of its own: every call is the test's."""
    return simulator_factory(queues=2, agents=4, fault_delay=2.0, call_rate=0)


@pytest.fixture
def centre(pbx):
    """The simulated PBX with the live cache filled (queues, extensions)."""
    live_cache_filled()
    return pbx


@pytest.fixture
def jana(db, centre):
    """A second team lead of the first queue, with a name."""
    user = get_user_model().objects.create_user("jana", first_name="Jana", last_name="Nováková")
    TeamLeadAssignment.objects.create(user=user, queue=first_queue(centre))
    return user


def first_queue(sim) -> int:
    return min(sim.centre.queue_numbers())


def last_queue(sim) -> int:
    return max(sim.centre.queue_numbers())


def call_back(user, entry, extension=DESK, source="console"):
    return missed_caller_call_back(user=user, entry=entry, extension=extension, source=source)


def listed(user, *, now=None) -> dict[str, object]:
    """The user's missed-callers list: number -> the call back in progress (None: none)."""
    entries = missed_callers_list(user=user, queues=missed_caller_queues(user=user), now=now)
    return {entry.number: entry.call_back for entry in entries}


def hm(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


# --- the PBX rings the extension, then dials the caller ----------------------------------------


def test_it_rings_the_extension_then_dials_the_caller_and_audits_it(centre, team_lead):
    entry = gave_up(centre, first_queue(centre))

    outcome = call_back(team_lead, entry)

    assert placed(centre) == [(str(DESK), NUMBER)]
    assert (outcome.ok, outcome.reason, outcome.code, outcome.detail) == (
        True,
        Reason.ACCEPTED,
        200,
        "Call queued",
    )
    assert outcome.message == (
        f"Call queued: extension {DESK} rings first; when it is picked up, the PBX dials {SHOWN}."
    )
    assert (outcome.entry, outcome.queue, outcome.number, outcome.number_display) == (
        entry,
        first_queue(centre),
        NUMBER,
        SHOWN,
    )
    audit = MemberAction.objects.get()
    assert (audit.action, audit.username, audit.source, audit.queue, audit.extension) == (
        "call_back",
        "lead",
        "console",
        first_queue(centre),
        DESK,
    )
    assert (audit.number, audit.ok, audit.reason, audit.code, audit.detail) == (
        NUMBER,
        True,
        "accepted",
        200,
        "Call queued",
    )
    claim = CallBackClaim.objects.get()
    assert (claim.number, claim.record, claim.extension, claim.name, claim.action) == (
        NUMBER,
        entry,
        DESK,
        "lead",
        audit,
    )
    assert claim.ended is None
    in_progress = listed(team_lead)[NUMBER]
    assert (in_progress.by_you, in_progress.name, in_progress.extension) == (True, "lead", DESK)
    # The extension is the lead's default from now on.
    assert call_back_default_get(user=team_lead) == DESK


def test_a_double_click_places_one_call_and_says_you_are_calling_already(centre, team_lead):
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    started = CallBackClaim.objects.get().started

    with pytest.raises(CallBackClaimed) as refused:
        call_back(team_lead, entry)

    assert str(refused.value) == (
        f"{SHOWN} is already being called back by you since {hm(started)} (extension {DESK})."
    )
    assert refused.value.claim.by_you
    assert placed(centre) == [(str(DESK), NUMBER)]
    assert MemberAction.objects.count() == 1


def test_a_second_team_lead_learns_who_is_calling_back_and_sends_nothing(
    centre, team_lead, jana, admin_user
):
    entry = gave_up(centre, first_queue(centre))
    assert call_back(jana, entry).ok
    started = CallBackClaim.objects.get().started

    for other in (team_lead, admin_user):
        with pytest.raises(CallBackClaimed) as refused:
            call_back(other, entry, extension=min(centre.centre.members(first_queue(centre))))
        assert str(refused.value) == (
            f"{SHOWN} is being called back by Jana Nováková since {hm(started)}."
        )
        assert not refused.value.claim.by_you

    assert placed(centre) == [(str(DESK), NUMBER)]
    seen = listed(team_lead)[NUMBER]
    assert (seen.name, seen.by_you, seen.extension, seen.since) == (
        "Jana Nováková",
        False,
        DESK,
        started,
    )


def test_without_an_extension_the_last_one_used_rings(centre, team_lead):
    first = gave_up(centre, first_queue(centre))
    second = gave_up(centre, first_queue(centre), "00421905654321")
    with pytest.raises(ActionInvalid, match="Choose the extension"):
        call_back(team_lead, first, extension=None)
    assert placed(centre) == []

    assert call_back(team_lead, first).ok
    assert call_back(team_lead, second, extension=None).ok

    assert placed(centre) == [(str(DESK), NUMBER), (str(DESK), "00421905654321")]


def test_an_older_missed_call_of_the_same_caller_names_them_too(centre, team_lead):
    """A list fetched before the caller tried again names their earlier attempt."""
    queue = first_queue(centre)
    earlier = gave_up(centre, queue)
    newest = gave_up(centre, queue)
    assert newest != earlier

    assert call_back(team_lead, earlier).ok
    assert CallBackClaim.objects.get().record == earlier
    assert placed(centre) == [(str(DESK), NUMBER)]


# --- who may ------------------------------------------------------------------------------------


def test_a_team_lead_may_not_call_back_another_teams_caller(centre, team_lead):
    entry = gave_up(centre, last_queue(centre))
    with pytest.raises(ActionForbidden, match=f"queue {last_queue(centre)}"):
        call_back(team_lead, entry)
    assert placed(centre) == []
    assert not MemberAction.objects.exists() and not CallBackClaim.objects.exists()
    # ... nor sees it: the list is of their own queues.
    assert NUMBER not in listed(team_lead)


def test_an_admin_calls_back_any_queue_and_a_viewer_none(centre, admin_user, viewer):
    entry = gave_up(centre, last_queue(centre))
    with pytest.raises(ActionForbidden):
        call_back(viewer, entry)
    with pytest.raises(PermissionDenied):
        missed_caller_queues(user=viewer)
    assert call_back(admin_user, entry).ok
    assert placed(centre) == [(str(DESK), NUMBER)]


# --- refused before any PBX request --------------------------------------------------------------


def test_an_extension_the_pbx_does_not_have_or_cannot_ring_is_refused(centre, team_lead):
    entry = gave_up(centre, first_queue(centre))
    with pytest.raises(ActionInvalid, match="Extension 999 is not one of the PBX's extensions"):
        call_back(team_lead, entry, extension=999)
    agent = min(centre.centre.members(first_queue(centre)))
    centre.centre.set_registered(agent, False)
    live_cache_filled()
    with pytest.raises(ActionInvalid, match=f"Extension {agent} has no phone registered"):
        call_back(team_lead, entry, extension=agent)
    for bad in (0, -1, "20a", True, 2**31):
        with pytest.raises(ActionInvalid):
            call_back(team_lead, entry, extension=bad)
    with pytest.raises(ActionInvalid):
        call_back(team_lead, entry, source="fax")
    assert placed(centre) == []
    assert not MemberAction.objects.exists() and not CallBackClaim.objects.exists()


def test_before_the_extensions_are_known_nothing_is_sent(centre, team_lead):
    entry = gave_up(centre, first_queue(centre))
    store.source_set(store.SOURCE_EXTENSIONS, {"fetched": time.time(), "by_extension": {}})

    outcome = call_back(team_lead, entry)

    assert (outcome.ok, outcome.reason) == (False, Reason.UNAVAILABLE)
    assert outcome.message == "The PBX's extensions are not known yet; try again in a minute."
    assert outcome.retry_after == 60
    assert placed(centre) == [] and not MemberAction.objects.exists()


def test_a_number_the_pbx_cannot_dial_is_refused(centre, team_lead):
    entry = gave_up(centre, first_queue(centre), "0905123456#12")
    with pytest.raises(ActionInvalid, match="not an outside number the PBX can dial"):
        call_back(team_lead, entry)
    assert placed(centre) == []


@pytest.mark.parametrize("entry", [0, -3, 10**20, "7", None])
def test_an_entry_that_is_no_record_is_not_found(centre, team_lead, entry):
    with pytest.raises(CallBackNotFound):
        call_back(team_lead, entry)


def test_an_unknown_or_answered_or_another_days_call_is_not_found(centre, team_lead):
    queue = first_queue(centre)
    gave_up(centre, queue)
    answered_in_queue(centre, queue, "00421905777777")
    answered = CallRecord.objects.get(outcome="answered").id
    zone = ZoneInfo(settings.PBX_TIME_ZONE)
    yesterday = timezone.now().astimezone(zone) - timedelta(days=1)
    call_records_upsert(
        rows=[
            {
                "id": "900001",
                "type": "incoming",
                "when": yesterday.strftime("%Y-%m-%d %H:%M:%S"),
                "caller": "00421905888888",
                "received": str(queue),
                "destination": str(queue),
                "duration": "0",
                "application": "queue",
                "status": "missed",
                "complete_duration": "30",
            }
        ],
        known={queue},
        zone=zone,
        stored_at=timezone.now(),
    )

    for entry, words in [
        (123456789, "There is no missed call 123456789"),
        (int(answered), f"There is no missed call {answered}"),
        (900001, "not today's"),
    ]:
        with pytest.raises(CallBackNotFound, match=words):
            call_back(team_lead, entry)
    assert placed(centre) == []


def test_a_caller_served_since_needs_no_call_back(centre, team_lead):
    queue = first_queue(centre)
    entry = gave_up(centre, queue)
    answered_in_queue(centre, queue)
    assert NUMBER not in missed_numbers()

    with pytest.raises(CallBackServed, match=f"{SHOWN} has been answered or called back since"):
        call_back(team_lead, entry)

    # Gave up again later: the old entry still says served, the new one is called back.
    newer = gave_up(centre, queue)
    with pytest.raises(CallBackServed):
        call_back(team_lead, entry)
    assert call_back(team_lead, newer).ok
    assert placed(centre) == [(str(DESK), NUMBER)]


def test_too_many_actions_are_throttled_before_any_request(centre, team_lead, settings):
    settings.ACTIONS_PER_USER_PER_MINUTE = 1
    first = gave_up(centre, first_queue(centre))
    second = gave_up(centre, first_queue(centre), "00421905654321")
    assert call_back(team_lead, first).ok

    with pytest.raises(ActionThrottled) as refused:
        call_back(team_lead, second)

    assert 1 <= refused.value.retry_after <= 60
    assert placed(centre) == [(str(DESK), NUMBER)]
    assert CallBackClaim.objects.count() == 1


def test_without_redis_nothing_is_sent_or_claimed(centre, team_lead):
    """The extensions, the throttle and the budget live in Redis: without it nothing is sent."""
    entry = gave_up(centre, first_queue(centre))
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
        outcome = call_back(team_lead, entry)
    assert (outcome.ok, outcome.reason, outcome.retry_after) == (False, Reason.UNAVAILABLE, 5)
    assert placed(centre) == []
    assert not MemberAction.objects.exists() and not CallBackClaim.objects.exists()


# --- the PBX says no, or cannot be asked ---------------------------------------------------------


def test_a_number_the_pbx_refuses_frees_it_again(centre, team_lead, live_settings):
    entry = gave_up(centre, first_queue(centre))
    refusing = CannedPBX(body={"code": 400, "message": "Invalid destination"})
    live_settings.PBX_BASE_URL = refusing.url
    try:
        outcome = call_back(team_lead, entry)
    finally:
        refusing.stop()

    assert [path for path, _query in refusing.requests] == ["/api/call/create"]
    assert refusing.requests[0][1] == {"caller": str(DESK), "destination": NUMBER}
    assert (outcome.ok, outcome.reason, outcome.code) == (False, Reason.REFUSED, 400)
    assert outcome.message.startswith("The PBX refused the call:")
    assert "Invalid destination" in outcome.message
    audit = MemberAction.objects.get()
    assert (audit.ok, audit.reason) == (False, "refused")
    assert CallBackClaim.objects.get().end_reason == "not_sent"
    assert listed(team_lead)[NUMBER] is None  # anyone may try again at once


def test_a_blocked_pbx_sends_nothing_and_frees_the_number(centre, team_lead):
    entry = gave_up(centre, first_queue(centre))
    centre.centre.set_fault("forbidden")

    outcome = call_back(team_lead, entry)

    assert (outcome.ok, outcome.reason, outcome.code) == (False, Reason.BLOCKED, 403)
    assert outcome.message.startswith("PBX blocked until ")
    assert outcome.retry_after >= 1
    assert listed(team_lead)[NUMBER] is None
    assert not MemberAction.objects.get().ok


def test_no_budget_slot_sends_nothing_and_frees_the_number(
    centre, team_lead, settings, redis_prefix
):
    entry = gave_up(centre, first_queue(centre))
    # A long window on a budget of its own: no slot of the test's earlier requests frees.
    settings.PBX_BUDGET_WINDOW = 30.0
    settings.PBX_BUDGET_KEY = f"{redis_prefix}:long-window-budget"
    budget = pbx_budget()
    budget.declare_unused()
    with pytest.raises(BudgetExhausted):  # every slot of the window taken
        for _ in range(settings.PBX_BUDGET_REQUESTS + 1):
            budget.acquire(priority="action")

    outcome = call_back(team_lead, entry)

    assert (outcome.ok, outcome.reason) == (False, Reason.BUDGET_EXHAUSTED)
    assert outcome.retry_after >= 1
    assert placed(centre) == []
    assert listed(team_lead)[NUMBER] is None


def test_a_silent_pbx_keeps_the_number_claimed(centre, team_lead, admin_user):
    """No answer in time: the phone may ring anyway, so nobody else dials the number."""
    entry = gave_up(centre, first_queue(centre))
    centre.centre.set_fault("timeout")

    outcome = call_back(team_lead, entry)

    assert (outcome.ok, outcome.reason) == (False, Reason.TIMEOUT)
    assert "may or may not have been placed" in outcome.message
    assert "stays yours for 10 minutes" in outcome.message
    centre.centre.set_fault(None)
    with pytest.raises(CallBackClaimed):
        call_back(admin_user, entry)


# --- the audit record and the claim around the PBX request ---------------------------------------


def test_the_attempt_is_audited_and_claimed_before_the_pbx_is_asked(centre, team_lead, monkeypatch):
    entry = gave_up(centre, first_queue(centre))
    seen = []
    real_send = services._call_back_send

    def send_and_look(subject):
        seen.append(
            (
                list(MemberAction.objects.values_list("action", "ok", "finished")),
                list(CallBackClaim.objects.values_list("ended", flat=True)),
            )
        )
        return real_send(subject)

    monkeypatch.setattr(services, "_call_back_send", send_and_look)
    assert call_back(team_lead, entry).ok
    assert seen == [([("call_back", None, None)], [None])]


def test_a_crash_during_the_pbx_request_leaves_the_number_claimed(centre, team_lead, monkeypatch):
    entry = gave_up(centre, first_queue(centre))

    def crash(subject):
        raise RuntimeError("the process is going down")

    monkeypatch.setattr(services, "_call_back_send", crash)
    with pytest.raises(RuntimeError):
        call_back(team_lead, entry)
    audit = MemberAction.objects.get()
    assert (audit.ok, audit.reason, audit.detail) == (
        False,
        "pbx_error",
        "Internal error before the PBX answered",
    )
    assert CallBackClaim.objects.get().ended is None  # the phone may be ringing


# --- when a claim ends ----------------------------------------------------------------------------


def test_an_answered_call_back_serves_the_caller(centre, team_lead):
    centre.centre.set_call_outcome(NUMBER, "answered")
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    history_read(centre)
    assert NUMBER in missed_numbers()  # the call is still going on: no record yet

    centre.centre.advance(20)  # the desk picks up, the PBX dials, the caller answers
    centre.centre.end_call(DESK)
    history_read(centre)

    assert NUMBER not in missed_numbers()
    assert NUMBER not in listed(team_lead)
    [(_claim, reason)] = claims_judged(
        claims=CallBackClaim.objects.filter(ended__isnull=True), now=timezone.now()
    )
    assert reason == END_ANSWERED


def test_an_unanswered_call_back_frees_the_number_for_the_next_try(centre, team_lead, jana):
    centre.centre.set_call_outcome(NUMBER, "missed")
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    centre.centre.advance(40)  # rings the desk, dials, nobody answers within 25 s
    history_read(centre)

    assert listed(jana)[NUMBER] is None  # still missed, nobody calling back
    [(_claim, reason)] = claims_judged(
        claims=CallBackClaim.objects.filter(ended__isnull=True), now=timezone.now()
    )
    assert reason == END_NOT_ANSWERED

    centre.centre.set_call_outcome(NUMBER, "answered")
    assert call_back(jana, entry).ok
    assert placed(centre) == [(str(DESK), NUMBER), (str(DESK), NUMBER)]
    ended = CallBackClaim.objects.get(ended__isnull=False)
    assert (ended.name, ended.end_reason) == ("lead", END_NOT_ANSWERED)
    assert CallBackClaim.objects.get(ended__isnull=True).name == "Jana Nováková"


def test_a_call_the_pbx_could_not_place_holds_the_number_until_the_claim_times_out(
    centre, team_lead, jana, settings
):
    """The PBX says "Call queued" to a number it cannot dial and writes no record: only the
    claim's time ends it."""
    centre.centre.set_call_outcome(NUMBER, "invalid")
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    centre.centre.advance(60)
    history_read(centre)
    with pytest.raises(CallBackClaimed):
        call_back(jana, entry)
    almost = timezone.now() + timedelta(seconds=settings.CALLBACK_CLAIM_SECONDS - 5)
    assert listed(jana, now=almost)[NUMBER] is not None

    with time_machine.travel(timezone.now() + timedelta(seconds=settings.CALLBACK_CLAIM_SECONDS)):
        assert listed(jana)[NUMBER] is None
        centre.centre.set_call_outcome(NUMBER, None)
        assert call_back(jana, entry).ok

    assert len(placed(centre)) == 2
    assert list(CallBackClaim.objects.order_by("id").values_list("end_reason", flat=True)) == [
        "expired",
        "",
    ]


def test_a_row_stored_before_the_claim_does_not_end_it(centre, team_lead, jana):
    """The desk's earlier unanswered call to the number belongs to the earlier call back."""
    centre.centre.set_call_outcome(NUMBER, "missed")
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    centre.centre.advance(40)
    history_read(centre)  # the first call back's row: missed

    assert call_back(jana, entry).ok  # from the same desk, seconds later

    with pytest.raises(CallBackClaimed, match="Jana"):
        call_back(team_lead, entry)
    assert len(placed(centre)) == 2


def test_the_claim_is_one_per_number_in_the_database(centre, team_lead):
    """The rule itself, not only the service's reading of it: a second open claim on one
    number cannot be written."""
    entry = gave_up(centre, first_queue(centre))
    assert call_back(team_lead, entry).ok
    claim = CallBackClaim.objects.get()
    claim.pk = None
    claim.action = None
    with pytest.raises(IntegrityError), transaction.atomic():
        claim.save()
    claim.ended = timezone.now()
    claim.save()  # an ended one beside it is fine
    assert CallBackClaim.objects.count() == 2


def test_a_call_back_is_no_member_action(centre, admin_user):
    """The websocket's and the member endpoints' way in refuses it: it has its own."""
    with pytest.raises(ActionInvalid):
        services.member_action(
            user=admin_user, queue=first_queue(centre), extension=DESK, action="call_back",
            source="websocket",
        )  # fmt: skip
    assert placed(centre) == []
