"""Writes on the live data: fetch a PBX source, rebuild the snapshots that depend on it, store
them, push real changes, and keep the PBX connection state (docs/contracts.md, wallboard.live).

The poller (``wallboard.live.poller``), the control services and the call history (today's
figures, ``kpi_publish``) all come through here, so a snapshot is built, versioned and pushed
the same way whoever caused the change.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pbxapi import errors as pbx
from wallboard.live import push, selectors, store
from wallboard.live.pbx import pbx_client
from wallboard.live.shapes import AgentToday, Staffing, TodayFigures
from wallboard.live.snapshots import (
    calls_normalise,
    extensions_normalise,
    iso,
    queue_list_normalise,
    queue_today,
    queue_today_differs,
    snapshot_build,
    snapshot_differs,
    status_normalise,
    status_with_actions,
)
from wallboard.live.store import (
    SOURCE_CALLS,
    SOURCE_EXTENSIONS,
    SOURCE_QUEUES,
    source_queue_status,
)

logger = logging.getLogger(__name__)

# The PBX answered, so it is reachable and not blocking us, even if it said no.
_ANSWERED_ERRORS = (pbx.NotFound, pbx.MissingParameter, pbx.QueueActionRefused)
# Nothing was sent (or nothing can be concluded about the PBX): the state stays as it is.
_NEUTRAL_ERRORS = (pbx.BudgetExhausted, pbx.BudgetUnavailable, pbx.InvalidArgument)
# Sources whose answer brings the boards' data up to date (``fresh_at``).
_FRESHENING = frozenset({SOURCE_CALLS})
# The PBX as seen in the PBXState fields a viewer cares about; only these cause a push.
_VISIBLE_STATE = ("state", "blocked_until", "unreachable_since", "last_error")


def queue_refresh(
    *, queue: int, priority: str = "poll", with_calls: bool = False
) -> dict[str, Any] | None:
    """Fetch this queue's status now (and the active calls if asked), rebuild, store and push.

    Used right after an action so that every board shows its result at once. Pause, unpause, add
    and remove change only the queue's member list, never a call leg, so one request is enough;
    the second would come out of the polls' share and slow every board while actions are made.
    The poller is told (``attempted``) that these sources were just fetched, so its round-robin
    does not spend a request of its own on them again right after: with agents acting, the
    refreshes then count towards the boards' freshness instead of adding to the load.
    Returns the stored snapshot. Raises pbxapi errors after recording them in the PBX state.
    """
    sources = [source_queue_status(queue)] + ([SOURCE_CALLS] if with_calls else [])
    for source in sources:
        source_fetch(source, priority=priority)
        store.attempt_note(source, at=time.time())
    return store.snapshot_get(queue)


def member_action_show(*, queue: int, extension: int, action: str) -> dict[str, Any] | None:
    """The PBX did an agent action: show its result on every board now. Returns the snapshot.

    A pause or unpause changes one flag, and the PBX's answer ("Paused", "Unpaused") confirms
    it, so it is shown from the answer without spending a request: at 20 actions a minute a
    fetch of the queue after each would cost every board a slot of its refresh. The queue's next
    poll (one round of the poller, a few seconds) brings its full status; until a status
    requested after this moment arrives, the action is laid over the stored one
    (``snapshots.status_with_actions``), so an older answer still in flight cannot undo it.

    An add or remove changes who is in the queue, with details only the PBX has (calls taken,
    state), and so does an action on a queue or member not in the stored status yet: the queue
    is fetched at once, on the action lane. Raises pbxapi errors as ``queue_refresh`` does.
    """
    if action in ("pause", "unpause"):
        status = store.source_get(source_queue_status(queue))
        if status is not None and any(m["extension"] == extension for m in status["members"]):
            store.member_action_note(queue, extension, paused=action == "pause", at=time.time())
            snapshots_rebuild(queues=[queue])
            return store.snapshot_get(queue)
    return queue_refresh(queue=queue, priority="action")


def source_fetch(source: str, *, priority: str = "poll", max_wait: float | None = None) -> int:
    """Ask the PBX for one source, keep its answer, rebuild what depends on it.

    ``source`` is ``calls``, ``extensions``, ``queues`` or ``queue_status:{n}``. Returns how
    many snapshots really changed. Errors are recorded in the PBX state, then raised.
    """
    try:
        value, dependants = _fetch(source, priority=priority, max_wait=max_wait)
    except pbx.PBXError as error:
        pbx_outcome_record(source=source, error=error)
        raise
    store.source_set(source, value)
    pbx_outcome_record(source=source, error=None)
    return len(snapshots_rebuild(queues=dependants))


def _fetch(source: str, *, priority: str, max_wait: float | None) -> tuple[dict, list[int]]:
    """The normalised answer for ``source`` and the queues whose snapshots depend on it.

    ``fetched`` is the time of the answer (the request may first have waited for the budget).
    """
    client = pbx_client()
    options: dict[str, Any] = {"priority": priority}
    if max_wait is not None:
        options["max_wait"] = max_wait
    # Calls, extensions and the queue list feed every queue's snapshot.
    if source == SOURCE_CALLS:
        statistics = client.call_statistics(**options)
        return calls_normalise(statistics, fetched=time.time()), _every_queue()
    if source == SOURCE_EXTENSIONS:
        extensions = client.extensions(**options)
        return extensions_normalise(extensions, fetched=time.time()), _every_queue()
    if source == SOURCE_QUEUES:
        queues = client.queues(**options)
        return queue_list_normalise(queues, fetched=time.time()), _every_queue()
    if source.startswith(store.QUEUE_STATUS_PREFIX):
        queue = int(source.removeprefix(store.QUEUE_STATUS_PREFIX))
        requested = time.time()
        status = client.queue_status(queue, **options)
        return status_normalise(status, fetched=time.time(), requested=requested), [queue]
    raise ValueError(f"unknown PBX source {source!r}")


def _every_queue() -> list[int]:
    """Every queue in the last queue list (those never fetched are skipped by the rebuild)."""
    return [q["queue"] for q in store.known_queues()]


def kpi_publish(
    *,
    queues: dict[int, TodayFigures],
    staffing: dict[int, Staffing | None],
    agents: dict[int, dict[int, AgentToday]],
    computed_at: float,
    valid_until: float,
) -> int:
    """Show today's figures on the boards: store them, rebuild the snapshots of the queues
    whose figures changed, push those. Returns how many snapshots really changed.

    The call history computes the figures and calls this (after every CDR poll, and when a
    queue's KPI rules change); the boards know nothing of how they were made. ``queues`` and
    ``staffing`` are per queue, ``agents`` per queue and extension (an agent without calls
    need not be listed). ``computed_at`` is when they were computed (a publication computed
    before the stored one is dropped); ``valid_until`` the end of the PBX's day they are for:
    after it every snapshot shows them as unknown until the next day's first publication.
    Queues left out show unknown figures.
    """
    publication = {
        "computed_at": computed_at,
        "valid_until": valid_until,
        "queues": {str(queue): dict(figures) for queue, figures in queues.items()},
        "staffing": {
            str(queue): None if hint is None else dict(hint) for queue, hint in staffing.items()
        },
        "agents": {
            str(queue): {str(extension): dict(today) for extension, today in by_agent.items()}
            for queue, by_agent in agents.items()
        },
    }
    before, stored = store.today_replace(publication)
    if not stored:
        return 0
    now = time.time()
    changed = [
        queue
        for queue in _every_queue()
        if queue_today_differs(before, publication, queue=queue, now=now)
    ]
    return len(snapshots_rebuild(queues=changed))


def snapshots_rebuild(*, queues: list[int]) -> list[dict[str, Any]]:
    """Rebuild these queues' snapshots from the stored sources; push and return real changes."""
    if not queues:
        return []
    names = [SOURCE_CALLS, SOURCE_EXTENSIONS, SOURCE_QUEUES]
    sources, publication = store.sources_and_today_get(
        names + [source_queue_status(q) for q in queues]
    )
    queue_list = sources[SOURCE_QUEUES]
    queue_names = {q["queue"]: q["name"] for q in (queue_list or {}).get("queues", [])}
    actions = store.member_actions_get(queues)
    changed = []
    for queue in queues:
        status = sources[source_queue_status(queue)]
        if status is None:
            continue  # never fetched: nothing to show yet
        status = status_with_actions(status, actions.get(queue))

        def build(previous: dict[str, Any] | None, queue=queue, status=status) -> dict:
            now = time.time()
            return snapshot_build(
                queue=queue,
                name=queue_names.get(queue),
                status=status,
                calls=sources[SOURCE_CALLS],
                extensions=sources[SOURCE_EXTENSIONS],
                queue_list_fetched=queue_list["fetched"] if queue_list else None,
                previous=previous,
                now=now,
                today=queue_today(publication, queue=queue, now=now),
            )

        snapshot, did_change = store.snapshot_replace(queue, build, snapshot_differs)
        if did_change:
            push.snapshot_publish(snapshot)
            changed.append(snapshot)
    if changed:
        store.queue_list_store(selectors.queue_summaries())
    return changed


def pbx_outcome_record(*, source: str, error: Exception | None) -> None:
    """Note a PBX success or failure in the PBX state, and push the state if it changed."""
    now = time.time()
    if error is None:
        # Only what the poller fetches makes the boards' data fresh: an action's answer says the
        # PBX is up, not that the queues on screen are current.
        store.success_note(source, at=now, fresh=source in _FRESHENING or _is_status(source))
    if isinstance(error, _NEUTRAL_ERRORS):
        return

    def change(before: dict[str, Any] | None) -> dict[str, Any]:
        return _state_after(before, error=error, now=now)

    before, after = store.pbx_state_replace(change)
    if _visible(before) != _visible(after):
        if error is not None:
            logger.warning("PBX state is now %s (%s: %s)", after["state"], source, error)
        else:
            logger.info("PBX state is now %s", after["state"])
        push.pbx_state_publish(selectors.pbx_state_get())


def _state_after(
    before: dict[str, Any] | None, *, error: Exception | None, now: float
) -> dict[str, Any]:
    state = dict(before or selectors.pbx_state_initial())
    state["checked_at"] = iso(now)
    if error is None or isinstance(error, _ANSWERED_ERRORS):
        state.update(state="ok", blocked_until=None, unreachable_since=None, last_error=None)
    elif isinstance(error, pbx.Blocked):
        state.update(
            state="blocked",
            blocked_until=iso(error.until),
            unreachable_since=None,
            last_error=str(error),
        )
    else:
        state.update(
            state="unreachable",
            blocked_until=None,
            # The outage began at the first failure, not at the latest one.
            unreachable_since=state.get("unreachable_since") or iso(now),
            last_error=str(error),
        )
    state.pop("last_success", None)  # kept per source in its own hash (store.successes_get)
    return state


def _is_status(source: str) -> bool:
    return source.startswith(store.QUEUE_STATUS_PREFIX)


def _visible(state: dict[str, Any] | None) -> tuple:
    return tuple((state or {}).get(name) for name in _VISIBLE_STATE)
