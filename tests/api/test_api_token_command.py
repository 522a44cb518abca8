from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from wallboard.api.models import ApiToken, token_digest

pytestmark = pytest.mark.django_db


def run_api_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_only_a_new_token_and_keeps_only_its_hash():
    user = get_user_model().objects.create_user("lead")
    out, err = run_api_token("lead")
    secret = out.strip()
    assert out == secret + "\n"
    assert err == ""
    assert secret.startswith("wbt_") and len(secret) > 40
    token = ApiToken.objects.get(user=user)
    assert token.digest == token_digest(secret)
    stored = [str(value) for value in ApiToken.objects.values_list(flat=False).get()]
    assert not any(secret in value for value in stored)


def test_the_token_authenticates_and_a_replacement_revokes_it():
    get_user_model().objects.create_user("lead")
    first = run_api_token("lead")[0].strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/v1/queues/").status_code != 401
    second = run_api_token("lead")[0].strip()
    assert first != second
    assert client.get("/api/v1/queues/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert client.get("/api/v1/queues/").status_code != 401


def test_named_tokens_live_side_by_side_and_are_revoked_by_name():
    get_user_model().objects.create_user("lead")
    script = run_api_token("lead", "--name", "script")[0].strip()
    run_api_token("lead", "--name", "dashboard")
    run_api_token("lead", "--revoke", "--name", "script")
    listing = run_api_token("lead", "--list")[0]
    assert "dashboard\tlive" in listing and "script\trevoked" in listing
    assert script not in listing
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {script}")
    assert client.get("/api/v1/queues/").status_code == 401


def test_it_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run_api_token("ghost")
    assert not ApiToken.objects.exists()


def test_it_refuses_an_inactive_user():
    get_user_model().objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        run_api_token("gone")
    assert not ApiToken.objects.exists()
