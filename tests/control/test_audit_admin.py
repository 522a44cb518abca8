"""The audit trail in the admin: readable by admins, never added, changed or deleted there."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from wallboard.control.models import CallBackClaim, MemberAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def plain_static(settings):
    # The manifest storage needs `collectstatic`; these pages only need the file names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def row(admin_user):
    return MemberAction.objects.create(
        user=admin_user,
        username="boss",
        source="api",
        queue=100,
        extension=201,
        action="pause",
        ok=False,
        code=400,
        detail="Not there",
    )


def test_admins_read_the_trail_but_cannot_touch_it(plain_static, admin_user, row):
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/control/memberaction/")
    assert listing.status_code == 200
    assert b"boss" in listing.content
    assert client.get("/admin/control/memberaction/add/").status_code == 403
    page = client.get(f"/admin/control/memberaction/{row.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a read-only view, no save button
    assert client.post(f"/admin/control/memberaction/{row.pk}/delete/").status_code == 403
    assert MemberAction.objects.filter(pk=row.pk, detail="Not there").exists()


def test_call_backs_and_their_ends_are_read_only_in_the_admin(plain_static, admin_user, row):
    claim = CallBackClaim.objects.create(
        number_key="905123456", number="00421905123456", queue=100, record=7, user=admin_user,
        name="boss", extension=201, started=timezone.now(),
    )  # fmt: skip
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/control/callbackclaim/")
    assert listing.status_code == 200
    assert b"00421905123456" in listing.content
    assert client.get("/admin/control/callbackclaim/add/").status_code == 403
    page = client.get(f"/admin/control/callbackclaim/{claim.pk}/change/")
    assert b'name="_save"' not in page.content
    assert client.post(f"/admin/control/callbackclaim/{claim.pk}/delete/").status_code == 403
