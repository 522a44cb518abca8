"""How callers, agents and the PBX behave: one set of rules for the live centre and its history.

The live model (`centre.py`, one-second steps) and the history builder (`history.py`, an event
sweep over past days) both draw every decision from these functions, so a row in the history
and a row written live come from the same distributions: arrivals by the hour and the weekday,
who calls (new numbers and regular customers), short and long patience, the queue timeout
(voicemail or cut off), ringing and no-answer, talk and wrap-up, transfers, callers who try
again, and agents' own calls. Each function takes the caller's `random.Random`, so both stay
deterministic for a seed. Times are in simulated seconds.
"""

from __future__ import annotations

import math
import random

from . import wire
from .names import external_number, person_name

# Relative call volume by Bratislava hour (normalised to a mean of 1 below): quiet nights,
# a morning peak, a lunch dip and an afternoon peak.
_HOURLY = (
    0.30, 0.28, 0.26, 0.26, 0.28, 0.35, 0.55, 0.95, 1.55, 1.95, 2.05, 1.85,
    1.35, 1.55, 1.75, 1.55, 1.25, 0.95, 0.70, 0.55, 0.45, 0.40, 0.35, 0.32,
)  # fmt: skip
HOURLY_WEIGHT = tuple(w * 24 / sum(_HOURLY) for w in _HOURLY)
# Relative volume by weekday, Monday first: the working days average 1 (so `call_rate` is the
# average of a working day), Monday is the busiest, weekends are quiet.
WEEKDAY_WEIGHT = (1.05, 1.00, 1.00, 1.00, 0.95, 0.40, 0.25)
PEAK_WEIGHT = max(HOURLY_WEIGHT) * max(WEEKDAY_WEIGHT)

# Who calls: mostly numbers seen once, some regular customers (a few of them known by name).
REGULAR_SHARE = 0.15
REGULARS_PER_QUEUE, MIN_REGULARS = 150, 300
NAMED_REGULAR_SHARE = 0.35

# Behaviour of people, in simulated seconds.
RING_SECONDS = (2.0, 7.0)
NO_ANSWER_SECONDS = 15.0
ANSWER_PROBABILITY = 0.93
AUTOPAUSE_ON_NO_ANSWER, AUTOPAUSE_SECONDS = 0.5, (60.0, 180.0)
TALK_MEDIAN, TALK_SIGMA, TALK_BOUNDS = 100.0, 0.7, (15.0, 1800.0)
WRAPUP_SECONDS = (5.0, 30.0)
PATIENCE_MEDIAN, PATIENCE_SIGMA = 150.0, 0.8
SHORT_ABANDON_SHARE, SHORT_ABANDON_SECONDS = 0.04, (1.0, 5.0)  # hang up at once
QUEUE_TIMEOUT = 480.0  # then the caller is sent to voicemail or cut off ("hangup")
VOICEMAIL_SHARE, VOICEMAIL_SECONDS = 0.5, (8, 45)  # of callers reaching the queue timeout
MAX_WAITING = 20  # more callers than this get busy
PLAYBACK_SHARE, PLAYBACK_SECONDS = 0.04, (3, 15)  # callers who hear the greeting and hang up
RECORDED_SHARE = 0.6
TRANSFER_SHARE, TRANSFER_AT = 0.06, (0.2, 0.7)  # of answered calls; when, as a share of the talk
# Callers who gave up (abandoned, cut off, busy) and call the same queue again, by attempt.
RETRY_SHARE = (0.35, 0.20)
RETRY_SECONDS = (60.0, 900.0)
OWN_CALL_EVERY = 45 * 60.0  # each of these happens at this mean interval of an idle agent's time
BREAK_EVERY, BREAK_MEDIAN = 50 * 60.0, 5 * 60.0  # the agent pauses themselves in every queue
OFFLINE_EVERY, OFFLINE_SECONDS = 4 * 3600.0, (120.0, 900.0)  # the phone drops off the network
# Surges: now and then a queue gets several times its usual rate for a few minutes. The rate
# between surges is lower by BURST_EXCESS, so that `call_rate` is the average surges included.
BURST_EVERY, BURST_SECONDS, BURST_FACTOR = 60 * 60.0, (120.0, 420.0), (2.0, 3.5)
_BURST_MEAN_SECONDS = sum(BURST_SECONDS) / 2
BURST_EXCESS = (
    (sum(BURST_FACTOR) / 2 - 1) * _BURST_MEAN_SECONDS / (BURST_EVERY + _BURST_MEAN_SECONDS)
)
OWN_CALL_INTERNAL_SHARE = 0.4
AGENT_RING_SECONDS = (2.0, 6.0)  # click-to-call: the agent's own phone rings first
AGENT_NO_ANSWER_SECONDS = 20.0
STAFFING_FACTOR, MIN_STAFFING = 1.4, 0.05  # night shifts: the first agent of each queue

