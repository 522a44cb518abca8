"""Call records: their shapes (one builder per situation) and the store that pages them.

The builders are the only places that decide a row's type/application/status/received/
destination, for the live centre and the history alike; the table of shapes is in `centre`'s
module docstring. The store keeps rows in id order (the order they were written: when the call
ended) and indexes them by the local date of `when`, so a date-filtered page is a slice, not a
scan. It is not thread-safe: the centre's lock guards it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from . import wire

CDR_PAGE_MAX = 3000


@dataclass(slots=True)
class CdrRecord:
    type: str
    when: float  # when the call started (Unix time); the row is written when it ends
    caller: str
    caller_name: str | None
    received: str
    received_name: str | None
    destination: str
    destination_name: str | None
    duration: int
    application: str
    status: str
    recording_file: str
    unique_id: str
    complete_duration: int
    id: int = 0  # given by the store
    day: date | None = None  # local date of `when`, given by the store

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "when": wire.cdr_when(self.when),
            "caller": self.caller,
            "caller_name": self.caller_name,
            "received": self.received,
            "received_name": self.received_name,
            "destination": self.destination,
            "destination_name": self.destination_name,
            "duration": str(self.duration),
            "status": self.status,
            "application": self.application,
            "recording_file": self.recording_file,
            "unique_id": self.unique_id,
            "complete_duration": str(self.complete_duration),
        }


# --------------------------------------------------------------------------------- shapes

_TEXT: dict[int, str] = {}


def _text(number: int) -> str:
    """A queue's or an extension's number as the shared string every row of it holds."""
    text = _TEXT.get(number)
    if text is None:
        text = _TEXT[number] = str(number)
    return text


def queue_answered(
    *,
    queue: int,
    caller: str,
    when: float,
    unique_id: str,
    agent: int,
    agent_name: str | None,
    talk: int,
    total: int,
    recorded: bool,
) -> CdrRecord:
    """An agent took the queue call (`agent`: who took it last, after any transfer)."""
    recording = wire.recording_name(queue, caller, when, unique_id) if recorded else ""
    return CdrRecord(
        "incoming", when, caller, None, _text(queue), None, _text(agent), agent_name,
        talk, "queue", "answered", recording, unique_id, total,
    )  # fmt: skip


def queue_unanswered(
    *,
    queue: int,
    caller: str,
    when: float,
    unique_id: str,
    application: str,
    status: str,
    duration: int,
    total: int,
) -> CdrRecord:
    """A queue call no agent took: destination is the queue itself."""
    number = _text(queue)
    return CdrRecord(
        "incoming", when, caller, None, number, None, number, None,
        duration, application, status, "", unique_id, total,
    )  # fmt: skip


def queue_abandoned(
    *, queue: int, caller: str, when: float, unique_id: str, waited: int
) -> CdrRecord:
    """The caller hung up while waiting (after a second or after many minutes)."""
    return queue_unanswered(
        queue=queue, caller=caller, when=when, unique_id=unique_id,
        application="queue", status="missed", duration=0, total=waited,
    )  # fmt: skip


def queue_timed_out(
    *,
    queue: int,
    caller: str,
    when: float,
    unique_id: str,
    waited: int,
    application: str,
    status: str,
    message: int,
) -> CdrRecord:
    """The queue timeout: voicemail (answered, a message) or cut off (hangup, missed)."""
    return queue_unanswered(
        queue=queue, caller=caller, when=when, unique_id=unique_id,
        application=application, status=status, duration=message, total=waited + message,
    )  # fmt: skip


def queue_busy(*, queue: int, caller: str, when: float, unique_id: str) -> CdrRecord:
    """The queue was full."""
    return queue_unanswered(
        queue=queue, caller=caller, when=when, unique_id=unique_id,
        application="queue", status="busy", duration=0, total=0,
    )  # fmt: skip


def queue_playback(
    *, queue: int, caller: str, when: float, unique_id: str, heard: int
) -> CdrRecord:
    """The caller heard the greeting and hung up before queueing."""
    return queue_unanswered(
        queue=queue, caller=caller, when=when, unique_id=unique_id,
        application="playback", status="answered", duration=heard, total=heard,
    )  # fmt: skip


def own_call(
    *,
    caller: str,
    caller_name: str | None,
    callee: str,
    callee_name: str | None,
    when: float,
    unique_id: str,
    status: str,
    talk: int,
    total: int,
) -> CdrRecord:
    """An agent's own call (outgoing, internal or click-to-call): never a queue call."""
    return CdrRecord(
        "outgoing", when, caller, caller_name, callee, callee_name, callee, callee_name,
        talk, "call", status, "", unique_id, total,
    )  # fmt: skip


# --------------------------------------------------------------------------------- the store


def _id(record: CdrRecord) -> int:
    return record.id


