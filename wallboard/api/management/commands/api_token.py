"""`manage.py api_token USERNAME [--name NAME]`: print a new API token (once); `--revoke`,
`--list`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wallboard.api.models import ApiToken
from wallboard.api.tokens import ApiTokenError, api_token_create, api_token_revoke


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it (and only it) on stdout; only its hash is "
        "kept, so it cannot be shown again. A live token of the same name is replaced. Programs "
        "send it as `Authorization: Token <token>`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="default", help="Tells a user's tokens apart.")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--revoke", action="store_true", help="Revoke the named token.")
        what.add_argument("--list", action="store_true", help="List the user's tokens.")

    def handle(self, *args, username: str, name: str, revoke: bool, list: bool, **options):
        user = _user(username)
        if list:
            for token in ApiToken.objects.filter(user=user).order_by("name", "-created"):
                state = "revoked" if token.revoked_at else "live"
                used = (
                    f"{timezone.localtime(token.last_used):%Y-%m-%d %H:%M}"
                    if token.last_used
                    else "never"
                )
                self.stdout.write(f"{token.name}\t{state}\t{token.shown}…\tlast used {used}")
            return
        if revoke:
            if not api_token_revoke(user=user, name=name):
                raise CommandError(f"{username!r} has no live token named {name!r}")
            self.stderr.write(f"Revoked {username!r}'s token {name!r}.")
            return
        try:
            issued = api_token_create(user=user, name=name)
        except ApiTokenError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(issued.secret)


def _user(username: str):
    user_model = get_user_model()
    try:
        return user_model.objects.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(f"No user named {username!r}") from None