# Log-normal draws use gauss(): random.lognormvariate() is several times slower, and a month of
# history draws a million of them.
_LOG_PATIENCE = math.log(PATIENCE_MEDIAN)
_LOG_BREAK = math.log(BREAK_MEDIAN)


class Curve:
    """Relative call volume at a moment (1 = an average working-day minute).

    The hour's weight interpolated by the minute, times the weekday's. `daily=False`: 1 always;
    `weekends=False`: every day weighs like an average working day.
    """

    def __init__(self, *, daily: bool = True, weekends: bool = True) -> None:
        self.daily = daily
        self.weekends = weekends
        self.peak = (PEAK_WEIGHT if weekends else max(HOURLY_WEIGHT)) if daily else 1.0
        self._cache: dict[int, float] = {}

    def at(self, epoch: float) -> float:
        if not self.daily:
            return 1.0
        minute = int(epoch) // 60
        value = self._cache.get(minute)
        if value is None:
            if len(self._cache) > 100_000:
                self._cache.clear()  # a live centre runs for weeks: keep the cache bounded
            value = self._cache[minute] = self._compute(minute * 60)
        return value

    def _compute(self, epoch: float) -> float:
        local = wire.local_time(epoch)
        hour = local.hour + local.minute / 60.0
        low = int(hour)
        frac = hour - low
        weight = HOURLY_WEIGHT[low] * (1 - frac) + HOURLY_WEIGHT[(low + 1) % 24] * frac
        return weight * (WEEKDAY_WEIGHT[local.weekday()] if self.weekends else 1.0)

    def staffing(self, epoch: float) -> float:
        """Share of agents on shift: staffing follows the expected call volume of the moment."""
        return staffing_level(self.at(epoch), daily=self.daily)


def staffing_level(volume: float, *, daily: bool) -> float:
    """Share of agents on shift for a relative volume (the first agents always work)."""
    if not daily:
        return 1.0
    return min(1.0, max(MIN_STAFFING, STAFFING_FACTOR * volume / max(HOURLY_WEIGHT)))


def regulars_draw(rng: random.Random, queues: int) -> list[tuple[str, str | None]]:
    """The regular customers' numbers (and names, for the few the PBX knows)."""
    count = max(MIN_REGULARS, REGULARS_PER_QUEUE * queues)
    return [
        (external_number(rng), person_name(rng) if rng.random() < NAMED_REGULAR_SHARE else None)
        for _ in range(count)
    ]


def caller_draw(
    rng: random.Random, regulars: list[tuple[str, str | None]]
) -> tuple[str, str | None]:
    """Who calls: (number, name or None)."""
    if regulars and rng.random() < REGULAR_SHARE:
        return regulars[int(rng.random() * len(regulars))]
    return external_number(rng), None


def playback_draw(rng: random.Random) -> int | None:
    """Seconds of greeting heard by a caller who hangs up after it, or None (they queue)."""
    if rng.random() < PLAYBACK_SHARE:
        return rng.randint(*PLAYBACK_SECONDS)
    return None


def patience_draw(rng: random.Random) -> float:
    """How long a caller waits before hanging up: a few hang up at once, most wait minutes."""
    if rng.random() < SHORT_ABANDON_SHARE:
        return rng.uniform(*SHORT_ABANDON_SECONDS)
    return math.exp(rng.gauss(_LOG_PATIENCE, PATIENCE_SIGMA))  # log-normal


def offer_draw(rng: random.Random) -> tuple[bool, float]:
    """A queue call offered to an agent: (answers, seconds it rings)."""
    if rng.random() < ANSWER_PROBABILITY:
        return True, rng.uniform(*RING_SECONDS)
    return False, NO_ANSWER_SECONDS