def merged_page(lists: list[list[CdrRecord]], offset: int, limit: int) -> list[CdrRecord]:
    """Rows `offset` to `offset + limit` of several id-sorted lists merged in id order,
    without walking the rows before `offset`."""
    lists = [rows for rows in lists if rows]
    if limit <= 0 or offset < 0 or not lists:
        return []
    if len(lists) == 1:
        return lists[0][offset : offset + limit]
    if offset >= sum(len(rows) for rows in lists):
        return []
    # The id at rank `offset`: the smallest id with more than `offset` ids at or below it
    # (every id is in one list only).
    low, high = min(rows[0].id for rows in lists), max(rows[-1].id for rows in lists)
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(rows, middle, key=_id) for rows in lists) > offset:
            high = middle
        else:
            low = middle + 1
    heads = []
    for rows in lists:
        start = bisect_left(rows, low, key=_id)
        heads.append(rows[start : start + limit])
    return list(heapq.merge(*heads, key=_id))[:limit]


class CdrStore:
    """Call records in id order, indexed by unique_id and by the local date of `when`."""

    def __init__(self) -> None:
        self._rows: list[CdrRecord] = []  # in id order: found by id with a bisection
        self._by_unique: dict[str, CdrRecord] = {}  # the newest row with that unique_id
        self._days: dict[date, list[CdrRecord]] = {}
        self._recorded: dict[date, list[CdrRecord]] = {}  # rows with a recording
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows)

    def append(self, record: CdrRecord) -> CdrRecord:
        """Write a row: the next id; its day from its `when` (late rows join earlier days)."""
        record.id = self._next_id
        self._next_id += 1
        record.day = wire.local_date(record.when)
        self._rows.append(record)
        self._index(record)
        return record

    def _index(self, record: CdrRecord) -> None:
        assert record.day is not None
        self._by_unique[record.unique_id] = record
        self._days.setdefault(record.day, []).append(record)
        if record.recording_file:
            self._recorded.setdefault(record.day, []).append(record)

    def find(self, *, id: int | None = None, unique_id: str | None = None) -> CdrRecord | None:
        if unique_id is not None:
            return self._by_unique.get(unique_id)
        if id is not None:
            at = bisect_left(self._rows, id, key=_id)
            if at < len(self._rows) and self._rows[at].id == id:
                return self._rows[at]
        return None

    def page(
        self,
        *,
        offset: int,
        limit: int,
        date_from: date | None,
        date_to: date | None,
        recordings_only: bool,
    ) -> list[CdrRecord]:
        """Rows oldest first by id, filtered by local date (inclusive)."""
        if date_from is None and date_to is None and not recordings_only:
            return self._rows[offset : offset + limit] if offset >= 0 else []
        index = self._recorded if recordings_only else self._days
        days = sorted(
            day
            for day in index
            if (date_from is None or day >= date_from) and (date_to is None or day <= date_to)
        )
        return merged_page([index[day] for day in days], offset, limit)

    def count_day(self, day: date) -> int:
        return len(self._days.get(day, ()))

    def day_rows(self, day: date) -> list[CdrRecord]:
        return list(self._days.get(day, ()))

    def recording_deleted(self, record: CdrRecord) -> None:
        """Call after clearing `record.recording_file`: it leaves the recordings' index."""
        assert record.day is not None
        rows = self._recorded.get(record.day, [])
        at = bisect_left(rows, record.id, key=_id)
        if at < len(rows) and rows[at] is record:
            del rows[at]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove rows for good (the ids are not given again); returns how many were found."""
        deleted = 0
        for row_id in sorted(set(ids)):
            record = self.find(id=row_id)
            if record is None:
                continue
            deleted += 1
            assert record.day is not None
            for rows in (self._rows, self._days[record.day], self._recorded.get(record.day, [])):
                at = bisect_left(rows, record.id, key=_id)
                if at < len(rows) and rows[at] is record:
                    del rows[at]
            if not self._days[record.day]:
                del self._days[record.day]
            if self._by_unique.get(record.unique_id) is record:
                del self._by_unique[record.unique_id]
                same = (r for r in reversed(self._rows) if r.unique_id == record.unique_id)
                older = next(same, None)
                if older is not None:
                    self._by_unique[record.unique_id] = older
        return deleted

    def insert_before(self, first: CdrRecord, records: list[CdrRecord]) -> None:
        """Insert rows just before `first` in id order: they take its id and the following
        ones, and every row from `first` on gets an id that many higher (a renumbering PBX)."""
        count = len(records)
        if not count:
            return
        start = first.id
        at = bisect_left(self._rows, start, key=_id)
        for record in self._rows[at:]:
            record.id += count
        self._next_id += count
        for offset, record in enumerate(records):
            record.id = start + offset
            record.day = wire.local_date(record.when)
        self._rows[at:at] = records
        for record in records:
            assert record.day is not None
            self._by_unique.setdefault(record.unique_id, record)
            for index in (self._days, self._recorded):
                if index is self._recorded and not record.recording_file:
                    continue
                rows = index.setdefault(record.day, [])
                rows.insert(bisect_left(rows, record.id, key=_id), record)
