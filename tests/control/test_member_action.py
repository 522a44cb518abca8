"""member_action against the real simulator: the action reaches the PBX, is audited, the PBX's
words come back, the snapshot shows the result; and every way it can fail."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from tests.live.helpers import pbx_paths
from wallboard.control import services
from wallboard.control.models import MemberAction
from wallboard.control.services import (
    ActionForbidden,
    ActionInvalid,
    Reason,
    member_action,
)
from wallboard.live import selectors, store
from wallboard.live import services as live_services
from wallboard.live.pbx import pbx_budget, pbx_client
from wallboard.live.snapshots import status_normalise
from wallboard.live.store import source_queue_status

pytestmark = pytest.mark.django_db


def first_queue(sim) -> int:
    return min(sim.centre.queue_numbers())


def member_extensions(sim, queue: int) -> list[int]:
    return sorted(sim.centre.members(queue))


def member_of(sim, queue: int, extension: int) -> bool | None:
    """The simulator's own view: None when not a member, else whether it is paused."""
    if extension not in sim.centre.members(queue):
        return None
    return sim.centre.member_state(queue, extension)["paused"]


def a_non_member(sim, queue: int) -> int:
    outside = sorted(set(sim.centre.extensions()) - set(sim.centre.members(queue)))
    assert outside, "the simulated centre should have agents outside the first queue"
    return outside[0]


def pbx_requests(sim) -> int:
    return len(sim.requests_log)


def action_requests(sim) -> list[str]:
    return [path for (_t, _ip, _method, path, _status) in sim.requests_log if "/queue/" in path]


def act(user, queue, extension, action, source="console"):
    return member_action(user=user, queue=queue, extension=extension, action=action, source=source)


# --- the PBX does it ---------------------------------------------------------------------------


def test_it_pauses_on_the_pbx_audits_and_refreshes_the_snapshot(pbx, admin_user):
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    assert member_of(pbx, queue, extension) is False

    outcome = act(admin_user, queue, extension, "pause", source="api")

    assert (outcome.ok, outcome.code, outcome.detail, outcome.message) == (
        True,
        200,
        "Paused",
        "Paused",
    )
    assert outcome.reason is Reason.ACCEPTED
    assert member_of(pbx, queue, extension) is True
    row = MemberAction.objects.get()
    assert (row.user, row.username, row.source, row.queue, row.extension, row.action) == (
        admin_user,
        "boss",
        "api",
        queue,
        extension,
        "pause",
    )
    assert (row.ok, row.code, row.detail) == (True, 200, "Paused")
    assert abs(time.time() - row.created.timestamp()) < 30
    # The refresh ran at once: the stored snapshot already shows the member paused.
    snapshot = selectors.snapshot_get(queue=queue)
    assert snapshot is not None
    member = next(m for m in snapshot["members"] if m["extension"] == extension)
    assert member["paused"] is True
    assert member["state"] in {"paused", "offline"}


def test_it_unpauses_adds_and_removes(pbx, admin_user):
    queue = first_queue(pbx)
    member = member_extensions(pbx, queue)[0]
    outsider = a_non_member(pbx, queue)
    pbx.centre.set_paused(queue, member, True)

    unpause = act(admin_user, queue, member, "unpause")
    add = act(admin_user, queue, outsider, "add")
    assert member_of(pbx, queue, outsider) is False  # added, not paused
    remove = act(admin_user, queue, outsider, "remove")

    assert [(o.ok, o.code, o.message) for o in (unpause, add, remove)] == [
        (True, 200, "Unpaused"),
        (True, 200, "Added to queue"),
        (True, 200, "Removed from queue"),
    ]
    assert member_of(pbx, queue, member) is False
    assert member_of(pbx, queue, outsider) is None
    assert list(MemberAction.objects.order_by("id").values_list("action", "ok")) == [
        ("unpause", True),
        ("add", True),
        ("remove", True),
    ]
    snapshot = selectors.snapshot_get(queue=queue)
    assert outsider not in {m["extension"] for m in snapshot["members"]}


def _polled(queue: int) -> None:
    """The poller has fetched the queue (its status and the calls) and built its snapshot."""
    live_services.queue_refresh(queue=queue, with_calls=True)


