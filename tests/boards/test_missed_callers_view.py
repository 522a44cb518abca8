"""The console's missed-callers panel as the server paints it (who gets it, what each row says,
what the page's script is handed) and the audit page's call backs, over stored call records."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.boards.conftest import QUEUE_A, QUEUE_B
from tests.boards.test_views import page_config
from wallboard.control.callbacks import END_NOT_ANSWERED
from wallboard.control.models import CallBackClaim, MemberAction
from wallboard.history.models import CallRecord
from wallboard.history.selectors import pbx_zone
from wallboard.history.services import call_records_upsert

pytestmark = pytest.mark.django_db

NUMBER = "00421905123456"


def gave_up(record: int, *, minutes_ago: int, queue: int, caller: str, waited: int) -> dict:
    """A CDR row as the PBX sends it: a caller who hung up waiting in ``queue``."""
    when = timezone.now().astimezone(pbx_zone()) - timedelta(minutes=minutes_ago)
    return {
        "id": str(record),
        "type": "incoming",
        "when": when.strftime("%Y-%m-%d %H:%M:%S"),
        "caller": caller,
        "received": str(queue),
        "destination": str(queue),
        "duration": "0",
        "application": "queue",
        "status": "missed",
        "complete_duration": str(waited),
    }


@pytest.fixture
def missed(live_data):
    """Today: NUMBER gave up twice in queue A (Sales), another caller once in B."""
    call_records_upsert(
        rows=[
            gave_up(1, minutes_ago=50, queue=QUEUE_A, caller=NUMBER, waited=70),
            gave_up(2, minutes_ago=40, queue=QUEUE_B, caller="00421905654321", waited=10),
            gave_up(3, minutes_ago=30, queue=QUEUE_A, caller=NUMBER, waited=95),
        ],
        known={QUEUE_A, QUEUE_B},
        zone=pbx_zone(),
        stored_at=timezone.now(),
    )
    return {NUMBER: 3, "00421905654321": 2}


def painted_rows(html: str) -> list[dict[str, str]]:
    """Each painted missed-caller row's fields (text of every data-f), before the templates."""
    body = html.split('data-f="missed-rows">')[1].split("</tbody>")[0]
    rows = []
    for row in re.findall(
        r'<tr class="missed-row" data-id="(\d+)" data-claimed="(\w*)">(.*?)</tr>', body, re.S
    ):
        entry, claimed, cells = row
        found = dict(re.findall(r'data-f="([\w-]+)"[^>]*>([^<]*)<', cells))
        found.update(id=entry, claimed=claimed)
        found["button"] = (
            "hidden" if re.search(r'data-action="call-back" hidden', cells) else "shown"
        )
        rows.append(found)
    return rows


def hm(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def test_a_viewer_gets_no_missed_callers(client_for, missed):
    response = client_for("viewer").get(reverse("console"))
    assert 'data-f="missed-callers"' not in response.content.decode()
    assert "missed" not in page_config(response)


def test_a_team_lead_sees_their_queues_missed_callers_painted(client_for, missed):
    response = client_for("lead").get(reverse("console"))
    html = response.content.decode()

    assert painted_rows(html) == [
        {
            "id": "3",
            "claimed": "",
            "time": hm(CallRecord.objects.get(id=3).when),
            "number": "00421 905 123 456",
            "outcome": "abandoned",
            "queue": "Sales",
            "wait": "1:35",
            "attempts": "2",
            "state": "",
            "button": "shown",
        }
    ]
    assert re.search(r'data-f="missed-count">1<', html)
    assert 'data-f="missed-empty" hidden' in html
    config = page_config(response)["missed"]
    assert [c["id"] for c in config["callers"]] == [3]
    assert config["callers"][0]["number_display"] == "00421 905 123 456"
    assert config["url"] == "/api/v1/missed-callers/"
    assert config["call_back_url"] == "/api/v1/missed-callers/{id}/call-back"
    assert (config["refresh_seconds"], config["default_extension"]) == (20, None)
    assert config["queue_names"] == {str(QUEUE_A): "Sales", str(QUEUE_B): "Support"}
    strings = page_config(response)["strings"]
    assert strings["missed"]["by_other"] == "Being called back by {name} since {time}"
    assert strings["outcomes"]["abandoned"] == "abandoned"


def test_an_admin_sees_every_queue_and_who_is_calling_back(client_for, missed, users):
    started = timezone.now() - timedelta(minutes=2)
    CallBackClaim.objects.create(
        number_key="905123456", number=NUMBER, queue=QUEUE_A, record=3, user=users["lead"],
        name="Jana Kováčová", extension=201, started=started,
    )  # fmt: skip
    html = client_for("admin").get(reverse("console")).content.decode()

    rows = painted_rows(html)
    assert [row["number"] for row in rows] == ["00421 905 123 456", "00421 905 654 321"]
    assert rows[0]["state"] == f"Being called back by Jana Kováčová since {hm(started)}"
    assert (rows[0]["claimed"], rows[0]["button"]) == ("other", "hidden")
    assert (rows[1]["claimed"], rows[1]["button"], rows[1]["queue"]) == ("", "shown", "Support")
    mine = painted_rows(client_for("lead").get(reverse("console")).content.decode())
    assert mine[0]["state"] == f"You are calling back from 201 since {hm(started)}"
    assert mine[0]["claimed"] == "you"


def test_without_missed_callers_the_panel_says_so(client_for, live_data):
    html = client_for("lead").get(reverse("console")).content.decode()
    assert painted_rows(html) == []
    assert re.search(r'<p class="muted" data-f="missed-empty">No missed callers today.</p>', html)


def test_the_audit_page_shows_each_call_back_and_how_it_went(client_for, missed, users):
    def call_back(number: str, **claim) -> MemberAction:
        action = MemberAction.objects.create(
            user=users["lead"], username="lead", source="console", queue=QUEUE_A,
            extension=201, action="call_back", number=number, ok=True, reason="accepted",
            code=200, detail="Call queued", finished=timezone.now(),
        )  # fmt: skip
        CallBackClaim.objects.create(
            number_key=number[-9:], number=number, queue=QUEUE_A, record=3, name="lead",
            extension=201, action=action, **claim,
        )  # fmt: skip
        return action

    call_back("00421905111111", started=timezone.now() - timedelta(minutes=30),
              ended=timezone.now(), end_reason=END_NOT_ANSWERED)  # fmt: skip
    call_back(NUMBER, started=timezone.now() - timedelta(minutes=1))

    html = client_for("lead").get(reverse("audit") + "?action=call_back").content.decode()

    lines = re.findall(
        r'<span class="call-back-line"><span class="num-text">([^<]*)</span> · ([^<]*)</span>', html
    )
    assert lines == [("00421 905 123 456", "in progress"), ("00421 905 111 111", "not answered")]
    assert html.count("Call back<br>") == 2
