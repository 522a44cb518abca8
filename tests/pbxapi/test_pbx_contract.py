"""Contract tests: every one of the 26 operations and every documented error path, against the
real simulator over HTTP."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from pbx_testing import SIM_PASSWORD, SIM_USER

from pbxapi.budget import LocalBudget
from pbxapi.client import PBXClient
from pbxapi.errors import (
    AuthenticationFailed,
    Blocked,
    BudgetExhausted,
    MissingParameter,
    NotFound,
    PBXTimeout,
    ProtocolError,
    QueueActionRefused,
    ServerError,
    Unreachable,
)
from pbxapi.simulator import SimulatorConfig, start_simulator


def _a_member(sim) -> tuple[int, int]:
    queue = sim.centre.queue_numbers()[0]
    return queue, sim.centre.members(queue)[0]


def _a_non_member(sim, queue: int) -> int:
    members = set(sim.centre.members(queue))
    return next(ext for ext in sim.centre.extensions() if ext not in members)


# --- queues (operations 9-14) ---


def test_queues_list_every_queue_with_its_name(sim, sim_client):
    queues = sim_client.queues()
    assert [q.queue for q in queues] == sim.centre.queue_numbers()
    assert all(q.name for q in queues)


def test_queue_status_shows_members_and_waiting_callers(sim, sim_client):
    queue, _ = _a_member(sim)
    sim.centre.clear_waiting(queue)
    unique_id = sim.centre.add_waiting_caller(queue, caller="00421905123456", wait_time=30)
    status = sim_client.queue_status(queue)
    assert status.queue == queue
    assert status.current_calls_count == 1
    assert [w.unique_id for w in status.waiting_calls] == [unique_id]
    assert status.waiting_calls[0].caller == "00421905123456"
    assert status.waiting_calls[0].wait_time >= 30
    assert [m.extension for m in status.members] == sim.centre.members(queue)
    sim.centre.clear_waiting(queue)


def test_pause_and_unpause_change_the_member(sim, sim_client):
    queue, extension = _a_member(sim)
    assert sim_client.queue_pause(queue, extension).detail == "Paused"
    assert sim.centre.member_state(queue, extension)["paused"] is True
    paused = {m.extension: m.paused for m in sim_client.queue_status(queue).members}
    assert paused[extension] is True
    assert sim_client.queue_unpause(queue, extension).detail == "Unpaused"
    assert sim.centre.member_state(queue, extension)["paused"] is False


def test_remove_and_add_a_member(sim, sim_client):
    queue, extension = _a_member(sim)
    assert sim_client.queue_remove(queue, extension).code == 200
    assert extension not in sim.centre.members(queue)
    with pytest.raises(QueueActionRefused) as raised:
        sim_client.queue_pause(queue, extension)
    assert (raised.value.code, raised.value.detail) == (400, "Not there")
    assert sim_client.queue_add(queue, extension).detail == "Added to queue"
    assert extension in sim.centre.members(queue)


@pytest.mark.parametrize(
    ("action", "queue_choice", "code"),
    [("add", "member", 400), ("remove", "non-member", 400), ("pause", "missing", 401)],
)
def test_queue_action_refusals_carry_the_body_code(sim, sim_client, action, queue_choice, code):
    queue, extension = _a_member(sim)
    if queue_choice == "non-member":
        extension = _a_non_member(sim, queue)
    if queue_choice == "missing":
        queue = 999
    with pytest.raises(QueueActionRefused) as raised:
        getattr(sim_client, f"queue_{action}")(queue, extension)
    assert raised.value.code == code


def test_an_unknown_extension_is_an_unknown_status(sim, sim_client):
    queue, _ = _a_member(sim)
    with pytest.raises(QueueActionRefused) as raised:
        sim_client.queue_add(queue, 99999)
    assert (raised.value.code, raised.value.detail) == (402, "Unknown status")


def test_status_of_a_missing_queue_is_not_found(sim_client):
    with pytest.raises(NotFound):
        sim_client.queue_status(999)


def test_a_missing_parameter_is_reported(sim_client):
    # The client never omits one, so ask the PBX directly through the request path.
    with pytest.raises(MissingParameter):
        sim_client._json("GET", "/api/queue/status", p="poll", w=None)
    with pytest.raises(MissingParameter):
        sim_client._action("GET", "/api/queue/add", params={"queue": "100"}, p="action", w=None)


# --- calls (operations 1-3) ---


def test_an_answered_queue_call_shows_two_legs(sim, sim_client):
    queue, extension = _a_member(sim)
    caller_leg = sim.centre.start_call(queue, extension, caller="00421910818189")
    stats = sim_client.call_statistics()
    agent_legs = [c for c in stats.calls if c.from_queue_unique_id == caller_leg]
    assert len(agent_legs) == 1
    assert caller_leg in {c.unique_id for c in stats.calls}
    assert stats.calls_active == len(stats.calls) >= 2
    sim.centre.end_call(extension)


def test_click_to_call_is_queued(sim_client):
    result = sim_client.call_create(201, "00421905123456")
    assert (result.code, result.detail) == (200, "Call queued")


def test_advanced_call_is_accepted_with_its_fields(sim, sim_client):
    result = sim_client.call_advanced("crm", customer="42", note="ahoj")
    assert (result.code, result.detail) == (200, "Call created")
    profile, fields = sim.centre.advanced_calls()[-1]
    assert profile == "crm"
    assert fields["customer"] == ["42"]
    assert sim_client.call_advanced(ticket=7).code == 200
    assert sim.centre.advanced_calls()[-1][0] is None


# --- CDR and recordings (operations 4-8) ---


def test_cdr_raw_is_the_page_as_sent(sim, sim_client):
    rows = sim_client.cdr(limit=5, offset=2)
    raw = sim_client.cdr_raw(limit=5, offset=2)
    assert [str(r["id"]) for r in raw] == [str(r.id) for r in rows]
    assert all(isinstance(r, dict) for r in raw)


def test_cdr_pages_and_filters(sim, sim_client):
    everything = sim_client.cdr()
    assert len(everything) == min(sim.centre.cdr_count(), 3000) > 3
    assert [r.id for r in sim_client.cdr(limit=2, offset=1)] == [r.id for r in everything[1:3]]
    paged = list(sim_client.cdr_all(page_size=3))
    assert [r.id for r in paged] == [r.id for r in everything]
    day = everything[0].when.date()
    same_day = sim_client.cdr(date_from=day, date_to=day.isoformat())
    assert same_day and all(r.when.date() == day for r in same_day)
    assert sim_client.cdr(date_from=date.today() + timedelta(days=30)) == []


def test_one_cdr_row_by_id_or_unique_id(sim_client):
    row = sim_client.cdr(limit=1)[0]
    assert sim_client.cdr_get(row.id) == row
    assert sim_client.cdr_get(unique_id=row.unique_id) == row
    with pytest.raises(NotFound):
        sim_client.cdr_get(987654321)
    with pytest.raises(NotFound):
        sim_client.cdr_get(unique_id="1.999999")


def test_recordings_download_and_delete(sim_client, tmp_path):
    recorded = sim_client.recordings(limit=2)
    assert recorded and all(r.recording_file for r in recorded)
    first = recorded[0]
    download = sim_client.download_recording(first.id, dest=tmp_path / "a.mp3")
    assert download.size == (tmp_path / "a.mp3").stat().st_size > 0
    assert download.filename == first.recording_file
    by_uid = sim_client.download_recording(unique_id=first.unique_id, dest=tmp_path / "b.mp3")
    assert (tmp_path / "b.mp3").read_bytes() == (tmp_path / "a.mp3").read_bytes()
    assert by_uid.size == download.size
    deleted = sim_client.delete_recording(first.id)
    assert deleted.id == first.id
    assert sim_client.cdr_get(first.id).recording_file is None
    with pytest.raises(NotFound):
        sim_client.download_recording(first.id, dest=tmp_path / "c.mp3")
    assert not (tmp_path / "c.mp3").exists()
    with pytest.raises(NotFound):
        sim_client.delete_recording(987654321)


# --- extensions (operations 15-20) ---


def test_extensions_list_and_one(sim, sim_client):
    extensions = sim_client.extensions()
    assert sorted(e.extension for e in extensions) == sorted(sim.centre.extensions())
    one = sim_client.extension(extensions[0].extension)
    assert one == extensions[0]
    assert one.extra.get("dnd") is False
    with pytest.raises(NotFound):
        sim_client.extension(99999)


def test_outbounds_are_numbers(sim_client):
    numbers = sim_client.outbounds()
    assert numbers and all(n.isdigit() for n in numbers)


def test_extension_update_changes_and_refuses(sim_client):
    target = next(e for e in sim_client.extensions() if "call_forwarding" in e.allowed_changes)
    sim_client.extension_update(target.extension, call_forwarding="0905111222")
    assert sim_client.extension(target.extension).call_forwarding == "0905111222"
    sim_client.extension_update(target.extension, call_forwarding=False)
    assert sim_client.extension(target.extension).call_forwarding is None
    with pytest.raises(NotFound):
        sim_client.extension_update(99999, name="Nikto")
    with pytest.raises(ServerError) as raised:
        sim_client.extension_update(target.extension, outboundcid="0999999999")
    assert raised.value.status == 505
    named = next((e for e in sim_client.extensions() if "name" in e.allowed_changes), None)
    if named is not None:
        result = sim_client.extension_update(named.extension, name="Ľubomíra Šťastná")
        assert result.code == 200
        assert sim_client.extension(named.extension).name == "Ľubomíra Šťastná"


def test_viptel_phone_activate_and_deactivate(sim_client):
    switched = 0
    for ext in [e.extension for e in sim_client.extensions()]:
        try:
            sim_client.viptel_phone_activate(ext)
        except ServerError:  # not every extension can run VIPTel Phone: the PBX answers 500
            continue
        assert sim_client.extension(ext).is_viptel_phone_active is True
        assert sim_client.viptel_phone_deactivate(ext).code == 200
        assert sim_client.extension(ext).is_viptel_phone_active is False
        switched += 1
    assert switched
    with pytest.raises(ServerError) as raised:
        sim_client.viptel_phone_activate(99999)
    assert raised.value.status == 500


# --- customer data (operations 21-26) ---


def test_customer_data_lifecycle(sim_client):
    sim_client.data_flush()
    assert sim_client.data_list() == {}
    assert sim_client.data_create("zakaznik/42", "VIP").code == 200
    assert sim_client.data_create("empty", "").code == 200
    with pytest.raises(ServerError):
        sim_client.data_create("empty", "again")  # duplicate key: 505
    assert sim_client.data_update("zakaznik/42", "VIP, Ďalší").code == 200
    with pytest.raises(NotFound):
        sim_client.data_update("nobody", "x")
    sim_client.data_bulk({"a": "1", "b": "", "empty": "now full"})
    assert sim_client.data_list() == {
        "zakaznik/42": "VIP, Ďalší",
        "empty": "now full",
        "a": "1",
        "b": "",
    }
    assert sim_client.data_delete("zakaznik/42").code == 200
    assert "zakaznik/42" not in sim_client.data_list()
    sim_client.data_flush()
    assert sim_client.data_list() == {}


# --- transport and protocol faults ---


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("html500", ServerError),
        ("truncated", ProtocolError),
        ("down", Unreachable),
        ("timeout", PBXTimeout),
    ],
)
def test_faults_become_plain_errors(sim, sim_client, fault, error):
    sim.centre.set_fault(fault)
    with pytest.raises(error):
        sim_client.queues()
    sim.centre.set_fault(None)
    assert sim_client.queues()


def test_wrong_credentials_are_refused(sim):
    pbx = PBXClient(sim.url, SIM_USER, "wrong", budget=LocalBudget())
    with pbx, pytest.raises(AuthenticationFailed) as raised:
        pbx.queues()
    assert "wrong" not in str(raised.value)


def test_a_403_blocks_the_budget_and_stops_all_traffic(sim):
    budget = LocalBudget(block_seconds=0.5)
    with PBXClient(sim.url, SIM_USER, SIM_PASSWORD, budget=budget) as pbx:
        sim.centre.set_fault("forbidden")
        try:
            with pytest.raises(Blocked):
                pbx.queues()
        finally:
            sim.centre.set_fault(None)
        sent = len(sim.requests_log)
        with pytest.raises(Blocked):
            pbx.queue_pause(100, 201)
        assert len(sim.requests_log) == sent  # nothing left the process while blocked
        time.sleep(0.6)
        assert pbx.queues()


def test_the_budget_keeps_a_busy_client_under_the_pbx_limit():
    """21 requests in a window would block us; the default budget (18 of 20) never gets there."""
    config = SimulatorConfig(
        port=0, user="u", password="p", autopilot=False, rate_window=1.0, block_seconds=30
    )
    with start_simulator(config) as sim:
        budget = LocalBudget(requests=18, window=1.0, reserve=2, pbx_limit=(20, 1.0))
        with PBXClient(sim.url, "u", "p", budget=budget, max_wait=2.0) as pbx:
            for _ in range(30):
                pbx.queues()
            with pytest.raises(BudgetExhausted):
                for _ in range(20):
                    pbx.queues(max_wait=0)
            statuses = {entry.status for entry in sim.requests_log}
    assert statuses == {200}
