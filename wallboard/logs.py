"""Log records a person can read, with no secret in them: every record once, expected refusals
(a 403, a 404, a bad Host header, a service away) as one line without a traceback, and kiosk
tokens, API tokens, session ids and passwords in URLs replaced by "…" wherever they appear."""

from __future__ import annotations

import logging
import re

from wallboard.outage import is_outage

# What a secret looks like in a log line, and what stays visible of it.
_SECRETS = (
    # A kiosk's URL is its credential: /kiosk/<token>/ and its socket /ws/kiosk/<token>/.
    (re.compile(r"(/kiosk/)[^/\s\"'?#]+"), r"\1…"),
    # Authorization headers and our API tokens.
    (re.compile(r"\b(Token|Bearer|Basic)\s+[A-Za-z0-9+/=._~-]+"), r"\1 …"),
    (re.compile(r"\bwbt_[A-Za-z0-9_-]{8,}"), "wbt_…"),
    # Cookies that log a browser in.
    (re.compile(r"\b(sessionid|csrftoken)=[^;\s\"']+"), r"\1=…"),
    # user:password@host in a URL (Redis, PostgreSQL, the PBX).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]*@"), r"\1…@"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and its traceback) with the secrets replaced."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        return True


# Loggers whose records are refusals the product expects: a line says enough.
_REFUSAL_LOGGERS = ("django.security", "django.request", "django.server")


class OneLineRefusals(logging.Filter):
    """No traceback for an expected refusal: Django's 4xx records, a disallowed Host header, and
    a request that failed because Redis or the database is away (the outage logs its cause
    once elsewhere; a traceback per request would bury it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not record.name.startswith(_REFUSAL_LOGGERS):
            return True
        status = getattr(record, "status_code", None)
        error = record.exc_info[1]
        if record.name.startswith("django.security") or (status and status < 500):
            record.exc_info = record.exc_text = None
        elif is_outage(error):
            record.msg, record.args = f"{record.getMessage()} ({error!r})", ()
            record.exc_info = record.exc_text = None
        return True
