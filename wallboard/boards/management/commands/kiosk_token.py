"""`manage.py kiosk_token create NAME [--queues 100,101] [--board SLUG]` prints a TV's URL;
`kiosk_token revoke NAME` ends it, open websockets included; `kiosk_token list` shows them all."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from wallboard.boards.models import Board, KioskToken, queue_list_parse
from wallboard.boards.services import (
    KioskTokenError,
    kiosk_token_create,
    kiosk_token_revoke_by_name,
)


class Command(BaseCommand):
    help = "Create, revoke and list kiosk (wallroom TV) URLs."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        create = sub.add_parser("create", help="Create a kiosk URL and print it (once).")
        create.add_argument("name")
        create.add_argument("--queues", default="", help="Comma-separated queue numbers.")
        create.add_argument("--board", default="", help="Slug of the board to follow.")
        revoke = sub.add_parser("revoke", help="Revoke a kiosk URL and close its open boards.")
        revoke.add_argument("name")
        sub.add_parser("list", help="List kiosk tokens.")

    def handle(self, *args, command: str, **options) -> None:
        try:
            if command == "create":
                self._create(options["name"], options["queues"], options["board"])
            elif command == "revoke":
                self._revoke(options["name"])
            else:
                self._list()
        except KioskTokenError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, name: str, queues_text: str, board_slug: str) -> None:
        try:
            queues = queue_list_parse(queues_text)
        except ValueError as exc:
            raise CommandError(f"--queues: {exc}") from exc
        board = None
        if board_slug:
            board = Board.objects.filter(slug=board_slug).first()
            if board is None:
                raise CommandError(f"No board with slug {board_slug!r}")
        issued = kiosk_token_create(name=name, queues=queues, board=board)
        self.stdout.write(issued.url)

    def _revoke(self, name: str) -> None:
        tokens = kiosk_token_revoke_by_name(name=name)
        self.stdout.write(f"Revoked {name!r} ({len(tokens)} token); its open boards are closed.")

    def _list(self) -> None:
        rows = KioskToken.objects.select_related("board").order_by("name", "-created")
        if not rows:
            self.stdout.write("No kiosk tokens.")
            return
        for row in rows:
            scope = ",".join(str(q) for q in row.queues) or (
                f"board {row.board.slug}" if row.board else "all queues"
            )
            status = (
                f"revoked {timezone.localtime(row.revoked_at):%Y-%m-%d %H:%M}"
                if row.revoked_at
                else "active"
            )
            seen = (
                f"{timezone.localtime(row.last_seen):%Y-%m-%d %H:%M}" if row.last_seen else "never"
            )
            created = f"{timezone.localtime(row.created):%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"{row.name}\t{status}\tqueues: {scope}\tcreated {created}\tlast seen {seen}"
            )
