"""`manage.py api_token USERNAME`: print a new API token for a user, replacing any old one."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Create a new API token for USERNAME and print it (and only it) on stdout. Any previous "
        "token of that user stops working. Programs send it as `Authorization: Token <key>`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = _active_user(username)
        self.stdout.write(token_replace(user=user).key)


def _active_user(username: str):
    user_model = get_user_model()
    try:
        user = user_model.objects.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(f"No user named {username!r}") from None
    if not user.is_active:
        # Token authentication refuses inactive users; a key that cannot work is a trap.
        raise CommandError(f"User {username!r} is inactive; activate it first")
    return user


@transaction.atomic
def token_replace(*, user) -> Token:
    """The user's only token, freshly generated: the old key (if any) is revoked."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
