"""`python -m wallboard.web [daphne options] wallboard.asgi:application`: Daphne with an access
log that never records a kiosk's token (the kiosk's URL is its credential, and Daphne logs every
request's path). Everything else is Daphne's own command line."""

from __future__ import annotations

import sys

from daphne import cli
from daphne.access import AccessLogGenerator

from wallboard.logs import redact


class RedactedAccessLog(AccessLogGenerator):
    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        super().write_entry(host, date, redact(request), status, length, ident, user)


def main(argv: list[str] | None = None) -> None:
    cli.AccessLogGenerator = RedactedAccessLog
    cli.CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