def test_a_pause_is_shown_from_the_pbxs_answer_without_a_request(pbx, admin_user):
    """The PBX's "Paused" says all that changed: every board shows it at once, and the one
    request spent is the action's (a refresh would cost the boards a slot of their polling)."""
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    _polled(queue)
    version = selectors.snapshot_get(queue=queue)["version"]
    spent = pbx_requests(pbx)

    outcome = act(admin_user, queue, extension, "pause")

    assert outcome.ok
    assert pbx_paths(pbx, spent) == ["/api/queue/pause"]
    snapshot = selectors.snapshot_get(queue=queue)
    member = next(m for m in snapshot["members"] if m["extension"] == extension)
    assert (member["paused"], member["state"]) == (True, "paused")
    assert snapshot["version"] > version
    # The queue's next poll confirms it: nothing changes on the boards.
    live_services.source_fetch(source_queue_status(queue))
    assert selectors.snapshot_get(queue=queue)["version"] == snapshot["version"]


def test_an_older_answer_in_flight_does_not_undo_a_pause(pbx, admin_user):
    """A poll requested before the pause and answered after it may not include it yet."""
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    _polled(queue)
    requested = time.time()
    status = pbx_client().queue_status(queue)  # the PBX answers: not paused
    act(admin_user, queue, extension, "pause")
    # ... and that answer is stored only now, after the pause was shown.
    store.source_set(
        source_queue_status(queue),
        status_normalise(status, fetched=time.time(), requested=requested),
    )
    live_services.snapshots_rebuild(queues=[queue])

    member = next(
        m for m in selectors.snapshot_get(queue=queue)["members"] if m["extension"] == extension
    )
    assert member["paused"] is True
    # A status requested after the pause is the PBX's word: an agent unpaused at the phone.
    pbx.centre.set_paused(queue, extension, False)
    live_services.source_fetch(source_queue_status(queue))
    member = next(
        m for m in selectors.snapshot_get(queue=queue)["members"] if m["extension"] == extension
    )
    assert member["paused"] is False


def test_an_add_fetches_the_queue_at_once(pbx, admin_user):
    """Who is in the queue, and with which details, only the PBX knows: one request more."""
    queue = first_queue(pbx)
    outsider = a_non_member(pbx, queue)
    _polled(queue)
    spent = pbx_requests(pbx)

    assert act(admin_user, queue, outsider, "add").ok

    assert pbx_paths(pbx, spent) == ["/api/queue/add", "/api/queue/status"]
    snapshot = selectors.snapshot_get(queue=queue)
    assert outsider in {m["extension"] for m in snapshot["members"]}


def test_a_team_lead_may_act_on_their_queue_only(pbx, team_lead):
    queue = first_queue(pbx)
    other = max(pbx.centre.queue_numbers())
    assert act(team_lead, queue, member_extensions(pbx, queue)[0], "pause").ok
    spent = pbx_requests(pbx)
    with pytest.raises(ActionForbidden):
        act(team_lead, other, member_extensions(pbx, other)[0], "pause")
    assert pbx_requests(pbx) == spent
    assert MemberAction.objects.count() == 1


# --- the PBX says no ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "pick", "code", "words"),
    [
        ("add", "member", 400, "Already there"),
        ("remove", "outsider", 400, "Not there"),
        ("pause", "outsider", 400, "Not there"),
        ("unpause", "outsider", 400, "Not there"),
    ],
)
def test_a_refusal_comes_back_in_the_pbx_words(pbx, admin_user, action, pick, code, words):
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0] if pick == "member" else a_non_member(pbx, queue)

    outcome = act(admin_user, queue, extension, action)

    assert (outcome.ok, outcome.reason, outcome.code, outcome.detail, outcome.message) == (
        False,
        Reason.REFUSED,
        code,
        words,
        words,
    )
    row = MemberAction.objects.get()
    assert (row.ok, row.code, row.detail, row.action) == (False, code, words, action)
    # A refusal is an answer: the PBX is reachable.
    assert selectors.pbx_state_get()["state"] == "ok"


def test_an_unknown_queue_is_no_such_queue(pbx, admin_user):
    missing = max(pbx.centre.queue_numbers()) + 100
    outcome = act(admin_user, missing, member_extensions(pbx, first_queue(pbx))[0], "pause")
    assert (outcome.ok, outcome.code, outcome.message) == (False, 401, "No such queue")
    assert MemberAction.objects.get().detail == "No such queue"


# --- the PBX cannot be used --------------------------------------------------------------------


