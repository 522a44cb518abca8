"""First run (`make run`): a demo admin whose password is printed once, and a fresh demo kiosk URL.

Kiosk tokens are stored hashed, so an old demo URL cannot be printed again: each run revokes
the previous demo token and issues a new one (docs/architecture.md, "Boards and roles")."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from wallboard.boards.models import KioskToken
from wallboard.boards.services import kiosk_token_create, kiosk_token_revoke
from wallboard.control.access import ADMIN_GROUP

DEMO_ADMIN = "demo-admin"
DEMO_KIOSK = "demo-tv"


def admin_group_ensure() -> Group:
    """The group that makes a user an admin of the wallboard, with the rights on the board
    configuration and the team-lead assignments."""
    group, _created = Group.objects.get_or_create(name=ADMIN_GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="boards"),
        *Permission.objects.filter(
            content_type__app_label="control", content_type__model="teamleadassignment"
        ),
    )
    return group


class Command(BaseCommand):
    help = "Create the demo admin (first run only) and print a fresh demo kiosk URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=DEMO_ADMIN)

    def handle(self, *args, username: str, **options) -> None:
        with transaction.atomic():
            admin_group_ensure()
            password = self._admin_create(username)
            for old in KioskToken.objects.active().filter(is_demo=True):
                kiosk_token_revoke(token=old)
            issued = kiosk_token_create(name=DEMO_KIOSK, is_demo=True)
        lines = ["", "=" * 72]
        if password:
            lines += [
                "Demo admin created. This password is shown ONCE; write it down:",
                f"    username: {username}",
                f"    password: {password}",
            ]
        else:
            lines.append(
                f"Demo admin {username!r} exists (password shown on the first run; "
                f"reset with `manage.py changepassword {username}`)."
            )
        lines += [
            f"Console and administration: {settings.SITE_URL}/ (log in as {username})",
            "Wallroom TV (kiosk) URL, all queues, valid until the next run:",
            f"    {issued.url}",
            "=" * 72,
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _admin_create(self, username: str) -> str | None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            return None
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        return password
