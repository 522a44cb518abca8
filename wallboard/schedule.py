"""Every Celery beat entry of the product, each with the reason it exists.

Exactly one beat may run per installation (two would double the tick rate; the poll lock keeps
that safe but wasteful): `make run` embeds it in its single worker (`worker -B`), production
runs one `celery -A wallboard beat` service (docs/architecture.md).
"""

from __future__ import annotations

from django.conf import settings

from wallboard.live.tasks import POLL_TASK


def beat_schedule() -> dict[str, dict]:
    tick = settings.POLL_TICK_SECONDS
    return {
        # The poller. Every tick spends the polling share of the PBX budget on what is most out
        # of date (wallboard.live.poller); ticking often keeps the budget busy so a queue's
        # refresh period stays near (Q+1)/B. `expires` ≈ the tick: a tick that waited in the
        # broker longer (worker busy, or down during an outage) is dropped instead of a pile of
        # stale ticks running back to back afterwards.
        "live-poll": {
            "task": POLL_TASK,
            "schedule": tick,
            "options": {"expires": tick},
        },
    }