def test_a_403_blocks_and_says_until_when_in_bratislava_time(pbx, admin_user, settings):
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    pbx.centre.set_fault("forbidden")

    outcome = act(admin_user, queue, extension, "pause")

    assert (outcome.ok, outcome.reason, outcome.code) == (False, Reason.BLOCKED, 403)
    until = selectors.pbx_state_get()["blocked_until"]
    assert until is not None
    local = datetime.fromisoformat(until).astimezone(ZoneInfo("Europe/Bratislava"))
    assert outcome.message == f"PBX blocked until {local:%H:%M}"
    assert 1 <= outcome.retry_after <= settings.PBX_BLOCK_SECONDS + 1
    assert selectors.pbx_state_get()["state"] == "blocked"
    row = MemberAction.objects.get()
    assert (row.ok, row.code) == (False, 403)

    # Blocked means blocked: the next action spends no request, and says the same.
    pbx.centre.set_fault(None)
    spent = pbx_requests(pbx)
    again = act(admin_user, queue, extension, "pause")
    assert (again.ok, again.reason, again.message) == (False, Reason.BLOCKED, outcome.message)
    assert pbx_requests(pbx) == spent
    assert MemberAction.objects.count() == 2
    assert member_of(pbx, queue, extension) is False


def test_a_silent_pbx_is_a_timeout(pbx, admin_user):
    queue = first_queue(pbx)
    pbx.centre.set_fault("timeout")
    outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    assert (outcome.ok, outcome.reason, outcome.code) == (False, Reason.TIMEOUT, None)
    assert "may or may not" in outcome.message
    row = MemberAction.objects.get()
    assert (row.ok, row.code) == (False, None)
    assert row.detail


def test_a_pbx_that_is_down_is_unreachable(pbx, admin_user):
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    pbx.centre.set_fault("down")
    outcome = act(admin_user, queue, extension, "pause")
    assert (outcome.ok, outcome.reason) == (False, Reason.UNREACHABLE)
    assert outcome.message == "The PBX is unreachable."
    assert selectors.pbx_state_get()["state"] == "unreachable"
    assert not MemberAction.objects.get().ok


def test_a_broken_answer_is_a_pbx_error_without_credentials(pbx, admin_user, settings):
    queue = first_queue(pbx)
    pbx.centre.set_fault("html500")
    outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    assert (outcome.ok, outcome.reason) == (False, Reason.PBX_ERROR)
    for text in (outcome.detail, outcome.message, MemberAction.objects.get().detail):
        assert settings.PBX_SECRET not in text


def test_no_budget_slot_sends_nothing_and_says_when_to_retry(pbx, admin_user, settings):
    queue = first_queue(pbx)
    settings.PBX_BUDGET_WINDOW = 30.0
    budget = pbx_budget()
    for _ in range(settings.PBX_BUDGET_REQUESTS):
        budget.acquire(priority="action")
    spent = pbx_requests(pbx)

    started = time.monotonic()
    outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")

    assert (outcome.ok, outcome.reason) == (False, Reason.BUDGET_EXHAUSTED)
    assert outcome.retry_after is not None and outcome.retry_after >= 1
    assert time.monotonic() - started < services.ACTION_MAX_WAIT_SECONDS + 2
    assert pbx_requests(pbx) == spent
    assert not MemberAction.objects.get().ok


def test_without_redis_no_request_is_sent(pbx, admin_user):
    """The budget and the throttle live in Redis: without it, sending could get the whole IP
    blocked. Nothing is sent, so there is no action to audit."""
    queue = first_queue(pbx)
    spent = pbx_requests(pbx)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
        outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    assert (outcome.ok, outcome.reason, outcome.retry_after) == (False, Reason.UNAVAILABLE, 5)
    assert pbx_requests(pbx) == spent
    assert not MemberAction.objects.exists()


def test_a_failed_refresh_does_not_undo_a_done_action(pbx, admin_user, settings):
    """One slot in a long window: the action gets it, the refresh after it cannot."""
    settings.PBX_BUDGET_REQUESTS = 1
    settings.PBX_ACTION_RESERVE = 0
    settings.PBX_BUDGET_WINDOW = 60.0
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]

    outcome = act(admin_user, queue, extension, "pause")

    assert outcome.ok
    assert member_of(pbx, queue, extension) is True
    assert MemberAction.objects.get().ok
    assert len(action_requests(pbx)) == 1
    assert selectors.snapshot_get(queue=queue) is None  # the refresh found no slot


