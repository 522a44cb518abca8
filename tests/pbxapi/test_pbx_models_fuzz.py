"""Whatever JSON the PBX sends, a model either comes out or a ProtocolError does: never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxapi.errors import ProtocolError
from pbxapi.models import (
    ActionResult,
    CallStatistics,
    CdrRow,
    Extension,
    Queue,
    QueueStatus,
    string_list,
    string_map,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "queue", "nazov", "extension", "calls_taken", "last_call_taken_ago", "paused", "in_use",
    "members", "waiting_calls", "wait_time", "unique_id", "caller", "current_calls_count",
    "calls_active", "calls", "duration", "id", "when", "call_forwarding", "allowed_changes",
    "code", "detail", "message", "complete_duration",
]  # fmt: skip
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8) | json_values
PARSERS = [
    Queue.from_payload,
    QueueStatus.from_payload,
    CallStatistics.from_payload,
    Extension.from_payload,
    CdrRow.from_payload,
    ActionResult.from_payload,
    lambda p: string_list(p, "a list"),
    lambda p: string_map(p, "a map"),
]


@settings(max_examples=300, deadline=None, database=None)
@given(payload=payloads, parser=st.sampled_from(PARSERS))
def test_any_payload_parses_or_is_a_protocol_error(payload, parser):
    try:
        model = parser(payload)
    except ProtocolError as exc:
        assert str(exc).startswith("The PBX")
        return
    if hasattr(model, "to_dict"):
        model.to_dict()


@settings(max_examples=100, deadline=None, database=None)
@given(number=st.integers(0, 10**9), spelling=st.sampled_from(["int", "str", "padded", "float"]))
def test_numbers_arrive_in_any_spelling(number, spelling):
    sent = {"int": number, "str": str(number), "padded": f" {number} ", "float": float(number)}
    queue = Queue.from_payload({"queue": sent[spelling], "nazov": "Predaj"})
    assert queue.queue == number
