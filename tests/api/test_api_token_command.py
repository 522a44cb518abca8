from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def run_api_token(username: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("api_token", username, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_only_a_new_key():
    user = get_user_model().objects.create_user("lead")
    out, err = run_api_token("lead")
    key = out.strip()
    assert out == key + "\n"
    assert err == ""
    assert len(key) == 40
    assert Token.objects.get(user=user).key == key


def test_it_replaces_the_old_key():
    user = get_user_model().objects.create_user("lead")
    first = run_api_token("lead")[0].strip()
    second = run_api_token("lead")[0].strip()
    assert first != second
    assert list(Token.objects.filter(user=user).values_list("key", flat=True)) == [second]


def test_it_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run_api_token("ghost")
    assert not Token.objects.exists()


def test_it_refuses_an_inactive_user():
    get_user_model().objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        run_api_token("gone")
    assert not Token.objects.exists()
