"""Celery tasks: thin interfaces over the history services (the beat schedule is in
wallboard/schedule.py)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from wallboard.history import services
from wallboard.history.intervals import local_today
from wallboard.history.selectors import pbx_zone

logger = logging.getLogger(__name__)

CDR_POLL_TASK = "wallboard.history.cdr_poll"
CDR_PURGE_TASK = "wallboard.history.cdr_purge"


@shared_task(
    name=CDR_POLL_TASK,
    ignore_result=True,
    soft_time_limit=services.CDR_POLL_SOFT_TIME_LIMIT,
    time_limit=services.CDR_POLL_HARD_TIME_LIMIT,
)
def cdr_poll() -> dict:
    """Store the PBX's new call records of today (and of yesterday until it is settled), then
    publish today's figures to the boards. A run that finds another one going does nothing."""
    try:
        report = services.cdr_poll_tick()
    except SoftTimeLimitExceeded:
        logger.warning("A CDR poll ran past its time limit and was stopped; the next one resumes")
        return {"failed": "time limit"}
    if report is None:
        return {"skipped": "busy"}
    return asdict(report)


# Deleting a long past at once (retention just switched on) may take minutes; no beat entry
# waits for it, so it may.
_PURGE_SOFT_TIME_LIMIT = 1800


@shared_task(
    name=CDR_PURGE_TASK,
    ignore_result=True,
    soft_time_limit=_PURGE_SOFT_TIME_LIMIT,
    time_limit=_PURGE_SOFT_TIME_LIMIT + 60,
)
def cdr_purge() -> dict:
    """Delete the call records older than ``CDR_RETENTION_DAYS`` (nothing when it is 0)."""
    today = local_today(timezone.now(), pbx_zone())
    return {"purged": services.call_records_purge(today=today)}
