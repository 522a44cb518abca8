"""Celery tasks: thin interfaces over the history services.

``wallboard.history.cdr_poll`` belongs in the beat schedule every ``CDR_POLL_SECONDS`` with
``expires`` equal to that period (a run that waited longer is dropped; the next one catches up).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from pbxapi.errors import PBXError
from wallboard.history import services

logger = logging.getLogger(__name__)

CDR_POLL_TASK = "wallboard.history.cdr_poll"


@shared_task(name=CDR_POLL_TASK, ignore_result=True, soft_time_limit=50, time_limit=60)
def cdr_poll() -> dict:
    """Store the PBX's new call records of today (and of yesterday until it is settled)."""
    try:
        report = services.cdr_poll_run()
    except SoftTimeLimitExceeded:
        logger.warning("A CDR poll ran past its time limit and was stopped; the next one resumes")
        return {"failed": "time limit"}
    except PBXError as error:
        # Blocked, unreachable, a broken answer: the live poller shows the PBX state; the
        # cursors keep what was read, and the next run carries on from there.
        logger.warning("CDR poll stopped: %s", error)
        return {"failed": str(error)}
    return asdict(report)