# --- refused before any PBX request ------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", ["viewer", "anonymous"])
def test_a_user_who_may_not_act_spends_no_request(pbx, request, user_fixture):
    from django.contrib.auth.models import AnonymousUser

    user = AnonymousUser() if user_fixture == "anonymous" else request.getfixturevalue(user_fixture)
    queue = first_queue(pbx)
    spent = pbx_requests(pbx)
    with pytest.raises(ActionForbidden):
        act(user, queue, member_extensions(pbx, queue)[0], "pause")
    assert pbx_requests(pbx) == spent
    assert not MemberAction.objects.exists()


@pytest.mark.parametrize(
    ("queue", "extension", "action", "source"),
    [
        (0, 201, "pause", "api"),
        (-5, 201, "pause", "api"),
        ("10a", 201, "pause", "api"),
        (True, 201, "pause", "api"),
        (100, None, "pause", "api"),
        (100, 1.5, "pause", "api"),
        (100, 2**31, "pause", "api"),
        (100, 201, "dance", "api"),
        (100, 201, ["pause"], "api"),
        (100, 201, "pause", "fax"),
    ],
)
def test_invalid_input_spends_no_request(pbx, admin_user, queue, extension, action, source):
    spent = pbx_requests(pbx)
    with pytest.raises(ActionInvalid):
        act(admin_user, queue, extension, action, source=source)
    assert pbx_requests(pbx) == spent
    assert not MemberAction.objects.exists()


def test_digit_strings_are_numbers(pbx, admin_user):
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]
    assert act(admin_user, str(queue), str(extension), "pause").ok
    assert MemberAction.objects.get().queue == queue


# --- the audit record around the PBX request --------------------------------------------------


def test_the_attempt_is_recorded_as_pending_before_the_pbx_is_asked(pbx, admin_user, monkeypatch):
    queue = first_queue(pbx)
    seen = []
    real_send = services._send

    def send_and_look(**subject):
        seen.append(list(MemberAction.objects.values_list("ok", "finished")))
        return real_send(**subject)

    monkeypatch.setattr(services, "_send", send_and_look)
    outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    assert seen == [[(None, None)]]  # in the trail, pending, while the PBX was being asked
    record = MemberAction.objects.get()
    assert (record.ok, record.reason) == (True, "accepted") and record.finished is not None
    assert outcome.ok


def test_a_crash_during_the_pbx_request_leaves_a_record_that_says_so(pbx, admin_user, monkeypatch):
    queue = first_queue(pbx)

    def crash(**subject):
        raise RuntimeError("the process is going down")

    monkeypatch.setattr(services, "_send", crash)
    with pytest.raises(RuntimeError):
        act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    record = MemberAction.objects.get()
    assert (record.ok, record.reason) == (False, "pbx_error")
    assert record.detail == "Internal error before the PBX answered"


def test_a_failed_audit_write_after_the_pbx_acted_is_not_an_error(pbx, admin_user, monkeypatch):
    """The PBX paused the agent: telling the supervisor it failed would make them click again."""
    queue = first_queue(pbx)
    extension = member_extensions(pbx, queue)[0]

    real_save = MemberAction.save

    def database_gone_after_the_first_write(self, *args, **kwargs):
        if self.pk is not None:  # the completion, not the pending record
            raise services.DatabaseError("the database went away")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(MemberAction, "save", database_gone_after_the_first_write)
    outcome = act(admin_user, queue, extension, "pause")
    assert outcome.ok and outcome.reason == Reason.ACCEPTED
    assert member_of(pbx, queue, extension) is True
    assert MemberAction.objects.get().ok is None  # pending: its outcome never got written


def test_no_action_is_sent_that_the_audit_could_not_record(pbx, admin_user, monkeypatch):
    queue = first_queue(pbx)
    spent = pbx_requests(pbx)

    def database_gone(*args, **kwargs):
        raise services.DatabaseError("the database went away")

    monkeypatch.setattr(MemberAction.objects, "create", database_gone)
    outcome = act(admin_user, queue, member_extensions(pbx, queue)[0], "pause")
    assert (outcome.ok, outcome.reason) == (False, Reason.UNAVAILABLE)
    assert pbx_requests(pbx) == spent


def test_an_actions_answer_does_not_make_the_boards_data_look_fresh(pbx, admin_user):
    """fresh_at says when the poller last fetched what the boards show; an action's answer says
    only that the PBX is up."""
    queue = first_queue(pbx)
    _polled(queue)
    before = store.fresh_at_get()
    assert before is not None
    # A pause is shown from the PBX's answer, without fetching the queue.
    assert act(admin_user, queue, member_extensions(pbx, queue)[0], "pause").ok
    assert store.fresh_at_get() == before
    assert "action" in store.successes_get()
