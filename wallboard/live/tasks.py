"""Celery tasks: thin interfaces over the live services (the beat schedule is in schedule.py)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from wallboard.live import poller

logger = logging.getLogger(__name__)

POLL_TASK = "wallboard.live.poll"


@shared_task(
    name=POLL_TASK,
    ignore_result=True,
    soft_time_limit=poller.poll_soft_time_limit(),
    time_limit=poller.poll_hard_time_limit(),
)
def poll() -> dict:
    """One poll tick; overlapping ticks are refused by the poll lock, stale ones expire."""
    try:
        report = poller.poll_tick()
    except SoftTimeLimitExceeded:
        logger.warning("A poll tick ran past its time limit and was stopped")
        return {"skipped": "time limit"}
    if report.failed:
        logger.info("Poll tick stopped: %s", report.failed)
    return asdict(report)