def autopause_draw(rng: random.Random) -> float | None:
    """After a ring nobody answered the PBX may pause the agent: for how long, or None."""
    if rng.random() < AUTOPAUSE_ON_NO_ANSWER:
        return rng.uniform(*AUTOPAUSE_SECONDS)
    return None


def talk_draw(rng: random.Random, median: float = TALK_MEDIAN) -> int:
    """Seconds of conversation (log-normal, bounded)."""
    talk = math.exp(rng.gauss(math.log(median), TALK_SIGMA))  # log-normal
    return int(min(max(talk, TALK_BOUNDS[0]), TALK_BOUNDS[1]))


def break_draw(rng: random.Random) -> float:
    """Seconds of a break."""
    return math.exp(rng.gauss(_LOG_BREAK, 0.5))  # log-normal


def offline_draw(rng: random.Random) -> float:
    """Seconds an agent's phone stays off the network."""
    return rng.uniform(*OFFLINE_SECONDS)


def base_rate(call_rate: float, *, bursts: bool) -> float:
    """Calls per second per queue of average load at volume 1, between surges."""
    return call_rate / 60.0 / (1 + BURST_EXCESS if bursts else 1.0)


def burst_draw(rng: random.Random) -> tuple[float, float]:
    """A surge: (seconds it lasts, factor on the queue's rate)."""
    return rng.uniform(*BURST_SECONDS), rng.uniform(*BURST_FACTOR)


def wrapup_draw(rng: random.Random) -> float:
    return rng.uniform(*WRAPUP_SECONDS)


def recorded_draw(rng: random.Random) -> bool:
    return rng.random() < RECORDED_SHARE


def transfer_draw(rng: random.Random) -> float | None:
    """For an answered queue call: the share of its talk after which the agent transfers it to
    another extension, or None (no transfer)."""
    if rng.random() < TRANSFER_SHARE:
        return rng.uniform(*TRANSFER_AT)
    return None


def timeout_draw(rng: random.Random) -> tuple[str, str, int]:
    """A caller reaching the queue timeout: (application, status, seconds of message)."""
    if rng.random() < VOICEMAIL_SHARE:
        return "voicemail", "answered", rng.randint(*VOICEMAIL_SECONDS)
    return "hangup", "missed", 0


def retry_draw(rng: random.Random, attempt: int) -> float | None:
    """Seconds until a caller who gave up on their `attempt`-th call tries again, or None."""
    share = RETRY_SHARE[attempt - 1] if attempt <= len(RETRY_SHARE) else 0.0
    if rng.random() < share:
        return rng.uniform(*RETRY_SECONDS)
    return None


IDLE_EVENT_EVERY = 1 / (1 / OFFLINE_EVERY + 1 / BREAK_EVERY + 1 / OWN_CALL_EVERY)


def idle_event_draw(rng: random.Random) -> str:
    """What an idle agent does when something happens (mean interval IDLE_EVENT_EVERY):
    "offline", "break" or "own_call"."""
    roll = rng.random() / IDLE_EVENT_EVERY
    if roll < 1 / OFFLINE_EVERY:
        return "offline"
    if roll < 1 / OFFLINE_EVERY + 1 / BREAK_EVERY:
        return "break"
    return "own_call"


def internal_draw(rng: random.Random) -> bool:
    """Does an agent's own call go to a colleague (True) or outside (False)?"""
    return rng.random() < OWN_CALL_INTERNAL_SHARE


def own_call_outcome(rng: random.Random, *, internal: bool) -> str:
    """How an agent's own call ends; some external numbers (premium, abroad) are barred."""
    if internal:
        return rng.choices(("answered", "busy", "missed"), (0.85, 0.05, 0.10))[0]
    outcomes = ("answered", "busy", "missed", "unauthorized")
    return rng.choices(outcomes, (0.76, 0.08, 0.14, 0.02))[0]


def own_call_ring(rng: random.Random, outcome: str) -> float:
    """Seconds the other side rings before the call is answered, given up or refused."""
    if outcome == "answered":
        return rng.uniform(3, 12)
    return 25.0 if outcome == "missed" else 2.0


def agent_ring_draw(rng: random.Random) -> float:
    """Click-to-call: seconds the agent's own phone rings before they pick it up."""
    return rng.uniform(*AGENT_RING_SECONDS)
