"""One error hierarchy for everything that can go wrong talking to the VIPTel PBX.

Every message is plain words a supervisor can read; none of them ever contains credentials.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class PBXError(Exception):
    """Base class: anything that went wrong with a PBX request (or before one was spent)."""

    #: HTTP status when the PBX answered, else None.
    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class InvalidArgument(PBXError, ValueError):
    """An argument was refused before any request was spent (e.g. an extension not digits)."""


class AuthenticationFailed(PBXError):
    """401: the API user or password is wrong, or the API is not activated for this account."""

    status = 401


class Blocked(PBXError):
    """403: the PBX has blocked our source IP for exceeding the rate limit.

    ``until`` is a Unix timestamp (seconds); nothing may be sent to the PBX before it.
    """

    status = 403

    def __init__(self, message: str | None = None, *, until: float) -> None:
        self.until = until
        when = datetime.fromtimestamp(until, UTC).astimezone().strftime("%H:%M:%S")
        super().__init__(message or f"PBX access is blocked by the rate limit until {when}")

    @property
    def seconds_left(self) -> float:
        return max(0.0, self.until - time.time())


class NotFound(PBXError):
    """404: the queue, extension, CDR row or data key does not exist."""

    status = 404


class MissingParameter(PBXError):
    """HTTP 400: the PBX says a required parameter is missing."""

    status = 400


class QueueActionRefused(PBXError):
    """A queue member action (add/remove/pause/unpause) answered with a non-200 body code.

    ``code`` is the body code (400 Already there / Not there, 401 No such queue, 402 Unknown
    status) and ``detail`` the PBX's words.
    """

    def __init__(self, code: int, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"The PBX refused the action: {detail} (code {code})")


class ServerError(PBXError):
    """5xx: the PBX failed (e.g. 500 VIPTel Phone activation failed, 505 save failed)."""


class PBXTimeout(PBXError):
    """The PBX did not answer within the configured connect/read timeout."""


class Unreachable(PBXError):
    """The PBX could not be reached at all (DNS, refused connection, TLS failure...)."""


class ProtocolError(PBXError):
    """The PBX answered something we cannot understand: HTML, truncated JSON, a wrong shape."""


class BudgetExhausted(PBXError):
    """The shared request budget had no slot within the caller's maximum wait.

    No request was sent. ``retry_after`` is how many seconds until the next slot is expected
    to free (an estimate: a slot still in flight may end sooner or later).
    """

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(0.0, retry_after)
        super().__init__(
            message or f"PBX request budget exhausted, next slot in {self.retry_after:.1f} s"
        )


class GrantExpired(BudgetExhausted):
    """The process got to send too long after its grant (it was descheduled or starved), so it
    did not send: a request that late could reach the PBX outside the hold its slot covers.

    No request was sent and the slot was given back; asking again is safe.
    """

    def __init__(self, *, late: float, limit: float) -> None:
        self.late = late
        super().__init__(
            0.0,
            f"Nothing was sent: this process got to send {late:.2f} s after its budget grant "
            f"(at most {limit:g} s)",
        )


class BudgetUnavailable(PBXError):
    """The shared request budget (Redis) could not be asked, so no request was sent.

    Sending without the budget could get every process sharing the IP blocked for 30 minutes.
    """
