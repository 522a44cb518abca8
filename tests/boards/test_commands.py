from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tests.conftest import ROOT
from wallboard.boards import kiosks
from wallboard.boards.management.commands.demo_setup import DEMO_ADMIN
from wallboard.boards.models import KioskToken

pytestmark = pytest.mark.django_db

URL = re.compile(r"(https?://\S+/kiosk/(\S+)/)")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def token_in(output: str) -> str:
    match = URL.search(output)
    assert match, output
    return match.group(2)


def test_it_prints_a_kiosk_url_on_the_site_url(settings):
    settings.SITE_URL = "https://board.example.sk"
    output = run("kiosk_token", "create", "Wallroom", "--queues", "100,101")
    assert output.startswith("https://board.example.sk/kiosk/")
    kiosk = kiosks.kiosk_from_token(token_in(output))
    assert kiosk.name == "Wallroom"
    assert kiosk.queues == frozenset({100, 101})


def test_it_refuses_a_second_live_token_with_the_same_name():
    run("kiosk_token", "create", "Wallroom")
    with pytest.raises(CommandError, match="exists"):
        run("kiosk_token", "create", "Wallroom")


def test_it_refuses_bad_queue_lists_and_unknown_boards():
    with pytest.raises(CommandError, match="queue number"):
        run("kiosk_token", "create", "Wallroom", "--queues", "100,sales")
    with pytest.raises(CommandError, match="No board"):
        run("kiosk_token", "create", "Wallroom", "--board", "nope")
    assert not KioskToken.objects.exists()


def test_it_revokes_a_token_and_tells_its_open_sockets(django_capture_on_commit_callbacks):
    secret = token_in(run("kiosk_token", "create", "Wallroom"))
    kiosk = kiosks.kiosk_from_token(secret)

    def revoke() -> None:
        # In the test's thread (thread-sensitive), where its database connection lives.
        with django_capture_on_commit_callbacks(execute=True):
            run("kiosk_token", "revoke", "Wallroom")

    async def revoke_while_listening() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(f"kiosk.{kiosk.id}", channel)
        try:
            await sync_to_async(revoke)()
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(f"kiosk.{kiosk.id}", channel)

    message = async_to_sync(revoke_while_listening)()
    assert message == {"type": "kiosk.revoked"}
    assert kiosks.kiosk_from_token(secret) is None
    # The name is free again; the old URL stays dead.
    new_secret = token_in(run("kiosk_token", "create", "Wallroom"))
    assert kiosks.kiosk_from_token(new_secret) is not None
    assert kiosks.kiosk_from_token(secret) is None


def test_it_refuses_to_revoke_an_unknown_name():
    with pytest.raises(CommandError, match="No live kiosk token"):
        run("kiosk_token", "revoke", "Nobody")


def test_it_lists_tokens_without_their_secrets(django_capture_on_commit_callbacks):
    secret = token_in(run("kiosk_token", "create", "Wallroom", "--queues", "100"))
    run("kiosk_token", "create", "Lobby")
    with django_capture_on_commit_callbacks(execute=True):
        run("kiosk_token", "revoke", "Lobby")
    listing = run("kiosk_token", "list")
    assert "Wallroom\tactive\tqueues: 100" in listing
    assert "Lobby\trevoked" in listing
    assert secret not in listing


def test_demo_setup_prints_the_admin_password_only_on_the_first_run(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        first = run("demo_setup")
    password = re.search(r"password: (\S+)", first).group(1)
    admin = get_user_model().objects.get(username=DEMO_ADMIN)
    assert admin.is_superuser and admin.check_password(password)
    first_kiosk = token_in(first)
    assert kiosks.kiosk_from_token(first_kiosk).queues is None

    with django_capture_on_commit_callbacks(execute=True):
        second = run("demo_setup")
    assert "password:" not in second and password not in second
    assert "exists" in second
    # A fresh demo URL each run; the previous one is revoked.
    assert kiosks.kiosk_from_token(token_in(second)) is not None
    assert kiosks.kiosk_from_token(first_kiosk) is None
    assert KioskToken.objects.active().filter(is_demo=True).count() == 1


def test_readme_commands_work_beside_make_run_without_extra_environment(tmp_path):
    """A second terminal has neither DEBUG nor SECRET_KEY: the commands still work, and share
    the key `make run` uses (one made once in the var directory)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(WALLBOARD_VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite://{tmp_path / 'db.sqlite3'}")

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    manage("migrate", "--verbosity=0")
    manage("shell", "-c", "from django.contrib.auth import get_user_model; "
           "get_user_model().objects.create_user('ops')")  # fmt: skip
    assert manage("api_token", "ops").startswith("wbt_")
    assert "/kiosk/" in manage("kiosk_token", "create", "Hall")
    assert "Hall" in manage("kiosk_token", "list")
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"
