"""Two processes call one missed caller back at the same moment -- two team leads, or one
team lead's double click landing on two web processes -- against the real simulator and a
database both share: the PBX gets exactly one call/create, and the other learns who calls."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import redis

from tests.conftest import ROOT, live_environment
from tests.live.helpers import wait_for

from .missed_calls import DESK, live_cache_filled, placed

# Both processes wait at this barrier (a Redis key), so their call backs start together.
RACE_SCRIPT = """
import json, time
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from wallboard.control.services import CallBackClaimed, missed_caller_call_back
user = get_user_model().objects.get(username={username!r})
connection = redis.Redis.from_url(settings.REDIS_URL)
connection.set({ready!r}, 1)
while not connection.exists({go!r}):
    time.sleep(0.002)
try:
    outcome = missed_caller_call_back(
        user=user, entry={entry!r}, extension={extension!r}, source="api"
    )
    print(json.dumps({{"ok": outcome.ok, "message": outcome.message}}))
except CallBackClaimed as refused:
    print(json.dumps({{"claimed": str(refused), "by_you": refused.claim.by_you}}))
"""

# The team leads, and the caller's missed call read from the simulator into the shared
# database (whose records other tests' simulators wrote before: ids start at 1 in each).
SETUP_SCRIPT = """
import time
from datetime import UTC, datetime
from django.contrib.auth import get_user_model
from wallboard.control.models import TeamLeadAssignment
from wallboard.history.models import CallRecord, CdrDayCursor
from wallboard.history.selectors import missed_callers
from wallboard.history.services import cdr_poll_run
CallRecord.objects.all().delete()
CdrDayCursor.objects.all().delete()
for username, first, last in {leads!r}:
    user = get_user_model().objects.create_user(username, first_name=first, last_name=last)
    TeamLeadAssignment.objects.create(user=user, queue={queue!r})
for _attempt in range(40):
    if not cdr_poll_run(now=datetime.fromtimestamp({now!r}, UTC)).deferred:
        break
    time.sleep(0.25)
print(next(m.id for m in missed_callers() if m.caller == {number!r}))
"""


def manage_shell(env: dict[str, str], script: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("who", ["two team leads", "a double click"])
def test_two_processes_at_once_place_one_call(simulator_factory, file_database, live_settings, who):
    sim = simulator_factory(queues=2, agents=4, call_rate=0)
    queue = min(sim.centre.queue_numbers())
    suffix = f"{random.randrange(10**6):06d}"
    number = f"00421905{suffix}"  # claims of other tests stay in the shared database
    sim.centre.advance(40, live=False)
    sim.centre.abandon_caller(sim.centre.add_waiting_caller(queue, caller=number, wait_time=40))
    live_cache_filled()
    env = live_environment(live_settings, DATABASE_URL=file_database)
    leads = [(f"jana-{suffix}", "Jana", "Nováková"), (f"peter-{suffix}", "Peter", "Hrubý")]
    setup = manage_shell(
        env,
        SETUP_SCRIPT.format(
            leads=leads, queue=queue, now=sim.centre.now(), number=number
        ),
    )  # fmt: skip
    entry = int(finished(setup))
    users = [leads[0][0], leads[1][0]] if who == "two team leads" else [leads[0][0]] * 2
    prefix = live_settings.REDIS_KEY_PREFIX
    go = f"{prefix}:race-go"
    racers = [
        manage_shell(
            env,
            RACE_SCRIPT.format(
                username=username,
                ready=f"{prefix}:race-ready-{n}",
                go=go,
                entry=entry,
                extension=DESK,
            ),
        )
        for n, username in enumerate(users)
    ]
    connection = redis.Redis.from_url(live_settings.REDIS_URL)
    try:
        wait_for(
            lambda: connection.exists(*(f"{prefix}:race-ready-{n}" for n in range(2))) == 2,
            timeout=60,
        )
        connection.set(go, 1)
        answers = sorted((json.loads(finished(proc)) for proc in racers), key=lambda a: "ok" in a)
    finally:
        connection.close()

    assert placed(sim) == [(str(DESK), number)]
    refused, done = answers
    assert done["ok"] is True
    assert done["message"].startswith(f"Call queued: extension {DESK} rings first")
    shown = f"00421 905 {suffix[:3]} {suffix[3:]}"
    if who == "two team leads":
        assert refused["claimed"].startswith(f"{shown} is being called back by ")
        assert refused["by_you"] is False
    else:
        assert refused["claimed"].startswith(f"{shown} is already being called back by you")
        assert refused["by_you"] is True
