"""Making, revoking and checking API tokens (``Authorization: Token <token>``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from wallboard.api.models import (
    LAST_USED_RESOLUTION_SECONDS,
    SHOWN_CHARACTERS,
    ApiToken,
    token_digest,
    token_new,
)

KEYWORD = "Token"


class ApiTokenError(Exception):
    """A token command cannot be done (unknown user, name taken...)."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is stored


def api_token_create(*, user, name: str = "default", replace: bool = True) -> IssuedToken:
    """A new token for ``user``. With ``replace``, a live token of the same name is revoked."""
    name = name.strip()
    if not name:
        raise ApiTokenError("A token needs a name")
    if not user.is_active:
        # Authentication refuses inactive users; a token that cannot work is a trap.
        raise ApiTokenError(f"User {user.get_username()!r} is inactive; activate it first")
    with transaction.atomic():
        live = ApiToken.objects.active().filter(user=user, name=name)
        if live.exists():
            if not replace:
                raise ApiTokenError(f"A live token named {name!r} exists; revoke it first")
            live.update(revoked_at=timezone.now())
        secret = token_new()
        token = ApiToken.objects.create(
            user=user, name=name, digest=token_digest(secret), shown=secret[:SHOWN_CHARACTERS]
        )
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(*, user, name: str) -> int:
    """Revoke ``user``'s live tokens of this name; returns how many."""
    return ApiToken.objects.active().filter(user=user, name=name).update(revoked_at=timezone.now())


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <token>`` against the stored hashes."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header."))
        try:
            secret = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token header.")) from None
        token = (
            ApiToken.objects.active()
            .select_related("user")
            .filter(digest=token_digest(secret))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        _note_used(token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return KEYWORD


def _note_used(token: ApiToken) -> None:
    """``last_used``, written at most once a minute: a busy script is not a write per call."""
    now = timezone.now()
    if token.last_used is None or token.last_used < now - timedelta(
        seconds=LAST_USED_RESOLUTION_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ``ApiTokenAuthentication``."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`; a token comes from `manage.py api_token USERNAME`.",
        }
